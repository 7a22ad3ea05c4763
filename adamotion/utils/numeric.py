"""Numeric helpers shared by the metric modules (eval, retrieval, motion physics): numpy only.

Torch is never imported here: anything with ``detach`` (a tensor) is converted through it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

CI95_Z = 1.96  # normal quantile of a two-sided 95 % interval


def to_numpy(array: Any, dtype=np.float64) -> np.ndarray:
    """Return ``array`` as a numpy array of ``dtype``; torch tensors are detached and moved to the CPU."""
    if hasattr(array, "detach"):
        array = array.detach().cpu()
        if str(array.dtype) == "torch.bfloat16":
            array = array.float()  # numpy has no bfloat16
        array = array.numpy()
    return np.asarray(array, dtype=dtype)


def as_generator(rng: np.random.Generator | int | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a generator, an ``int`` seed, or ``None`` (fresh, unseeded)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy.random.Generator, an int seed or None, got {type(rng).__name__}")


def mean_ci95(values: Any) -> tuple[Any, Any]:
    """Mean and 95 % confidence half-width over repeats (axis 0): ``1.96 * std / sqrt(n)``.

    This is the field's convention (Guo et al.'s evaluation script and every table since): ``std`` is the
    *population* standard deviation (``ddof=0``) and the normal quantile 1.96 is used rather than a
    Student-t one, so with few repeats the interval is narrower than a textbook one. Scalars are returned
    for 1-D input, arrays for (n, ...) input (e.g. R-precision top-1..3 per repeat).
    """
    array = to_numpy(values)
    if array.ndim == 0 or array.shape[0] == 0:
        raise ValueError("mean_ci95 needs at least one value (repeats along axis 0)")
    mean = array.mean(axis=0)
    half_width = CI95_Z * array.std(axis=0) / np.sqrt(array.shape[0])
    if array.ndim == 1:
        return float(mean), float(half_width)
    return mean, half_width


def retrieval_rank(distances: Any, true_distance: Any) -> np.ndarray:
    """Rank (1 = nearest) of the true item among candidates at ``distances (..., P)``, the true one included.

    ``true_distance (...)`` is the true item's own distance; every other candidate at a distance ``<=`` it
    ranks ahead (ties count against the true item, as in Guo et al.'s R-precision).
    """
    distances = to_numpy(distances)
    true_distance = to_numpy(true_distance)
    return (distances <= true_distance[..., None]).sum(axis=-1)
