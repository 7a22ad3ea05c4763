"""The HumanML3D motion feature format: joint positions <-> the ``(T-1, F)`` feature vector.

Implements ``shared/docs/motion-representation.md`` including every point of "Conventions that decide whether
features match the field's exactly". Everything skeleton-specific (joint counts, chains, offsets, face and foot
joints, the contact threshold, feature slices) comes from a :class:`~adamotion.motion.skeleton.Skeleton`.

Pipeline of :func:`features_from_joints` (``T`` input frames -> ``T-1`` feature rows):

1. retarget to the uniform skeleton (:func:`retarget_to_uniform`): IK on the source, FK with the target offsets,
   root scaled by the leg-length ratio; heading unsmoothed;
2. floor: subtract the minimum y over all frames *and* joints;
3. origin: frame 0's root xz moved to (0, 0);
4. facing: the whole clip rotated about y so that frame 0 faces +z (steps 1-4: :func:`canonicalize_joints`);
5. foot contacts (:func:`foot_contacts`);
6. IK with the time-smoothed heading (:func:`inverse_kinematics`) -> root heading rotation ``r[t]`` and local
   swing rotations, then the feature groups (layout in ``Skeleton.feature_slices``):

   ============  ======================================================================================
   root_rot_vel  ``arcsin`` of the y component of ``r[t+1] * r[t]^-1`` (a half angle)
   root_lin_vel  ``r[t+1]`` applied to ``root[t+1] - root[t]``, components x and z
   root_y        root height of frame ``t``
   ric           joints 1.. of frame ``t`` minus the root's x and z (y stays absolute), rotated by ``r[t]``
   rot           6D (first two matrix columns) of the local rotations of joints 1.. at frame ``t``
   vel           ``r[t]`` applied to ``joint[t+1] - joint[t]`` for every joint
   contacts      squared displacement ``< skeleton.contact_threshold``: left heel, left toe, right heel, toe
   ============  ======================================================================================

``r[t] = qbetween(forward[t], +z)`` maps world to the body's heading frame, and ``r[0]`` is forced to the
identity (the published convention). Because the heading used in the features is the *smoothed* one while
step 4 used the unsmoothed one, frame 0's true smoothed heading is generally not exactly zero; the identity is
what both the features and :func:`joints_from_features` use, so the two stay consistent.

Known property of the published format (kept on purpose, for interchangeability): ``r[t]`` is built with
``w >= 0``, so when the smoothed heading passes through facing -z (a 180-degree turn away from frame 0) the
quaternion flips sign and the ``arcsin`` in ``root_rot_vel`` gets the wrong sign for that one step;
:func:`joints_from_features` then recovers the rest of the trajectory rotated by twice that step's heading
change (a few centimetres of drift in practice). Similarly, a heading exactly opposite to +z makes the published
``qbetween`` undefined (NaN); :func:`~adamotion.motion.rotations.qbetween` returns the 180-degree turn about y.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from adamotion.motion import rotations as R
from adamotion.motion.skeleton import HUMANML3D, Skeleton

__all__ = [
    "HEADING_SMOOTHING_SIGMA",
    "bone_offsets",
    "forward_directions",
    "inverse_kinematics",
    "forward_kinematics",
    "retarget_to_uniform",
    "canonicalize_joints",
    "foot_contacts",
    "features_from_joints",
    "joints_from_features",
    "mirror_joints",
    "mirror_features",
]

HEADING_SMOOTHING_SIGMA = 20.0
"""Gaussian sigma, in frames, of the heading smoothing inside the feature IK (edge mode "nearest")."""

_UP = np.array([0.0, 1.0, 0.0])  # y is up
_FACING_TARGET = np.array([0.0, 0.0, 1.0], np.float32)  # every clip faces +z at frame 0
_MIRROR_AXIS = 0  # mirroring negates x
_F32 = np.float32


# ------------------------------------------------------------------------------------------- validation
def _validate_joints(joints: Any, skeleton: Skeleton, name: str = "joints", min_frames: int = 2) -> np.ndarray:
    """Return ``joints`` as a float64 ``(T, J, 3)`` numpy array or raise a ValueError explaining the fix."""
    if not isinstance(skeleton, Skeleton):
        raise TypeError(f"skeleton must be a Skeleton (e.g. adamotion.motion.HUMANML3D); got {type(skeleton).__name__}")
    if R._is_torch(joints):
        raise TypeError(f"{name} must be a numpy array; convert a tensor with .detach().cpu().numpy()")
    array = np.asarray(joints)
    expected = f"(T, {skeleton.num_joints}, 3)"
    if array.ndim != 3 or array.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(
            f"{name} must have shape {expected} for skeleton {skeleton.name!r} (frames, joints, xyz); "
            f"got {array.shape}. Pass one clip at a time, joints ordered as skeleton.joint_names."
        )
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"{name} must be numeric; got dtype {array.dtype}")
    if array.shape[0] < min_frames:
        raise ValueError(
            f"{name} has {array.shape[0]} frame(s); at least {min_frames} are needed (features use frame-to-frame "
            f"steps, so T frames give T-1 feature rows)"
        )
    array = array.astype(np.float64)
    finite = np.isfinite(array).all(axis=(1, 2))  # (T,)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"{name} contains NaN or inf at frame(s) {bad[:10].tolist()}{' ...' if bad.size > 10 else ''}; "
            f"drop or interpolate those frames first"
        )
    return array


def _validate_offsets(offsets: Any, skeleton: Skeleton, name: str) -> np.ndarray:
    array = np.asarray(offsets, dtype=np.float64)
    if array.shape != (skeleton.num_joints, 3):
        raise ValueError(
            f"{name} must have shape ({skeleton.num_joints}, 3) (one rest offset per joint, row 0 unused); "
            f"got {array.shape}. Build it with bone_offsets(reference_frame, skeleton)."
        )
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf")
    return array.astype(_F32)


def _resolve_target_offsets(skeleton: Skeleton, target_offsets: Any, source: np.ndarray) -> np.ndarray:
    """Explicit offsets, else the skeleton's uniform target, else the source's own frame-0 bone lengths."""
    if target_offsets is not None:
        return _validate_offsets(target_offsets, skeleton, "target_offsets")
    if skeleton.bone_lengths is not None:
        return skeleton.target_offsets.astype(_F32)
    return bone_offsets(source[0], skeleton).astype(_F32)


# --------------------------------------------------------------------------------------------- geometry
def bone_offsets(frame_joints: Any, skeleton: Skeleton) -> np.ndarray:
    """Rest offsets ``(J, 3)`` of a skeleton measured on one pose: raw offset direction x observed bone length.

    ``frame_joints`` is one frame ``(J, 3)``. Row 0 (the root) is zero. Use it to build ``target_offsets`` for a
    skeleton without published bone lengths (KIT) from a reference motion's first frame.
    """
    frame = np.asarray(frame_joints, dtype=np.float64)
    if frame.shape != (skeleton.num_joints, 3):
        raise ValueError(f"frame_joints must have shape ({skeleton.num_joints}, 3); got {frame.shape}")
    parents = np.asarray(skeleton.parents)
    lengths = np.zeros(skeleton.num_joints)  # (J,)
    children = np.flatnonzero(parents >= 0)
    lengths[children] = np.linalg.norm(frame[children] - frame[parents[children]], axis=-1)
    return np.asarray(skeleton.raw_offsets, np.float64) * lengths[:, None]  # (J, 3)


def forward_directions(joints: Any, skeleton: Skeleton, *, ik_convention: bool, smooth: bool) -> np.ndarray:
    """Per-frame unit facing directions ``(T, 3)`` (horizontal, float64) from the face joints.

    With ``face_joints = (r_hip, l_hip, r_shoulder, l_shoulder)``:

    * ``ik_convention=False`` (the whole-clip facing of step 4): ``across = (r_hip - l_hip) + (r_sh - l_sh)``;
    * ``ik_convention=True`` (the IK's root orientation): the published sign quirk reads the hips swapped,
      ``across = (l_hip - r_hip) + (r_sh - l_sh)``.

    ``across`` is normalised, ``forward = y_up x across``; with ``smooth`` a Gaussian filter (sigma
    :data:`HEADING_SMOOTHING_SIGMA` frames, mode "nearest") runs over time before renormalising.
    """
    joints = np.asarray(joints, dtype=np.float64)
    r_hip, l_hip, r_shoulder, l_shoulder = skeleton.face_joints
    hips = joints[:, l_hip] - joints[:, r_hip] if ik_convention else joints[:, r_hip] - joints[:, l_hip]  # (T, 3)
    across = hips + (joints[:, r_shoulder] - joints[:, l_shoulder])  # (T, 3)
    across_norm = np.linalg.norm(across, axis=-1, keepdims=True)  # (T, 1)
    forward = np.cross(_UP, across / np.where(across_norm > 0, across_norm, 1.0))  # (T, 3)
    if smooth:
        from scipy.ndimage import gaussian_filter1d

        forward = gaussian_filter1d(forward, HEADING_SMOOTHING_SIGMA, axis=0, mode="nearest")
    forward_norm = np.linalg.norm(forward, axis=-1, keepdims=True)  # (T, 1)
    degenerate = forward_norm[:, 0] < 1e-9
    if degenerate.any():
        bad = np.flatnonzero(degenerate)
        raise ValueError(
            f"cannot determine the facing direction at frame(s) {bad[:10].tolist()}: the hip/shoulder line "
            f"{skeleton.face_joints} is vertical or collapsed; check the joint order matches skeleton.joint_names"
        )
    return forward / forward_norm


def inverse_kinematics(joints: Any, skeleton: Skeleton, smooth_heading: bool = True) -> np.ndarray:
    """Swing-only joint rotations ``(T, J, 4)`` (float32 quaternions) reproducing ``joints (T, J, 3)``.

    Row 0 of the joint axis is the root's heading rotation ``qbetween(forward, +z)`` (world -> heading frame;
    heading from :func:`forward_directions` with the IK sign convention, smoothed over time when
    ``smooth_heading``); frame 0's root rotation is forced to the identity. Along each chain (every chain,
    including those starting at a non-root joint, starts from the root rotation) the local rotation of a joint is
    ``inverse(R) * qbetween(raw_offset[joint], bone_direction)``, where ``R`` is the composed rotation so far.
    """
    joints = _validate_joints(joints, skeleton, min_frames=1)
    num_frames = joints.shape[0]
    forward = forward_directions(joints, skeleton, ik_convention=True, smooth=smooth_heading).astype(_F32)  # (T, 3)
    root_rotation = R.qbetween(forward, _FACING_TARGET)  # (T, 4)
    root_rotation[0] = R.identity_quat(dtype=_F32)

    local_rotations = R.identity_quat((num_frames, skeleton.num_joints), _F32)  # (T, J, 4)
    local_rotations[:, 0] = root_rotation
    raw_offsets = np.asarray(skeleton.raw_offsets, _F32)  # (J, 3)
    for chain in skeleton.chains:
        composed = root_rotation  # (T, 4)
        for parent, child in zip(chain[:-1], chain[1:]):
            bone = joints[:, child] - joints[:, parent]  # (T, 3)
            bone_length = np.linalg.norm(bone, axis=-1, keepdims=True)  # (T, 1)
            if (bone_length < 1e-9).any():
                frame = int(np.flatnonzero(bone_length[:, 0] < 1e-9)[0])
                raise ValueError(
                    f"joints {parent} ({skeleton.joint_names[parent]}) and {child} ({skeleton.joint_names[child]}) "
                    f"coincide at frame {frame}; a bone needs a non-zero length to define its rotation"
                )
            direction = (bone / bone_length).astype(_F32)  # (T, 3)
            swing = R.qbetween(np.broadcast_to(raw_offsets[child], direction.shape), direction)  # (T, 4)
            local = R.qmul(R.qinv(composed), swing)  # (T, 4)
            local_rotations[:, child] = local
            composed = R.qmul(composed, local)  # (T, 4)
    return local_rotations


def forward_kinematics(quat_params: Any, root_pos: Any, skeleton: Skeleton, offsets: Any = None) -> Any:
    """Joint positions ``(..., J, 3)`` from rotations ``(..., J, 4)`` and root positions ``(..., 3)``.

    The chain convention of :func:`inverse_kinematics`: along each chain the rotation starts from the root
    rotation ``quat_params[..., 0]`` and is composed with each joint's local rotation; that composed rotation
    turns the joint's rest offset, which is added to the previous chain joint. ``offsets`` (``(J, 3)`` or
    ``(..., J, 3)``) default to ``skeleton.target_offsets``. numpy or torch in, the same out.
    """
    if offsets is None:
        offsets = skeleton.target_offsets
    xp, (quat_params, root_pos, offsets) = R._prepare(quat_params, root_pos, offsets)
    num_joints = skeleton.num_joints
    if quat_params.ndim < 2 or tuple(quat_params.shape[-2:]) != (num_joints, 4):
        raise ValueError(f"quat_params must have shape (..., {num_joints}, 4); got {tuple(quat_params.shape)}")
    if tuple(root_pos.shape) != tuple(quat_params.shape[:-2]) + (3,):
        raise ValueError(
            f"root_pos must have shape {tuple(quat_params.shape[:-2]) + (3,)} to match quat_params "
            f"{tuple(quat_params.shape)}; got {tuple(root_pos.shape)}"
        )
    if offsets.ndim < 2 or tuple(offsets.shape[-2:]) != (num_joints, 3):
        raise ValueError(f"offsets must have shape ({num_joints}, 3) or (..., {num_joints}, 3); got {tuple(offsets.shape)}")

    positions: list[Any] = [None] * num_joints
    positions[0] = root_pos  # (..., 3)
    for chain in skeleton.chains:
        if positions[chain[0]] is None:
            raise ValueError(f"skeleton {skeleton.name!r}: chain {chain} starts at a joint no earlier chain reached")
        composed = quat_params[..., 0, :]  # (..., 4)
        for parent, child in zip(chain[:-1], chain[1:]):
            composed = R.qmul(composed, quat_params[..., child, :])
            positions[child] = R.qrot(composed, offsets[..., child, :]) + positions[parent]  # (..., 3)
    missing = [j for j, p in enumerate(positions) if p is None]
    if missing:
        raise ValueError(f"skeleton {skeleton.name!r}: joints {missing} are on no kinematic chain")
    return xp.stack(positions, -2)  # (..., J, 3)


# ------------------------------------------------------------------------------------------ steps 1 to 5
def retarget_to_uniform(joints: Any, skeleton: Skeleton, target_offsets: Any = None) -> np.ndarray:
    """Step 1: re-pose the source motion ``(T, J, 3)`` on the target skeleton (float64 ``(T, J, 3)``).

    The root trajectory is scaled by ``target_leg / source_leg`` (the two bones ending at
    ``skeleton.leg_joints``, source measured on frame 0), the swing rotations solved by IK on the source (heading
    unsmoothed), and FK run with the target offsets: every bone keeps its direction and takes its target length.
    Target offsets: ``target_offsets`` if given, else the skeleton's uniform skeleton, else (no published lengths,
    e.g. KIT) the source's own frame-0 bone lengths.
    """
    joints = _validate_joints(joints, skeleton)
    target = _resolve_target_offsets(skeleton, target_offsets, joints)  # (J, 3)
    source = bone_offsets(joints[0], skeleton)  # (J, 3)
    knee, ankle = skeleton.leg_joints
    source_leg = np.abs(source[knee]).max() + np.abs(source[ankle]).max()
    target_leg = np.abs(target[knee]).max() + np.abs(target[ankle]).max()
    if source_leg <= 0 or target_leg <= 0:
        raise ValueError(
            f"leg bones ending at joints {skeleton.leg_joints} have zero length "
            f"({'source frame 0' if source_leg <= 0 else 'target_offsets'}); cannot compute the retarget scale"
        )
    scale = target_leg / source_leg
    rotations = inverse_kinematics(joints, skeleton, smooth_heading=False)  # (T, J, 4)
    return np.asarray(forward_kinematics(rotations, joints[:, 0] * scale, skeleton, offsets=target), np.float64)


def canonicalize_joints(joints: Any, skeleton: Skeleton, target_offsets: Any = None) -> np.ndarray:
    """Steps 1-4: retarget, put on the floor, frame-0 root xz to the origin, frame 0 facing +z.

    Returns float32 ``(T, J, 3)``: exactly the global positions the features describe, so
    ``joints_from_features(features_from_joints(j))`` reproduces ``canonicalize_joints(j)[:-1]``.
    """
    positions = retarget_to_uniform(joints, skeleton, target_offsets)  # (T, J, 3) float64
    positions[..., 1] -= positions[..., 1].min()  # floor: min over all frames and joints
    root_start = positions[0, 0] * np.array([1.0, 0.0, 1.0])  # (3,)
    positions = positions - root_start  # (T, J, 3)
    forward = forward_directions(positions[:1], skeleton, ik_convention=False, smooth=False)[0]  # (3,)
    facing = R.qbetween(forward.astype(_F32), _FACING_TARGET)  # (4,)
    return R.qrot(facing, positions.astype(_F32)).astype(_F32)  # (T, J, 3)


def foot_contacts(positions: Any, skeleton: Skeleton) -> np.ndarray:
    """Step 5: ``(T-1, 4)`` float32 contacts, 1 where a foot joint's squared step is ``< contact_threshold``.

    Order: ``skeleton.feet_left`` (heel, toe) then ``skeleton.feet_right``; row ``t`` is the step t -> t+1.
    """
    positions = _validate_joints(positions, skeleton, "positions")
    feet = positions[:, list(skeleton.foot_joints)].astype(_F32)  # (T, 4, 3)
    squared_step = ((feet[1:] - feet[:-1]) ** 2).sum(-1)  # (T-1, 4)
    return (squared_step < skeleton.contact_threshold).astype(_F32)


# ---------------------------------------------------------------------------------------------- features
def features_from_joints(joints: Any, skeleton: Skeleton, target_offsets: Any = None) -> np.ndarray:
    """HumanML3D features ``(T-1, skeleton.feature_dim)`` float32 from joint positions ``(T, J, 3)`` (metres, y up).

    See the module docstring for the steps and the layout. ``target_offsets`` ``(J, 3)`` overrides the
    retarget skeleton (required for a faithful KIT-ML pipeline: pass the dataset's reference skeleton, e.g.
    ``bone_offsets(reference_clip[0], KIT)``; without it KIT keeps each clip's own bone lengths).
    """
    positions = canonicalize_joints(joints, skeleton, target_offsets)  # (T, J, 3) float32
    contacts = foot_contacts(positions, skeleton)  # (T-1, 4)

    rotations = inverse_kinematics(positions, skeleton, smooth_heading=True)  # (T, J, 4)
    heading = rotations[:, 0]  # (T, 4) world -> heading frame
    rot6d = R.quat_to_rot6d(rotations[:, 1:])  # (T, J-1, 6)

    root = positions[:, 0]  # (T, 3)
    root_velocity = R.qrot(heading[1:], root[1:] - root[:-1])  # (T-1, 3)
    heading_step = R.qmul(heading[1:], R.qinv(heading[:-1]))  # (T-1, 4)
    root_angular_velocity = np.arcsin(np.clip(heading_step[:, 2], -1.0, 1.0))  # (T-1,)

    relative = positions.copy()  # (T, J, 3)
    relative[..., 0] -= root[:, None, 0]
    relative[..., 2] -= root[:, None, 2]  # y stays the absolute height above the floor
    ric = R.qrot(heading[:, None], relative)  # (T, J, 3)
    joint_velocity = R.qrot(heading[:-1, None], positions[1:] - positions[:-1])  # (T-1, J, 3)

    num_rows = positions.shape[0] - 1
    slices = skeleton.feature_slices
    features = np.empty((num_rows, skeleton.feature_dim), _F32)  # (T-1, F)
    features[:, slices["root_rot_vel"]] = root_angular_velocity[:, None]
    features[:, slices["root_lin_vel"]] = root_velocity[:, [0, 2]]
    features[:, slices["root_y"]] = root[:-1, 1:2]
    features[:, slices["ric"]] = ric[:-1, 1:].reshape(num_rows, -1)
    features[:, slices["rot"]] = rot6d[:-1].reshape(num_rows, -1)
    features[:, slices["vel"]] = joint_velocity.reshape(num_rows, -1)
    features[:, slices["contacts"]] = contacts
    if not np.isfinite(features).all():
        raise ValueError("features_from_joints produced NaN/inf; the input pose is degenerate (collapsed bones?)")
    return features


def _recover_heading(features: Any, xp: Any) -> Any:
    """Heading quaternions ``(..., T, 4)``: half angle = cumulative sum of root_rot_vel shifted by one frame."""
    rotation_velocity = features[..., 0]  # (..., T)
    shifted = R._concat(xp, [xp.zeros_like(rotation_velocity[..., :1]), rotation_velocity[..., :-1]], -1)
    half_angle = xp.cumsum(shifted, -1)  # (..., T)
    zeros = xp.zeros_like(half_angle)
    return xp.stack([xp.cos(half_angle), zeros, xp.sin(half_angle), zeros], -1)  # (..., T, 4)


def joints_from_features(features: Any, skeleton: Skeleton, *, append_final_frame: bool = False) -> Any:
    """Recover joint positions ``(..., T, J, 3)`` from features ``(..., T, F)`` (``recover_from_ric``).

    numpy in -> numpy out, torch in -> torch out (same dtype/device, differentiable); vectorised over frames
    and any batch dimensions. Frame ``t`` is rebuilt from row ``t``: heading and root xz by cumulative sums,
    joints from ``ric`` rotated back by the inverse heading plus the root xz.

    ``append_final_frame=True`` also rebuilds the clip's last input frame from the last row's joint velocities
    (``(..., T+1, J, 3)``), so ``features_from_joints`` of the result reproduces ``features`` exactly: the
    heading smoothing sees the same frames.
    """
    xp, (features,) = R._prepare(features)
    if features.ndim < 2 or features.shape[-1] != skeleton.feature_dim:
        raise ValueError(
            f"features must have shape (T, {skeleton.feature_dim}) or (B, T, {skeleton.feature_dim}) for skeleton "
            f"{skeleton.name!r}; got {tuple(features.shape)}. Pass the skeleton the features were made with "
            f"(e.g. skeleton=KIT for KIT-ML)."
        )
    if features.shape[-2] < 1:
        raise ValueError("features has no frames")
    slices = skeleton.feature_slices
    num_joints = skeleton.num_joints

    heading = _recover_heading(features, xp)  # (..., T, 4)
    inverse_heading = R.qinv(heading)  # (..., T, 4)
    step_xz = features[..., :-1, slices["root_lin_vel"]]  # (..., T-1, 2)
    zeros = xp.zeros_like(step_xz[..., :1])  # (..., T-1, 1)
    step = R._concat(xp, [step_xz[..., :1], zeros, step_xz[..., 1:]], -1)  # (..., T-1, 3)
    step = R._concat(xp, [xp.zeros_like(features[..., :1, :3]), step], -2)  # (..., T, 3) frame 0: no step
    root_xz = xp.cumsum(R.qrot(inverse_heading, step), -2)  # (..., T, 3)
    root = xp.stack([root_xz[..., 0], features[..., 3], root_xz[..., 2]], -1)  # (..., T, 3)

    ric = features[..., slices["ric"]]
    ric = ric.reshape(tuple(ric.shape[:-1]) + (num_joints - 1, 3))  # (..., T, J-1, 3)
    unrotated = R.qrot(inverse_heading[..., None, :], ric)  # (..., T, J-1, 3)
    others = xp.stack(
        [unrotated[..., 0] + root[..., None, 0], unrotated[..., 1], unrotated[..., 2] + root[..., None, 2]], -1
    )  # (..., T, J-1, 3)
    positions = R._concat(xp, [root[..., None, :], others], -2)  # (..., T, J, 3)

    if append_final_frame:
        velocity = features[..., -1, slices["vel"]]
        velocity = velocity.reshape(tuple(velocity.shape[:-1]) + (num_joints, 3))  # (..., J, 3)
        last = positions[..., -1, :, :] + R.qrot(inverse_heading[..., -1, None, :], velocity)  # (..., J, 3)
        positions = R._concat(xp, [positions, last[..., None, :, :]], -3)  # (..., T+1, J, 3)
    return positions


# --------------------------------------------------------------------------------------------- mirroring
def _reflection_signs(xp: Any, like: Any, count: int = 3) -> Any:
    signs = np.ones(3)
    signs[_MIRROR_AXIS] = -1.0
    if count == 6:  # 6D = first two columns of M R M with M = diag(signs): entry (i, j) scales by s_i s_j
        signs = np.concatenate([signs * signs[0], signs * signs[1]])
    if xp is np:
        return signs.astype(like.dtype)
    return xp.as_tensor(signs, dtype=like.dtype, device=like.device)


def mirror_joints(joints: Any, skeleton: Skeleton) -> Any:
    """Left/right mirror of positions ``(..., J, 3)``: negate x and swap left and right joints."""
    xp, (joints,) = R._prepare(joints)
    if joints.ndim < 2 or tuple(joints.shape[-2:]) != (skeleton.num_joints, 3):
        raise ValueError(f"joints must have shape (..., {skeleton.num_joints}, 3); got {tuple(joints.shape)}")
    permutation = skeleton.mirror_permutation.tolist()
    return joints[..., permutation, :] * _reflection_signs(xp, joints)


def mirror_features(features: Any, skeleton: Skeleton) -> Any:
    """Left/right mirror in feature space ``(..., F)``; equals the features of the mirrored joints.

    Mirroring ``M = diag(-1, 1, 1)`` turns every rotation ``Q`` into ``M Q M``. Per group: root_rot_vel
    negated (heading turns the other way); root_lin_vel x negated; root_y kept; ric, vel: joints swapped
    and x negated; rot: joints swapped and the 6D entries of ``M Q M`` (signs ``+ - - - + +``); contacts:
    left and right feet swapped. Mirroring twice is the identity.
    """
    xp, (features,) = R._prepare(features)
    if features.ndim < 1 or features.shape[-1] != skeleton.feature_dim:
        raise ValueError(
            f"features must have shape (..., {skeleton.feature_dim}) for skeleton {skeleton.name!r}; "
            f"got {tuple(features.shape)}"
        )
    slices = skeleton.feature_slices
    permutation = skeleton.mirror_permutation  # (J,)
    non_root = (permutation[1:] - 1).tolist()  # ric / rot hold joints 1..J-1

    def per_joint(group: str, joint_order: list[int], width: int) -> Any:
        values = features[..., slices[group]]
        values = values.reshape(tuple(values.shape[:-1]) + (len(joint_order), width))  # (..., joints, width)
        mirrored = values[..., joint_order, :] * _reflection_signs(xp, features, width)
        return mirrored.reshape(tuple(values.shape[:-2]) + (len(joint_order) * width,))

    linear_velocity = features[..., slices["root_lin_vel"]]  # (..., 2): x, z
    num_left = len(skeleton.feet_left)
    contacts = features[..., slices["contacts"]]
    contact_order = list(range(num_left, num_left + len(skeleton.feet_right))) + list(range(num_left))
    parts = [
        -features[..., slices["root_rot_vel"]],
        xp.stack([-linear_velocity[..., 0], linear_velocity[..., 1]], -1),
        features[..., slices["root_y"]],
        per_joint("ric", non_root, 3),
        per_joint("rot", non_root, 6),
        per_joint("vel", permutation.tolist(), 3),
        contacts[..., contact_order],
    ]
    return R._concat(xp, parts, -1)
