"""Train the quality-feedback extractors E_T / E_M (method.md §3, paper §3.2) before the generator.

Symmetric InfoNCE over the batch + a cosine term on positive pairs (``contrastive_loss``). The cosine term
alone is minimised by mapping everything to one point; with its full weight from step 0 the pair collapsed
(cosine term ~0, InfoNCE stuck at log B) for ~100 steps on the small corpus before InfoNCE pulled it apart.
Its weight therefore ramps up from 0 over ``cos_warmup`` of the run (collapse shortened to ~30 steps, val
R@5 45% instead of 6% after 100 steps). Motion input is
un-normalised features (the motion extractor normalises with its own statistics, taken from the training
split). Validation reports text->motion retrieval R@1 / R@5 over the val split (whole split as gallery,
capped at ``val_max_items``). The run folder ends up holding the :class:`ExtractorPair` (``config.json``,
``text/``, ``motion/``) next to ``train_config.json``, ``log.csv``, ``val.csv`` and ``checkpoint/``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from adamotion.train.loop import (
    LoopConfig, export_into, finish_training, fixed_batches, open_training_data, start_training,
)
from adamotion.utils.config import config_from_dict, config_to_dict

logger = logging.getLogger(__name__)

RUN_CONFIG_NAME = "train_config.json"  # config.json is the ExtractorPair's own file


@dataclass
class ExtractorModelConfig:
    """Sizes of the GRU extractor pair (see ``adamotion.models.extractors``)."""

    embed_dim: int = 256  # shared embedding size of E_T and E_M
    hidden: int = 256  # GRU hidden size per direction
    word_vectors: str = "minilm"  # frozen word-piece table of E_T: "minilm" or a transformers model folder


@dataclass
class ExtractorTrainConfig:
    """Everything ``train_extractors`` needs (section ``extractors`` of ``configs/default.json``)."""

    loop: LoopConfig = field(default_factory=lambda: LoopConfig(
        steps=2000, batch_size=64, lr=1e-3, warmup_steps=100, lr_decay_at=0.8, ema_decay=0.995,
        checkpoint_every=500, val_every=500, mixed_precision="no"))  # optimisation and bookkeeping (GRUs in fp32)
    model: ExtractorModelConfig = field(default_factory=ExtractorModelConfig)  # network sizes
    temperature: float = 0.07  # InfoNCE temperature tau
    cos_weight: float = 1.0  # weight of the (1 - cos) term on positive pairs
    cos_warmup: float = 0.25  # fraction of the steps over which cos_weight ramps up from 0 (see module docstring)
    val_max_items: int = 1024  # most val motions in the retrieval gallery (0 = the whole split)
    val_batch_size: int = 256  # motions embedded at once during validation

    @classmethod
    def from_dict(cls, data: dict | None) -> "ExtractorTrainConfig":
        return config_from_dict(cls, data, "extractors config")


def retrieval_recalls(text_emb: torch.Tensor, motion_emb: torch.Tensor) -> dict[str, float]:
    """Text->motion R@1 / R@5 (percent) and median rank; pair ``i`` is (text ``i``, motion ``i``)."""
    from adamotion.retrieval.metrics import retrieval_metrics

    sim = (torch.nn.functional.normalize(text_emb, dim=-1) @ torch.nn.functional.normalize(motion_emb, dim=-1).T)
    metrics = retrieval_metrics(sim.double().cpu().numpy(), protocol="normal")
    return {"R@1": metrics["t2m/R@1"], "R@5": metrics["t2m/R@5"], "MedR": metrics["t2m/MedR"]}


def train_extractors(data_root, out_dir, config: ExtractorTrainConfig | dict | None = None, *,
                     resume: bool | None = None, callbacks=()) -> Path:
    """Train E_T + E_M on ``data_root`` (HumanML3D layout) and save the pair into ``out_dir``.

    Resumes automatically from ``out_dir/checkpoint``. Returns ``out_dir``, loadable with
    ``ExtractorPair.from_pretrained(out_dir)``.
    """
    from adamotion.data.humanml3d import collate_motion_text
    from adamotion.models.extractors import ExtractorPair, contrastive_loss

    if not isinstance(config, ExtractorTrainConfig):
        config = ExtractorTrainConfig.from_dict(config)
    out_dir = Path(out_dir)
    loop = config.loop
    data = open_training_data(data_root, loop, normalize=False)
    root, meta = data.root, data.meta
    feature_dim = meta.skeleton.feature_dim

    pair = ExtractorPair.build(feature_dim, meta.mean, meta.std, embed_dim=config.model.embed_dim,
                               hidden=config.model.hidden, word_vectors=config.model.word_vectors,
                               temperature=config.temperature, cos_weight=config.cos_weight)
    run_config = {"job": "extractors", "data": str(root), **config_to_dict(config)}

    def loss_fn(batch: dict, generator: torch.Generator) -> dict:
        ramp_steps = config.cos_warmup * loop.steps
        ramp = min(1.0, trainer.state.step / ramp_steps) if ramp_steps > 0 else 1.0
        out = contrastive_loss(pair.encode_text(batch["captions"]),
                               pair.encode_motion(batch["features"], batch["frame_mask"]),
                               temperature=config.temperature, cos_weight=config.cos_weight * ramp,
                               captions=batch["captions"], ids=batch.get("motion_ids"))
        return {"total": out["loss"], "infonce": out["infonce"], "cosine": out["cosine"]}

    val_batches = fixed_batches(data.val_set, config.val_max_items, config.val_batch_size, collate_motion_text)

    def validate() -> dict:
        texts, motions = [], []
        for batch in val_batches:
            features = batch["features"].to(trainer.device)
            mask = batch["frame_mask"].to(trainer.device)
            t = pair.encode_text(batch["captions"])
            m = pair.encode_motion(features, mask)
            texts.append(t.float())
            motions.append(m.float())
        text_emb, motion_emb = torch.cat(texts), torch.cat(motions)
        loss = contrastive_loss(text_emb, motion_emb, config.temperature, config.cos_weight)["loss"]
        return {"loss": float(loss), **retrieval_recalls(text_emb, motion_emb)}

    trainer = start_training(
        out_dir, run_config, RUN_CONFIG_NAME, loop=loop, data=data, modules={"extractors": pair},
        param_groups=[{"name": "extractors", "params": [p for p in pair.parameters() if p.requires_grad],
                       "lr": loop.lr}],
        loss_fn=loss_fn, validate_fn=validate, resume=resume, callbacks=callbacks)

    def export(state) -> None:
        export_into(out_dir, pair.to("cpu").eval().save_pretrained)
        logger.info("extractors saved to %s (val R@1 %.1f, R@5 %.1f)", out_dir,
                    state.last_val.get("R@1", float("nan")), state.last_val.get("R@5", float("nan")))

    finish_training(trainer, "extractors", export)
    return out_dir
