"""Text-to-motion generation metrics (the evaluation protocol of Guo et al. 2022, see ``shared/docs/method.md``).

Every function is pure numpy: it takes arrays (torch tensors are accepted and converted), takes the
protocol's knobs as explicit arguments (pool size, number of pairs, thresholds) and, where it draws random
pairs or batches, an explicit ``rng``. ``rng`` may be a ``numpy.random.Generator``, an ``int`` seed, or
``None`` for a fresh unseeded generator (numpy's own convention); pass a seed to make a run repeatable.

Embeddings are compared by Euclidean distance, as in the field's evaluators.

Protocol facts kept here, not scattered through callers:

* FID: Fréchet distance between Gaussians fitted to real and generated motion embeddings.
* Diversity: mean distance between ``pairs`` (300) random pairs of generated motions.
* MultiModality: mean distance between ``pairs`` (10) random pairs of generations for the same caption.
* R-precision top-1..k: each motion ranks its own caption among a pool of 32 (1 true + 31 others).
* MM-Dist: mean distance between each caption and its motion.
* Skating ratio: share of frame transitions in which a foot joint is in ground contact (height < 5 cm)
  yet moves more than 2.5 cm horizontally per frame at 20 fps.
* Physical quality (:func:`physical_metrics`, defined in :mod:`adamotion.motion.physics`): jitter (mean joint
  acceleration, m/s²), jerk (m/s³), bone-length variation, foot-floor penetration and floating, at the frame
  rate of the skeleton passed in (never a default one).
* Every figure is reported as mean ± 95 % confidence interval over repeated evaluations (:func:`mean_ci95`).
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy import linalg

from adamotion.motion.physics import (  # the physical metrics live below data and eval alike
    PENETRATION_TOLERANCE_M, PHYSICAL_METRICS, SKATING_DISTANCE_M, SKATING_HEIGHT_M, SKATING_REFERENCE_FPS, UP_AXIS,
    bone_length_variation, foot_floating, foot_penetration, joint_acceleration, joint_jerk, physical_metrics,
    skating_ratio,
)
from adamotion.utils.numeric import CI95_Z, as_generator, mean_ci95, retrieval_rank, to_numpy

__all__ = [
    "to_numpy",
    "as_generator",
    "frechet_distance",
    "diversity",
    "multimodality",
    "r_precision",
    "mm_distance",
    "skating_ratio",
    "joint_acceleration",
    "joint_jerk",
    "bone_length_variation",
    "foot_penetration",
    "foot_floating",
    "physical_metrics",
    "PHYSICAL_METRICS",
    "PENETRATION_TOLERANCE_M",
    "mean_ci95",
    "retrieval_rank",
    "R_PRECISION_POOL",
    "DIVERSITY_PAIRS",
    "MULTIMODALITY_PAIRS",
    "SKATING_HEIGHT_M",
    "SKATING_DISTANCE_M",
    "SKATING_REFERENCE_FPS",
    "UP_AXIS",
    "CI95_Z",
]

# ----------------------------------------------------------------------------- protocol constants
R_PRECISION_POOL = 32  # captions per R-precision pool: 1 true + 31 others (Guo et al.)
DIVERSITY_PAIRS = 300  # random pairs for Diversity
MULTIMODALITY_PAIRS = 10  # random pairs per caption for MultiModality
# skating thresholds, UP_AXIS and CI95_Z are defined with their functions (motion.physics, utils.numeric)


# ----------------------------------------------------------------------------- helpers
def _embeddings(array: Any, name: str, min_rows: int = 1) -> np.ndarray:
    """Check and convert an (N, D) embedding matrix."""
    emb = to_numpy(array)
    if emb.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array of embeddings, got shape {emb.shape}")
    if emb.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows, got {emb.shape[0]}")
    if not np.all(np.isfinite(emb)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return emb


def _paired_embeddings(text_emb: Any, motion_emb: Any) -> tuple[np.ndarray, np.ndarray]:
    """Check that text and motion embeddings are row-aligned pairs of the same width."""
    text = _embeddings(text_emb, "text_emb")
    motion = _embeddings(motion_emb, "motion_emb")
    if text.shape != motion.shape:
        raise ValueError(
            f"text_emb {text.shape} and motion_emb {motion.shape} must have the same shape: row i of each is one pair"
        )
    return text, motion


def _distinct_pairs(num_items: int, num_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``num_pairs`` uniformly random ordered pairs ``(i, j)`` with ``i != j`` among ``num_items`` items."""
    first = rng.integers(num_items, size=num_pairs)  # (P,)
    offset = rng.integers(1, num_items, size=num_pairs)  # (P,) in 1..n-1, so second != first
    second = (first + offset) % num_items  # (P,)
    return first, second


# ----------------------------------------------------------------------------- distribution metrics
def frechet_distance(real: Any, gen: Any, eps: float = 1e-6) -> float:
    """Fréchet distance between Gaussians fitted to ``real`` (N, D) and ``gen`` (M, D) embeddings (FID).

    ``||mu_r - mu_g||^2 + tr(S_r + S_g - 2 (S_r S_g)^{1/2})`` with sample covariances (``ddof=1``) and
    ``scipy.linalg.sqrtm`` for the matrix square root. When the product of covariances is near-singular
    (fewer samples than dimensions, collapsed generators) and ``sqrtm`` gives non-finite values, ``eps`` is
    added to both diagonals before retrying. A complex square root whose imaginary part is numerical
    noise is reduced to its real part; a large imaginary part raises ``ValueError``. The result is
    clamped at 0 (the distance is non-negative; tiny negatives are rounding).
    """
    real = _embeddings(real, "real", min_rows=2)
    gen = _embeddings(gen, "gen", min_rows=2)
    if real.shape[1] != gen.shape[1]:
        raise ValueError(f"real ({real.shape[1]}-d) and gen ({gen.shape[1]}-d) embeddings must have the same width")

    mean_real, mean_gen = real.mean(axis=0), gen.mean(axis=0)  # (D,)
    cov_real = np.atleast_2d(np.cov(real, rowvar=False))  # (D, D)
    cov_gen = np.atleast_2d(np.cov(gen, rowvar=False))  # (D, D)

    def _sqrt_of_product(offset: float) -> np.ndarray:
        shift = offset * np.eye(cov_real.shape[0])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", linalg.LinAlgWarning)  # singular input: handled below
            return linalg.sqrtm((cov_real + shift) @ (cov_gen + shift))

    sqrt_product = _sqrt_of_product(0.0)
    if not np.all(np.isfinite(sqrt_product)):
        sqrt_product = _sqrt_of_product(eps)
    if not np.all(np.isfinite(sqrt_product)):
        raise ValueError("frechet_distance: covariance product has no finite square root even after the eps offset")
    if np.iscomplexobj(sqrt_product):
        largest_imaginary = np.max(np.abs(np.diagonal(sqrt_product).imag))
        scale = max(1.0, float(np.max(np.abs(np.diagonal(sqrt_product).real))))
        if largest_imaginary > 1e-3 * scale:
            raise ValueError(
                f"frechet_distance: matrix square root has a large imaginary component ({largest_imaginary:.3g}); "
                "the embeddings are probably degenerate"
            )
        sqrt_product = sqrt_product.real

    mean_term = float(np.sum((mean_real - mean_gen) ** 2))
    trace_term = float(np.trace(cov_real) + np.trace(cov_gen) - 2.0 * np.trace(sqrt_product))
    return max(mean_term + trace_term, 0.0)


def diversity(emb: Any, pairs: int = DIVERSITY_PAIRS, rng: np.random.Generator | int | None = None) -> float:
    """Mean Euclidean distance between ``pairs`` random pairs of distinct rows of ``emb`` (N, D).

    Pairs are drawn uniformly, with replacement across pairs, and never pair a row with itself (Guo et al.
    draw two index lists without replacement, which occasionally pairs a row with itself; the expected
    value differs by a factor ``1 - 1/N``).
    """
    emb = _embeddings(emb, "emb", min_rows=2)
    if pairs < 1:
        raise ValueError(f"pairs must be >= 1, got {pairs}")
    first, second = _distinct_pairs(emb.shape[0], pairs, as_generator(rng))
    return float(np.linalg.norm(emb[first] - emb[second], axis=1).mean())


def multimodality(
    emb_per_text: Any, pairs: int = MULTIMODALITY_PAIRS, rng: np.random.Generator | int | None = None
) -> float:
    """Mean distance between ``pairs`` random pairs of generations for the same caption.

    ``emb_per_text`` is (K, S, D): K captions, S generations each, D-dim embeddings. For each caption,
    ``pairs`` pairs of two different generations are drawn; the result is the mean over all K * pairs.
    """
    emb = to_numpy(emb_per_text)
    if emb.ndim != 3:
        raise ValueError(f"emb_per_text must be (K captions, S samples, D), got shape {emb.shape}")
    num_texts, num_samples, _ = emb.shape
    if num_texts < 1 or num_samples < 2:
        raise ValueError(f"multimodality needs >= 1 caption with >= 2 samples each, got shape {emb.shape}")
    if pairs < 1:
        raise ValueError(f"pairs must be >= 1, got {pairs}")
    if not np.all(np.isfinite(emb)):
        raise ValueError("emb_per_text contains NaN or infinite values")
    generator = as_generator(rng)
    first, second = _distinct_pairs(num_samples, num_texts * pairs, generator)
    first, second = first.reshape(num_texts, pairs), second.reshape(num_texts, pairs)  # (K, P)
    text_index = np.arange(num_texts)[:, None]  # (K, 1)
    distances = np.linalg.norm(emb[text_index, first] - emb[text_index, second], axis=-1)  # (K, P)
    return float(distances.mean())


# ----------------------------------------------------------------------------- text-motion agreement
def r_precision(
    text_emb: Any,
    motion_emb: Any,
    pool: int = R_PRECISION_POOL,
    top_k: int = 3,
    rng: np.random.Generator | int | None = None,
    shuffle: bool = True,
) -> np.ndarray:
    """R-precision top-1..``top_k``: share of motions whose own caption is among the ``k`` nearest.

    Rows ``i`` of ``text_emb`` and ``motion_emb`` (N, D) are pairs. The pairs are (optionally shuffled with
    ``rng`` and) cut into batches of ``pool`` (Guo et al. evaluate loader batches of 32 and drop the last
    incomplete one; so does this). In each batch every motion ranks the batch's ``pool`` captions by
    Euclidean distance; its rank is ``1 +`` the number of *other* captions at a distance ``<=`` the true
    one (ties count against the motion). Returns a (top_k,) array: entry ``k-1`` is the share of motions
    with rank ``<= k`` over all evaluated motions (cumulative, so non-decreasing).
    """
    text, motion = _paired_embeddings(text_emb, motion_emb)
    if pool < 2:
        raise ValueError(f"pool must be >= 2 (1 true + others), got {pool}")
    if not 1 <= top_k <= pool:
        raise ValueError(f"top_k must be in 1..pool ({pool}), got {top_k}")
    num_pairs = text.shape[0]
    if num_pairs < pool:
        raise ValueError(f"r_precision needs at least pool={pool} pairs, got {num_pairs}")

    order = as_generator(rng).permutation(num_pairs) if shuffle else np.arange(num_pairs)
    num_batches = num_pairs // pool
    batches = order[: num_batches * pool].reshape(num_batches, pool)  # (B, pool)

    batch_text = text[batches]  # (B, pool, D)
    batch_motion = motion[batches]  # (B, pool, D)
    # distance from every motion (row) to every caption (column) of its batch
    distances = np.linalg.norm(batch_motion[:, :, None, :] - batch_text[:, None, :, :], axis=-1)  # (B, pool, pool)
    true_distance = np.diagonal(distances, axis1=1, axis2=2)  # (B, pool)
    ranks = retrieval_rank(distances, true_distance)  # (B, pool): 1 + other captions at least as near
    hits = ranks.reshape(-1)[:, None] <= np.arange(1, top_k + 1)[None, :]  # (B*pool, top_k)
    return hits.mean(axis=0)


def mm_distance(text_emb: Any, motion_emb: Any) -> float:
    """MM-Dist: mean Euclidean distance between each caption embedding and its motion's (rows are pairs)."""
    text, motion = _paired_embeddings(text_emb, motion_emb)
    return float(np.linalg.norm(text - motion, axis=1).mean())
