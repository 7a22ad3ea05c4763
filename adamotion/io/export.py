"""Save generated motions: joints / features as ``.npy`` and a self-describing ``.npz`` bundle.

Every write is atomic (a temporary file in the destination folder, fsync, then ``os.replace``), so a crashed
or concurrent request never leaves a half-written file under the final name.

A *bundle* holds everything needed to regenerate a result exactly: the arrays (``features``, ``joints``,
``lengths``) plus a JSON ``metadata`` string (prompt, seed, text encoder, checkpoint id, guidance scale,
sampling steps, skeleton, format version and any ``extra`` settings). It loads with
``np.load(path, allow_pickle=False)``: no pickled objects, so opening a bundle cannot run code.
"""
from __future__ import annotations

import json
import logging
import math
import os
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from adamotion.motion.skeleton import Skeleton
from adamotion.utils.files import atomic_write_bytes

__all__ = ["BUNDLE_FORMAT_VERSION", "save_joints_npy", "save_features_npy", "save_bundle", "load_bundle"]

logger = logging.getLogger(__name__)

BUNDLE_FORMAT_VERSION = 1
_METADATA_KEY = "metadata"
_ARRAY_KEYS = ("features", "joints", "lengths")


def _check_finite(name: str, array: np.ndarray) -> None:
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf; refusing to save a broken motion")


def _as_joints(joints: Any, skeleton: Skeleton, name: str = "joints") -> np.ndarray:
    array = np.asarray(joints, dtype=np.float32)
    if array.ndim not in (3, 4) or array.shape[-2:] != (skeleton.num_joints, 3):
        raise ValueError(f"{name} must have shape (T, {skeleton.num_joints}, 3) or (B, T, {skeleton.num_joints}, 3) "
                         f"for skeleton {skeleton.name!r}; got {array.shape}")
    _check_finite(name, array)
    return array


def _as_features(features: Any, skeleton: Skeleton, name: str = "features") -> np.ndarray:
    array = np.asarray(features, dtype=np.float32)
    if array.ndim not in (2, 3) or array.shape[-1] != skeleton.feature_dim:
        raise ValueError(f"{name} must have shape (T, {skeleton.feature_dim}) or (B, T, {skeleton.feature_dim}) for "
                         f"skeleton {skeleton.name!r}; got {array.shape}")
    _check_finite(name, array)
    return array


def save_joints_npy(path: str | os.PathLike, joints: Any, *, skeleton: Skeleton) -> Path:
    """Save joint positions ``(T, J, 3)`` (or a batch ``(B, T, J, 3)``) as float32 ``.npy``, atomically."""
    array = _as_joints(joints, skeleton)
    return atomic_write_bytes(path, lambda handle: np.save(handle, array, allow_pickle=False))


def save_features_npy(path: str | os.PathLike, features: Any, *, skeleton: Skeleton) -> Path:
    """Save features ``(T, F)`` (or a batch ``(B, T, F)``) as float32 ``.npy``, atomically."""
    array = _as_features(features, skeleton)
    return atomic_write_bytes(path, lambda handle: np.save(handle, array, allow_pickle=False))


def _json_value(value: Any, where: str) -> Any:
    """``value`` made JSON-safe (numpy scalars/arrays to Python); raise naming ``where`` otherwise."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"bundle metadata {where} is {value}; metadata must be finite to be reproducible")
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_value(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"bundle metadata {where} has type {type(value).__name__}, which JSON cannot store; pass "
                    f"strings, numbers, booleans, lists or dicts")


def _stack_clips(clips: Any, convert: Callable[..., np.ndarray], skeleton: Skeleton, name: str,
                 clip_ndim: int) -> tuple[np.ndarray, np.ndarray]:
    """One array, or a list of clips of different lengths zero-padded into ``(B, T_max, ...)``.

    Returns the array and each sample's own number of frames ``(B,)`` (``()``-batch arrays give ``(1,)``).
    """
    if isinstance(clips, (list, tuple)):
        if not clips:
            raise ValueError(f"{name} is an empty list")
        arrays = [convert(clip, skeleton, f"{name}[{i}]") for i, clip in enumerate(clips)]
        if any(a.ndim != clip_ndim for a in arrays):
            raise ValueError(f"{name}: every list entry must be one clip with {clip_ndim} dimensions; got shapes "
                             f"{[a.shape for a in arrays]}")
        frames = np.array([a.shape[0] for a in arrays], dtype=np.int64)  # (B,)
        stacked = np.zeros((len(arrays), int(frames.max())) + arrays[0].shape[1:], np.float32)  # (B, T_max, ...)
        for i, array in enumerate(arrays):
            stacked[i, : array.shape[0]] = array
        return stacked, frames
    array = convert(clips, skeleton, name)
    frames = np.full(array.shape[0] if array.ndim == clip_ndim + 1 else 1, array.shape[-clip_ndim], np.int64)
    return array, frames


def save_bundle(path: str | os.PathLike, *, prompt: str | Sequence[str], seed: int, encoder: str,
                checkpoint_id: str, lengths: Any, features: Any, joints: Any, guidance_scale: float, steps: int,
                extra: Mapping[str, Any] | None = None, skeleton: Skeleton) -> Path:
    """Write a reproducible result bundle (``.npz``) atomically; returns the path.

    Arrays: ``features`` ``(T, F)``, ``(B, T, F)`` or a list of ``(T_i, F)`` clips (zero-padded to
    ``(B, T_max, F)``); ``joints`` likewise with ``(..., J, 3)`` (or None); ``lengths`` ``(B,)`` int64 valid
    frames per sample (``B = 1`` for one clip), so sample ``i`` is ``features[i, :lengths[i]]``. Metadata
    (stored as one JSON string): ``prompt`` (one string, or one per sample), ``seed``, ``encoder``,
    ``checkpoint_id``, ``guidance_scale``, ``steps``, ``extra`` (any further JSON-safe settings, e.g. the
    sampler or the requested length), plus ``skeleton``, ``format_version`` and ``adamotion_version``.
    """
    from adamotion.utils.version import __version__

    feature_array, feature_frames = _stack_clips(features, _as_features, skeleton, "features", 2)
    arrays: dict[str, np.ndarray] = {"features": feature_array}
    if joints is not None:
        joint_array, joint_frames = _stack_clips(joints, _as_joints, skeleton, "joints", 3)
        if joint_frames.shape != feature_frames.shape or (joint_array.ndim == 4) != (feature_array.ndim == 3):
            raise ValueError(f"joints {joint_array.shape} and features {feature_array.shape} hold different "
                             f"numbers of samples; pass one joints clip per features clip")
        arrays["joints"] = joint_array

    length_array = np.atleast_1d(np.asarray(lengths))
    if length_array.ndim != 1 or not np.issubdtype(length_array.dtype, np.integer):
        raise ValueError(f"lengths must be integers, one per sample; got {np.asarray(lengths)!r}")
    expected_count = feature_frames.shape[0]
    if length_array.shape[0] != expected_count:
        raise ValueError(f"lengths has {length_array.shape[0]} entries but features hold {expected_count} sample(s)")
    if (length_array < 1).any() or (length_array > feature_frames).any():
        raise ValueError(f"lengths {length_array.tolist()} must be within 1..frames of each sample "
                         f"({feature_frames.tolist()})")
    arrays["lengths"] = length_array.astype(np.int64)

    if isinstance(prompt, str):
        prompt_value: str | list[str] = prompt
    elif isinstance(prompt, Sequence) and all(isinstance(p, str) for p in prompt):
        prompt_value = list(prompt)
        if len(prompt_value) != expected_count:
            raise ValueError(f"{len(prompt_value)} prompts for {expected_count} sample(s); pass one per sample")
    else:
        raise TypeError(f"prompt must be a string or a list of strings, got {type(prompt).__name__}")
    if not isinstance(seed, Integral) or isinstance(seed, bool):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    if not isinstance(steps, Integral) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(guidance_scale, Real) or isinstance(guidance_scale, bool):
        raise TypeError(f"guidance_scale must be a number, got {guidance_scale!r}")
    metadata = {
        "format_version": BUNDLE_FORMAT_VERSION,
        "adamotion_version": __version__,
        "skeleton": skeleton.name,
        "prompt": prompt_value,
        "seed": int(seed),
        "encoder": str(encoder),
        "checkpoint_id": str(checkpoint_id),
        "guidance_scale": _json_value(float(guidance_scale), "guidance_scale"),
        "steps": int(steps),
        "extra": _json_value(dict(extra or {}), "extra"),
    }
    text = json.dumps(metadata, sort_keys=True, ensure_ascii=False)
    arrays[_METADATA_KEY] = np.array(text)  # 0-d unicode array: no pickle needed
    path = atomic_write_bytes(path, lambda handle: np.savez(handle, **arrays))
    logger.info("saved bundle %s (%s, seed %d, %s)", path, feature_array.shape, metadata["seed"], checkpoint_id)
    return path


def load_bundle(path: str | os.PathLike) -> dict[str, Any]:
    """Read a bundle written by :func:`save_bundle`.

    Returns the metadata keys (``prompt``, ``seed``, ``encoder``, ``checkpoint_id``, ``guidance_scale``, ``steps``,
    ``extra``, ``skeleton``, ``format_version``, ``adamotion_version``) and the arrays ``features``, ``lengths``
    and ``joints`` (None when not saved).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: bundle not found")
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {key: archive[key] for key in archive.files}
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npz bundle ({exc}); re-export it") from exc
    if _METADATA_KEY not in contents:
        raise ValueError(f"{path}: no '{_METADATA_KEY}' entry; this .npz was not written by save_bundle")
    try:
        metadata = json.loads(str(contents.pop(_METADATA_KEY)))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: corrupt bundle metadata ({exc})") from exc
    version = metadata.get("format_version")
    if version != BUNDLE_FORMAT_VERSION:
        raise ValueError(f"{path}: bundle format version {version!r}; this AdaMotion reads version "
                         f"{BUNDLE_FORMAT_VERSION}. Re-export it with this version")
    result: dict[str, Any] = dict(metadata)
    for key in _ARRAY_KEYS:
        result[key] = contents.get(key)
    return result
