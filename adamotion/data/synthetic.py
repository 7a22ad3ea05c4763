"""Procedural motion-language corpus in the HumanML3D layout.

The corpus stands in for HumanML3D (whose AMASS motions cannot be shipped): seeded, procedurally
animated human motions with three captions each, written exactly like the published dataset::

    <root>/new_joints/<id>.npy        (T, 22, 3) float32 joint positions, metres, y up, 20 fps
    <root>/new_joint_vecs/<id>.npy    (T-1, 263) float32 features (``features_from_joints``)
    <root>/texts/<id>.txt             caption#word/POS ...#start#end, one caption per line
    <root>/train.txt val.txt test.txt one id per line; ``M<id>`` = the left/right mirrored copy
    <root>/Mean.npy Std.npy           normalisation statistics of the training split
    <root>/corpus.json                build settings, per-motion actions, statistics

How a motion is made
--------------------
1. A *plan* of one to three actions from :data:`FAMILIES` (walk, jog, run, jumps, kicks, waves, sit
   down, ...), each with sampled parameters (speed, direction, side, repetitions, amplitude).
2. Each action fills a :class:`_Track`: per-frame control signals -- root velocity in the body frame
   and yaw rate, pelvis height offset and tilt, spine/neck/arm joint angles, and which foot is planted.
   Consecutive actions are cross-faded over ``BLEND_FRAMES`` frames.
3. :func:`_realize` turns the track into joint positions: the root path is integrated from the
   velocities; every planted interval of a foot gets one fixed floor position (so a stance foot never
   slides), swings interpolate between plants; the pelvis height is capped so the planted legs reach
   the floor; two-bone IK gives hip and knee rotations, joint angles give the upper body, and forward
   kinematics on ``skeleton.target_offsets`` gives the positions (bone lengths exact by construction).

Captions come from :mod:`adamotion.data.captions`; test motions (and their mirrors) get only the
held-out phrasing.
"""
from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from adamotion.data import captions as cap
from adamotion.data.meta import dataset_skeleton, read_dataset_index, write_mean_std
from adamotion.motion import rotations as R
from adamotion.motion.physics import min_foot_height, skating_transitions
from adamotion.motion.skeleton import Skeleton
from adamotion.utils.files import atomic_folder, atomic_write_json
from adamotion.utils.parallel import map_with_workers

logger = logging.getLogger(__name__)

__all__ = [
    "FAMILIES", "SIZES", "CorpusReport", "CorpusStats", "SyntheticMotion", "build_corpus", "corpus_statistics",
    "generate_motion", "sample_plan", "skating_counts",
]

GENERATOR_VERSION = 1
SIZES = {"tiny": 60, "small": 800, "default": 4000}  # base motions; every motion also gets a mirror
SPLIT_FRACTIONS = (("train", 0.80), ("val", 0.05), ("test", 0.15))
BLEND_FRAMES = 10  # cross-fade between consecutive actions
MIRROR_PREFIX = "M"

# Rig constants (angles in radians, lengths in metres).
LEG_REACH = 0.997  # a planted leg stretches to at most this fraction of thigh + shin
KNEE_MAX_FLEX = math.radians(150.0)
ELBOW_MAX_FLEX = math.radians(150.0)
HEEL_STRIKE_PITCH = math.radians(18.0)  # toe up at heel strike (foot pivots about the ankle)
TOE_OFF_PITCH = math.radians(35.0)  # toe down at push-off (foot pivots about the toe)
COLLAR_REST = math.radians(150.0)  # collar -> shoulder segment points up and out
HEAD_REST_PITCH = math.radians(-60.0)  # neck -> head segment points up and forward
SPINE_WEIGHTS = (0.3, 0.35, 0.35)  # share of the spine angles taken by spine1, spine2, spine3

SIDES = ("left", "right")
_MIRROR_X = np.diag([-1.0, 1.0, 1.0])


# ==============================================================================================
# Rotations (vectorised over leading dims, float64)
# ==============================================================================================
def _axis_rot(axis: str, angle) -> np.ndarray:
    """(..., 3, 3) float64 rotation about x, y (up; +z towards +x) or z."""
    return R.axis_rotation(axis, np.asarray(angle, np.float64))


def _mirror_rot(rot: np.ndarray) -> np.ndarray:
    """Conjugate by the x-mirror: the right-side version of a left-side rotation."""
    return _MIRROR_X @ rot @ _MIRROR_X


def _normalize(v: np.ndarray, eps: float = 1e-9) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), eps)


# ==============================================================================================
# Envelopes
# ==============================================================================================
def _smoothstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _smootherstep(x):
    x = np.clip(x, 0.0, 1.0)
    return x ** 3 * (x * (6.0 * x - 15.0) + 10.0)


def _window(n: int, start: float, stop: float, ramp: float) -> np.ndarray:
    """(n,) 0 outside [start, stop], 1 inside, with smooth ramps of ``ramp`` frames inside the edges."""
    t = np.arange(n, dtype=np.float64)
    ramp = max(float(ramp), 1.0)
    return _smoothstep((t - start) / ramp) * _smoothstep((stop - t) / ramp)


def _bump(n: int, center: float, half_width: float) -> np.ndarray:
    """(n,) raised-cosine bump: 1 at ``center``, 0 beyond ``half_width`` frames."""
    t = np.arange(n, dtype=np.float64)
    x = np.clip((t - center) / max(half_width, 1e-6), -1.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * x))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Inclusive (start, end) index pairs of the True runs of a 1-D boolean mask."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


# ==============================================================================================
# Rig: the uniform skeleton's joints by role
# ==============================================================================================
@dataclass(frozen=True)
class _Limb:
    root: int  # hip / collar
    upper: int  # knee's parent bone owner: hip / shoulder
    mid: int  # knee / elbow
    end: int  # ankle / wrist
    tip: int  # toe (legs only; -1 for arms)


class _Rig:
    """Joint roles, bone lengths and rest measures of a skeleton with target offsets (SMPL-22 layout)."""

    def __init__(self, skeleton: Skeleton):
        self.skeleton = skeleton
        self.offsets = skeleton.target_offsets.astype(np.float64)  # (J, 3)
        self.parents = skeleton.parents
        if any(p >= j for j, p in enumerate(self.parents)):
            raise ValueError(f"skeleton {skeleton.name!r}: joints must be ordered parents first for forward kinematics")
        ix = skeleton.index
        self.pelvis = ix("pelvis")
        self.spine = (ix("spine1"), ix("spine2"), ix("spine3"))
        self.neck, self.head = ix("neck"), ix("head")
        self.legs = {s: _Limb(ix(f"{s}_hip"), ix(f"{s}_hip"), ix(f"{s}_knee"), ix(f"{s}_ankle"), ix(f"{s}_foot"))
                     for s in SIDES}
        self.collars = {s: ix(f"{s}_collar") for s in SIDES}
        self.arms = {s: _Limb(ix(f"{s}_collar"), ix(f"{s}_shoulder"), ix(f"{s}_elbow"), ix(f"{s}_wrist"), -1)
                     for s in SIDES}
        length = np.linalg.norm(self.offsets, axis=-1)
        self.thigh = {s: float(length[self.legs[s].mid]) for s in SIDES}
        self.shin = {s: float(length[self.legs[s].end]) for s in SIDES}
        self.foot = {s: float(length[self.legs[s].tip]) for s in SIDES}
        self.hip_offset = {s: self.offsets[self.legs[s].root] for s in SIDES}  # (3,) in the pelvis frame
        # Side sign: +1 where the side's hip lies on +x (left, for SMPL).
        self.sign = {s: float(np.sign(self.hip_offset[s][0])) for s in SIDES}
        if self.sign["left"] <= 0 or self.sign["right"] >= 0:
            raise ValueError(f"skeleton {skeleton.name!r}: expected the left hip on +x and the right hip on -x")
        # Standing pelvis height with flat feet and both legs (nearly) straight.
        self.stand_height = min(LEG_REACH * (self.thigh[s] + self.shin[s]) for s in SIDES) - self.hip_offset["left"][1]


# ==============================================================================================
# Tracks: per-frame control signals of one action or a whole motion
# ==============================================================================================
_BLENDED_FIELDS = ("v_body", "yaw_rate", "height", "pelvis", "spine", "neck", "arm", "collar",
                   "foot_lift", "follow", "swing_height", "plant_offset")


class _Track:
    """Control signals for ``n`` frames. Angles in radians; per-side arrays are ordered (left, right)
    and use left-side conventions (mirrored for the right side), lateral values point *outward*."""

    def __init__(self, n: int, style: "_Style | None" = None):
        self.n = n
        self.v_body = np.zeros((n, 2))  # (T, 2) root velocity [lateral (+left), forward], metres/frame
        self.yaw_rate = np.zeros(n)  # (T,) heading change per frame, + = turn left
        self.height = np.zeros(n)  # (T,) desired pelvis height relative to standing, metres
        self.pelvis = np.zeros((n, 2))  # (T, 2) pelvis [pitch (+forward), roll (+left hip up)]
        self.spine = np.zeros((n, 3))  # (T, 3) total spine [flex (+forward), bend (+left), twist (+left)]
        self.neck = np.zeros((n, 2))  # (T, 2) [nod (+down), turn (+left)]
        self.arm = np.zeros((n, 2, 4))  # (T, side, 4) [flex (+forward), abduction (+out), twist, elbow flex]
        self.collar = np.zeros((n, 2))  # (T, side) shrug (+up)
        self.contact = np.ones((n, 2), bool)  # (T, side) foot planted on the floor
        self.gait = np.zeros(n, bool)  # (T,) plants here roll heel-to-toe
        self.anchor_delay = np.zeros(n)  # (T,) a plant starting here is placed where the body is this many frames later
        self.plant_offset = np.zeros((n, 2, 2))  # (T, side, [outward, forward]) extra plant placement, body frame
        self.foot_lift = np.zeros((n, 2, 3))  # (T, side, [outward, up, forward]) swing-foot offset, body frame
        self.follow = np.zeros((n, 2))  # (T, side) 0 = swing in world space, 1 = foot carried with the body
        self.swing_height = np.full(n, 0.08)  # (T,) apex of a swing arc, metres
        self.toe_out = math.radians(6.0)
        if style is not None:
            self.arm[:, :, 1] = style.arm_abduction
            self.arm[:, :, 3] = style.elbow_flex
            self.spine[:, 0] = style.lean
            self.neck[:, 0] = style.head_nod
            self.plant_offset[:, :, 0] = style.stance_extra
            self.toe_out = style.toe_out

    @staticmethod
    def concat(tracks: list["_Track"], blend: int = BLEND_FRAMES) -> "_Track":
        """Join tracks in time; continuous signals cross-fade from the previous track's last value."""
        out = _Track(sum(t.n for t in tracks))
        out.toe_out = tracks[0].toe_out
        for name in (*_BLENDED_FIELDS, "contact", "gait", "anchor_delay"):
            setattr(out, name, np.concatenate([getattr(t, name) for t in tracks], axis=0))
        start = 0
        for prev, cur in zip(tracks[:-1], tracks[1:]):
            start += prev.n
            k = min(blend, cur.n)
            w = _smoothstep((np.arange(k) + 1.0) / (k + 1.0))
            for name in _BLENDED_FIELDS:
                arr = getattr(out, name)
                last = getattr(prev, name)[-1]
                seg = arr[start:start + k]
                arr[start:start + k] = last + (seg - last) * w.reshape((k,) + (1,) * (seg.ndim - 1))
        return out

    def set_arm(self, side: int, target, env: np.ndarray, channels=slice(None)) -> None:
        """Blend arm angles of ``side`` (0 left, 1 right) towards ``target`` (radians) with weight ``env``."""
        cur = self.arm[:, side, channels]
        target = np.broadcast_to(np.asarray(target, np.float64), cur.shape)
        self.arm[:, side, channels] = cur + (target - cur) * env.reshape((-1,) + (1,) * (cur.ndim - 1))

    def blend(self, name: str, target, env: np.ndarray, index=slice(None)) -> None:
        """Blend ``self.<name>[:, index]`` towards ``target`` with per-frame weight ``env``."""
        arr = getattr(self, name)
        cur = arr[:, index]
        target = np.broadcast_to(np.asarray(target, np.float64), cur.shape)
        e = env.reshape((-1,) + (1,) * (cur.ndim - 1))
        arr[:, index] = cur + (target - cur) * e


# ==============================================================================================
# From a track to joint positions
# ==============================================================================================
def _integrate_root(track: _Track) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Heading (T,), root xz (T, 2), body forward (T, 2) and body left (T, 2) in world xz."""
    yaw = np.concatenate([[0.0], np.cumsum(track.yaw_rate[:-1])])  # (T,)
    fwd = np.stack([np.sin(yaw), np.cos(yaw)], -1)  # (T, 2) world (x, z) of the body's forward axis
    left = np.stack([np.cos(yaw), -np.sin(yaw)], -1)  # (T, 2) world (x, z) of the body's left axis
    step = track.v_body[:, :1] * left + track.v_body[:, 1:] * fwd  # (T, 2)
    root_xz = np.concatenate([np.zeros((1, 2)), np.cumsum(step[:-1], axis=0)])  # (T, 2)
    return yaw, root_xz, fwd, left


def _foot_dir(yaw, pitch) -> np.ndarray:
    """(..., 3) unit vector from ankle to toe for a foot heading ``yaw`` pitched ``pitch`` (+ = toe down)."""
    return np.stack([np.sin(yaw) * np.cos(pitch), -np.sin(pitch), np.cos(yaw) * np.cos(pitch)], -1)


def _plan_feet(track: _Track, rig: _Rig, root_xz, yaw, fwd, left):
    """Ankle targets (T, 2, 3), foot yaw (T, 2) and pitch (T, 2) for both feet.

    Each planted interval of a foot gets one floor position, placed relative to the body at the
    interval's anchor frame; the foot does not move during the interval (apart from rolling about its
    heel at strike or about its toe at push-off in gait). Between plants the foot swings along an arc.
    """
    n = track.n
    ankle = np.zeros((n, 2, 3))
    foot_yaw = np.zeros((n, 2))
    pitch = np.zeros((n, 2))
    for k, side in enumerate(SIDES):
        sign = rig.sign[side]
        lfoot = rig.foot[side]
        half_width = abs(rig.hip_offset[side][0])
        plants = _runs(track.contact[:, k])  # inclusive (first, last) frames of each planted interval
        for a, b in plants:
            anchor = min(b, a + int(round(track.anchor_delay[a])))
            lateral = sign * (half_width + track.plant_offset[anchor, k, 0])
            forward = track.plant_offset[anchor, k, 1]
            pos = root_xz[anchor] + lateral * left[anchor] + forward * fwd[anchor]  # (2,) world xz
            fy = yaw[anchor] + sign * track.toe_out
            ankle[a:b + 1, k] = (pos[0], 0.0, pos[1])
            foot_yaw[a:b + 1, k] = fy
            length = b - a + 1
            if a > 0 and track.gait[a] and length >= 4:  # heel strike: toe comes down about the ankle
                h = min(3, length // 4)
                pitch[a:a + h, k] = -HEEL_STRIKE_PITCH * (1.0 - np.arange(h) / h)
            if b < n - 1 and track.gait[b] and length >= 4:  # push-off: heel rises about the toe
                m = max(1, min(int(round(0.4 * length)), length - 3))
                p = TOE_OFF_PITCH * np.arange(1, m + 1) / m
                toe = np.array([pos[0], 0.0, pos[1]]) + lfoot * _foot_dir(fy, 0.0)
                ankle[b - m + 1:b + 1, k] = toe - lfoot * _foot_dir(fy, p)
                pitch[b - m + 1:b + 1, k] = p
        if not plants:  # never planted: carried with the body
            follow = np.ones(n)
        else:
            follow = track.follow[:, k]
            first, last = plants[0][0], plants[-1][1]
            ankle[:first, k], foot_yaw[:first, k], pitch[:first, k] = ankle[first, k], foot_yaw[first, k], pitch[first, k]
            ankle[last + 1:, k], foot_yaw[last + 1:, k], pitch[last + 1:, k] = ankle[last, k], foot_yaw[last, k], pitch[last, k]
            for (_, b0), (a1, _) in zip(plants[:-1], plants[1:]):  # swing from one plant to the next
                t = np.arange(b0 + 1, a1)
                if t.size == 0:
                    continue
                s = (t - b0) / float(a1 - b0)  # (S,) in (0, 1)
                e = _smootherstep(s)[:, None]
                ankle[t, k] = ankle[b0, k] + (ankle[a1, k] - ankle[b0, k]) * e
                ankle[t, k, 1] += track.swing_height[t] * (4.0 * s * (1.0 - s)) ** 0.6
                foot_yaw[t, k] = foot_yaw[b0, k] + (foot_yaw[a1, k] - foot_yaw[b0, k]) * e[:, 0]
                pitch[t, k] = pitch[b0, k] + (pitch[a1, k] - pitch[b0, k]) * s
        free = ~track.contact[:, k]
        # Feet carried with the body (hopping's raised leg), then body-frame offsets (kicks).
        w = np.where(free, follow, 0.0)
        if np.any(w > 0):
            carried = root_xz + sign * half_width * left
            ankle[:, k, [0, 2]] = ankle[:, k, [0, 2]] * (1 - w[:, None]) + carried * w[:, None]
            ankle[:, k, 1] *= 1 - w
            foot_yaw[:, k] = foot_yaw[:, k] * (1 - w) + (yaw + sign * track.toe_out) * w
        lift = track.foot_lift[:, k] * free[:, None]  # (T, 3) outward, up, forward
        ankle[:, k, [0, 2]] += sign * lift[:, :1] * left + lift[:, 2:] * fwd
        ankle[:, k, 1] += lift[:, 1]
        # A swinging toe never goes through the floor.
        clearance = np.maximum(lfoot * np.sin(pitch[:, k]), 0.0)
        ankle[:, k, 1] = np.where(free, np.maximum(ankle[:, k, 1], clearance), ankle[:, k, 1])
    return ankle, foot_yaw, pitch


def _two_bone_ik(base, target, l1: float, l2: float, pole, max_reach: float, max_flex: float):
    """Two-bone IK: rotations of the upper and lower bone whose rest direction is -y.

    base, target, pole: (T, 3). The middle joint bends towards ``pole`` (the knee's forward side); the
    lower bone folds back, i.e. the lower rotation is ``upper @ R_x(flex)``. Returns (upper (T,3,3),
    lower (T,3,3), end position (T,3) actually reached).
    """
    d = target - base  # (T, 3)
    dist = np.linalg.norm(d, axis=-1)
    dhat = d / np.maximum(dist, 1e-9)[:, None]
    min_reach = math.sqrt(l1 * l1 + l2 * l2 - 2 * l1 * l2 * math.cos(math.pi - max_flex))
    dist_c = np.clip(dist, min_reach, max_reach)
    cos_a = np.clip((l1 * l1 + dist_c ** 2 - l2 * l2) / (2 * l1 * dist_c), -1.0, 1.0)
    alpha = np.arccos(cos_a)  # angle at the base between the base->end line and the upper bone
    pole_perp = pole - np.sum(pole * dhat, -1, keepdims=True) * dhat
    pole_perp = _normalize(pole_perp)
    u = np.cos(alpha)[:, None] * dhat + np.sin(alpha)[:, None] * pole_perp  # upper bone direction
    end = base + dhat * dist_c[:, None]
    mid = base + l1 * u
    w = (end - mid) / l2  # lower bone direction
    z_axis = _normalize(pole_perp - np.sum(pole_perp * u, -1, keepdims=True) * u)
    y_axis = -u
    x_axis = np.cross(y_axis, z_axis)
    upper = np.stack([x_axis, y_axis, z_axis], axis=-1)  # columns
    flex = np.arccos(np.clip(np.sum(u * w, -1), -1.0, 1.0))
    lower = upper @ _axis_rot("x", flex)
    return upper, lower, end


def _spine_rotation(angles: np.ndarray) -> np.ndarray:
    """(T, 3, 3) local rotation of one spine joint from (T, 3) [flex, bend (+left), twist (+left)]."""
    return _axis_rot("y", angles[:, 2]) @ _axis_rot("x", angles[:, 0]) @ _axis_rot("z", -angles[:, 1])


def _arm_rotation(angles: np.ndarray, side: str) -> np.ndarray:
    """(T, 3, 3) upper-arm rotation (relative to the chest) from (T, 4) [flex, abduction, twist, elbow]."""
    rot = _axis_rot("z", angles[:, 1]) @ _axis_rot("x", -angles[:, 0]) @ _axis_rot("y", angles[:, 2])
    return rot if side == "left" else _mirror_rot(rot)


def _realize(track: _Track, rig: _Rig) -> np.ndarray:
    """Joint positions (T, J, 3) float32 of a track: feet planted, IK legs, FK on the target offsets."""
    n = track.n
    num_joints = rig.skeleton.num_joints
    yaw, root_xz, fwd, left = _integrate_root(track)
    ankle_target, foot_yaw, foot_pitch = _plan_feet(track, rig, root_xz, yaw, fwd, left)

    pelvis_rot = _axis_rot("y", yaw) @ _axis_rot("x", track.pelvis[:, 0]) @ _axis_rot("z", track.pelvis[:, 1])  # (T, 3, 3)

    # Pelvis height: as desired, but never so high that a planted foot cannot reach the floor.
    desired = rig.stand_height + track.height  # (T,)
    cap = np.full(n, np.inf)
    for k, side in enumerate(SIDES):
        hip_rel = pelvis_rot @ rig.hip_offset[side]  # (T, 3) hip relative to the pelvis
        hip_xz = root_xz + hip_rel[:, [0, 2]]
        reach = LEG_REACH * (rig.thigh[side] + rig.shin[side])
        horiz = np.linalg.norm(hip_xz - ankle_target[:, k, [0, 2]], axis=-1)
        vertical = np.sqrt(np.maximum(reach ** 2 - horiz ** 2, 0.01))
        side_cap = ankle_target[:, k, 1] + vertical - hip_rel[:, 1]
        cap = np.where(track.contact[:, k], np.minimum(cap, side_cap), cap)
    root_y = np.minimum(desired, cap)
    kernel = np.array([0.25, 0.5, 0.25])
    smoothed = np.convolve(np.pad(root_y, 1, mode="edge"), kernel, mode="valid")
    root_y = np.minimum(smoothed, cap)
    root = np.stack([root_xz[:, 0], root_y, root_xz[:, 1]], -1)  # (T, 3)

    rot = np.broadcast_to(np.eye(3), (n, num_joints, 3, 3)).copy()  # (T, J, 3, 3) global rotations
    rot[:, rig.pelvis] = pelvis_rot
    parent_rot = pelvis_rot
    for joint, weight in zip(rig.spine, SPINE_WEIGHTS):
        parent_rot = parent_rot @ _spine_rotation(track.spine * weight)
        rot[:, joint] = parent_rot
    chest = parent_rot
    rot[:, rig.neck] = chest @ _axis_rot("y", track.neck[:, 1]) @ _axis_rot("x", HEAD_REST_PITCH + track.neck[:, 0])
    for k, side in enumerate(SIDES):
        collar = _axis_rot("z", COLLAR_REST + track.collar[:, k])
        rot[:, rig.collars[side]] = chest @ (collar if side == "left" else _mirror_rot(collar))
        arm = track.arm[:, k]
        elbow = np.clip(arm[:, 3], 0.0, ELBOW_MAX_FLEX)
        upper = chest @ _arm_rotation(arm, side)
        rot[:, rig.arms[side].upper] = upper
        rot[:, rig.arms[side].mid] = upper @ _axis_rot("x", -elbow)

    # Legs by IK towards the ankle targets; the knee points along heading and foot, a bit up and out.
    for k, side in enumerate(SIDES):
        leg = rig.legs[side]
        hip = root + pelvis_rot @ rig.hip_offset[side]
        fy = 0.5 * (yaw + foot_yaw[:, k])
        pole = np.stack([np.sin(fy), np.full(n, 0.5), np.cos(fy)], -1)
        pole[:, [0, 2]] += 0.1 * rig.sign[side] * left
        upper, lower, _end = _two_bone_ik(hip, ankle_target[:, k], rig.thigh[side], rig.shin[side], pole,
                                          LEG_REACH * (rig.thigh[side] + rig.shin[side]), KNEE_MAX_FLEX)
        rot[:, leg.root] = upper
        rot[:, leg.mid] = lower
        rot[:, leg.end] = _axis_rot("y", foot_yaw[:, k]) @ _axis_rot("x", foot_pitch[:, k])

    joints = np.zeros((n, num_joints, 3))
    joints[:, 0] = root
    for j in range(1, num_joints):
        p = rig.parents[j]
        joints[:, j] = joints[:, p] + rot[:, p] @ rig.offsets[j]
    return joints.astype(np.float32)


# ==============================================================================================
# Per-motion style and the action library
# ==============================================================================================
@dataclass(frozen=True)
class _Style:
    """Small per-motion variations so that no two motions share a rest posture or tempo."""

    arm_abduction: float  # arms hang slightly away from the body
    elbow_flex: float
    lean: float  # spine flexion at rest
    head_nod: float
    stance_extra: float  # extra half stance width, metres
    toe_out: float
    arm_swing: float  # scales gait arm swing
    tempo: float  # > 1 = quicker steps and gestures

    @staticmethod
    def sample(rng: np.random.Generator) -> "_Style":
        return _Style(
            arm_abduction=math.radians(rng.uniform(5, 12)), elbow_flex=math.radians(rng.uniform(6, 18)),
            lean=math.radians(rng.uniform(-2, 5)), head_nod=math.radians(rng.uniform(-4, 8)),
            stance_extra=rng.uniform(0.0, 0.04), toe_out=math.radians(rng.uniform(3, 10)),
            arm_swing=rng.uniform(0.7, 1.3), tempo=rng.uniform(0.9, 1.12),
        )


class _Ctx:
    """What an action function needs: rig, fps, style, a random generator and the frame budget."""

    def __init__(self, rig: _Rig, rng: np.random.Generator, style: _Style, budget: int):
        self.rig = rig
        self.fps = float(rig.skeleton.fps)
        self.rng = rng
        self.style = style
        self.budget = budget  # frames this action may use at most
        self.shrink = 0.0  # raised when an attempt came out too long: counts and durations shrink
        self.state: dict = {}  # carried between consecutive actions (e.g. seated pose)

    def frames(self, seconds: float) -> int:
        """Frames for a duration, scaled by the motion's tempo."""
        return max(1, int(round(seconds * self.fps / self.style.tempo)))

    def uniform(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def count(self, lo: int, hi: int) -> int:
        """Random repetition count in [lo, hi], the top lowered while shrinking."""
        top = lo + int(math.floor((hi - lo) * (1.0 - self.shrink)))
        return int(self.rng.integers(lo, max(lo, top) + 1))

    def choice(self, options):
        return options[int(self.rng.integers(len(options)))]

    def track(self, n: int) -> _Track:
        return _Track(n, self.style)


ActionFn = Callable[[_Ctx], tuple[_Track, dict]]
FAMILIES: dict[str, ActionFn] = {}
"""Action families by name, in registration order."""
_STARTS_SEATED = {"stand_up"}
_ENDS_SEATED = {"sit_down"}


def _family(name: str):
    def register(fn: ActionFn) -> ActionFn:
        FAMILIES[name] = fn
        return fn
    return register


def _gait(ctx: _Ctx, *, steps: int, period_s: float, duty: float, speed: float = 0.0, lateral: float = 0.0,
          turn: float = 0.0, swing_height: float = 0.09, arm_swing: float = 20.0, elbow: float | None = None,
          lean: float = 0.0, crouch: float = 0.0, flight_lift: float = 0.0, anchor_frac: float = 0.42,
          first_side: int = 0, plant_out: float = 0.0, lead_in_s: float = 0.2, settle_s: float = 0.35) -> _Track:
    """Stepping: ``steps`` alternating steps, ``speed``/``lateral`` in m/s (body frame), ``turn`` radians in
    total. ``duty`` is the stance share of a foot's cycle (< 0.5 gives flight phases); arm swing and
    elbow in degrees. The body starts and ends in double stance."""
    fps = ctx.fps
    period = max(4, ctx.frames(period_s))  # frames between successive foot lifts
    swing = int(np.clip(round((1.0 - duty) * 2 * period), 3, 2 * period - 2))
    stance = 2 * period - swing
    pre = max(2, ctx.frames(lead_in_s))
    post = max(5, ctx.frames(settle_s))
    lifts = [pre + k * period for k in range(steps)]
    last_land = lifts[-1] + swing
    n = last_land + post
    tr = ctx.track(n)
    for k, t in enumerate(lifts):
        tr.contact[t:t + swing, (first_side + k) % 2] = False
    tr.gait[pre:last_land + 1] = True
    tr.anchor_delay[pre:last_land + 1] = anchor_frac * stance
    stop = last_land - swing / 2.0
    env = _window(n, pre, stop, ramp=period)  # (T,) 0 at rest, 1 at cruising speed
    tr.v_body[:, 0] = lateral / fps * env
    tr.v_body[:, 1] = speed / fps * env
    if turn:
        turn_env = _window(n, pre, last_land, ramp=period)
        tr.yaw_rate[:] = turn * turn_env / turn_env.sum()
    tr.swing_height[:] = swing_height
    tr.plant_offset[:, :, 0] += plant_out
    moving = _window(n, pre, last_land, ramp=min(period, 6))
    flight = (~tr.contact.any(axis=1)).astype(np.float64)
    if flight.any():
        flight = np.convolve(flight, np.ones(3) / 3.0, mode="same")
    tr.height += crouch * moving + flight_lift * flight
    tr.spine[:, 0] += math.radians(lean) * moving
    # Arms swing against the legs: the left arm is back when the left foot lands.
    left_land = pre + swing + (period if first_side == 1 else 0)
    phase = np.pi * (np.arange(n) - left_land) / period
    amp = math.radians(arm_swing) * ctx.style.arm_swing * moving
    tr.arm[:, 0, 0] += -amp * np.cos(phase)
    tr.arm[:, 1, 0] += amp * np.cos(phase)
    tr.spine[:, 2] += 0.25 * amp * np.cos(phase)  # chest counter-rotates with the arms
    tr.pelvis[:, 1] += math.radians(3.0) * moving * np.sin(phase)
    if elbow is not None:
        tr.arm[:, :, 3] += (math.radians(elbow) - tr.arm[:, :, 3]) * moving[:, None]
    return tr


def _speed_choice(ctx: _Ctx, slow: float, normal: float, fast: float, allow=("slow", "normal", "fast")):
    label = ctx.choice(allow)
    base = {"slow": slow, "normal": normal, "fast": fast}[label]
    return label, base * ctx.uniform(0.92, 1.08)


@_family("walk")
def _walk(ctx: _Ctx):
    label, speed = _speed_choice(ctx, 0.8, 1.2, 1.5)
    period = {"slow": 0.6, "normal": 0.52, "fast": 0.46}[label]
    steps = ctx.count(3, 10)
    tr = _gait(ctx, steps=steps, period_s=period, duty=0.6 if label == "slow" else 0.57, speed=speed,
               swing_height=ctx.uniform(0.07, 0.11), arm_swing=ctx.uniform(14, 24), lean=2.0 + 3.0 * (label == "fast"),
               first_side=int(ctx.rng.integers(2)))
    return tr, {"direction": "forward", "speed": label, "count": steps}


@_family("jog")
def _jog(ctx: _Ctx):
    label, speed = _speed_choice(ctx, 1.8, 2.2, 2.6, allow=("normal", "normal", "slow", "fast"))
    steps = ctx.count(4, 12)
    tr = _gait(ctx, steps=steps, period_s=0.4, duty=0.42, speed=speed, swing_height=ctx.uniform(0.12, 0.16),
               arm_swing=ctx.uniform(22, 32), elbow=ctx.uniform(75, 95), lean=6.0, crouch=-0.03,
               flight_lift=0.02, anchor_frac=0.4, first_side=int(ctx.rng.integers(2)))
    return tr, {"direction": "forward", "speed": label, "count": steps}


@_family("run")
def _run(ctx: _Ctx):
    label, speed = _speed_choice(ctx, 2.8, 3.3, 3.9, allow=("normal", "normal", "fast"))
    steps = ctx.count(5, 14)
    tr = _gait(ctx, steps=steps, period_s=0.34, duty=0.32, speed=speed, swing_height=ctx.uniform(0.16, 0.22),
               arm_swing=ctx.uniform(32, 45), elbow=ctx.uniform(85, 100), lean=10.0, crouch=-0.05,
               flight_lift=0.04, anchor_frac=0.38, first_side=int(ctx.rng.integers(2)), lead_in_s=0.25)
    return tr, {"direction": "forward", "speed": label, "count": steps}


@_family("walk_backwards")
def _walk_backwards(ctx: _Ctx):
    label, speed = _speed_choice(ctx, 0.5, 0.7, 0.9)
    steps = ctx.count(3, 8)
    tr = _gait(ctx, steps=steps, period_s=0.6, duty=0.62, speed=-speed, swing_height=ctx.uniform(0.06, 0.09),
               arm_swing=10.0, lean=-2.0, anchor_frac=0.5, first_side=int(ctx.rng.integers(2)))
    return tr, {"direction": "backward", "speed": label, "count": steps}


@_family("side_step")
def _side_step(ctx: _Ctx):
    direction = ctx.choice(("left", "right"))
    steps = ctx.count(2, 6)
    speed = ctx.uniform(0.3, 0.5) * (1.0 if direction == "left" else -1.0)
    tr = _gait(ctx, steps=steps, period_s=0.62, duty=0.66, lateral=speed, swing_height=0.07, arm_swing=4.0,
               anchor_frac=0.5, first_side=0 if direction == "left" else 1, plant_out=0.04)
    tr.arm[:, :, 1] += math.radians(8.0)
    return tr, {"direction": direction, "count": steps}


@_family("turn_in_place")
def _turn_in_place(ctx: _Ctx):
    direction = ctx.choice(("left", "right"))
    angle = ctx.choice((90, 90, 180))
    steps = int(math.ceil(angle / 60.0)) + int(ctx.rng.integers(1, 3))
    sign = 1.0 if direction == "left" else -1.0
    tr = _gait(ctx, steps=steps, period_s=0.5, duty=0.65, turn=sign * math.radians(angle * ctx.uniform(0.95, 1.05)),
               swing_height=0.06, arm_swing=5.0, anchor_frac=0.5, first_side=0 if direction == "left" else 1)
    tr.neck[:, 1] += sign * math.radians(15.0) * _bump(tr.n, tr.n * 0.35, tr.n * 0.35)
    return tr, {"direction": direction, "angle": angle, "count": steps}


@_family("walk_circle")
def _walk_circle(ctx: _Ctx):
    direction = ctx.choice(("left", "right"))
    extent = ctx.choice(("full", "half"))
    speed = ctx.uniform(0.9, 1.2)
    radius = ctx.uniform(0.7, 1.4) * (1.0 - 0.4 * ctx.shrink)
    period = 0.52
    arc = radius * (2 * math.pi if extent == "full" else math.pi)
    steps = max(4, int(round(arc / (speed * period))) + 1)
    sign = 1.0 if direction == "left" else -1.0
    tr = _gait(ctx, steps=steps, period_s=period, duty=0.58, speed=speed,
               turn=sign * (2 * math.pi if extent == "full" else math.pi), swing_height=0.08, arm_swing=15.0,
               first_side=0 if direction == "right" else 1)
    tr.pelvis[:, 1] += -sign * math.radians(3.0) * (np.abs(tr.yaw_rate) > 0)  # lean into the turn
    return tr, {"direction": direction, "extent": extent, "count": steps}


def _jumps(ctx: _Ctx, count: int, distance: float, height: float, arms_up: bool, wide_every_other: bool = False):
    """``count`` two-footed jumps: crouch, flight, landing absorption; ``distance`` metres forward each."""
    prep = ctx.frames(0.45 if not wide_every_other else 0.2)
    land = ctx.frames(0.4 if not wide_every_other else 0.2)
    flight = max(4, int(round(2.0 * math.sqrt(2.0 * height / 9.81) * ctx.fps)))
    lead, tail = ctx.frames(0.15), ctx.frames(0.4)
    cycle = prep + flight + land
    n = lead + count * cycle + tail
    tr = ctx.track(n)
    for j in range(count):
        s = lead + j * cycle
        takeoff, landing = s + prep, s + prep + flight
        tr.contact[takeoff:landing] = False
        dip = 0.12 if not wide_every_other else 0.05
        tr.height += -dip * _bump(n, s + 0.6 * prep, 0.55 * prep) - 0.8 * dip * _bump(n, landing + 0.4 * land, 0.6 * land)
        u = (np.arange(flight) + 1.0) / (flight + 1.0)
        tr.height[takeoff:landing] += height * 4.0 * u * (1.0 - u)
        if distance:
            v = _window(n, takeoff - 2, landing + 2, ramp=2)
            tr.v_body[:, 1] += distance * v / v.sum()
        tr.swing_height[takeoff:landing] = 0.6 * height + 0.05
        tr.spine[:, 0] += math.radians(25.0) * _bump(n, s + 0.6 * prep, 0.6 * prep) \
            + math.radians(15.0) * _bump(n, landing + 0.3 * land, 0.6 * land)
        if wide_every_other:
            wide = j % 2 == 0
            tr.plant_offset[landing:, :, 0] = ctx.style.stance_extra + (0.22 if wide else 0.0)
            arms = _window(n, takeoff, landing + land + (cycle if wide else 0), ramp=max(2, flight // 2))
            if wide:
                tr.set_arm(0, math.radians(165.0), arms, channels=1)
                tr.set_arm(1, math.radians(165.0), arms, channels=1)
        else:
            back = _bump(n, s + 0.7 * prep, 0.5 * prep)
            up = _bump(n, takeoff + flight / 2.0, flight / 2.0 + 3)
            for k in range(2):
                tr.arm[:, k, 0] += math.radians(-35.0) * back + math.radians(150.0 if arms_up else 70.0) * up
    return tr


@_family("jump_forward")
def _jump_forward(ctx: _Ctx):
    count = ctx.count(1, 2)
    distance = ctx.uniform(0.4, 0.9)
    tr = _jumps(ctx, count, distance, ctx.uniform(0.12, 0.22), arms_up=False)
    return tr, {"direction": "forward", "count": count}


@_family("jump_up")
def _jump_up(ctx: _Ctx):
    count = ctx.count(1, 4)
    tr = _jumps(ctx, count, 0.0, ctx.uniform(0.12, 0.3), arms_up=ctx.rng.random() < 0.5)
    return tr, {"count": count}


@_family("jumping_jacks")
def _jumping_jacks(ctx: _Ctx):
    reps = ctx.count(2, 5)
    tr = _jumps(ctx, 2 * reps, 0.0, ctx.uniform(0.06, 0.1), arms_up=False, wide_every_other=True)
    return tr, {"count": reps}


@_family("hop")
def _hop(ctx: _Ctx):
    side = ctx.choice(("left", "right"))
    k = SIDES.index(side)
    other = 1 - k
    count = ctx.count(2, 6)
    forward = ctx.choice((0.0, ctx.uniform(0.15, 0.3)))
    stance, flight = ctx.frames(0.3), ctx.frames(0.22)
    shift, lead, tail = ctx.frames(0.5), ctx.frames(0.1), ctx.frames(0.5)
    n = lead + shift + count * (stance + flight) + stance + tail
    tr = ctx.track(n)
    start = lead + shift
    end = start + count * (stance + flight) + stance
    raised = _window(n, lead + shift // 2, end + tail // 2, ramp=shift // 2)
    tr.contact[lead + shift // 2:end + tail // 2, other] = False
    tr.follow[:, other] = raised
    tr.foot_lift[:, other] = np.array([0.02, 0.22, -0.12]) * raised[:, None]
    # Shift the pelvis over the hopping leg and back; the hopping foot keeps landing under it.
    shift_m = 0.8 * abs(ctx.rig.hip_offset[side][0])
    over = _window(n, lead, end + tail - 2, ramp=shift)
    tr.v_body[:, 0] += (1.0 if side == "left" else -1.0) * shift_m * np.diff(over, prepend=0.0)
    tr.plant_offset[:, k, 0] -= shift_m * over
    for j in range(count):
        t0 = start + stance + j * (stance + flight)
        tr.contact[t0:t0 + flight, k] = False
        tr.height += -0.06 * _bump(n, t0 - stance / 2.0, stance / 2.0 + 1)
        u = (np.arange(flight) + 1.0) / (flight + 1.0)
        tr.height[t0:t0 + flight] += 0.07 * 4 * u * (1 - u)
    tr.swing_height[:] = 0.05
    if forward:
        hop_env = _window(n, start, end, ramp=stance)
        tr.v_body[:, 1] += forward * count * hop_env / hop_env.sum()
        tr.gait[start:end] = True
        tr.anchor_delay[start:end] = stance / 2.0
    balance = _window(n, lead, end + tail // 2, ramp=shift)
    tr.set_arm(0, math.radians(30.0), balance, channels=1)
    tr.set_arm(1, math.radians(30.0), balance, channels=1)
    return tr, {"side": side, "count": count, "direction": "forward" if forward else "none"}


@_family("march")
def _march(ctx: _Ctx):
    steps = ctx.count(4, 10)
    tr = _gait(ctx, steps=steps, period_s=0.55, duty=0.5, swing_height=ctx.uniform(0.18, 0.28), arm_swing=35.0,
               elbow=80.0, anchor_frac=0.0, first_side=int(ctx.rng.integers(2)))
    tr.gait[:] = False
    return tr, {"count": steps}


@_family("squat")
def _squat(ctx: _Ctx):
    count = ctx.count(1, 4)
    depth = ctx.uniform(0.22, 0.38)
    period = ctx.frames(ctx.uniform(1.2, 1.7))
    lead, tail = ctx.frames(0.2), ctx.frames(0.3)
    n = lead + count * period + tail
    tr = ctx.track(n)
    down = sum(_bump(n, lead + (j + 0.5) * period, 0.5 * period) for j in range(count))
    tr.height += -depth * down
    back = 0.35 * depth * np.diff(down, prepend=0.0)
    tr.v_body[:, 1] -= back
    tr.spine[:, 0] += math.radians(25.0 + 40.0 * depth) * down
    tr.pelvis[:, 0] += math.radians(15.0) * down
    if ctx.rng.random() < 0.6:  # arms reach forward for balance
        tr.set_arm(0, [math.radians(85.0), 0.0, 0.0, math.radians(10.0)], np.clip(down * 1.5, 0, 1))
        tr.set_arm(1, [math.radians(85.0), 0.0, 0.0, math.radians(10.0)], np.clip(down * 1.5, 0, 1))
    return tr, {"count": count}


@_family("crouch")
def _crouch(ctx: _Ctx):
    depth = ctx.uniform(0.34, 0.44)
    down_f, hold, up_f = ctx.frames(0.8), ctx.frames(ctx.uniform(0.5, 1.4)), ctx.frames(0.8)
    lead, tail = ctx.frames(0.2), ctx.frames(0.3)
    n = lead + down_f + hold + up_f + tail
    tr = ctx.track(n)
    env = _window(n, lead, lead + down_f + hold + up_f, ramp=down_f)
    tr.height += -depth * env
    tr.v_body[:, 1] -= 0.12 * np.diff(env, prepend=0.0)
    tr.spine[:, 0] += math.radians(35.0) * env
    tr.pelvis[:, 0] += math.radians(20.0) * env
    tr.neck[:, 0] -= math.radians(20.0) * env
    tr.set_arm(0, [math.radians(45.0), math.radians(10.0), 0.0, math.radians(50.0)], env)
    tr.set_arm(1, [math.radians(45.0), math.radians(10.0), 0.0, math.radians(50.0)], env)
    return tr, {}


@_family("lunge")
def _lunge(ctx: _Ctx):
    side = ctx.choice(("left", "right"))
    k = SIDES.index(side)
    count = ctx.count(1, 2)
    step_f, down, hold, rise = ctx.frames(0.4), ctx.frames(0.5), ctx.frames(ctx.uniform(0.3, 0.6)), ctx.frames(0.5)
    lead, tail = ctx.frames(0.15), ctx.frames(0.3)
    cycle = step_f + down + hold + rise + step_f
    n = lead + count * cycle + tail
    tr = ctx.track(n)
    reach = ctx.uniform(0.55, 0.72)
    depth = ctx.uniform(0.22, 0.32)
    t = np.arange(n)
    for j in range(count):
        s = lead + j * cycle
        landed = s + step_f  # front foot lands `reach` ahead, then the body sinks onto it
        back_lift = landed + down + hold + rise  # body risen: the front foot steps back
        tr.contact[s:landed, k] = False
        tr.contact[back_lift:back_lift + step_f, k] = False
        tr.plant_offset[landed:back_lift, k, 1] = reach
        tr.swing_height[s:back_lift + step_f] = 0.07
        sink = _smoothstep((t - landed) / down)
        forward = sink * (1.0 - _smoothstep((t - back_lift) / step_f))
        tr.v_body[:, 1] += 0.45 * reach * np.diff(forward, prepend=0.0)
        low = sink * (1.0 - _smoothstep((t - (back_lift - rise)) / rise))
        tr.height += -depth * low
        tr.spine[:, 0] += math.radians(-4.0) * low
    return tr, {"side": side, "count": count}


@_family("kick")
def _kick(ctx: _Ctx):
    side = ctx.choice(("left", "right"))
    k = SIDES.index(side)
    count = ctx.count(1, 3)
    level = ctx.choice(("high", "low"))
    kick_f, gap = ctx.frames(0.7), ctx.frames(0.25)
    lead, tail = ctx.frames(0.35), ctx.frames(0.35)
    n = lead + count * (kick_f + gap) + tail
    tr = ctx.track(n)
    up = ctx.uniform(0.45, 0.65) if level == "high" else ctx.uniform(0.18, 0.3)
    reach = ctx.uniform(0.45, 0.65)
    sign_side = 1.0 if side == "left" else -1.0
    for j in range(count):
        s = lead + j * (kick_f + gap)
        tr.contact[s:s + kick_f, k] = False
        windup = _bump(n, s + 0.3 * kick_f, 0.25 * kick_f)
        strike = _bump(n, s + 0.6 * kick_f, 0.3 * kick_f)
        tr.foot_lift[:, k, 2] += -0.18 * windup + reach * strike
        tr.foot_lift[:, k, 1] += 0.12 * windup + up * strike
        tr.pelvis[:, 0] += math.radians(-12.0 if level == "high" else -5.0) * strike
        tr.spine[:, 0] += math.radians(-6.0) * strike
        tr.arm[:, 1 - k, 0] += math.radians(35.0) * strike  # the other arm swings forward
    support = _window(n, lead - 4, n - tail + 4, ramp=6)
    tr.v_body[:, 0] += -sign_side * 0.05 * np.diff(support, prepend=0.0)  # weight over the standing leg
    tr.set_arm(0, math.radians(25.0), support, channels=1)
    tr.set_arm(1, math.radians(25.0), support, channels=1)
    tr.swing_height[:] = 0.06
    return tr, {"side": side, "count": count, "level": level}


_GUARD = np.radians([40.0, 10.0, -30.0, 125.0])  # fists up near the chin
_PUNCH = np.radians([88.0, -8.0, -10.0, 5.0])  # arm straight ahead at shoulder height


@_family("punch")
def _punch(ctx: _Ctx):
    side = ctx.choice(("left", "right", "both"))
    count = ctx.count(2, 6)
    punch_f = ctx.frames(ctx.uniform(0.35, 0.5))
    lead, tail, guard_f = ctx.frames(0.2), ctx.frames(0.3), ctx.frames(0.4)
    n = lead + guard_f + count * punch_f + guard_f + tail
    tr = ctx.track(n)
    guard = _window(n, lead, n - tail, ramp=guard_f)
    tr.set_arm(0, _GUARD, guard)
    tr.set_arm(1, _GUARD, guard)
    for j in range(count):
        k = SIDES.index(side) if side != "both" else j % 2
        strike = _bump(n, lead + guard_f + (j + 0.5) * punch_f, 0.5 * punch_f)
        tr.set_arm(k, _PUNCH, strike)
        tr.spine[:, 2] += (-1.0 if k == 0 else 1.0) * math.radians(18.0) * strike
    tr.spine[:, 0] += math.radians(6.0) * guard
    tr.height += -0.04 * guard
    return tr, {"side": side, "count": count}


_WAVE_UP = np.radians([10.0, 95.0, 90.0, 80.0])  # forearm vertical beside the head


@_family("wave")
def _wave(ctx: _Ctx):
    side = ctx.choice(("left", "right", "both"))
    count = ctx.count(2, 5)
    big = ctx.rng.random() < 0.35  # whole arm waving overhead instead of the forearm
    raise_f, tail, lead = ctx.frames(0.5), ctx.frames(0.3), ctx.frames(0.15)
    period = ctx.frames(ctx.uniform(0.35, 0.5))
    n = lead + raise_f + count * period + raise_f + tail
    tr = ctx.track(n)
    up = _window(n, lead, n - tail, ramp=raise_f)
    osc = np.sin(2 * np.pi * (np.arange(n) - lead - raise_f) / period) * _window(n, lead + raise_f * 0.6, n - tail - raise_f * 0.6, ramp=3)
    ks = (0, 1) if side == "both" else (SIDES.index(side),)
    for k in ks:
        if big:
            tr.set_arm(k, np.radians([15.0, 150.0, 0.0, 20.0]), up)
            tr.arm[:, k, 1] += math.radians(18.0) * osc
        else:
            tr.set_arm(k, _WAVE_UP, up)
            tr.arm[:, k, 3] += math.radians(28.0) * osc
    return tr, {"side": side, "count": count}


_CLAP_OPEN = np.radians([55.0, 25.0, -55.0, 85.0])
_CLAP_SHUT = np.radians([55.0, -12.0, -60.0, 80.0])


@_family("clap")
def _clap(ctx: _Ctx):
    count = ctx.count(2, 6)
    period = ctx.frames(ctx.uniform(0.35, 0.5))
    raise_f, lead, tail = ctx.frames(0.4), ctx.frames(0.15), ctx.frames(0.3)
    n = lead + raise_f + count * period + raise_f + tail
    tr = ctx.track(n)
    up = _window(n, lead, n - tail, ramp=raise_f)
    shut = sum(_bump(n, lead + raise_f + (j + 0.6) * period, 0.45 * period) for j in range(count))
    for k in range(2):
        tr.set_arm(k, _CLAP_OPEN, up)
        tr.set_arm(k, _CLAP_SHUT, np.clip(shut, 0, 1) * up)
    return tr, {"count": count}


@_family("raise_arms")
def _raise_arms(ctx: _Ctx):
    side = ctx.choice(("left", "right", "both", "both"))
    mode = ctx.choice(("up", "out"))
    rise, hold, lower = ctx.frames(0.6), ctx.frames(ctx.uniform(0.5, 1.5)), ctx.frames(0.6)
    lead, tail = ctx.frames(0.2), ctx.frames(0.3)
    n = lead + rise + hold + lower + tail
    tr = ctx.track(n)
    env = _window(n, lead, lead + rise + hold + lower, ramp=rise)
    target = np.radians([170.0, 10.0, 0.0, 10.0]) if mode == "up" else np.radians([5.0, 88.0, 0.0, 5.0])
    for k in ((0, 1) if side == "both" else (SIDES.index(side),)):
        tr.set_arm(k, target, env)
    if mode == "up":
        tr.neck[:, 0] -= math.radians(12.0) * env
    return tr, {"side": side, "mode": mode}


@_family("stretch")
def _stretch(ctx: _Ctx):
    mode = ctx.choice(("overhead", "sides"))
    rise, lower = ctx.frames(0.7), ctx.frames(0.7)
    lead, tail = ctx.frames(0.2), ctx.frames(0.3)
    hold = ctx.frames(ctx.uniform(0.8, 1.6)) if mode == "overhead" else ctx.frames(ctx.uniform(2.0, 2.8))
    n = lead + rise + hold + lower + tail
    tr = ctx.track(n)
    env = _window(n, lead, lead + rise + hold + lower, ramp=rise)
    for k in range(2):
        tr.set_arm(k, np.radians([172.0, 12.0, 0.0, 8.0]), env)
    if mode == "overhead":
        tr.spine[:, 0] += math.radians(-10.0) * env
        tr.neck[:, 0] -= math.radians(15.0) * env
    else:
        t = np.arange(n) - lead - rise
        bend = np.sin(2 * np.pi * t / hold) * _window(n, lead + rise * 0.5, lead + rise + hold + lower * 0.5, ramp=4)
        first = ctx.choice((1.0, -1.0))
        tr.spine[:, 1] += first * math.radians(ctx.uniform(22, 32)) * bend
        tr.v_body[:, 0] += -first * 0.04 * np.diff(bend, prepend=0.0)
    return tr, {"mode": mode}


@_family("bow")
def _bow(ctx: _Ctx):
    depth = ctx.uniform(35.0, 70.0)
    down_f, hold, up_f = ctx.frames(0.7), ctx.frames(ctx.uniform(0.3, 1.0)), ctx.frames(0.7)
    lead, tail = ctx.frames(0.2), ctx.frames(0.3)
    n = lead + down_f + hold + up_f + tail
    tr = ctx.track(n)
    env = _window(n, lead, lead + down_f + hold + up_f, ramp=down_f)
    tr.spine[:, 0] += math.radians(depth * 0.75) * env
    tr.pelvis[:, 0] += math.radians(depth * 0.25) * env
    tr.neck[:, 0] += math.radians(15.0) * env
    tr.v_body[:, 1] -= 0.08 * (depth / 70.0) * np.diff(env, prepend=0.0)
    if ctx.rng.random() < 0.5:  # hand on the chest
        tr.set_arm(ctx.choice((0, 1)), np.radians([35.0, -10.0, -70.0, 120.0]), env)
    return tr, {}


def _seated(ctx: _Ctx) -> tuple[float, float]:
    """Pelvis drop and backward shift of sitting on an invisible chair (shared by sit/stand)."""
    if "seated" not in ctx.state:
        ctx.state["seated"] = (ctx.uniform(0.30, 0.36), ctx.uniform(0.26, 0.34))
    return ctx.state["seated"]


_HANDS_ON_THIGHS = np.radians([40.0, 8.0, -20.0, 45.0])


@_family("sit_down")
def _sit_down(ctx: _Ctx):
    drop, back = _seated(ctx)
    move, hold = ctx.frames(ctx.uniform(1.1, 1.6)), ctx.frames(ctx.uniform(0.5, 1.2))
    lead = ctx.frames(0.2)
    n = lead + move + hold
    tr = ctx.track(n)
    down = _smoothstep((np.arange(n) - lead) / move)  # (T,) 0 standing -> 1 seated
    tr.height += -drop * down
    tr.v_body[:, 1] -= back * np.diff(down, prepend=0.0)
    lean = _bump(n, lead + 0.55 * move, 0.55 * move)
    tr.spine[:, 0] += math.radians(35.0) * lean + math.radians(6.0) * down
    tr.pelvis[:, 0] += math.radians(15.0) * lean
    tr.set_arm(0, _HANDS_ON_THIGHS, down)
    tr.set_arm(1, _HANDS_ON_THIGHS, down)
    return tr, {}


@_family("stand_up")
def _stand_up(ctx: _Ctx):
    drop, back = _seated(ctx)
    hold, move = ctx.frames(ctx.uniform(0.3, 0.8)), ctx.frames(ctx.uniform(1.1, 1.6))
    tail = ctx.frames(0.3)
    n = hold + move + tail
    tr = ctx.track(n)
    seated = 1.0 - _smoothstep((np.arange(n) - hold) / move)  # (T,) 1 seated -> 0 standing
    tr.height += -drop * seated
    tr.v_body[:, 1] -= back * np.diff(seated, prepend=seated[0])
    tr.plant_offset[:, :, 1] += back * seated[:, None]  # feet in front of the seated pelvis
    lean = _bump(n, hold + 0.45 * move, 0.55 * move)
    tr.spine[:, 0] += math.radians(38.0) * lean + math.radians(6.0) * seated
    tr.pelvis[:, 0] += math.radians(15.0) * lean
    tr.set_arm(0, _HANDS_ON_THIGHS, seated)
    tr.set_arm(1, _HANDS_ON_THIGHS, seated)
    return tr, {}


@_family("throw")
def _throw(ctx: _Ctx):
    side = ctx.choice(("left", "right"))
    k = SIDES.index(side)
    style = ctx.choice(("overhand", "overhand", "underhand"))
    wind, release, follow = ctx.frames(0.6), ctx.frames(0.25), ctx.frames(0.5)
    lead, tail = ctx.frames(0.2), ctx.frames(0.4)
    n = lead + wind + release + follow + tail
    tr = ctx.track(n)
    t_release = lead + wind + release
    windup = _window(n, lead, lead + wind + release // 2, ramp=wind * 0.8)
    through = _bump(n, t_release + follow * 0.3, follow * 0.6 + release)
    sgn = 1.0 if k == 0 else -1.0
    if style == "overhand":
        tr.set_arm(k, np.radians([-20.0, 100.0, 60.0, 95.0]), windup)
        tr.set_arm(k, np.radians([70.0, 10.0, -20.0, 20.0]), through)
    else:
        tr.set_arm(k, np.radians([-45.0, 10.0, 0.0, 10.0]), windup)
        tr.set_arm(k, np.radians([80.0, 5.0, 0.0, 15.0]), through)
    tr.spine[:, 2] += sgn * (math.radians(25.0) * windup - math.radians(25.0) * through)
    tr.spine[:, 0] += math.radians(-5.0) * windup + math.radians(15.0) * through
    if ctx.rng.random() < 0.6:  # step into the throw with the opposite foot
        other = 1 - k
        tr.contact[lead + wind - ctx.frames(0.2):lead + wind + release // 2, other] = False
        tr.plant_offset[lead + wind:, other, 1] = ctx.uniform(0.25, 0.4)
        shift = _smoothstep((np.arange(n) - (lead + wind)) / (release + follow))
        tr.v_body[:, 1] += 0.15 * np.diff(shift, prepend=0.0)
        tr.swing_height[:] = 0.06
    return tr, {"side": side, "style": style}


@_family("spin")
def _spin(ctx: _Ctx):
    direction = ctx.choice(("left", "right"))
    turns = ctx.count(1, 2)
    sign = 1.0 if direction == "left" else -1.0
    steps = 5 * turns + int(ctx.rng.integers(0, 2))
    tr = _gait(ctx, steps=steps, period_s=0.32, duty=0.62, turn=sign * 2 * math.pi * turns * ctx.uniform(0.97, 1.03),
               swing_height=0.07, arm_swing=3.0, anchor_frac=0.5, first_side=0 if direction == "left" else 1)
    if ctx.rng.random() < 0.5:  # arms out while spinning
        out = _window(tr.n, 2, tr.n - 3, ramp=5)
        tr.set_arm(0, math.radians(70.0), out, channels=1)
        tr.set_arm(1, math.radians(70.0), out, channels=1)
    return tr, {"direction": direction, "count": turns}


@_family("sway")
def _sway(ctx: _Ctx):
    count = ctx.count(2, 5)
    period = ctx.frames(ctx.uniform(0.8, 1.2))
    lead, tail = ctx.frames(0.2), ctx.frames(0.3)
    n = lead + count * period + tail
    tr = ctx.track(n)
    env = _window(n, lead, n - tail, ramp=period // 2)
    phase = 2 * np.pi * (np.arange(n) - lead) / period
    shift = ctx.uniform(0.05, 0.09) * np.sin(phase) * env
    tr.v_body[:, 0] += np.diff(shift, prepend=0.0)
    tr.pelvis[:, 1] += -math.radians(6.0) * np.sin(phase) * env
    tr.spine[:, 1] += math.radians(10.0) * np.sin(phase) * env
    tr.height += -0.03 * np.abs(np.sin(phase)) * env
    arms_up = ctx.rng.random() < 0.5
    for k in range(2):
        pose = np.radians([60.0, 40.0, 0.0, 70.0]) if arms_up else np.radians([25.0, 20.0, 0.0, 80.0])
        tr.set_arm(k, pose, env)
        tr.arm[:, k, 1] += math.radians(15.0) * np.sin(phase + k * np.pi) * env
    return tr, {"count": count}


# ==============================================================================================
# Whole motions: plans of 1-3 actions
# ==============================================================================================
@dataclass
class SyntheticMotion:
    """One generated motion: joint positions and what happened in it."""

    joints: np.ndarray  # (T, J, 3) float32, metres, y up; frame 0 at the origin facing +z
    actions: list[cap.ActionInfo]

    @property
    def families(self) -> list[str]:
        return [a.family for a in self.actions]


_PLAN_SIZES = (1, 2, 3)
_PLAN_PROBS = (0.55, 0.33, 0.12)


def sample_plan(rng: np.random.Generator, primary: str | None = None) -> list[str]:
    """A sequence of 1-3 family names: ``sit_down`` is followed by ``stand_up`` (or ends the motion),
    ``stand_up`` only opens a motion or follows ``sit_down``."""
    names = list(FAMILIES)
    if primary is None:
        primary = names[int(rng.integers(len(names)))]
    if primary not in FAMILIES:
        raise KeyError(f"unknown motion family {primary!r}; families are {names}")
    size = int(rng.choice(_PLAN_SIZES, p=_PLAN_PROBS))
    plan = [primary]
    while len(plan) < size:
        if plan[-1] in _ENDS_SEATED:
            plan.append(next(iter(_STARTS_SEATED)))
            continue
        options = [f for f in names if f not in _STARTS_SEATED and f != plan[-1]]
        plan.append(options[int(rng.integers(len(options)))])
    return plan


def _hold(track: _Track, n: int, at_end: bool) -> _Track:
    """``n`` frames holding the first/last pose of ``track`` with the body at rest."""
    out = _Track(n)
    out.toe_out = track.toe_out
    i = -1 if at_end else 0
    for name in (*_BLENDED_FIELDS, "contact"):
        src = getattr(track, name)[i]
        setattr(out, name, np.broadcast_to(src, (n,) + src.shape).copy())
    out.contact[:] = True
    out.v_body[:] = 0.0
    out.yaw_rate[:] = 0.0
    out.foot_lift[:] = 0.0
    out.follow[:] = 0.0
    return out


def _add_idle_noise(track: _Track, rng: np.random.Generator, fps: float) -> None:
    """Slow, small posture drift (breathing, looking around) so that still poses are not frozen."""
    t = np.arange(track.n) / fps

    def drift(amplitude_deg: float, shape) -> np.ndarray:
        out = np.zeros((track.n,) + shape)
        for _ in range(3):
            freq = rng.uniform(0.1, 0.6, size=shape)
            phase = rng.uniform(0, 2 * np.pi, size=shape)
            out += np.sin(2 * np.pi * freq * t.reshape((-1,) + (1,) * len(shape)) + phase) / 3.0
        return math.radians(amplitude_deg) * out

    track.spine += drift(1.5, (3,))
    track.neck += drift(5.0, (2,))
    track.arm += drift(3.0, (2, 4))
    track.collar += drift(2.0, (2,))


def generate_motion(rng: np.random.Generator, *, skeleton: Skeleton, plan: list[str] | None = None,
                    primary: str | None = None) -> SyntheticMotion:
    """Generate one motion of ``skeleton.min_frames + 1`` to ``skeleton.max_frames + 1`` frames
    (i.e. 40-196 feature frames) from a plan of 1-3 actions (sampled when not given)."""
    rig = _rig_for(skeleton)
    min_len, max_len = skeleton.min_frames + 1, skeleton.max_frames + 1
    plan = list(plan) if plan is not None else sample_plan(rng, primary)
    for name in plan:
        if name not in FAMILIES:
            raise KeyError(f"unknown motion family {name!r}; families are {list(FAMILIES)}")
    style = _Style.sample(rng)
    for attempt in range(10):
        ctx = _Ctx(rig, rng, style, budget=max_len)
        ctx.shrink = min(1.0, attempt / 5.0)
        if attempt >= 6 and len(plan) > 1:
            plan = plan[:-1]
        tracks, params = [], []
        for name in plan:
            tr, p = FAMILIES[name](ctx)
            tracks.append(tr)
            params.append(p)
        body = sum(t.n for t in tracks)
        if body <= max_len:
            break
    else:
        raise RuntimeError(f"could not fit plan {plan} into {max_len} frames; this is a bug in the action library")
    lead = int(rng.integers(0, min(6, max_len - body) + 1))
    tail = int(rng.integers(0, min(8, max_len - body - lead) + 1))
    tail = max(tail, min_len - body - lead)
    pieces = ([_hold(tracks[0], lead, at_end=False)] if lead else []) + tracks + ([_hold(tracks[-1], tail, at_end=True)] if tail else [])
    track = _Track.concat(pieces)
    _add_idle_noise(track, rng, rig.skeleton.fps)
    joints = _realize(track, rig)
    actions, start = [], lead
    for name, tr, p in zip(plan, tracks, params):
        actions.append(cap.ActionInfo(family=name, params=p, start=start, end=start + tr.n))
        start += tr.n
    return SyntheticMotion(joints=joints, actions=actions)


_RIGS: dict[str, _Rig] = {}


def _rig_for(skeleton: Skeleton) -> _Rig:
    if skeleton.name not in _RIGS:
        _RIGS[skeleton.name] = _Rig(skeleton)
    return _RIGS[skeleton.name]


# ==============================================================================================
# Corpus: build and statistics
# ==============================================================================================
@dataclass
class CorpusStats:
    """Statistics of a HumanML3D-layout dataset folder (see :func:`corpus_statistics`)."""

    root: str
    skeleton: str
    fps: float
    split_sizes: dict[str, int]  # ids per split, mirrors included
    num_base_motions: int
    num_mirrored: int
    family_counts: dict[str, int]  # base motions containing each family (from corpus.json; empty otherwise)
    composite_share: float  # base motions made of more than one action
    num_captions: int
    subclip_captions: int
    vocab_train: int  # distinct lemmas in train captions
    vocab_test: int
    held_out_words_in_test: int  # distinct held-out-lexicon lemmas used by test captions
    held_out_overlap: list[str]  # held-out-lexicon lemmas that also occur in train/val captions (target: none)
    test_verb_overlap: float  # share of distinct test verb lemmas also used in train/val captions
    mean_length: float  # feature frames
    min_length: int
    max_length: int
    skating_ratio: float  # pooled over all motions in new_joints, see skating_ratio()
    min_foot_height: float  # metres; negative = through the floor
    seconds: float = 0.0  # time taken to compute

    def format(self) -> str:
        def row(name: str, value) -> str:
            return f"  {name:<34} {value}"

        lines = [f"dataset {self.root}  (skeleton {self.skeleton}, {self.fps:g} fps)"]
        lines.append(row("ids per split (with mirrors)", ", ".join(f"{k} {v}" for k, v in self.split_sizes.items())))
        lines.append(row("base motions / mirrored", f"{self.num_base_motions} / {self.num_mirrored}"))
        lines.append(row("multi-action motions", f"{100 * self.composite_share:.1f}%"))
        lines.append(row("captions (sub-clip captions)", f"{self.num_captions} ({self.subclip_captions})"))
        lines.append(row("vocabulary train / test (lemmas)", f"{self.vocab_train} / {self.vocab_test}"))
        lines.append(row("held-out lemmas used in test", self.held_out_words_in_test))
        lines.append(row("held-out lemmas seen in train/val", ", ".join(self.held_out_overlap) or "none"))
        lines.append(row("test verbs also in train/val", f"{100 * self.test_verb_overlap:.1f}%"))
        lines.append(row("length (feature frames)", f"mean {self.mean_length:.1f}, min {self.min_length}, max {self.max_length}"))
        lines.append(row("skating ratio (target < 3%)", f"{100 * self.skating_ratio:.2f}%"))
        lines.append(row("min foot height (target >= -0.01 m)", f"{self.min_foot_height:+.4f} m"))
        if self.family_counts:
            lines.append("  motions per family:")
            names = sorted(self.family_counts)
            width = max(len(n) for n in names)
            for i in range(0, len(names), 3):
                lines.append("    " + "   ".join(f"{n:<{width}} {self.family_counts[n]:>5}" for n in names[i:i + 3]))
        return "\n".join(lines)


@dataclass
class CorpusReport:
    """What :func:`build_corpus` did."""

    root: Path
    size: str
    seed: int
    num_motions: int  # base motions (each also has a mirrored copy)
    workers: int
    seconds: float
    stats: CorpusStats

    def format(self) -> str:
        return (f"built {self.num_motions} motions + {self.num_motions} mirrors ({self.size}, seed {self.seed}) "
                f"in {self.seconds:.1f} s with {self.workers} worker(s) -> {self.root}\n{self.stats.format()}")


_WORKER_STATE: dict = {}


def _init_worker(tmp_root: str, seed: int, skeleton_name: str) -> None:
    _WORKER_STATE.update(root=Path(tmp_root), seed=seed, skeleton=Skeleton.from_name(skeleton_name))


def _subclip_time(frame: int, fps: float) -> float:
    """Seconds for a frame index such that the published loader's ``int(t * fps)`` gives it back."""
    for f in (frame, frame - 1, frame + 1):
        t = float(f"{f / fps:.3f}")
        if int(t * fps) == frame:
            return t
    return frame / fps


def _build_one(task: tuple[int, str, str]) -> dict:
    """Generate, caption, mirror and write one motion; return its record and partial statistics."""
    from adamotion.motion.features import canonicalize_joints, features_from_joints, mirror_joints

    index, split, primary = task
    root: Path = _WORKER_STATE["root"]
    skeleton: Skeleton = _WORKER_STATE["skeleton"]
    rng = np.random.default_rng(np.random.SeedSequence([_WORKER_STATE["seed"], index]))
    motion = generate_motion(rng, skeleton=skeleton, primary=primary)
    lexicon = cap.HELD_OUT if split == "test" else cap.SEEN
    texts = cap.describe(motion.actions, lexicon, rng, n=3)
    lines = [cap.format_caption_line(t) for t in texts]
    features = features_from_joints(motion.joints, skeleton)  # (T-1, F)
    num_rows = len(features)
    # Some multi-action motions also caption their first or last action alone, as a sub-clip.
    if len(motion.actions) > 1 and rng.random() < 0.5:
        action = motion.actions[0] if rng.random() < 0.5 else motion.actions[-1]
        first = action is motion.actions[0]
        start = 0 if first else action.start
        end = action.end if first else num_rows
        if end - start >= skeleton.min_frames + skeleton.unit_length:
            text = cap.describe([action], lexicon, rng, n=1)[0]
            lines.append(cap.format_caption_line(text, _subclip_time(start, skeleton.fps), _subclip_time(end, skeleton.fps)))
    # Mirror, then re-pose on the (slightly asymmetric) target skeleton so bone lengths stay exact.
    mirrored = canonicalize_joints(mirror_joints(motion.joints, skeleton), skeleton)
    mirrored_features = features_from_joints(mirrored, skeleton)
    motion_id = f"{index:06d}"
    record = {"index": index, "id": motion_id, "split": split, "length": num_rows,
              "actions": [{"family": a.family, "params": a.params, "start": a.start, "end": a.end} for a in motion.actions]}
    skating, steps = 0, 0
    for mid, joints, feats, caption_lines in (
        (motion_id, motion.joints, features, lines),
        (MIRROR_PREFIX + motion_id, mirrored, mirrored_features, [cap.mirror_caption(line) for line in lines]),
    ):
        np.save(root / "new_joints" / f"{mid}.npy", joints.astype(np.float32))
        np.save(root / "new_joint_vecs" / f"{mid}.npy", feats.astype(np.float32))
        (root / "texts" / f"{mid}.txt").write_text("\n".join(caption_lines) + "\n", encoding="utf-8")
        s, n = skating_counts(joints, skeleton)
        skating, steps = skating + s, steps + n
    record["skating"] = (skating, steps)
    record["min_foot_height"] = min(min_foot_height(motion.joints, skeleton), min_foot_height(mirrored, skeleton))
    if split == "train":
        both = np.concatenate([features, mirrored_features]).astype(np.float64)
        record["sums"] = (both.sum(0), (both ** 2).sum(0), len(both))
    return record


def _plan_corpus(num_motions: int, seed: int) -> list[tuple[int, str, str]]:
    """(index, split, primary family) per base motion: splits by motion, families cycled evenly."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5EED]))
    order = rng.permutation(num_motions)
    n_val = max(1, int(round(SPLIT_FRACTIONS[1][1] * num_motions)))
    n_test = max(1, int(round(SPLIT_FRACTIONS[2][1] * num_motions)))
    n_train = num_motions - n_val - n_test
    if n_train < 1:
        raise ValueError(f"num_motions={num_motions} is too small for train/val/test splits; use at least 3")
    split_of = np.empty(num_motions, dtype=object)
    split_of[order[:n_train]] = "train"
    split_of[order[n_train:n_train + n_val]] = "val"
    split_of[order[n_train + n_val:]] = "test"
    names = list(FAMILIES)
    primaries: list[str] = []
    while len(primaries) < num_motions:
        primaries.extend(names[i] for i in rng.permutation(len(names)))
    return [(i, str(split_of[i]), primaries[i]) for i in range(num_motions)]


NORMALIZATION_NOTE = ("Mean: per dimension over the training split (mirrors included). Std: per-dimension std "
                      "averaged within each feature group (root_rot_vel, root_lin_vel, root_y, ric, rot, vel, "
                      "contacts); no further group scaling.")


def build_corpus(out: str | os.PathLike, size: str = "default", num_motions: int | None = None, seed: int = 0,
                 workers: int | None = None, *, skeleton: Skeleton) -> CorpusReport:
    """Build the procedural corpus into ``out`` (atomically: a temporary folder renamed at the end).

    ``size``: ``tiny`` (60 motions, seconds), ``small`` (800) or ``default`` (4,000); ``num_motions``
    overrides it. Each base motion also gets a mirrored copy ``M<id>``. The result depends only on
    ``seed`` and the number of motions, not on ``workers`` (default: one for tiny, all cores otherwise).
    An existing corpus at ``out`` is replaced; any other existing non-empty folder is refused.
    """
    if size not in SIZES:
        raise ValueError(f"unknown corpus size {size!r}; choose one of {sorted(SIZES)}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    num = SIZES[size] if num_motions is None else int(num_motions)
    if num < 3:
        raise ValueError(f"num_motions={num} is too small for train/val/test splits; use at least 3")
    if skeleton.bone_lengths is None:
        raise ValueError(f"skeleton {skeleton.name!r} has no target bone lengths; the procedural corpus needs them")
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "corpus.json").is_file())):
        raise FileExistsError(f"{out}: exists and is not a corpus built by adamotion; choose another --out or remove it")
    if workers is None:
        workers = 1 if num <= SIZES["tiny"] else (os.cpu_count() or 1)
    workers = max(1, min(int(workers), num))

    t0 = time.perf_counter()
    tasks = _plan_corpus(num, seed)
    with atomic_folder(out) as tmp:
        for sub in ("new_joints", "new_joint_vecs", "texts"):
            (tmp / sub).mkdir()
        records = map_with_workers(_build_one, tasks, workers=workers, initializer=_init_worker,
                                   initargs=(str(tmp), seed, skeleton.name), chunksize=8,
                                   progress=dict(desc=f"corpus {size}", unit="motion", leave=False))
        records.sort(key=lambda r: r["index"])
        _write_corpus_index(tmp, records, skeleton, size=size, seed=seed)
    seconds = time.perf_counter() - t0
    stats = corpus_statistics(out, skeleton=skeleton)
    logger.info("built corpus %s: %d motions in %.1f s", out, num, seconds)
    return CorpusReport(root=out, size=size, seed=seed, num_motions=num, workers=workers, seconds=seconds, stats=stats)


def _write_corpus_index(root: Path, records: list[dict], skeleton: Skeleton, *, size: str, seed: int) -> None:
    """Split files, Mean/Std and corpus.json from the per-motion records (in index order)."""
    for split, _fraction in SPLIT_FRACTIONS:
        ids = [mid for r in records if r["split"] == split for mid in (r["id"], MIRROR_PREFIX + r["id"])]
        (root / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    write_mean_std(root, [r.pop("sums") for r in records if "sums" in r], skeleton)
    skating = sum(r["skating"][0] for r in records)
    steps = sum(r["skating"][1] for r in records)
    families: dict[str, int] = {}
    for r in records:
        for name in {a["family"] for a in r["actions"]}:
            families[name] = families.get(name, 0) + 1
    index = {
        "format": "humanml3d",
        "generator": "adamotion.data.synthetic",
        "generator_version": GENERATOR_VERSION,
        "skeleton": skeleton.name,
        "fps": skeleton.fps,
        "feature_dim": skeleton.feature_dim,
        "size": size,
        "seed": seed,
        "num_motions": len(records),
        "mirror_prefix": MIRROR_PREFIX,
        "split_fractions": dict(SPLIT_FRACTIONS),
        "split_sizes": {split: 2 * sum(r["split"] == split for r in records) for split, _ in SPLIT_FRACTIONS},
        "caption_lexicons": {"train_val": cap.SEEN, "test": cap.HELD_OUT,
                             "held_out_words": sorted(cap.held_out_lexicon())},
        "normalization": {"statistics_split": "train", "note": NORMALIZATION_NOTE},
        "statistics": {"skating_ratio": skating / max(steps, 1),
                       "min_foot_height": min(r["min_foot_height"] for r in records),
                       "family_counts": dict(sorted(families.items()))},
        "motions": {r["id"]: {"split": r["split"], "length": r["length"], "actions": r["actions"]} for r in records},
    }
    atomic_write_json(root / "corpus.json", index)
    os.chmod(root / "corpus.json", 0o644)


def skating_counts(joints: np.ndarray, skeleton: Skeleton) -> tuple[int, int]:
    """(skating frame transitions, all frame transitions) of one motion, for ratios pooled over a corpus;
    the detector is :func:`adamotion.motion.physics.skating_transitions`."""
    if len(joints) < 2:
        return 0, 0
    skating, valid = skating_transitions(joints, skeleton)  # (1, T-1) each
    return int(skating.sum()), int(valid.sum())


def _read_split_ids(root: Path, split: str) -> list[str]:
    path = root / f"{split}.txt"
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def corpus_statistics(root: str | os.PathLike, skeleton: Skeleton | None = None) -> CorpusStats:
    """Statistics of a HumanML3D-layout folder: split sizes, families (when ``corpus.json`` is present),
    caption vocabularies and held-out overlap, lengths, skating ratio and floor penetration."""
    t0 = time.perf_counter()
    root, index = read_dataset_index(root)
    skeleton = dataset_skeleton(index, skeleton)
    splits = {split: _read_split_ids(root, split) for split, _ in SPLIT_FRACTIONS}
    if not any(splits.values()):
        raise FileNotFoundError(f"{root}: no train.txt/val.txt/test.txt split files; is this a HumanML3D-layout folder?")
    all_ids = [i for ids in splits.values() for i in ids]

    lemmas: dict[str, set[str]] = {"seen": set(), "test": set()}
    verbs: dict[str, set[str]] = {"seen": set(), "test": set()}
    num_captions = subclips = 0
    for split, ids in splits.items():
        group = "test" if split == "test" else "seen"
        for mid in ids:
            path = root / "texts" / f"{mid}.txt"
            if not path.is_file():
                continue
            for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if not raw.strip():
                    continue
                try:
                    line = cap.parse_caption_line(raw)
                except ValueError as exc:
                    raise ValueError(f"{path}:{number}: {exc}; expected 'caption#word/POS ...#start#end'") from None
                num_captions += 1
                subclips += not line.whole_clip
                for token in line.tokens:
                    word, _, pos = token.rpartition("/")
                    lemmas[group].add(word)
                    if pos == "VERB":
                        verbs[group].add(word)
    held_out = cap.held_out_lexicon()
    lengths, skating, steps, lowest = [], 0, 0, math.inf
    for mid in all_ids:
        vec_path = root / "new_joint_vecs" / f"{mid}.npy"
        if vec_path.is_file():
            lengths.append(np.load(vec_path, mmap_mode="r").shape[0])
        joint_path = root / "new_joints" / f"{mid}.npy"
        if joint_path.is_file():
            joints = np.load(joint_path)
            if joints.ndim == 3 and joints.shape[1] == skeleton.num_joints:
                s, n = skating_counts(joints, skeleton)
                skating, steps = skating + s, steps + n
                lowest = min(lowest, min_foot_height(joints, skeleton))
    motions = index.get("motions", {})
    family_counts = dict(index.get("statistics", {}).get("family_counts", {}))
    composite = sum(len(m.get("actions", [])) > 1 for m in motions.values()) / max(len(motions), 1)
    num_mirrored = sum(i.startswith(MIRROR_PREFIX) for i in all_ids)
    return CorpusStats(
        root=str(root), skeleton=skeleton.name, fps=float(skeleton.fps),
        split_sizes={k: len(v) for k, v in splits.items()},
        num_base_motions=len(all_ids) - num_mirrored, num_mirrored=num_mirrored,
        family_counts=family_counts, composite_share=float(composite),
        num_captions=num_captions, subclip_captions=subclips,
        vocab_train=len(lemmas["seen"]), vocab_test=len(lemmas["test"]),
        held_out_words_in_test=len(lemmas["test"] & held_out),
        held_out_overlap=sorted(lemmas["seen"] & held_out),
        test_verb_overlap=len(verbs["test"] & verbs["seen"]) / max(len(verbs["test"]), 1),
        mean_length=float(np.mean(lengths)) if lengths else 0.0,
        min_length=int(min(lengths)) if lengths else 0, max_length=int(max(lengths)) if lengths else 0,
        skating_ratio=skating / steps if steps else 0.0,
        min_foot_height=float(lowest) if math.isfinite(lowest) else 0.0,
        seconds=time.perf_counter() - t0,
    )
