"""Physical plausibility of joint positions (numpy only): foot skating, foot height, and the quality metrics of
generated motion (jitter, jerk, bone-length variation, foot penetration, floating; :func:`physical_metrics`).

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


# ----------------------------------------------------------------------------- quality of generated motion
PENETRATION_TOLERANCE_M = 0.01  # a frame "penetrates" when a foot joint is more than 1 cm below the floor
# Keys of :func:`physical_metrics`, in table order.
PHYSICAL_METRICS = ("jitter", "jerk", "bone_variation", "penetration", "penetration_ratio", "floating_ratio",
                    "skating_ratio")


def _joint_batch(joints: Any, skeleton: Skeleton, fps: float | None) -> tuple[np.ndarray, float]:
    """(B, T, J, 3) float64 positions and the frame rate, checked against ``skeleton``."""
    if not isinstance(skeleton, Skeleton):
        raise TypeError(f"skeleton must be an adamotion Skeleton (e.g. Skeleton.from_name('humanml3d')), got "
                        f"{type(skeleton).__name__}")
    positions = to_numpy(joints)
    if positions.ndim == 3:
        positions = positions[None]
    if positions.ndim != 4 or positions.shape[-1] != 3:
        raise ValueError(f"joints must be (T, J, 3) or (B, T, J, 3), got shape {positions.shape}")
    if positions.shape[2] != skeleton.num_joints:
        raise ValueError(
            f"joints have {positions.shape[2]} joints but skeleton {skeleton.name!r} has {skeleton.num_joints}; "
            "pass the matching skeleton"
        )
    frame_rate = float(skeleton.fps if fps is None else fps)
    if frame_rate <= 0:
        raise ValueError(f"fps must be positive, got {frame_rate}")
    return positions, frame_rate


def _valid_windows(frames: np.ndarray, width: int, what: str) -> np.ndarray:
    """(B, T-width+1) bool: windows of ``width`` consecutive valid frames; every clip needs at least one."""
    num_frames = frames.shape[1]
    if num_frames < width:
        raise ValueError(f"{what} needs clips of at least {width} frames, got T={num_frames}")
    windows = np.ones((frames.shape[0], num_frames - width + 1), dtype=bool)
    for offset in range(width):
        windows &= frames[:, offset: num_frames - width + 1 + offset]
    empty = np.flatnonzero(~windows.any(axis=1)).tolist()
    if empty:
        raise ValueError(f"clips {empty} have fewer than {width} valid frames in a row; {what} is undefined")
    return windows


def _reduce(per_clip: np.ndarray, reduce: str) -> float | np.ndarray:
    if reduce == "mean":
        return float(per_clip.mean())
    if reduce == "none":
        return per_clip
    raise ValueError(f"reduce must be 'mean' or 'none', got {reduce!r}")


def _masked_mean(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Mean over axis 1 of (B, N) ``values`` where (B, N) bool ``weights`` is set."""
    return (values * weights).sum(axis=1) / weights.sum(axis=1)


def joint_acceleration(joints: Any, skeleton: Skeleton, fps: float | None = None, lengths: Any | None = None,
                       mask: Any | None = None, reduce: str = "mean") -> float | np.ndarray:
    """Jitter: mean joint acceleration magnitude in m/s² at ``fps`` (default ``skeleton.fps``).

    For every joint ``j`` and every frame ``t`` whose neighbours ``t-1`` and ``t+1`` are valid, the central
    second difference ``a = (p[t+1] - 2 p[t] + p[t-1]) * fps²``; a clip's value is the mean of ``|a|`` over its
    joints and such frames (a clip needs 3 consecutive valid frames). Root motion is included (positions are
    global). A joint moving on a circle of radius ``A`` at ``f`` Hz gives exactly ``4 A sin²(π f / fps) fps²``;
    constant velocity gives 0. ``reduce``: "mean" over clips (float) or "none" ((B,) per clip).
    """
    return _finite_difference_norm(joints, skeleton, fps, lengths, mask, reduce, order=2, what="joint acceleration")


def joint_jerk(joints: Any, skeleton: Skeleton, fps: float | None = None, lengths: Any | None = None,
               mask: Any | None = None, reduce: str = "mean") -> float | np.ndarray:
    """Mean joint jerk magnitude in m/s³: the third difference ``(p[t+2] - 3 p[t+1] + 3 p[t] - p[t-1]) * fps³``
    over windows of 4 consecutive valid frames, averaged like :func:`joint_acceleration` (circle of radius
    ``A`` at ``f`` Hz: ``8 A |sin(π f / fps)|³ fps³``)."""
    return _finite_difference_norm(joints, skeleton, fps, lengths, mask, reduce, order=3, what="joint jerk")


def _finite_difference_norm(joints, skeleton, fps, lengths, mask, reduce, order: int, what: str):
    positions, frame_rate = _joint_batch(joints, skeleton, fps)
    batch_size, num_frames = positions.shape[:2]
    windows = _valid_windows(valid_frames(batch_size, num_frames, lengths, mask), order + 1, what)  # (B, T-order)
    difference = np.diff(positions, n=order, axis=1) * frame_rate**order  # (B, T-order, J, 3)
    magnitude = np.linalg.norm(difference, axis=-1).mean(axis=-1)  # (B, T-order): mean over joints
    return _reduce(_masked_mean(magnitude, windows), reduce)


def bone_length_variation(joints: Any, skeleton: Skeleton, lengths: Any | None = None, mask: Any | None = None,
                          reduce: str = "mean") -> float | np.ndarray:
    """Bone-length variation: coefficient of variation over time of each bone, mean over bones.

    For every bone ``(parent, child)`` of ``skeleton.bones`` the length ``|p_child - p_parent|`` per valid frame;
    its population std over the clip's valid frames divided by its mean; the clip's value is the mean over bones
    (a fraction: 0.027 = 2.7 %). A rigid skeleton gives 0.
    """
    positions, _ = _joint_batch(joints, skeleton, None)
    batch_size, num_frames = positions.shape[:2]
    valid = _valid_windows(valid_frames(batch_size, num_frames, lengths, mask), 1, "bone-length variation")
    parents, children = (list(index) for index in zip(*skeleton.bones))
    bone = np.linalg.norm(positions[:, :, children] - positions[:, :, parents], axis=-1)  # (B, T, bones)
    weights = valid[:, :, None]  # (B, T, 1)
    count = weights.sum(axis=1)  # (B, 1)
    mean = (bone * weights).sum(axis=1) / count  # (B, bones)
    std = np.sqrt((((bone - mean[:, None]) ** 2) * weights).sum(axis=1) / count)  # (B, bones)
    cv = np.where(mean > 0, std / np.maximum(mean, 1e-12), 0.0)  # (B, bones)
    return _reduce(cv.mean(axis=1), reduce)


def foot_penetration(joints: Any, skeleton: Skeleton, lengths: Any | None = None, mask: Any | None = None,
                     tolerance: float = PENETRATION_TOLERANCE_M, up_axis: int = UP_AXIS,
                     reduce: str = "mean") -> tuple[float, float] | tuple[np.ndarray, np.ndarray]:
    """Foot-floor penetration: ``(depth in metres, share of frames)``.

    Per valid frame, the depth is how far the lowest foot joint (``skeleton.foot_joints``) is below the floor
    (height 0), ``max(0, -min height)``; a clip's depth is its mean over valid frames (a foot held at -3 cm for
    the whole clip gives 0.03). The share counts frames whose depth exceeds ``tolerance`` (1 cm).
    """
    positions, _ = _joint_batch(joints, skeleton, None)
    batch_size, num_frames = positions.shape[:2]
    valid = _valid_windows(valid_frames(batch_size, num_frames, lengths, mask), 1, "foot penetration")
    lowest = positions[:, :, list(skeleton.foot_joints), up_axis].min(axis=-1)  # (B, T)
    depth = np.maximum(-lowest, 0.0)  # (B, T)
    return _reduce(_masked_mean(depth, valid), reduce), _reduce(_masked_mean(depth > tolerance, valid), reduce)


def foot_floating(joints: Any, skeleton: Skeleton, fps: float | None = None, lengths: Any | None = None,
                  mask: Any | None = None, height: float = SKATING_HEIGHT_M, up_axis: int = UP_AXIS,
                  reduce: str = "mean") -> float | np.ndarray:
    """Floating: share of frame transitions in which the body is held up by nothing.

    A transition ``t -> t+1`` floats when the lowest foot joint at ``t`` is *planted* — it moves less than the
    skeleton's own contact criterion (squared displacement ``< skeleton.contact_threshold`` per frame at
    ``skeleton.fps``, the rule that makes the dataset's contact labels, rescaled to ``fps`` as a speed) — yet
    is more than ``height`` (5 cm, the contact height of the skating ratio) above the floor. A foot that
    stops in mid-air is a foot that should be on the ground. Real motion is not 0 (the apex of a jump, a
    raised foot held still while the other is also off the floor, a step onto a box), so compare against the
    ground truth of the same split, as every physical metric is reported.
    """
    positions, frame_rate = _joint_batch(joints, skeleton, fps)
    batch_size, num_frames = positions.shape[:2]
    steps = _valid_windows(valid_frames(batch_size, num_frames, lengths, mask), 2, "foot floating")  # (B, T-1)
    feet = positions[:, :, list(skeleton.foot_joints), :]  # (B, T, F, 3)
    lowest = feet[:, :-1, :, up_axis].argmin(axis=-1)  # (B, T-1) which foot joint is lowest at t
    step = np.linalg.norm(np.diff(feet, axis=1), axis=-1)  # (B, T-1, F)
    lowest_step = np.take_along_axis(step, lowest[..., None], axis=-1)[..., 0]  # (B, T-1)
    lowest_height = np.take_along_axis(feet[:, :-1, :, up_axis], lowest[..., None], axis=-1)[..., 0]  # (B, T-1)
    planted_speed = np.sqrt(skeleton.contact_threshold) * skeleton.fps  # m/s
    floating = (lowest_step < planted_speed / frame_rate) & (lowest_height > height)  # (B, T-1)
    return _reduce(_masked_mean(floating, steps), reduce)


def physical_metrics(joints: Any, skeleton: Skeleton, fps: float | None = None, lengths: Any | None = None,
                     mask: Any | None = None, reduce: str = "mean") -> dict[str, float | np.ndarray]:
    """Every physical-quality metric of a (padded) clip batch: ``{key in PHYSICAL_METRICS: value}``.

    ``jitter`` m/s² (:func:`joint_acceleration`), ``jerk`` m/s³ (:func:`joint_jerk`), ``bone_variation``
    (:func:`bone_length_variation`, a fraction), ``penetration`` metres and ``penetration_ratio``
    (:func:`foot_penetration`), ``floating_ratio`` (:func:`foot_floating`), ``skating_ratio``
    (:func:`skating_ratio`). Clips need at least 4 valid frames (jerk).
    """
    kwargs = {"lengths": lengths, "mask": mask, "reduce": reduce}
    depth, share = foot_penetration(joints, skeleton, **kwargs)
    return {
        "jitter": joint_acceleration(joints, skeleton, fps, **kwargs),
        "jerk": joint_jerk(joints, skeleton, fps, **kwargs),
        "bone_variation": bone_length_variation(joints, skeleton, **kwargs),
        "penetration": depth,
        "penetration_ratio": share,
        "floating_ratio": foot_floating(joints, skeleton, fps, **kwargs),
        "skating_ratio": skating_ratio(joints, skeleton, fps, **kwargs),
    }
