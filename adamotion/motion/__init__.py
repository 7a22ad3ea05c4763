"""Skeleton, HumanML3D features and rotation utilities."""
from adamotion.motion.skeleton import HUMANML3D, KIT, SKELETONS, Skeleton

__all__ = ["HUMANML3D", "KIT", "SKELETONS", "Skeleton"]
