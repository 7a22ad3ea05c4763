"""BVH motion capture: parse, forward kinematics, SMPL-22 joint mapping and export.

Public API
==========
* :func:`parse_bvh` -> :class:`BvhMotion`: hierarchy (joint names, parents, offsets, per-joint channel lists in
  any Euler order, 6-channel joints, End Sites), frame time and the raw ``(F, C)`` channel matrix. Malformed
  files raise :class:`BvhFormatError` naming the file, the line and the fix.
* :func:`bvh_to_global_positions`: world positions ``(F, J_bvh, 3)`` by forward kinematics, in file units.
* :func:`load_bvh_joints` / :func:`load_bvh_motion`: ``(T, 22, 3)`` float32 joints in metres, y up, resampled to
  the skeleton's fps (20), ready for :func:`adamotion.motion.features.features_from_joints`.
* :func:`write_bvh`: export joints (or features) on the SMPL-22 hierarchy; ``load_bvh_joints`` of the written
  file gives the joints back to well under 1 mm.

Building a dataset folder from BVH files is :func:`adamotion.data.bvh_import.import_bvh_dataset` (data reads
files through io, never the other way round).

BVH conventions used here
=========================
* Channels of a joint are applied in the order listed: ``Zrotation Yrotation Xrotation`` means the local
  rotation ``Rz(z) @ Ry(y) @ Rx(x)`` acting on column vectors (angles in degrees). Any order, any subset and
  interleaved position channels are accepted.
* FK: ``G_child = G_parent @ L_child`` and ``p_child = p_parent + G_parent @ t_child``, where the local
  translation ``t_child`` is the OFFSET, except that position channels *replace* the matching OFFSET
  component (the convention of Blender's importer and of exporters writing 6 channels on every joint; for the
  usual root with ``OFFSET 0 0 0`` replacing and adding agree).
* A frame time within 0.1 % of ``1 / integer`` is snapped to that integer rate (``.0083333`` -> 120 fps).

Mapping a BVH rig onto the 22 SMPL joints
=========================================
A :class:`JointNameMap` gives, for every SMPL joint, the BVH joint it sits on, or a weighted blend of BVH
joints. Built-in maps (tried in this order, the first whose BVH joints all exist wins):

* ``identity`` -- files whose joints carry the skeleton's own names (what :func:`write_bvh` writes). Units:
  metres.
* ``cmu_cgspeed_motionbuilder`` -- cgspeed's MotionBuilder-friendly CMU release (``LeftUpLeg``, ``Spine1``,
  ``Neck1``, ``LeftArm`` ...).
* ``cmu_cgspeed_3dsmax`` -- cgspeed's 3dsMax-friendly CMU release (``LeftHip``, ``Chest2``, ``LeftCollar``,
  ``LeftShoulder`` = upper arm ...), e.g. the ``131_0x.bvh`` trials in ``shared/data/cmu``.

CMU choices (both releases have the same 31-joint topology, only the names differ):

* pelvis = ``Hips`` (the CMU root sits at the pelvis centre).
* left/right hip = ``LeftUpLeg`` / ``LeftHip``: the femur head. ``LHipJoint`` sits on the root (zero OFFSET)
  and is only the CMU "hip bone" from the root to the femur head, so it is not used.
* knee, ankle = ``LeftLeg``/``LeftKnee``, ``LeftFoot``/``LeftAnkle``; SMPL ``left_foot`` (ball of the foot) =
  ``LeftToeBase`` / ``LeftToe``.
* spine: CMU has a zero-length ``LowerBack``/``lowerback`` at the root, then two vertebra joints
  (``Spine``, ``Spine1`` / ``Chest``, ``Chest2``); the thorax joint (``Spine1``/``Chest2``) carries the neck and
  both clavicles, exactly like SMPL ``spine3``. So spine3 = thorax, spine2 = the middle vertebra joint, and
  spine1 = the midpoint of ``Hips`` and ``Spine``/``Chest`` (CMU has no joint there; a joint *on* the root
  would give SMPL a zero-length bone, which the feature IK rejects).
* neck = ``Neck1`` / ``Neck`` (the upper-neck joint at shoulder height; the lower-neck joint coincides with the
  thorax), head = ``Head``.
* collar = midpoint of the thorax and the shoulder joint (the CMU clavicle joint coincides with the thorax);
  shoulder, elbow, wrist = ``LeftArm``/``LeftShoulder``, ``LeftForeArm``/``LeftElbow``, ``LeftHand``/
  ``LeftWrist``. Fingers and thumbs are dropped.
* Units: CMU lengths are not metres; the CMU FAQ's factor ``(1 / 0.45) * 2.54 / 100 = 0.056444`` m per unit
  is the default (the same factor bvh11's metre-scaled copies of the 131 trials use). The cgspeed release has
  no thorax length, so CMU figures come out ~10 cm shorter than the performer.

Other rigs: a JSON file (or dict) ``{"bvh joint": "smpl joint", ...}`` covering all 22 SMPL joints; an entry
may instead be ``"smpl joint": {"bvh joint A": 0.5, "bvh joint B": 0.5}`` (weights summing to 1) to place an
SMPL joint between BVH joints. Keys starting with ``_`` are comments.

Scale and axes (:func:`load_bvh_motion`)
========================================
* ``scale=None``: the matched built-in map's units (CMU: 0.056444, identity: 1.0); for custom maps a guess:
  the root's height above the feet (90th percentile over frames, i.e. standing frames) is compared with the
  0.9 m of a 1.7 m adult, and snapped to metres / centimetres / millimetres / inches / CMU units when one of
  them lands within a factor 1.35 of it (otherwise that continuous factor is used, with a warning).
* ``up_axis="auto"``: the axis along which the root sits above the feet on average; the motion is rotated so
  that axis becomes +y (right-handed, e.g. z-up ``(x, y, z) -> (x, z, -y)``).
* Resampling to ``target_fps`` (default: the skeleton's 20 fps) slerps every joint's *local rotation* and
  linearly interpolates translations, then runs FK, so bones stay rigid (linear interpolation of positions
  would shorten bones between samples). A 120 fps CMU trial of ``F`` frames gives ``floor((F-1)/6)+1`` frames.

Export (:func:`write_bvh`)
==========================
Offsets are the skeleton's raw offset directions times the motion's own bone lengths (median over frames) or
the skeleton's target lengths. Rotations are solved per joint in hierarchy order: a joint with one child gets
the minimal (swing) rotation relative to its parent that points its bone at the child; a joint with several
children (pelvis, spine3) gets the least-squares (Kabsch) rotation of its children's directions; leaves keep
their parent's rotation. The root has 6 channels. With the default ``translation_channels="branches"`` the
children of multi-child joints (hips, spine1, neck, collars) also carry position channels, so the file
reproduces any motion with rigid limbs exactly, including CMU data whose spine and clavicles move relative
to the pelvis/thorax; ``"root"`` is the classic rotation-only rig (exact only when the pelvis and thorax
branches are rigid, e.g. motions made by FK on a fixed skeleton), ``"all"`` puts positions on every joint
(exact for any input, also generated motions whose bone lengths drift).
"""
from __future__ import annotations

import json
import logging
import math
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import numpy as np

from adamotion.motion import rotations as R
from adamotion.motion.kinematics import matrix_forward_kinematics
from adamotion.motion.skeleton import Skeleton
from adamotion.utils.files import atomic_write_text

__all__ = [
    "BvhFormatError",
    "BvhMotion",
    "BvhJoints",
    "JointNameMap",
    "BUILTIN_NAME_MAPS",
    "CMU_UNITS_TO_METRES",
    "identity_name_map",
    "parse_bvh",
    "format_bvh",
    "bvh_local_rotations",
    "bvh_local_translations",
    "bvh_to_global_positions",
    "resample_local_pose",
    "load_name_map",
    "detect_name_map",
    "load_bvh_motion",
    "load_bvh_joints",
    "solve_bvh_motion",
    "write_bvh",
]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

_AXES = "XYZ"
_CHANNEL_NAMES = {f"{axis}{kind}".lower(): f"{axis}{kind}" for axis in _AXES for kind in ("position", "rotation")}
CMU_UNITS_TO_METRES = (1.0 / 0.45) * 2.54 / 100.0
"""CMU FAQ: ASF/BVH length units to metres (``(1 / 0.45) * 2.54 / 100 = 0.056444``)."""

NOMINAL_ROOT_HEIGHT_M = 0.9
"""Root (pelvis) height above the feet of a standing 1.7 m adult, used to guess units of unknown rigs."""

_UNIT_CANDIDATES = {"metres": 1.0, "centimetres": 0.01, "millimetres": 0.001, "inches": 0.0254,
                    "CMU units": CMU_UNITS_TO_METRES}
_UNIT_SNAP_FACTOR = 1.35
_FRAME_RATE_SNAP = 1e-3  # relative tolerance for snapping 1/frame_time to an integer rate


# ================================================================================================ parsing
class BvhFormatError(ValueError):
    """A BVH file is malformed. ``str(error)`` is ``"<file>:<line>: <what is wrong and how to fix it>"``."""

    def __init__(self, source: str, line: int | None, message: str):
        self.source = source
        self.line = line
        location = f"{source}:{line}" if line is not None else source
        super().__init__(f"{location}: {message}")


@dataclass(frozen=True, eq=False)
class BvhMotion:
    """A parsed BVH file. Joints are in file (depth-first) order, so parents come before children.

    Lengths are in file units and angles in degrees, exactly as written in the file.
    """

    joint_names: tuple[str, ...]
    parents: np.ndarray  # (J,) int, -1 for the root
    offsets: np.ndarray  # (J, 3) float64 OFFSET of each joint relative to its parent
    channels: tuple[tuple[str, ...], ...]  # per joint, canonical names such as "Zrotation", "Xposition"
    end_site_parents: np.ndarray  # (E,) int joint index owning each End Site
    end_site_offsets: np.ndarray  # (E, 3) float64
    frame_time: float  # seconds per frame
    motion: np.ndarray  # (F, C) float64 channel values, C = sum of len(channels[j])
    source: str = "<text>"  # file path or "<text>", used in error messages

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def num_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def num_channels(self) -> int:
        return int(sum(len(c) for c in self.channels))

    @property
    def channel_starts(self) -> np.ndarray:
        """(J,) index of each joint's first channel in a ``motion`` row."""
        sizes = np.array([len(c) for c in self.channels], dtype=np.int64)
        return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)

    @property
    def fps(self) -> float:
        """Frame rate ``1 / frame_time``, snapped to an integer when within 0.1 % (``.0083333`` -> 120)."""
        return _snap_frame_rate(1.0 / self.frame_time)

    @property
    def duration(self) -> float:
        """Seconds from the first to the last frame."""
        return max(self.num_frames - 1, 0) / self.fps

    def joint_index(self, name: str) -> int:
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise KeyError(f"{self.source}: no joint {name!r}; joints are {list(self.joint_names)}") from None

    def children(self, joint: int) -> list[int]:
        return [int(c) for c in np.flatnonzero(self.parents == joint)]


def _snap_frame_rate(rate: float) -> float:
    nearest = round(rate)
    if nearest > 0 and abs(rate - nearest) <= _FRAME_RATE_SNAP * rate:
        return float(nearest)
    return float(rate)


def _read_source(path_or_text: PathLike) -> tuple[str, str]:
    """Return ``(text, source_name)``; a string containing a newline and ``HIERARCHY`` is BVH text itself."""
    if isinstance(path_or_text, str) and "\n" in path_or_text and "HIERARCHY" in path_or_text:
        return path_or_text, "<text>"
    path = Path(path_or_text)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: BVH file not found (pass a .bvh path or the file's text)")
    try:
        return path.read_text(encoding="utf-8-sig", errors="strict"), str(path)
    except UnicodeDecodeError:
        logger.warning("%s: not valid UTF-8; reading as latin-1", path)
        return path.read_text(encoding="latin-1"), str(path)


class _TokenStream:
    """Whitespace tokens of the HIERARCHY section with their 1-based line numbers."""

    def __init__(self, lines: Sequence[str], source: str):
        self.source = source
        self.tokens: list[tuple[str, int]] = [
            (token, number) for number, line in enumerate(lines, start=1) for token in line.split()
        ]
        self.position = 0
        self.last_line = len(lines)

    def peek(self) -> tuple[str, int] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def next(self, what: str) -> tuple[str, int]:
        if self.position >= len(self.tokens):
            raise BvhFormatError(self.source, self.last_line,
                                 f"unexpected end of the HIERARCHY section while reading {what}; the file is "
                                 f"truncated or a '}}' is missing")
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expect(self, expected: str, context: str) -> int:
        token, line = self.next(f"'{expected}' {context}")
        if token != expected:
            raise BvhFormatError(self.source, line, f"expected '{expected}' {context}, found {token!r}")
        return line

    def number(self, what: str) -> float:
        token, line = self.next(what)
        try:
            value = float(token)
        except ValueError:
            raise BvhFormatError(self.source, line, f"expected a number for {what}, found {token!r}") from None
        if not math.isfinite(value):
            raise BvhFormatError(self.source, line, f"{what} is {token!r}; offsets must be finite numbers")
        return value


def _parse_hierarchy(stream: _TokenStream) -> dict[str, list]:
    tree: dict[str, list] = {"names": [], "parents": [], "offsets": [], "channels": [], "lines": [],
                             "end_parents": [], "end_offsets": []}
    token, line = stream.next("'HIERARCHY'")
    if token != "HIERARCHY":
        raise BvhFormatError(stream.source, line,
                             f"a BVH file must start with 'HIERARCHY', found {token!r}; is this a BVH file?")
    token, line = stream.next("'ROOT'")
    if token != "ROOT":
        raise BvhFormatError(stream.source, line, f"expected 'ROOT <name>' after HIERARCHY, found {token!r}")
    name, name_line = stream.next("the ROOT joint's name")
    _parse_joint(stream, tree, name, name_line, parent=-1)
    extra = stream.peek()
    if extra is not None:
        token, line = extra
        if token == "ROOT":
            raise BvhFormatError(stream.source, line,
                                 "a second ROOT skeleton; files with several skeletons are not supported "
                                 "(split them into one file per skeleton)")
        raise BvhFormatError(stream.source, line,
                             f"unexpected {token!r} after the ROOT joint's closing '}}'; expected 'MOTION'")
    return tree


def _parse_joint(stream: _TokenStream, tree: dict[str, list], name: str, name_line: int, parent: int) -> None:
    if name in ("{", "}"):
        raise BvhFormatError(stream.source, name_line, f"a joint name is missing before {name!r}")
    if name in tree["names"]:
        raise BvhFormatError(stream.source, name_line,
                             f"joint name {name!r} is used twice; joint names must be unique")
    index = len(tree["names"])
    tree["names"].append(name)
    tree["parents"].append(parent)
    tree["offsets"].append(None)
    tree["channels"].append(None)
    tree["lines"].append(name_line)
    stream.expect("{", f"after joint {name!r}")
    while True:
        token, line = stream.next(f"the body of joint {name!r}")
        if token == "}":
            break
        if token == "OFFSET":
            tree["offsets"][index] = [stream.number(f"OFFSET of joint {name!r}") for _ in range(3)]
        elif token == "CHANNELS":
            count_token, count_line = stream.next(f"the channel count of joint {name!r}")
            if not count_token.isdigit():
                raise BvhFormatError(stream.source, count_line,
                                     f"CHANNELS of joint {name!r} must start with a channel count, "
                                     f"found {count_token!r}")
            channels = []
            for _ in range(int(count_token)):
                channel, channel_line = stream.next(f"a channel name of joint {name!r}")
                canonical = _CHANNEL_NAMES.get(channel.lower())
                if canonical is None:
                    raise BvhFormatError(stream.source, channel_line,
                                         f"unknown channel {channel!r} in joint {name!r} (declared "
                                         f"{count_token} channels); valid: {sorted(_CHANNEL_NAMES.values())}")
                channels.append(canonical)
            tree["channels"][index] = tuple(channels)
        elif token == "JOINT":
            child_name, child_line = stream.next("a JOINT name")
            _parse_joint(stream, tree, child_name, child_line, parent=index)
        elif token == "End":
            site_line = stream.expect("Site", f"after 'End' in joint {name!r}")
            stream.expect("{", f"after 'End Site' of joint {name!r}")
            stream.expect("OFFSET", f"in the End Site of joint {name!r}")
            offset = [stream.number(f"End Site OFFSET of joint {name!r}") for _ in range(3)]
            stream.expect("}", f"closing the End Site of joint {name!r} (line {site_line})")
            tree["end_parents"].append(index)
            tree["end_offsets"].append(offset)
        else:
            raise BvhFormatError(stream.source, line,
                                 f"unexpected {token!r} in joint {name!r}; expected OFFSET, CHANNELS, JOINT, "
                                 f"End Site or '}}'")
    if tree["offsets"][index] is None:
        raise BvhFormatError(stream.source, name_line, f"joint {name!r} has no OFFSET line")
    if tree["channels"][index] is None:
        raise BvhFormatError(stream.source, name_line,
                             f"joint {name!r} has no CHANNELS line (write 'CHANNELS 0' for a fixed joint)")


_FRAMES_RE = re.compile(r"^\s*Frames\s*:\s*(\S+)\s*$", re.IGNORECASE)
_FRAME_TIME_RE = re.compile(r"^\s*Frame\s+Time\s*:\s*(\S+)\s*$", re.IGNORECASE)


def _next_content_line(lines: Sequence[str], start: int) -> int:
    index = start
    while index < len(lines) and not lines[index].strip():
        index += 1
    return index


def parse_bvh(path_or_text: PathLike) -> BvhMotion:
    """Parse a BVH file (path) or BVH text into a :class:`BvhMotion`.

    Raises :class:`BvhFormatError` (a ``ValueError``) with ``file:line`` for malformed input: missing braces,
    unknown channels, non-numeric values, a frame line with the wrong number of values, fewer frame lines than
    ``Frames:`` declares, a missing or non-positive ``Frame Time``.
    """
    text, source = _read_source(path_or_text)
    lines = text.splitlines()
    motion_line = next((i for i, line in enumerate(lines) if line.strip() == "MOTION"), None)
    if motion_line is None:
        raise BvhFormatError(source, len(lines) or 1,
                             "no 'MOTION' line found; a BVH file needs a HIERARCHY section followed by MOTION")
    tree = _parse_hierarchy(_TokenStream(lines[:motion_line], source))
    num_channels = int(sum(len(c) for c in tree["channels"]))

    index = _next_content_line(lines, motion_line + 1)
    match = _FRAMES_RE.match(lines[index]) if index < len(lines) else None
    if match is None or not match.group(1).isdigit():
        raise BvhFormatError(source, index + 1 if index < len(lines) else len(lines),
                             "expected 'Frames: <count>' right after MOTION")
    declared_frames = int(match.group(1))
    index = _next_content_line(lines, index + 1)
    match = _FRAME_TIME_RE.match(lines[index]) if index < len(lines) else None
    frame_time = None
    if match is not None:
        try:
            frame_time = float(match.group(1))
        except ValueError:
            frame_time = None
    if frame_time is None or not math.isfinite(frame_time) or frame_time <= 0:
        raise BvhFormatError(source, index + 1 if index < len(lines) else len(lines),
                             "expected 'Frame Time: <seconds per frame>' (a positive number) after 'Frames:'")

    motion = np.zeros((declared_frames, num_channels), dtype=np.float64)  # (F, C)
    frame = 0
    for line_index in range(index + 1, len(lines)):
        values = lines[line_index].split()
        if not values:
            continue
        if frame == declared_frames:
            extra = sum(1 for rest in lines[line_index:] if rest.strip())
            logger.warning("%s:%d: %d frame line(s) beyond the declared 'Frames: %d' are ignored",
                           source, line_index + 1, extra, declared_frames)
            break
        if len(values) != num_channels:
            raise BvhFormatError(source, line_index + 1,
                                 f"frame {frame} has {len(values)} values but the HIERARCHY declares "
                                 f"{num_channels} channels; the file is corrupt or the CHANNELS lines are wrong")
        try:
            motion[frame] = np.array(values, dtype=np.float64)
        except ValueError:
            bad = next(v for v in values if not _is_float(v))
            raise BvhFormatError(source, line_index + 1,
                                 f"frame {frame} has a non-numeric value {bad!r}") from None
        frame += 1
    if frame < declared_frames:
        raise BvhFormatError(source, len(lines),
                             f"'Frames: {declared_frames}' is declared but only {frame} frame lines follow; the "
                             f"file is truncated (re-export it, or set Frames: {frame})")
    if not np.isfinite(motion).all():
        bad_frame = int(np.flatnonzero(~np.isfinite(motion).all(axis=1))[0])
        raise BvhFormatError(source, None, f"frame {bad_frame} contains NaN or inf channel values")

    return BvhMotion(
        joint_names=tuple(tree["names"]),
        parents=np.asarray(tree["parents"], dtype=np.int64),
        offsets=np.asarray(tree["offsets"], dtype=np.float64).reshape(-1, 3),
        channels=tuple(tree["channels"]),
        end_site_parents=np.asarray(tree["end_parents"], dtype=np.int64),
        end_site_offsets=np.asarray(tree["end_offsets"], dtype=np.float64).reshape(-1, 3),
        frame_time=float(frame_time),
        motion=motion,
        source=source,
    )


def _is_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def format_bvh(bvh: BvhMotion, *, decimals: int = 6) -> str:
    """BVH text of ``bvh`` (tab-indented, one frame per line, ``decimals`` digits after the point)."""
    children: dict[int, list[int]] = {j: bvh.children(j) for j in range(bvh.num_joints)}
    end_sites: dict[int, list[int]] = {}
    for site, parent in enumerate(bvh.end_site_parents.tolist()):
        end_sites.setdefault(parent, []).append(site)

    def number(value: float) -> str:
        return f"{0.0 if abs(value) < 0.5 * 10.0 ** -decimals else value:.{decimals}f}"  # no "-0.000000"

    written_order: list[int] = []  # the file lists joints depth-first; motion columns must follow that order

    def write_joint(joint: int, depth: int, out: list[str]) -> None:
        written_order.append(joint)
        indent = "\t" * depth
        keyword = "ROOT" if bvh.parents[joint] < 0 else "JOINT"
        out.append(f"{indent}{keyword} {bvh.joint_names[joint]}")
        out.append(f"{indent}{{")
        out.append(f"{indent}\tOFFSET " + " ".join(number(v) for v in bvh.offsets[joint]))
        out.append(f"{indent}\tCHANNELS {len(bvh.channels[joint])}" +
                   "".join(f" {c}" for c in bvh.channels[joint]))
        for child in children[joint]:
            write_joint(child, depth + 1, out)
        for site in end_sites.get(joint, []):
            out.append(f"{indent}\tEnd Site")
            out.append(f"{indent}\t{{")
            out.append(f"{indent}\t\tOFFSET " + " ".join(number(v) for v in bvh.end_site_offsets[site]))
            out.append(f"{indent}\t}}")
        out.append(f"{indent}}}")

    lines = ["HIERARCHY"]
    roots = [j for j in range(bvh.num_joints) if bvh.parents[j] < 0]
    if len(roots) != 1:
        raise ValueError(f"{bvh.source}: a BVH skeleton needs exactly one root joint, found {len(roots)}")
    write_joint(roots[0], 0, lines)
    lines += ["MOTION", f"Frames: {bvh.num_frames}", f"Frame Time: {bvh.frame_time:.8f}"]
    starts = bvh.channel_starts
    columns = np.concatenate([np.arange(starts[j], starts[j] + len(bvh.channels[j])) for j in written_order]
                             ).astype(np.int64)  # (C,) motion columns in file order
    motion = bvh.motion[:, columns]  # (F, C)
    motion = np.where(np.abs(motion) < 0.5 * 10.0 ** -decimals, 0.0, motion)  # avoid "-0.000000"
    body = "\n".join(" ".join(f"{v:.{decimals}f}" for v in row) for row in motion)
    return "\n".join(lines) + "\n" + body + ("\n" if body else "")


# ====================================================================================== forward kinematics
def bvh_local_rotations(bvh: BvhMotion) -> np.ndarray:
    """Local rotation matrices ``(F, J, 3, 3)``: each joint's rotation channels composed in listed order."""
    rotations = np.broadcast_to(np.eye(3), (bvh.num_frames, bvh.num_joints, 3, 3)).copy()  # (F, J, 3, 3)
    for joint, (start, channels) in enumerate(zip(bvh.channel_starts.tolist(), bvh.channels)):
        for k, channel in enumerate(channels):
            if channel.endswith("rotation"):
                rotations[:, joint] = rotations[:, joint] @ R.axis_rotation(channel[0], np.deg2rad(bvh.motion[:, start + k]))
    return rotations


def bvh_local_translations(bvh: BvhMotion) -> np.ndarray:
    """Local translations ``(F, J, 3)``: OFFSET, with each position channel replacing its component."""
    translations = np.broadcast_to(bvh.offsets, (bvh.num_frames, bvh.num_joints, 3)).copy()  # (F, J, 3)
    for joint, (start, channels) in enumerate(zip(bvh.channel_starts.tolist(), bvh.channels)):
        for k, channel in enumerate(channels):
            if channel.endswith("position"):
                translations[:, joint, _AXES.index(channel[0])] = bvh.motion[:, start + k]
    return translations


def bvh_to_global_positions(bvh: BvhMotion, *, include_end_sites: bool = False) -> np.ndarray:
    """World positions ``(F, J, 3)`` (file units, file axes) of every joint by forward kinematics.

    With ``include_end_sites`` the End Sites follow the joints: ``(F, J + E, 3)`` in ``bvh.end_site_parents``
    order.
    """
    return _positions_from_local(bvh, bvh_local_rotations(bvh), bvh_local_translations(bvh), include_end_sites)


def _positions_from_local(bvh: BvhMotion, local_rotations: np.ndarray, local_translations: np.ndarray,
                          include_end_sites: bool) -> np.ndarray:
    global_rotations, positions = matrix_forward_kinematics(bvh.parents, local_rotations, local_translations)
    if not include_end_sites or len(bvh.end_site_parents) == 0:
        return positions
    owners = bvh.end_site_parents  # (E,)
    ends = positions[:, owners] + np.einsum("feij,ej->fei", global_rotations[:, owners], bvh.end_site_offsets)
    return np.concatenate([positions, ends], axis=1)  # (F, J + E, 3)


def resample_local_pose(local_rotations: np.ndarray, local_translations: np.ndarray, source_fps: float,
                        target_fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Resample a local pose sequence from ``source_fps`` to ``target_fps``.

    Rotations ``(F, J, 3, 3)`` are slerped per joint, translations ``(F, J, 3)`` linearly interpolated. Output
    frame ``k`` is time ``k / target_fps``; there are ``floor((F - 1) * target / source) + 1`` frames (the last
    output time never passes the last input frame).
    """
    num_frames = local_rotations.shape[0]
    if num_frames == 0:
        raise ValueError("cannot resample a motion with no frames")
    if abs(source_fps - target_fps) <= 1e-9 * target_fps:
        return local_rotations, local_translations
    num_out = int(math.floor((num_frames - 1) * target_fps / source_fps + 1e-6)) + 1
    source_index = np.arange(num_out) * (source_fps / target_fps)  # (T,) fractional source frames
    before = np.minimum(np.floor(source_index + 1e-9).astype(np.int64), num_frames - 1)  # (T,)
    after = np.minimum(before + 1, num_frames - 1)  # (T,)
    weight = np.clip(source_index - before, 0.0, 1.0)  # (T,)

    q_before = R.matrix_to_quat(local_rotations[before])  # (T, J, 4)
    q_after = R.matrix_to_quat(local_rotations[after])  # (T, J, 4)
    relative = R.qmul(R.qinv(q_before), q_after)  # (T, J, 4) rotation from "before" to "after"
    relative = relative * np.where(relative[..., :1] < 0, -1.0, 1.0)  # shortest path
    step = R.axis_angle_to_quat(R.quat_to_axis_angle(relative) * weight[:, None, None])  # (T, J, 4)
    rotations = R.quat_to_matrix(R.qmul(q_before, step))  # (T, J, 3, 3)
    translations = (local_translations[before] * (1.0 - weight)[:, None, None]
                    + local_translations[after] * weight[:, None, None])  # (T, J, 3)
    return rotations, translations


# ============================================================================================ name maps
@dataclass(frozen=True)
class JointNameMap:
    """Where each skeleton joint sits on a BVH rig: ``sources[joint] = {bvh joint: weight, ...}``."""

    name: str
    sources: Mapping[str, Mapping[str, float]]
    units_to_metres: float | None = None  # None: unknown units, guessed on load
    description: str = ""

    @property
    def bvh_joints(self) -> frozenset[str]:
        return frozenset(b for weights in self.sources.values() for b in weights)

    def matches(self, bvh: BvhMotion) -> bool:
        return self.bvh_joints <= set(bvh.joint_names)

    def weight_matrix(self, bvh: BvhMotion, skeleton: Skeleton) -> np.ndarray:
        """``(J_skeleton, J_bvh)`` matrix turning BVH joint positions into skeleton joint positions."""
        missing_targets = [j for j in skeleton.joint_names if j not in self.sources]
        if missing_targets:
            raise ValueError(f"name map {self.name!r} does not place skeleton joints {missing_targets}; "
                             f"map every one of {list(skeleton.joint_names)}")
        missing = sorted(self.bvh_joints - set(bvh.joint_names))
        if missing:
            raise ValueError(f"{bvh.source}: name map {self.name!r} uses BVH joints {missing} that the file does "
                             f"not have; the file's joints are {list(bvh.joint_names)}")
        weights = np.zeros((skeleton.num_joints, bvh.num_joints))  # (J_skeleton, J_bvh)
        for target, blend in self.sources.items():
            if target not in skeleton.joint_names:
                continue
            for bvh_joint, weight in blend.items():
                weights[skeleton.index(target), bvh.joint_index(bvh_joint)] += weight
        return weights


def identity_name_map(skeleton: Skeleton) -> JointNameMap:
    """The map for files whose joints carry the skeleton's own names (as :func:`write_bvh` writes them)."""
    return JointNameMap(name="identity", sources={j: {j: 1.0} for j in skeleton.joint_names},
                        units_to_metres=1.0, description=f"joints named as skeleton {skeleton.name!r}, metres")


def _cmu_map(name: str, description: str, *, up_leg: str, knee: str, ankle: str, toe: str, vertebra: str,
             thorax: str, neck: str, shoulder: str, elbow: str, wrist: str) -> JointNameMap:
    """A CMU cgspeed map from the left-side joint names (right = "Left" -> "Right")."""
    def right(left_name: str) -> str:
        return left_name.replace("Left", "Right")

    sources: dict[str, dict[str, float]] = {
        "pelvis": {"Hips": 1.0},
        "spine1": {"Hips": 0.5, vertebra: 0.5},
        "spine2": {vertebra: 1.0},
        "spine3": {thorax: 1.0},
        "neck": {neck: 1.0},
        "head": {"Head": 1.0},
    }
    for side, convert in (("left", lambda n: n), ("right", right)):
        sources[f"{side}_hip"] = {convert(up_leg): 1.0}
        sources[f"{side}_knee"] = {convert(knee): 1.0}
        sources[f"{side}_ankle"] = {convert(ankle): 1.0}
        sources[f"{side}_foot"] = {convert(toe): 1.0}
        sources[f"{side}_collar"] = {thorax: 0.5, convert(shoulder): 0.5}
        sources[f"{side}_shoulder"] = {convert(shoulder): 1.0}
        sources[f"{side}_elbow"] = {convert(elbow): 1.0}
        sources[f"{side}_wrist"] = {convert(wrist): 1.0}
    return JointNameMap(name=name, sources=sources, units_to_metres=CMU_UNITS_TO_METRES, description=description)


def _bandai_namco_map() -> JointNameMap:
    """Bandai Namco Research Motion dataset rig (centimetres, y up, ``_L``/``_R`` suffixes).

    Chain ``Hips -> Spine -> Chest -> Neck -> Head``; ``Chest`` carries both ``Shoulder_*`` (clavicle) joints,
    exactly like SMPL ``spine3``, so spine3 = ``Chest``, spine2 = ``Spine`` and spine1 = the midpoint of
    ``Hips`` and ``Spine`` (no joint there; one on the root would be a zero-length bone). collar =
    ``Shoulder_*``, shoulder/elbow/wrist = ``UpperArm``/``LowerArm``/``Hand``, hip/knee/ankle/foot =
    ``UpperLeg``/``LowerLeg``/``Foot``/``Toes``. ``joint_Root`` (the floor projection) is not used.
    """
    sources: dict[str, dict[str, float]] = {
        "pelvis": {"Hips": 1.0},
        "spine1": {"Hips": 0.5, "Spine": 0.5},
        "spine2": {"Spine": 1.0},
        "spine3": {"Chest": 1.0},
        "neck": {"Neck": 1.0},
        "head": {"Head": 1.0},
    }
    for side, suffix in (("left", "_L"), ("right", "_R")):
        for smpl, bvh_joint in (("hip", "UpperLeg"), ("knee", "LowerLeg"), ("ankle", "Foot"), ("foot", "Toes"),
                                ("collar", "Shoulder"), ("shoulder", "UpperArm"), ("elbow", "LowerArm"),
                                ("wrist", "Hand")):
            sources[f"{side}_{smpl}"] = {bvh_joint + suffix: 1.0}
    return JointNameMap(name="bandai-namco", sources=sources, units_to_metres=0.01,
                        description="Bandai Namco Research Motion dataset BVH (centimetres, y up)")


BUILTIN_NAME_MAPS: dict[str, JointNameMap] = {
    m.name: m
    for m in (
        _cmu_map("cmu_cgspeed_motionbuilder", "CMU mocap, cgspeed MotionBuilder-friendly BVH release",
                 up_leg="LeftUpLeg", knee="LeftLeg", ankle="LeftFoot", toe="LeftToeBase", vertebra="Spine",
                 thorax="Spine1", neck="Neck1", shoulder="LeftArm", elbow="LeftForeArm", wrist="LeftHand"),
        _cmu_map("cmu_cgspeed_3dsmax", "CMU mocap, cgspeed 3dsMax-friendly BVH release",
                 up_leg="LeftHip", knee="LeftKnee", ankle="LeftAnkle", toe="LeftToe", vertebra="Chest",
                 thorax="Chest2", neck="Neck", shoulder="LeftShoulder", elbow="LeftElbow", wrist="LeftWrist"),
        _bandai_namco_map(),
    )
}
"""Built-in rigs by name (the skeleton-named identity map is added per skeleton by :func:`detect_name_map`)."""


def _name_map_from_mapping(mapping: Mapping[str, Any], name: str, skeleton: Skeleton) -> JointNameMap:
    """Build a map from JSON-like ``{bvh: smpl}`` and/or ``{smpl: {bvh: weight}}`` entries."""
    if not isinstance(mapping, Mapping):
        raise ValueError(f"name map {name}: expected a JSON object {{bvh joint: smpl joint}}, "
                         f"got {type(mapping).__name__}")
    valid = set(skeleton.joint_names)
    sources: dict[str, dict[str, float]] = {}
    for key, value in mapping.items():
        if str(key).startswith("_"):
            continue  # comment entry
        if isinstance(value, str):
            target, blend = value, {str(key): 1.0}
        elif isinstance(value, Mapping):
            target = str(key)
            try:
                blend = {str(b): float(w) for b, w in value.items()}
            except (TypeError, ValueError):
                raise ValueError(f"name map {name}: entry {key!r} must map BVH joint names to numeric "
                                 f"weights, got {value!r}") from None
            total = sum(blend.values())
            if not blend or abs(total - 1.0) > 1e-6:
                raise ValueError(f"name map {name}: the weights of {key!r} sum to {total:g}; they must sum to 1")
        else:
            raise ValueError(f"name map {name}: entry {key!r}: {value!r} must be an SMPL joint name (string) or "
                             f"an object {{bvh joint: weight}}")
        if target not in valid:
            raise ValueError(f"name map {name}: {target!r} (from entry {key!r}) is not a joint of skeleton "
                             f"{skeleton.name!r}; valid names: {list(skeleton.joint_names)}")
        if target in sources:
            raise ValueError(f"name map {name}: skeleton joint {target!r} is mapped twice "
                             f"({sorted(sources[target])} and {sorted(blend)}); keep one")
        sources[target] = blend
    missing = [j for j in skeleton.joint_names if j not in sources]
    if missing:
        raise ValueError(f"name map {name}: no BVH joint is mapped to {missing}; every skeleton joint needs "
                         f"an entry, e.g. {{\"MyHips\": \"pelvis\", ...}}")
    return JointNameMap(name=name, sources=sources, units_to_metres=None, description="custom name map")


def load_name_map(spec: JointNameMap | Mapping[str, Any] | PathLike, skeleton: Skeleton) -> JointNameMap:
    """A :class:`JointNameMap` from a map, a built-in map's name, a dict or a JSON file path.

    JSON/dict format: ``{"bvh joint": "smpl joint", ...}`` covering every skeleton joint; an entry may instead
    read ``"smpl joint": {"bvh joint A": 0.5, "bvh joint B": 0.5}`` to place it between joints. Keys starting
    with ``_`` are ignored (comments).
    """
    if isinstance(spec, JointNameMap):
        return spec
    if isinstance(spec, Mapping):
        return _name_map_from_mapping(spec, "<dict>", skeleton)
    if isinstance(spec, str) and spec in BUILTIN_NAME_MAPS:
        return BUILTIN_NAME_MAPS[spec]
    if isinstance(spec, str) and spec == "identity":
        return identity_name_map(skeleton)
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: name map JSON not found (built-in maps: "
                                f"{['identity', *BUILTIN_NAME_MAPS]})")
    try:
        mapping = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: invalid JSON in name map ({exc.msg}); expected "
                         f"{{\"bvh joint\": \"smpl joint\", ...}}") from exc
    return _name_map_from_mapping(mapping, str(path), skeleton)


def detect_name_map(bvh: BvhMotion, skeleton: Skeleton) -> JointNameMap:
    """The first built-in map whose BVH joints all exist in ``bvh`` (identity first, then CMU rigs)."""
    for candidate in (identity_name_map(skeleton), *BUILTIN_NAME_MAPS.values()):
        if candidate.matches(bvh):
            return candidate
    raise ValueError(
        f"{bvh.source}: joints {list(bvh.joint_names)} match no built-in rig "
        f"({['identity', *BUILTIN_NAME_MAPS]}). Pass a JSON name map (name_map= / --name-map) "
        f"{{\"bvh joint\": \"smpl joint\"}} covering {list(skeleton.joint_names)}"
    )


# ================================================================================================ loading
@dataclass
class BvhJoints:
    """Skeleton joints loaded from a BVH file, with how they were obtained (recorded in dataset metadata)."""

    joints: np.ndarray  # (T, J, 3) float32, metres, y up
    fps: float  # frame rate of ``joints``
    source_fps: float  # frame rate of the file
    source_frames: int
    scale: float  # metres per file unit
    scale_source: str  # "argument", "rig <name>" or "guessed (<unit>)"
    up_axis: str  # the file's up axis, e.g. "+y"
    name_map: str
    source: str

    def metadata(self) -> dict[str, Any]:
        return {"source": self.source, "frames": int(self.joints.shape[0]), "fps": self.fps,
                "source_fps": self.source_fps, "source_frames": self.source_frames, "scale": self.scale,
                "scale_source": self.scale_source, "up_axis": self.up_axis, "name_map": self.name_map}


_UP_AXIS_ROTATIONS = {
    "+x": np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),  # about z: +x -> +y
    "-x": np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]),
    "+y": np.eye(3),
    "-y": np.array([[1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, -1.0]]),  # 180 degrees about x
    "+z": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]]),  # (x, y, z) -> (x, z, -y)
    "-z": np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]),  # (x, y, z) -> (x, -z, y)
}


def _normalise_up_axis(up_axis: str) -> str:
    text = up_axis.strip().lower()
    if text in ("x", "y", "z"):
        text = "+" + text
    if text not in _UP_AXIS_ROTATIONS and text != "auto":
        raise ValueError(f"up_axis {up_axis!r} is not one of 'auto', {sorted(_UP_AXIS_ROTATIONS)}")
    return text


def _detect_up_axis(joints: np.ndarray, skeleton: Skeleton) -> str:
    """The signed axis along which the root sits above the feet, averaged over frames."""
    feet = joints[:, list(skeleton.foot_joints)].mean(axis=1)  # (T, 3)
    up = (joints[:, 0] - feet).mean(axis=0)  # (3,)
    axis = int(np.argmax(np.abs(up)))
    return ("+" if up[axis] >= 0 else "-") + "xyz"[axis]


def _guess_units(joints_y_up: np.ndarray, skeleton: Skeleton, source: str) -> tuple[float, str]:
    """Metres per unit from the root height above the feet in standing frames (see the module docstring)."""
    feet_height = joints_y_up[:, list(skeleton.foot_joints), 1].min(axis=1)  # (T,)
    root_height = float(np.percentile(joints_y_up[:, 0, 1] - feet_height, 90))
    if root_height <= 0:
        raise ValueError(f"{source}: the root is never above the feet; cannot guess the units. Pass scale= "
                         f"(metres per file unit) and check up_axis")
    exact = NOMINAL_ROOT_HEIGHT_M / root_height
    unit, factor = min(_UNIT_CANDIDATES.items(), key=lambda item: abs(math.log(item[1] / exact)))
    if abs(math.log(factor / exact)) <= math.log(_UNIT_SNAP_FACTOR):
        return factor, f"guessed ({unit})"
    logger.warning("%s: root height %.4g units matches no common unit; scaling it to %.2f m (factor %.6g). "
                   "Pass scale= to override", source, root_height, NOMINAL_ROOT_HEIGHT_M, exact)
    return exact, "guessed (root height)"


def load_bvh_motion(path: PathLike | BvhMotion, name_map: Any = None, scale: float | None = None,
                    target_fps: float | None = None, *, skeleton: Skeleton,
                    up_axis: str = "auto") -> BvhJoints:
    """Load a BVH file as skeleton joints ``(T, J, 3)`` float32 in metres, y up, at ``target_fps``.

    ``name_map``: None (detect a built-in rig), a built-in map name, a JSON path, a dict or a
    :class:`JointNameMap`. ``scale``: metres per file unit (None: the rig's units or a guess).
    ``target_fps``: default ``skeleton.fps``. ``up_axis``: ``"auto"`` or ``"y"``, ``"z"``, ``"-z"``, ...
    Positions are not moved: no floor, centring or facing changes (the feature pipeline does those).
    """
    bvh = path if isinstance(path, BvhMotion) else parse_bvh(path)
    if bvh.num_frames == 0:
        raise ValueError(f"{bvh.source}: the file has no frames ('Frames: 0'); nothing to load")
    target_fps = float(skeleton.fps if target_fps is None else target_fps)
    if target_fps <= 0:
        raise ValueError(f"target_fps must be positive, got {target_fps}")
    mapping = detect_name_map(bvh, skeleton) if name_map is None else load_name_map(name_map, skeleton)
    weights = mapping.weight_matrix(bvh, skeleton)  # (J, J_bvh)

    local_rotations, local_translations = resample_local_pose(
        bvh_local_rotations(bvh), bvh_local_translations(bvh), bvh.fps, target_fps)
    bvh_positions = _positions_from_local(bvh, local_rotations, local_translations, False)  # (T, J_bvh, 3)
    joints = np.einsum("sb,tbd->tsd", weights, bvh_positions)  # (T, J, 3), file units and axes

    up = _normalise_up_axis(up_axis)
    if up == "auto":
        up = _detect_up_axis(joints, skeleton)
        if up != "+y":
            logger.info("%s: detected up axis %s; rotating to +y", bvh.source, up)
    joints = joints @ _UP_AXIS_ROTATIONS[up].T  # (T, J, 3) y up

    if scale is not None:
        if not (scale > 0 and math.isfinite(scale)):
            raise ValueError(f"scale must be a positive number of metres per file unit, got {scale}")
        factor, scale_source = float(scale), "argument"
    elif mapping.units_to_metres is not None:
        factor, scale_source = mapping.units_to_metres, f"rig {mapping.name}"
    else:
        factor, scale_source = _guess_units(joints, skeleton, bvh.source)
    joints = joints * factor

    _check_bones(joints, skeleton, bvh.source, mapping.name)
    logger.debug("%s: %d frames at %g fps -> %d at %g fps, rig %s, %.6g m/unit (%s), up %s", bvh.source,
                 bvh.num_frames, bvh.fps, joints.shape[0], target_fps, mapping.name, factor, scale_source, up)
    return BvhJoints(joints=joints.astype(np.float32), fps=target_fps, source_fps=bvh.fps,
                     source_frames=bvh.num_frames, scale=factor, scale_source=scale_source, up_axis=up,
                     name_map=mapping.name, source=bvh.source)


def load_bvh_joints(path: PathLike | BvhMotion, name_map: Any = None, scale: float | None = None,
                    target_fps: float | None = None, *, skeleton: Skeleton,
                    up_axis: str = "auto") -> np.ndarray:
    """Joints ``(T, J, 3)`` float32, metres, y up, at ``target_fps`` (default ``skeleton.fps``, 20 for HumanML3D).

    See :func:`load_bvh_motion` for the arguments; it also reports the scale, rig and frame rates used.
    """
    return load_bvh_motion(path, name_map, scale, target_fps, skeleton=skeleton, up_axis=up_axis).joints


def _check_bones(joints: np.ndarray, skeleton: Skeleton, source: str, map_name: str) -> None:
    """Reject maps that put a child on its parent in every frame (the feature IK needs non-zero bones)."""
    for parent, child in skeleton.bones:
        length = np.linalg.norm(joints[:, child] - joints[:, parent], axis=-1)  # (T,)
        if float(length.max()) < 1e-4:
            raise ValueError(
                f"{source}: with name map {map_name!r} skeleton joints {skeleton.joint_names[parent]!r} and "
                f"{skeleton.joint_names[child]!r} coincide in every frame (a zero-length bone). Map "
                f"{skeleton.joint_names[child]!r} to another BVH joint or to a blend, e.g. "
                f"{{\"{skeleton.joint_names[child]}\": {{\"JointA\": 0.5, \"JointB\": 0.5}}}}"
            )


# ================================================================================================= export
TranslationChannels = Literal["root", "branches", "all"]
_UNIT_EPS = 1e-12


def _unit(vectors: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norm, _UNIT_EPS)


def _kabsch(rest_dirs: np.ndarray, current_dirs: np.ndarray) -> np.ndarray:
    """Rotations ``(T, 3, 3)`` minimising ``sum_k |R rest_k - current_k|^2``.

    ``rest_dirs (K, 3)``, ``current_dirs (T, K, 3)``.
    """
    covariance = np.einsum("tki,kj->tij", current_dirs, rest_dirs)  # (T, 3, 3) sum of current rest^T
    u, _, vt = np.linalg.svd(covariance)
    sign = np.sign(np.linalg.det(u @ vt))  # (T,)
    correction = np.broadcast_to(np.eye(3), covariance.shape).copy()
    correction[:, 2, 2] = np.where(sign == 0, 1.0, sign)
    return u @ correction @ vt


def _topological_order(parents: Sequence[int]) -> list[int]:
    order, placed = [], set()
    while len(order) < len(parents):
        progressed = False
        for joint, parent in enumerate(parents):
            if joint not in placed and (parent < 0 or parent in placed):
                order.append(joint)
                placed.add(joint)
                progressed = True
        if not progressed:
            raise ValueError(f"skeleton parents {list(parents)} contain a cycle")
    return order


def solve_bvh_motion(joints: Any, skeleton: Skeleton, fps: float | None = None, *,
                     bone_lengths: Literal["motion", "target"] = "motion",
                     translation_channels: TranslationChannels = "branches",
                     euler_order: str = "ZYX") -> BvhMotion:
    """Solve a :class:`BvhMotion` on ``skeleton``'s hierarchy whose FK reproduces ``joints (T, J, 3)``.

    See the module docstring ("Export") for the solver. ``euler_order`` is the channel order written for every
    joint (intrinsic, e.g. ``"ZYX"`` -> ``Zrotation Yrotation Xrotation`` = ``Rz @ Ry @ Rx``).
    """
    from scipy.spatial.transform import Rotation

    positions = np.asarray(joints, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(f"joints must have shape (T, {skeleton.num_joints}, 3) for skeleton {skeleton.name!r}; "
                         f"got {positions.shape}")
    if positions.shape[0] == 0 or not np.isfinite(positions).all():
        raise ValueError("joints must have at least one frame and only finite values")
    if translation_channels not in ("root", "branches", "all"):
        raise ValueError(f"translation_channels must be 'root', 'branches' or 'all', got {translation_channels!r}")
    order = euler_order.upper()
    if sorted(order) != ["X", "Y", "Z"]:
        raise ValueError(f"euler_order must be a permutation of 'XYZ', got {euler_order!r}")
    fps = float(skeleton.fps if fps is None else fps)
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")

    num_frames, num_joints = positions.shape[:2]
    parents = list(skeleton.parents)
    children = {j: [c for c in range(num_joints) if parents[c] == j] for j in range(num_joints)}
    bone_vectors = np.zeros_like(positions)  # (T, J, 3) child minus parent, zero for the root
    for child in range(num_joints):
        if parents[child] >= 0:
            bone_vectors[:, child] = positions[:, child] - positions[:, parents[child]]

    if bone_lengths == "motion":
        lengths = np.median(np.linalg.norm(bone_vectors, axis=-1), axis=0)  # (J,)
    elif bone_lengths == "target":
        if skeleton.bone_lengths is None:
            raise ValueError(f"skeleton {skeleton.name!r} has no target bone lengths; use bone_lengths='motion'")
        lengths = np.asarray(skeleton.bone_lengths, np.float64)
    else:
        raise ValueError(f"bone_lengths must be 'motion' or 'target', got {bone_lengths!r}")
    rest_dirs = _unit(np.asarray(skeleton.raw_offsets, np.float64))  # (J, 3)
    rest_offsets = rest_dirs * lengths[:, None]  # (J, 3)
    current_dirs = _unit(bone_vectors)  # (T, J, 3)

    global_rotations = np.zeros((num_frames, num_joints, 3, 3))  # (T, J, 3, 3)
    identity = np.broadcast_to(np.eye(3), (num_frames, 3, 3))
    for joint in _topological_order(parents):
        parent_rotation = identity if parents[joint] < 0 else global_rotations[:, parents[joint]]  # (T, 3, 3)
        kids = children[joint]
        if not kids:
            global_rotations[:, joint] = parent_rotation  # a leaf keeps its parent's orientation
        elif len(kids) == 1:
            kid = kids[0]
            rest_in_world = np.einsum("tij,j->ti", parent_rotation, rest_dirs[kid])  # (T, 3)
            swing = R.matrix_between(rest_in_world, current_dirs[:, kid])  # (T, 3, 3)
            global_rotations[:, joint] = swing @ parent_rotation
        else:
            fitted = _kabsch(rest_dirs[kids], current_dirs[:, kids])  # (T, 3, 3)
            if translation_channels == "root":
                # A rotation-only rig is exact only if the branch is rigid; use its mean shape as the rest pose.
                local_dirs = np.einsum("tji,tkj->tki", fitted, current_dirs[:, kids]).mean(axis=0)  # (K, 3)
                rest_dirs[kids] = _unit(local_dirs)
                rest_offsets[kids] = rest_dirs[kids] * lengths[kids, None]
                fitted = _kabsch(rest_dirs[kids], current_dirs[:, kids])
            global_rotations[:, joint] = fitted

    local_rotations = np.empty_like(global_rotations)  # (T, J, 3, 3)
    for joint in range(num_joints):
        if parents[joint] < 0:
            local_rotations[:, joint] = global_rotations[:, joint]
        else:
            local_rotations[:, joint] = np.swapaxes(global_rotations[:, parents[joint]], -1, -2) @ \
                global_rotations[:, joint]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gimbal lock: scipy still returns an exact decomposition
        euler = Rotation.from_matrix(local_rotations.reshape(-1, 3, 3)).as_euler(order, degrees=True)
    euler = euler.reshape(num_frames, num_joints, 3)  # (T, J, 3) in channel order

    branch_children = {c for j in range(num_joints) if len(children[j]) > 1 for c in children[j]}
    rotation_channels = tuple(f"{axis}rotation" for axis in order)
    position_channels = ("Xposition", "Yposition", "Zposition")
    channels: list[tuple[str, ...]] = []
    columns: list[np.ndarray] = []
    for joint in range(num_joints):
        parent = parents[joint]
        with_position = parent < 0 or translation_channels == "all" or (
            translation_channels == "branches" and joint in branch_children)
        if with_position:
            if parent < 0:
                translation = positions[:, joint]  # (T, 3) world position of the root
            else:
                translation = np.einsum("tji,tj->ti", global_rotations[:, parent], bone_vectors[:, joint])
            channels.append(position_channels + rotation_channels)
            columns += [translation, euler[:, joint]]
        else:
            channels.append(rotation_channels)
            columns.append(euler[:, joint])

    end_parents = [j for j in range(num_joints) if not children[j]]
    # End Sites only give leaf bones a visible tip in viewers: a quarter of the leaf's own bone, same direction.
    end_offsets = [0.25 * rest_offsets[j] for j in end_parents]
    offsets = rest_offsets.copy()
    offsets[[j for j in range(num_joints) if parents[j] < 0]] = 0.0
    return BvhMotion(
        joint_names=tuple(skeleton.joint_names),
        parents=np.asarray(parents, dtype=np.int64),
        offsets=offsets,
        channels=tuple(channels),
        end_site_parents=np.asarray(end_parents, dtype=np.int64),
        end_site_offsets=np.asarray(end_offsets, dtype=np.float64).reshape(-1, 3),
        frame_time=1.0 / fps,
        motion=np.concatenate(columns, axis=1),  # (T, C)
        source="<solved>",
    )


def write_bvh(path: PathLike, joints: Any = None, features: Any = None, *, skeleton: Skeleton,
              fps: float | None = None, bone_lengths: Literal["motion", "target"] = "motion",
              translation_channels: TranslationChannels = "branches", euler_order: str = "ZYX") -> Path:
    """Write joints ``(T, J, 3)`` (metres, y up) or features ``(T, F)`` as a BVH file on ``skeleton``'s hierarchy.

    Pass exactly one of ``joints`` / ``features`` (features are turned into joints with
    :func:`adamotion.motion.features.joints_from_features`). ``fps`` defaults to ``skeleton.fps``. The file is
    written atomically and ``load_bvh_joints(path)`` returns the joints again (< 1 mm for rigid limbs; see the
    module docstring for ``bone_lengths`` and ``translation_channels``). Returns the path.
    """
    if (joints is None) == (features is None):
        raise ValueError("write_bvh: pass exactly one of joints= (T, J, 3) or features= (T, F)")
    if features is not None:
        from adamotion.motion.features import joints_from_features

        features = np.asarray(features)
        if features.ndim != 2:
            raise ValueError(f"write_bvh: features must be one clip (T, {skeleton.feature_dim}); got "
                             f"{features.shape}. Trim padding with the clip's length first")
        joints = joints_from_features(features, skeleton)
    bvh = solve_bvh_motion(joints, skeleton, fps, bone_lengths=bone_lengths,
                           translation_channels=translation_channels, euler_order=euler_order)
    path = Path(path)
    atomic_write_text(path, format_bvh(bvh))
    logger.info("wrote %s (%d frames at %g fps, %d joints)", path, bvh.num_frames, bvh.fps, bvh.num_joints)
    return path
