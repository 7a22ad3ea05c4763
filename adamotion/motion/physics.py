"""Physical plausibility of joint positions (numpy only): foot skating and foot height.

One definition per quantity, used by the evaluation metrics (:mod:`adamotion.eval.metrics` re-exports them)
and by the procedural corpus statistics (:mod:`adamotion.data.synthetic`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from adamotion.motion.skeleton import Skeleton
from adamotion.utils.numeric import to_numpy

SKATING_HEIGHT_M = 0.05  # a foot joint below this height (metres) is in contact with the ground
SKATING_DISTANCE_M = 0.025  # horizontal displacement per frame (metres) that counts as sliding ...
SKATING_REFERENCE_FPS = 20.0  # ... at this frame rate; other frame rates scale it by 20 / fps
UP_AXIS = 1  # HumanML3D joints are y-up (shared/docs/motion-representation.md)


def valid_frames(batch_size: int, num_frames: int, lengths: Any | None, mask: Any | None) -> np.ndarray:
    """(B, T) bool: which frames of a padded batch are real (from ``lengths`` (B,) or ``mask`` (B, T))."""
    if lengths is not None and mask is not None:
        raise ValueError("pass either lengths or mask, not both")
    if mask is not None:
        valid = np.asarray(to_numpy(mask, dtype=np.float64) != 0)
        if valid.ndim == 1:
            valid = valid[None]
        if valid.shape != (batch_size, num_frames):
            raise ValueError(f"mask must have shape (B, T) = {(batch_size, num_frames)}, got {valid.shape}")
        return valid
    if lengths is not None:
        clip_lengths = np.atleast_1d(np.asarray(lengths))
        if clip_lengths.shape != (batch_size,):
            raise ValueError(f"lengths must have shape (B,) = ({batch_size},), got {clip_lengths.shape}")
        if np.any(clip_lengths < 0) or np.any(clip_lengths > num_frames):
            raise ValueError(f"lengths must lie in 0..T ({num_frames}), got {clip_lengths.tolist()}")
        return np.arange(num_frames)[None, :] < clip_lengths[:, None]
    return np.ones((batch_size, num_frames), dtype=bool)


def skating_transitions(joints: Any, skeleton: Skeleton, fps: float | None = None, *,
                        height: float = SKATING_HEIGHT_M, dist: float = SKATING_DISTANCE_M,
                        lengths: Any | None = None, mask: Any | None = None,
                        up_axis: int = UP_AXIS) -> tuple[np.ndarray, np.ndarray]:
    """Which frame transitions skate, and which are valid: two (B, T-1) bool arrays.

    ``joints`` is (T, J, 3) or a padded batch (B, T, J, 3) in metres, floor at height 0. A transition
    ``t -> t+1`` *skates* when some foot joint (``skeleton.foot_joints``) is in contact at both frames
    (height ``< height``) and its horizontal displacement (orthogonal to ``up_axis``) exceeds
    ``dist * SKATING_REFERENCE_FPS / fps``: ``dist`` is stated per frame at 20 fps (a speed of ``dist * 20``
    m/s) and rescaled for other frame rates (``fps`` defaults to ``skeleton.fps``). A transition is valid
    when both its frames are (``lengths`` (B,) or ``mask`` (B, T)).
    """
    positions = to_numpy(joints)
    if positions.ndim == 3:
        positions = positions[None]
    if positions.ndim != 4 or positions.shape[-1] != 3:
        raise ValueError(f"joints must be (T, J, 3) or (B, T, J, 3), got shape {positions.shape}")
    batch_size, num_frames, num_joints, _ = positions.shape
    if num_joints != skeleton.num_joints:
        raise ValueError(
            f"joints have {num_joints} joints but skeleton {skeleton.name!r} has {skeleton.num_joints}; "
            "pass the matching skeleton"
        )
    if not 0 <= up_axis <= 2:
        raise ValueError(f"up_axis must be 0, 1 or 2, got {up_axis}")
    frame_rate = float(skeleton.fps if fps is None else fps)
    if frame_rate <= 0:
        raise ValueError(f"fps must be positive, got {frame_rate}")

    frames = valid_frames(batch_size, num_frames, lengths, mask)  # (B, T)
    valid_steps = frames[:, 1:] & frames[:, :-1]  # (B, T-1)
    feet = positions[:, :, list(skeleton.foot_joints), :]  # (B, T, F, 3)
    foot_height = feet[..., up_axis]  # (B, T, F)
    ground_axes = [axis for axis in range(3) if axis != up_axis]
    horizontal_step = np.linalg.norm(np.diff(feet[..., ground_axes], axis=1), axis=-1)  # (B, T-1, F)
    in_contact = (foot_height[:, 1:] < height) & (foot_height[:, :-1] < height)  # (B, T-1, F)
    step_threshold = dist * SKATING_REFERENCE_FPS / frame_rate  # metres per frame at this fps
    sliding = in_contact & (horizontal_step > step_threshold)  # (B, T-1, F)
    return sliding.any(axis=-1) & valid_steps, valid_steps


def skating_ratio(joints: Any, skeleton: Skeleton, fps: float | None = None, height: float = SKATING_HEIGHT_M,
                  dist: float = SKATING_DISTANCE_M, lengths: Any | None = None, mask: Any | None = None,
                  up_axis: int = UP_AXIS, reduce: str = "mean") -> float | np.ndarray:
    """Share of frame transitions in which a foot joint slides while in contact with the ground.

    See :func:`skating_transitions` for the detector. A clip's ratio is its skating transitions over its
    valid transitions. ``reduce="mean"`` returns the mean of the clip ratios (a float); ``reduce="none"``
    returns the (B,) per-clip ratios ((1,) for a single clip). Every clip needs at least two valid frames.
    """
    if reduce not in ("mean", "none"):
        raise ValueError(f"reduce must be 'mean' or 'none', got {reduce!r}")
    skating, valid = skating_transitions(joints, skeleton, fps, height=height, dist=dist, lengths=lengths,
                                         mask=mask, up_axis=up_axis)
    steps_per_clip = valid.sum(axis=1)  # (B,)
    if np.any(steps_per_clip == 0):
        short = np.flatnonzero(steps_per_clip == 0).tolist()
        raise ValueError(f"clips {short} have fewer than 2 valid frames; the skating ratio is undefined")
    per_clip = skating.sum(axis=1) / steps_per_clip  # (B,)
    return float(per_clip.mean()) if reduce == "mean" else per_clip


def min_foot_height(joints: Any, skeleton: Skeleton, up_axis: int = UP_AXIS) -> float:
    """Lowest height of any foot joint over the motion (negative = through the floor)."""
    return float(to_numpy(joints)[..., list(skeleton.foot_joints), up_axis].min())
