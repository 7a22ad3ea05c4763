"""Train a retrieval motion encoder into the pooled space of one FROZEN text encoder (method.md, retrieval).

``text_encoder="vanilla"``: the pretrained encoder (adapters off); ``"ada"``: the AdaQF-adapted encoder of a
trained pipeline (adapters on). Training the same motion encoder against each, on the same data and seed,
gives the pair of retrieval models that compares the two text encoders (``<checkpoint>/retrieval_vanilla``
and ``retrieval_ada``).

Objective: symmetric InfoNCE between the motion embedding and the L2-normalised pooled text embedding of
the sample's caption (duplicate captions / motion ids are not negatives). The text side never trains, so its
pooled embeddings are computed once per caption and cached. Validation: text->motion R@1 / R@5 on the val
split. The folder holds the :class:`RetrievalMotionEncoder` (component ``retrieval_motion_encoder``; its
config names the text encoder) next to ``train_config.json``, ``log.csv`` and ``checkpoint/``.
"""
from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from adamotion.models.motion_encoder import MotionEncoderSizes
from adamotion.train.loop import (
    LoopConfig, check_data_root, export_into, finish_training, fixed_batches, open_training_data, start_training,
)
from adamotion.utils.config import config_from_dict, config_to_dict

logger = logging.getLogger(__name__)

RUN_CONFIG_NAME = "train_config.json"  # config.json is the motion encoder's own file
TEXT_ENCODER_CHOICES = ("vanilla", "ada")


@dataclass
class RetrievalTrainConfig:
    """Everything ``train_retrieval`` needs (section ``retrieval`` of ``configs/default.json``)."""

    loop: LoopConfig = field(default_factory=lambda: LoopConfig(
        steps=1500, batch_size=64, lr=5e-4, warmup_steps=100, lr_decay_at=0.8, ema_decay=0.995,
        checkpoint_every=500, val_every=500))  # optimisation and bookkeeping
    model: MotionEncoderSizes = field(default_factory=MotionEncoderSizes)  # network sizes
    temperature: float = 0.07  # InfoNCE temperature
    backbone: str = "minilm"  # text backbone for text_encoder="vanilla" when no pipeline is given
    text_batch_size: int = 256  # captions encoded at once when filling the pooled-embedding cache
    val_max_items: int = 1024  # most val motions in the retrieval gallery (0 = the whole split)
    val_batch_size: int = 256  # motions embedded at once during validation

    @classmethod
    def from_dict(cls, data: dict | None) -> "RetrievalTrainConfig":
        return config_from_dict(cls, data, "retrieval config")


class PooledTextCache:
    """L2-normalised pooled embeddings of a frozen text encoder, computed once per caption."""

    def __init__(self, text_encoder, adapters: bool, batch_size: int = 256):
        self.text_encoder = text_encoder.eval()
        self.adapters = adapters
        self.batch_size = batch_size
        self.table: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def __call__(self, captions: list[str]) -> torch.Tensor:
        missing = [c for c in dict.fromkeys(captions) if c not in self.table]
        for s in range(0, len(missing), self.batch_size):
            chunk = missing[s:s + self.batch_size]
            if self.adapters:
                pooled = self.text_encoder(chunk).pooled
            else:
                with self.text_encoder.vanilla():
                    pooled = self.text_encoder(chunk).pooled
            for caption, row in zip(chunk, F.normalize(pooled.float(), dim=-1).cpu()):
                self.table[caption] = row
        return torch.stack([self.table[c] for c in captions])  # (B, D)


def load_text_encoder(kind: str, pipeline_dir, backbone: str):
    """(encoder, adapters on?, description dict) for ``kind`` in {"vanilla", "ada"}."""
    from adamotion.text.encoder import TextEncoder

    if kind not in TEXT_ENCODER_CHOICES:
        raise ValueError(f"unknown text encoder {kind!r}; choose one of {list(TEXT_ENCODER_CHOICES)}")
    info: dict = {"kind": kind}
    if pipeline_dir is not None:
        folder = Path(pipeline_dir).expanduser() / "text_encoder"
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not found; --pipeline must be a trained generator folder "
                                    f"(e.g. checkpoints/default/adaqf) holding text_encoder/")
        from adamotion.retrieval.index import checksum_paths

        encoder = TextEncoder.from_pretrained(folder)
        info.update(pipeline=str(Path(pipeline_dir)), text_encoder_sha256=checksum_paths([folder]))
    elif kind == "ada":
        raise ValueError("--text-encoder ada needs --pipeline DIR (a trained adaqf generator folder with its adapters)")
    else:
        encoder = TextEncoder.from_pretrained(backbone, lora=None)
    if kind == "ada" and not (encoder.has_adapters or encoder.backbone_finetuned):
        raise ValueError(f"{pipeline_dir}: its text encoder has no adapters and was not fine-tuned "
                         f"(a baseline/constraints run?); use the adaqf pipeline for --text-encoder ada")
    if kind == "vanilla" and encoder.backbone_finetuned:
        raise ValueError(f"{pipeline_dir}: its backbone was fully fine-tuned, so the vanilla encoder cannot be "
                         f"recovered from it; use an adaqf/lora pipeline or no --pipeline")
    adapters = kind == "ada"
    with (encoder.vanilla() if not adapters else contextlib.nullcontext()):
        info["display_name"] = encoder.display_name
    info.update(spec=encoder.spec, backbone=encoder.backbone_name, hidden_size=encoder.hidden_size,
                adapters=adapters and encoder.has_adapters)
    return encoder, adapters, info


def train_retrieval(data_root, out_dir, text_encoder: str = "vanilla", pipeline_dir=None,
                    config: RetrievalTrainConfig | dict | None = None, *, resume: bool | None = None,
                    callbacks=()) -> Path:
    """Train a :class:`RetrievalMotionEncoder` against a frozen text encoder; save it into ``out_dir``."""
    from adamotion.data.humanml3d import collate_motion_text
    from adamotion.models.extractors import contrastive_loss
    from adamotion.models.motion_encoder import MotionEncoderConfig, RetrievalMotionEncoder
    from adamotion.train.extractors import retrieval_recalls

    if not isinstance(config, RetrievalTrainConfig):
        config = RetrievalTrainConfig.from_dict(config)
    check_data_root(data_root)  # before loading an encoder
    encoder, adapters, text_info = load_text_encoder(text_encoder, pipeline_dir, config.backbone)
    out_dir = Path(out_dir)
    loop = config.loop
    data = open_training_data(data_root, loop, normalize=True)
    root, meta = data.root, data.meta
    feature_dim = meta.skeleton.feature_dim

    model = RetrievalMotionEncoder(MotionEncoderConfig(
        feature_dim=feature_dim, embed_dim=encoder.hidden_size, max_frames=meta.skeleton.max_frames,
        temperature=config.temperature, text_encoder=text_info, **config_to_dict(config.model)))
    model.set_normalization(meta.mean, meta.std)
    run_config = {"job": "retrieval", "data": str(root), "text_encoder": text_info, **config_to_dict(config)}
    texts = PooledTextCache(encoder, adapters, config.text_batch_size)

    def loss_fn(batch: dict, generator: torch.Generator) -> dict:
        motion = model(batch["features"], batch["frame_mask"])  # (B, D)
        text = texts(batch["captions"]).to(motion.device)  # (B, D) frozen
        out = contrastive_loss(text, motion, temperature=config.temperature, cos_weight=0.0,
                               captions=batch["captions"], ids=batch.get("motion_ids"))
        return {"total": out["infonce"], "infonce": out["infonce"], "cosine": out["cosine"]}

    val_batches = fixed_batches(data.val_set, config.val_max_items, config.val_batch_size, collate_motion_text)

    def validate() -> dict:
        motions, text_rows = [], []
        for batch in val_batches:
            motions.append(model(batch["features"].to(trainer.device), batch["frame_mask"].to(trainer.device)).float())
            text_rows.append(texts(batch["captions"]).to(trainer.device))
        motion_emb, text_emb = torch.cat(motions), torch.cat(text_rows)
        loss = contrastive_loss(text_emb, motion_emb, temperature=config.temperature, cos_weight=0.0)["infonce"]
        return {"loss": float(loss), **retrieval_recalls(text_emb, motion_emb)}

    trainer = start_training(
        out_dir, run_config, RUN_CONFIG_NAME, loop=loop, data=data, modules={"motion_encoder": model},
        param_groups=[{"name": "motion_encoder", "params": [p for p in model.parameters() if p.requires_grad],
                       "lr": loop.lr}],
        loss_fn=loss_fn, validate_fn=validate, resume=resume, callbacks=callbacks)

    def export(state) -> None:
        training = {"steps": state.step, "validation": state.last_val, "data": str(root)}
        model.to("cpu").eval()
        export_into(out_dir, lambda d: model.save_pretrained(d, extra={"training": training}))
        logger.info("retrieval motion encoder (%s) saved to %s (val R@1 %.1f, R@5 %.1f)", text_encoder, out_dir,
                    state.last_val.get("R@1", float("nan")), state.last_val.get("R@5", float("nan")))

    finish_training(trainer, "retrieval", export, {"text_encoder": text_info})
    return out_dir
