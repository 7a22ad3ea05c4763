"""Forward kinematics on rotation matrices (numpy only): BVH files, the SMPL body fit, any joint tree.

The HumanML3D feature format has its own quaternion forward kinematics in :mod:`adamotion.motion.features`
(rest offsets from the skeleton, root from the features); this one takes per-frame local transforms.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def matrix_forward_kinematics(parents: Sequence[int], local_rotations: np.ndarray,
                              local_translations: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global rotations ``(F, J, 3, 3)`` and positions ``(F, J, 3)`` of a joint tree.

    ``parents[j]`` is joint ``j``'s parent (``-1`` for a root) and must precede it. ``local_rotations``
    ``(F, J, 3, 3)`` rotate each joint relative to its parent; ``local_translations`` ``(F, J, 3)`` place each
    joint in its parent's frame (a root's translation is its world position).
    """
    local_rotations = np.asarray(local_rotations)
    local_translations = np.asarray(local_translations)
    global_rotations = np.empty_like(local_rotations)  # (F, J, 3, 3)
    positions = np.empty_like(local_translations)  # (F, J, 3)
    for joint, parent in enumerate(np.asarray(parents).tolist()):
        if parent < 0:
            global_rotations[:, joint] = local_rotations[:, joint]
            positions[:, joint] = local_translations[:, joint]
        else:
            if parent >= joint:
                raise ValueError(f"joint {joint}'s parent {parent} must come before it")
            global_rotations[:, joint] = global_rotations[:, parent] @ local_rotations[:, joint]
            positions[:, joint] = positions[:, parent] + np.einsum(
                "fij,fj->fi", global_rotations[:, parent], local_translations[:, joint])
    return global_rotations, positions
