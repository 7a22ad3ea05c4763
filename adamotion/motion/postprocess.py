"""Optional clean-ups of generated features before they become joints. Never on by default: published
numbers are the raw model's, and every option is labelled where it is used (pipeline, CLI, app).

=============  ==============================================================================================
``none``       :func:`~adamotion.motion.features.joints_from_features` as is (the ``ric`` positions)
``smooth``     a temporal Gaussian filter (sigma :data:`SMOOTH_SIGMA_FRAMES`) over every feature channel except
               the foot contacts, then the usual decoding
``rigid``      joints rebuilt by forward kinematics from the root and the 6D joint rotations with the
               skeleton's fixed bone lengths (bone lengths exact; the ``ric`` positions are ignored)
``smooth+rigid``  both
=============  ==============================================================================================
"""
from __future__ import annotations

from typing import Any

import numpy as np

from adamotion.motion import rotations as R
from adamotion.motion.features import _recover_heading, forward_kinematics, joints_from_features
from adamotion.motion.skeleton import Skeleton

POSTPROCESS_OPTIONS = ("none", "smooth", "rigid", "smooth+rigid")
SMOOTH_SIGMA_FRAMES = 1.0  # one frame at 20 fps: removes frame-to-frame popping, keeps a 0.3 s kick


def check_postprocess(option: str) -> str:
    if option not in POSTPROCESS_OPTIONS:
        raise ValueError(f"postprocess must be one of {POSTPROCESS_OPTIONS}, got {option!r}")
    return option


def smooth_features(features: Any, skeleton: Skeleton, sigma: float = SMOOTH_SIGMA_FRAMES) -> np.ndarray:
    """(T, F) features filtered over time (Gaussian, edge mode "nearest"); foot contacts kept as they are."""
    from scipy.ndimage import gaussian_filter1d

    features = np.asarray(features, dtype=np.float32)
    out = gaussian_filter1d(features, sigma, axis=-2, mode="nearest").astype(np.float32)  # (T, F)
    contacts = skeleton.feature_slices["contacts"]
    out[..., contacts] = features[..., contacts]
    return out


def rigid_joints_from_features(features: Any, skeleton: Skeleton) -> Any:
    """Joints (..., T, J, 3) by forward kinematics: root position and heading as in ``joints_from_features``,
    local joint rotations from the 6D features, bones of the skeleton's target lengths. numpy or torch."""
    if skeleton.bone_lengths is None:
        raise ValueError(f"skeleton {skeleton.name!r} has no fixed bone lengths; 'rigid' needs them (use 'none')")
    xp, (features,) = R._prepare(features)
    root = joints_from_features(features, skeleton)[..., 0, :]  # (..., T, 3)
    heading = _recover_heading(features, xp)  # (..., T, 4) world -> heading frame, the root rotation of the IK
    rot6d = features[..., skeleton.feature_slices["rot"]]
    rot6d = rot6d.reshape(tuple(rot6d.shape[:-1]) + (skeleton.num_joints - 1, 6))  # (..., T, J-1, 6)
    local = R.rot6d_to_quat(rot6d)  # (..., T, J-1, 4)
    quats = R._concat(xp, [heading[..., None, :], local], -2)  # (..., T, J, 4)
    offsets = skeleton.target_offsets if xp is np else xp.as_tensor(skeleton.target_offsets, dtype=features.dtype,
                                                                     device=features.device)
    return forward_kinematics(quats, root, skeleton, offsets=offsets)


def decode(features: Any, skeleton: Skeleton, postprocess: str = "none") -> tuple[np.ndarray, np.ndarray]:
    """(features, joints) of one generated clip (T, F) after the chosen clean-up (see the module table)."""
    check_postprocess(postprocess)
    features = np.asarray(features, dtype=np.float32)
    if "smooth" in postprocess:
        features = smooth_features(features, skeleton)
    if "rigid" in postprocess:
        joints = rigid_joints_from_features(features, skeleton)
    else:
        joints = joints_from_features(features, skeleton)
    return features, np.asarray(joints, dtype=np.float32)
