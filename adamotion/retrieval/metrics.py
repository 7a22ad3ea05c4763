"""Text <-> motion retrieval metrics (protocols of TMR / MESM, see ``shared/docs/method.md``).

:func:`retrieval_metrics` scores a similarity matrix ``sim`` (N_text, N_motion), higher = more similar,
whose ground-truth pairing is the diagonal (text ``i`` describes motion ``i``). It reports, in both
directions (``t2m``: a caption retrieves motions; ``m2t``: a motion retrieves captions), recall at
1, 2, 3, 5, 10 in percent and the median rank, plus ``Rsum`` = the sum of the ten recalls.

Protocols (the ``protocol`` argument):

* ``"normal"`` — the whole set is the gallery; only the paired item is correct.
* ``"threshold"`` — as normal, but a retrieved item also counts as correct when its caption is
  near-identical to the query's: ``text_sim[i, j] >= threshold`` (0.95 in the papers). ``text_sim`` is the
  (N, N) caption-caption similarity, required for this protocol and ignored by the others.
* ``"guo"`` — the set is cut into batches of ``batch`` (32) pairs, optionally shuffled with ``rng``; each
  batch is scored as a small normal gallery, and every metric (median rank included) is averaged over
  batches. An incomplete last batch is dropped, as in Guo et al.'s loaders.

A query's rank is 1 + the number of incorrect gallery items scoring at least as high as its best correct
item: ties count against the query, so a constant similarity matrix scores no better than chance.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from adamotion.utils.numeric import as_generator, to_numpy

__all__ = ["retrieval_metrics", "retrieval_metric_names", "RECALL_KS", "PROTOCOLS", "DIRECTIONS",
           "TEXT_SIM_THRESHOLD", "GUO_BATCH"]

RECALL_KS = (1, 2, 3, 5, 10)
PROTOCOLS = ("normal", "threshold", "guo")
DIRECTIONS = ("t2m", "m2t")
TEXT_SIM_THRESHOLD = 0.95  # captions at least this similar count as the same description (TMR)
GUO_BATCH = 32  # gallery size of the "guo" protocol


def retrieval_metric_names() -> list[str]:
    """Keys of a :func:`retrieval_metrics` result, in table order."""
    names = []
    for direction in DIRECTIONS:
        names += [f"{direction}/R@{k}" for k in RECALL_KS] + [f"{direction}/MedR"]
    return names + ["Rsum"]


def _ranks(scores: np.ndarray, correct: np.ndarray) -> np.ndarray:
    """Rank (1 = first) of the best correct item for each query row.

    scores: (Q, G) similarity of each query to each gallery item; correct: (Q, G) bool, >= 1 True per row.
    """
    best_correct = np.where(correct, scores, -np.inf).max(axis=1, keepdims=True)  # (Q, 1)
    incorrect_ahead = (~correct & (scores >= best_correct)).sum(axis=1)  # (Q,)
    return 1 + incorrect_ahead


def _direction_metrics(ranks: np.ndarray) -> dict[str, float]:
    """Recall@k in percent and the median rank of one direction."""
    out = {f"R@{k}": float(100.0 * np.mean(ranks <= k)) for k in RECALL_KS}
    out["MedR"] = float(np.median(ranks))
    return out


def _gallery_metrics(sim: np.ndarray, same_caption: np.ndarray | None) -> dict[str, float]:
    """Metrics of one square gallery; ``same_caption`` (N, N) bool marks near-identical caption pairs."""
    num_pairs = sim.shape[0]
    paired = np.eye(num_pairs, dtype=bool)  # (N, N) ground truth = diagonal
    correct = paired if same_caption is None else (paired | same_caption)
    # t2m: row i = caption i querying motions j, correct when j == i or caption j ~ caption i
    text_to_motion = _direction_metrics(_ranks(sim, correct))
    # m2t: row j = motion j querying captions i, correct when i == j or caption i ~ caption j
    motion_to_text = _direction_metrics(_ranks(sim.T, correct.T))
    out = {f"t2m/{key}": value for key, value in text_to_motion.items()}
    out.update({f"m2t/{key}": value for key, value in motion_to_text.items()})
    return out


def _with_rsum(metrics: dict[str, float]) -> dict[str, float]:
    ordered = {name: metrics[name] for name in retrieval_metric_names() if name != "Rsum"}
    ordered["Rsum"] = float(sum(metrics[f"{d}/R@{k}"] for d in DIRECTIONS for k in RECALL_KS))
    return ordered


def retrieval_metrics(
    sim: Any,
    protocol: str = "normal",
    text_sim: Any | None = None,
    threshold: float = TEXT_SIM_THRESHOLD,
    batch: int = GUO_BATCH,
    rng: np.random.Generator | int | None = None,
    shuffle: bool = True,
) -> dict[str, float]:
    """Recall@{1,2,3,5,10} (percent) and median rank in both directions, and Rsum.

    Args:
        sim: (N, N) text-motion similarity, higher = more similar; pair ``i`` is ``(text i, motion i)``.
        protocol: ``"normal"``, ``"threshold"`` or ``"guo"`` (module docstring).
        text_sim: (N, N) caption-caption similarity; required by ``"threshold"``, ignored otherwise.
        threshold: caption similarity from which two captions count as the same (``"threshold"``).
        batch: gallery size of ``"guo"``; N must be at least ``batch``.
        rng: shuffles the pairs before batching (``"guo"`` with ``shuffle=True``); generator, seed or None.
        shuffle: ``"guo"`` only; False keeps the given order (batch b = pairs ``b*batch .. (b+1)*batch-1``).

    Returns:
        ``{"t2m/R@1", ..., "t2m/R@10", "t2m/MedR", "m2t/R@1", ..., "m2t/MedR", "Rsum"}`` as floats.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown retrieval protocol {protocol!r}; choose one of {list(PROTOCOLS)}")
    scores = to_numpy(sim)
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(
            f"sim must be a square (N_text, N_motion) matrix with the true pairs on the diagonal, got shape {scores.shape}"
        )
    if scores.shape[0] == 0:
        raise ValueError("sim is empty")
    if np.any(np.isnan(scores)):
        raise ValueError("sim contains NaN")
    num_pairs = scores.shape[0]

    if protocol == "threshold":
        if text_sim is None:
            raise ValueError(
                "protocol='threshold' needs text_sim, the (N, N) caption-caption similarity "
                "(e.g. cosine similarity of sentence embeddings of the captions)"
            )
        caption_sim = to_numpy(text_sim)
        if caption_sim.shape != scores.shape:
            raise ValueError(f"text_sim must have the shape of sim {scores.shape}, got {caption_sim.shape}")
        return _with_rsum(_gallery_metrics(scores, caption_sim >= threshold))

    if protocol == "normal":
        return _with_rsum(_gallery_metrics(scores, None))

    # protocol == "guo"
    if batch < 2:
        raise ValueError(f"batch must be >= 2, got {batch}")
    if num_pairs < batch:
        raise ValueError(f"protocol='guo' needs at least batch={batch} pairs, got {num_pairs}")
    order = as_generator(rng).permutation(num_pairs) if shuffle else np.arange(num_pairs)
    num_batches = num_pairs // batch
    per_batch = []
    for members in order[: num_batches * batch].reshape(num_batches, batch):  # (batch,) pair indices
        per_batch.append(_gallery_metrics(scores[np.ix_(members, members)], None))
    averaged = {key: float(np.mean([metrics[key] for metrics in per_batch])) for key in per_batch[0]}
    return _with_rsum(averaged)
