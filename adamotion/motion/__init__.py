"""Skeleton, HumanML3D features and rotation utilities.

Importing this package needs numpy only (scipy is imported when heading smoothing runs, torch only when a
tensor is passed), so torch-free renderers can use it.
"""
from adamotion.motion import rotations
from adamotion.motion.features import (
    canonicalize_joints,
    features_from_joints,
    foot_contacts,
    forward_kinematics,
    inverse_kinematics,
    joints_from_features,
    mirror_features,
    mirror_joints,
    retarget_to_uniform,
)
from adamotion.motion.skeleton import HUMANML3D, KIT, SKELETONS, Skeleton

__all__ = [
    "HUMANML3D",
    "KIT",
    "SKELETONS",
    "Skeleton",
    "rotations",
    "canonicalize_joints",
    "features_from_joints",
    "foot_contacts",
    "forward_kinematics",
    "inverse_kinematics",
    "joints_from_features",
    "mirror_features",
    "mirror_joints",
    "retarget_to_uniform",
]
