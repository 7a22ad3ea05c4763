"""The one skeleton/format object of the project.

Every joint index, chain, offset, fps and feature-slice used anywhere in AdaMotion comes from a
:class:`Skeleton` instance; no other module hard-codes ``22``, ``263`` or joint numbers.
Facts follow the HumanML3D convention (``shared/docs/motion-representation.md``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class Skeleton:
    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]  # parent index per joint, -1 for the root
    chains: tuple[tuple[int, ...], ...]  # kinematic chains used for IK/FK and drawing
    raw_offsets: tuple[tuple[float, float, float], ...]  # unit direction joint <- parent, rest pose
    bone_lengths: tuple[float, ...] | None  # metres, joint to parent (row 0 unused); None = take from data
    mirror_right: tuple[int, ...]  # right-side joints, paired index-wise with mirror_left
    mirror_left: tuple[int, ...]
    face_joints: tuple[int, int, int, int]  # (r_hip, l_hip, r_shoulder, l_shoulder)
    feet_left: tuple[int, int]  # (heel/ankle, toe)
    feet_right: tuple[int, int]
    leg_joints: tuple[int, int]  # (knee, ankle) whose distance scales the source to the target legs
    fps: float
    max_frames: int = 196
    min_frames: int = 40
    unit_length: int = 4
    contact_threshold: float = 0.002  # squared frame-to-frame displacement, metres^2
    hands: tuple[int, int] | None = None  # (left wrist, right wrist): which hand is raised
    head: int | None = None  # the head joint: the height a raised hand is measured against
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    # ------------------------------------------------------------------ sizes
    @property
    def num_joints(self) -> int:
        return len(self.parents)

    @property
    def feature_dim(self) -> int:
        j = self.num_joints
        return 4 + (j - 1) * 3 + (j - 1) * 6 + j * 3 + 4

    @cached_property
    def feature_slices(self) -> dict[str, slice]:
        """Named slices of the feature vector, in layout order."""
        j = self.num_joints
        sizes = [
            ("root_rot_vel", 1),
            ("root_lin_vel", 2),
            ("root_y", 1),
            ("ric", (j - 1) * 3),
            ("rot", (j - 1) * 6),
            ("vel", j * 3),
            ("contacts", 4),
        ]
        out, start = {}, 0
        for key, size in sizes:
            out[key] = slice(start, start + size)
            start += size
        assert start == self.feature_dim
        return out

    @property
    def foot_joints(self) -> tuple[int, int, int, int]:
        """Contact order of the last four features: left heel, left toe, right heel, right toe."""
        return (*self.feet_left, *self.feet_right)

    @cached_property
    def target_offsets(self) -> np.ndarray:
        """(J, 3) float32 rest-pose offsets of the uniform target skeleton (direction x length)."""
        if self.bone_lengths is None:
            raise ValueError(f"skeleton {self.name!r} has no target bone lengths; pass offsets from a reference motion")
        return (np.asarray(self.raw_offsets, np.float32) * np.asarray(self.bone_lengths, np.float32)[:, None]).astype(np.float32)

    @cached_property
    def mirror_permutation(self) -> np.ndarray:
        """(J,) index array that swaps left and right joints."""
        perm = np.arange(self.num_joints)
        perm[list(self.mirror_right)] = self.mirror_left
        perm[list(self.mirror_left)] = self.mirror_right
        return perm

    @cached_property
    def left_joints(self) -> frozenset[int]:
        return frozenset(self.mirror_left)

    @cached_property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(parent, child) pairs for every non-root joint."""
        return tuple((p, c) for c, p in enumerate(self.parents) if p >= 0)

    def index(self, joint_name: str) -> int:
        try:
            return self.joint_names.index(joint_name)
        except ValueError:
            raise KeyError(f"skeleton {self.name!r} has no joint {joint_name!r}; joints are {list(self.joint_names)}") from None

    def to_dict(self) -> dict:
        return {"name": self.name}

    @staticmethod
    def from_name(name: str) -> "Skeleton":
        try:
            return SKELETONS[name]
        except KeyError:
            raise KeyError(f"unknown skeleton {name!r}; available: {sorted(SKELETONS)}") from None


_SMPL22_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
)

HUMANML3D = Skeleton(
    name="humanml3d",
    joint_names=_SMPL22_NAMES,
    parents=(-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19),
    chains=((0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15), (9, 14, 17, 19, 21), (9, 13, 16, 18, 20)),
    raw_offsets=(
        (0, 0, 0), (1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, -1, 0), (0, 1, 0), (0, -1, 0),
        (0, -1, 0), (0, 1, 0), (0, 0, 1), (0, 0, 1), (0, 1, 0), (1, 0, 0), (-1, 0, 0), (0, 0, 1),
        (0, -1, 0), (0, -1, 0), (0, -1, 0), (0, -1, 0), (0, -1, 0), (0, -1, 0),
    ),
    bone_lengths=(
        0.0, 0.103074, 0.109883, 0.131568, 0.393623, 0.390188, 0.143190, 0.432433, 0.425643, 0.057365,
        0.143382, 0.149419, 0.219360, 0.137487, 0.143383, 0.103039, 0.131614, 0.122984, 0.256840, 0.263092,
        0.266012, 0.269876,
    ),
    mirror_right=(2, 5, 8, 11, 14, 17, 19, 21),
    mirror_left=(1, 4, 7, 10, 13, 16, 18, 20),
    face_joints=(2, 1, 17, 16),
    feet_left=(7, 10),
    feet_right=(8, 11),
    leg_joints=(5, 8),
    fps=20.0,
    hands=(20, 21),
    head=15,
)

# KIT-ML (21 joints, 251 dims, 12.5 fps). Target bone lengths are not part of the published facts we
# carry; a KIT dataset supplies its own reference skeleton.
_KIT_NAMES = (
    "root", "bp", "bt", "bln", "bn", "rsh", "re", "rw", "lsh", "le", "lw",
    "rh", "rk", "ra", "rmt", "rf", "lh", "lk", "la", "lmt", "lf",
)
KIT = Skeleton(
    name="kit",
    joint_names=_KIT_NAMES,
    parents=(-1, 0, 1, 2, 3, 3, 5, 6, 3, 8, 9, 0, 11, 12, 13, 14, 0, 16, 17, 18, 19),
    chains=((0, 11, 12, 13, 14, 15), (0, 16, 17, 18, 19, 20), (0, 1, 2, 3, 4), (3, 5, 6, 7), (3, 8, 9, 10)),
    raw_offsets=(
        (0, 0, 0), (0, 1, 0), (0, 1, 0), (0, 1, 0), (0, 1, 0), (1, 0, 0), (0, -1, 0), (0, -1, 0),
        (-1, 0, 0), (0, -1, 0), (0, -1, 0), (1, 0, 0), (0, -1, 0), (0, -1, 0), (0, 0, 1), (0, 0, 1),
        (-1, 0, 0), (0, -1, 0), (0, -1, 0), (0, 0, 1), (0, 0, 1),
    ),
    bone_lengths=None,
    mirror_right=(5, 6, 7, 11, 12, 13, 14, 15),
    mirror_left=(8, 9, 10, 16, 17, 18, 19, 20),
    face_joints=(11, 16, 5, 8),
    feet_left=(19, 20),
    feet_right=(14, 15),
    leg_joints=(17, 18),
    fps=12.5,
    hands=(10, 7),
    head=4,
)

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (HUMANML3D, KIT)}
