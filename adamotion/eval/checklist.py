""""Prompts carried out": physical readings of a motion and a pass/fail checklist over prompts.

A viewer asks of a clip made for "a person raises the left hand" one thing first: was it the left hand?
:func:`read_motion` measures, from joint positions alone (every joint role comes from the
:class:`~adamotion.motion.skeleton.Skeleton`):

=================  ==========================================================================================
raised hand        ``left`` / ``right`` / ``both`` / ``none``: a wrist that comes above
                   ``head - HAND_BELOW_HEAD_M`` (shoulder height and up)
kicking foot       the foot joint that rises highest above the floor, when one rises above ``KICK_HEIGHT_M``
turn               signed change of the body's facing, degrees, + = to the left (y up, +x = the body's left)
forward            root displacement along the first frame's facing, metres (negative = backwards)
sat and stood      the pelvis dropped by ``SIT_DROP`` of its first-frame height and ended within
                   ``STAND_RETURN`` of it
jumped             both feet above the clip's floor by ``JUMP_HEIGHT_M`` for ``JUMP_FRAMES`` frames or more
=================  ==========================================================================================

:class:`Expectation` says which readings a prompt asks for; :func:`check` returns one :class:`CheckResult`
per asked reading. :data:`CHECKLIST` holds held-out phrasings (vocabulary the procedural corpus keeps for
its test split) with their expectations; :func:`run_checklist` generates them with a pipeline and
:func:`format_checklist` prints the table and the pass rate.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adamotion.motion.skeleton import Skeleton

HAND_BELOW_HEAD_M = 0.10  # a wrist within 10 cm below the head joint (about shoulder height) counts as raised
KICK_HEIGHT_M = 0.30  # a foot joint higher than this above the floor (a walking swing stays near 0.1 m)
SIT_DROP = 0.25  # the pelvis went down by at least a quarter of its standing height...
STAND_RETURN = 0.10  # ...and ended within 10 % of it
JUMP_HEIGHT_M = 0.08  # both feet this high above the floor...
JUMP_FRAMES = 2  # ...for at least this many consecutive frames (a running flight phase is lower and shorter)
TURN_MIN_DEG = 45.0  # a turn "to the left" changes the facing by at least this much
ENDS_FRAMES = 3  # facing and position at either end are averaged over this many frames


@dataclass
class MotionReadings:
    """What a motion did, measured from its joints."""

    raised_hand: str  # "left", "right", "both" or "none"
    hand_lift_m: tuple[float, float]  # (left, right) highest wrist height relative to the head, metres
    kicking_foot: str  # "left", "right" or "none"
    foot_height_m: tuple[float, float]  # (left, right) highest foot-joint height above the floor, metres
    turn_deg: float  # facing change, + = left
    forward_m: float  # root travel along the first frame's facing
    sat_and_stood: bool
    pelvis_drop: float  # lowest pelvis height as a share of the first frame's, subtracted from 1
    pelvis_end: float  # last pelvis height over the first frame's
    jumped: bool
    airborne_frames: int  # longest run of frames with both feet off the floor

    def describe(self) -> str:
        return (f"hand {self.raised_hand} (L {self.hand_lift_m[0]:+.2f} / R {self.hand_lift_m[1]:+.2f} m), "
                f"kick {self.kicking_foot}, turn {self.turn_deg:+.0f}°, forward {self.forward_m:+.2f} m, "
                f"sit+stand {'yes' if self.sat_and_stood else 'no'} (drop {self.pelvis_drop:.0%}), "
                f"jump {'yes' if self.jumped else 'no'} ({self.airborne_frames} airborne frames)")


def _longest_run(flags: np.ndarray) -> int:
    best = run = 0
    for flag in flags:
        run = run + 1 if flag else 0
        best = max(best, run)
    return best


def _side(left: bool, right: bool) -> str:
    return "both" if left and right else "left" if left else "right" if right else "none"


def read_motion(joints: Any, skeleton: Skeleton) -> MotionReadings:
    """Readings of one motion: ``joints`` (T, J, 3) metres, y up, floor near 0, at least ``2 * ENDS_FRAMES``
    frames."""
    from adamotion.motion.features import forward_directions

    if skeleton.hands is None or skeleton.head is None:
        raise ValueError(f"skeleton {skeleton.name!r} does not name its hands and head; the checklist needs them")
    positions = np.asarray(joints, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[1:] != (skeleton.num_joints, 3):
        raise ValueError(f"joints must be (T, {skeleton.num_joints}, 3), got {positions.shape}")
    if positions.shape[0] < 2 * ENDS_FRAMES:
        raise ValueError(f"a motion needs at least {2 * ENDS_FRAMES} frames for the checklist, got {positions.shape[0]}")
    height = positions[..., 1]  # (T, J)
    root = skeleton.parents.index(-1)

    lift = [float((height[:, hand] - height[:, skeleton.head]).max()) for hand in skeleton.hands]
    raised = _side(lift[0] > -HAND_BELOW_HEAD_M, lift[1] > -HAND_BELOW_HEAD_M)

    feet = height[:, list(skeleton.foot_joints)]  # (T, 4): left heel, left toe, right heel, right toe
    floor = float(np.percentile(feet.min(axis=1), 5))  # the clip's floor, robust to a few bad frames
    nl = len(skeleton.feet_left)
    foot_height = (float(feet[:, :nl].max() - floor), float(feet[:, nl:].max() - floor))
    high_enough = max(foot_height) > KICK_HEIGHT_M
    kicking = ("left" if foot_height[0] >= foot_height[1] else "right") if high_enough else "none"

    forward = forward_directions(positions, skeleton, ik_convention=False, smooth=False)  # (T, 3)
    yaw = np.unwrap(np.arctan2(forward[:, 0], forward[:, 2]))  # (T,) + = from +z towards +x (the body's left)
    turn = math.degrees(float(yaw[-ENDS_FRAMES:].mean() - yaw[:ENDS_FRAMES].mean()))

    start = positions[:ENDS_FRAMES, root].mean(axis=0)
    end = positions[-ENDS_FRAMES:, root].mean(axis=0)
    facing = forward[:ENDS_FRAMES].mean(axis=0)
    facing[1] = 0.0
    facing /= max(np.linalg.norm(facing), 1e-9)
    travel = float(np.dot(end - start, facing))

    pelvis = height[:, root]
    standing = max(float(pelvis[:ENDS_FRAMES].mean()), 1e-6)
    drop = 1.0 - float(pelvis.min()) / standing
    pelvis_end = float(pelvis[-ENDS_FRAMES:].mean()) / standing
    sat_and_stood = drop >= SIT_DROP and abs(pelvis_end - 1.0) <= STAND_RETURN

    airborne = _longest_run(feet.min(axis=1) - floor > JUMP_HEIGHT_M)
    return MotionReadings(raised_hand=raised, hand_lift_m=(lift[0], lift[1]), kicking_foot=kicking,
                          foot_height_m=foot_height, turn_deg=turn, forward_m=travel, sat_and_stood=sat_and_stood,
                          pelvis_drop=drop, pelvis_end=pelvis_end, jumped=airborne >= JUMP_FRAMES,
                          airborne_frames=airborne)


@dataclass
class Expectation:
    """What a prompt asks for; ``None`` = not checked."""

    raised_hand: str | None = None  # "left", "right" or "both"
    kicking_foot: str | None = None  # "left" or "right"
    turn: str | None = None  # "left" or "right" (at least TURN_MIN_DEG)
    forward_min_m: float | None = None  # travel along the first facing at least this (negative: backwards)
    backward_min_m: float | None = None  # travel against the first facing at least this
    sit_and_stand: bool | None = None
    jump: bool | None = None

    def __post_init__(self):
        for name, options in (("raised_hand", ("left", "right", "both")), ("kicking_foot", ("left", "right")),
                              ("turn", ("left", "right"))):
            value = getattr(self, name)
            if value is not None and value not in options:
                raise ValueError(f"expectation {name} must be one of {options}, got {value!r}")

    def asked(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class CheckResult:
    check: str  # e.g. "raised hand"
    expected: str
    measured: str
    passed: bool


def check(readings: MotionReadings, expectation: Expectation) -> list[CheckResult]:
    """One result per reading the expectation asks for."""
    out = []
    if expectation.raised_hand is not None:
        out.append(CheckResult("raised hand", expectation.raised_hand, readings.raised_hand,
                               readings.raised_hand == expectation.raised_hand))
    if expectation.kicking_foot is not None:
        out.append(CheckResult("kicking foot", expectation.kicking_foot, readings.kicking_foot,
                               readings.kicking_foot == expectation.kicking_foot))
    if expectation.turn is not None:
        sign = 1.0 if expectation.turn == "left" else -1.0
        out.append(CheckResult("turn", f"{expectation.turn} ≥ {TURN_MIN_DEG:.0f}°", f"{readings.turn_deg:+.0f}°",
                               sign * readings.turn_deg >= TURN_MIN_DEG))
    if expectation.forward_min_m is not None:
        out.append(CheckResult("forward", f"≥ {expectation.forward_min_m:.1f} m", f"{readings.forward_m:+.2f} m",
                               readings.forward_m >= expectation.forward_min_m))
    if expectation.backward_min_m is not None:
        out.append(CheckResult("backward", f"≥ {expectation.backward_min_m:.1f} m", f"{-readings.forward_m:+.2f} m",
                               -readings.forward_m >= expectation.backward_min_m))
    if expectation.sit_and_stand is not None:
        out.append(CheckResult("sat and stood up", "yes" if expectation.sit_and_stand else "no",
                               f"{'yes' if readings.sat_and_stood else 'no'} (drop {readings.pelvis_drop:.0%}, "
                               f"end {readings.pelvis_end:.0%})", readings.sat_and_stood == expectation.sit_and_stand))
    if expectation.jump is not None:
        out.append(CheckResult("jumped", "yes" if expectation.jump else "no",
                               f"{'yes' if readings.jumped else 'no'} ({readings.airborne_frames} frames)",
                               readings.jumped == expectation.jump))
    return out


@dataclass
class ChecklistPrompt:
    prompt: str
    expectation: Expectation
    seconds: float = 5.0  # generated length


def _p(prompt: str, seconds: float = 5.0, **expected) -> ChecklistPrompt:
    return ChecklistPrompt(prompt, Expectation(**expected), seconds)


# Held-out phrasings: the procedural corpus keeps these words for its test split (corpus.json
# caption_lexicons.held_out_words), so a model has not seen them with these motions during training.
CHECKLIST: tuple[ChecklistPrompt, ...] = (
    _p("a human hoists the left arm overhead.", 4.0, raised_hand="left"),
    _p("somebody elevates the right arm upward.", 4.0, raised_hand="right"),
    _p("the subject gestures a greeting with the left hand.", 4.0, raised_hand="left"),
    _p("an individual signals hi with the right palm.", 4.0, raised_hand="right"),
    _p("a figure hoists both arms overhead.", 4.0, raised_hand="both"),
    _p("an individual boots the air with the right leg.", 4.0, kicking_foot="right"),
    _p("somebody punts high with the left foot once.", 4.0, kicking_foot="left"),
    _p("the subject pivots toward the left.", 4.0, turn="left"),
    _p("a human rotates toward the right.", 4.0, turn="right"),
    _p("here somebody strolls ahead.", 6.0, forward_min_m=1.5),
    _p("a figure lopes forward.", 5.0, forward_min_m=2.0),
    _p("the subject reverses away unhurriedly.", 5.0, backward_min_m=0.5),
    _p("a human settles onto a seat, next rises off the stool.", 7.0, sit_and_stand=True),
    _p("an individual perches on a stool; afterwards climbs out of the seat.", 7.0, sit_and_stand=True),
    _p("somebody springs upward twice.", 4.0, jump=True),
    _p("a figure leaps ahead three times.", 5.0, jump=True, forward_min_m=0.5),
    _p("the subject performs star leaps.", 5.0, jump=True),
)


@dataclass
class ChecklistRow:
    prompt: str
    seed: int
    readings: MotionReadings
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)


def load_prompts(path: str | Path) -> tuple[ChecklistPrompt, ...]:
    """Checklist prompts from a JSON Lines file, one object per line; blank and ``#`` lines are skipped.

    Each object has ``prompt``, optional ``seconds`` (default 5) and the :class:`Expectation` fields it checks, e.g.
    ``{"prompt": "a man waves his left hand", "seconds": 4, "raised_hand": "left"}``. Problems raise
    ``ValueError`` naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such prompt file; give a JSON Lines file with one {{\"prompt\": ...}} per line")
    fields = set(Expectation.__dataclass_fields__)
    prompts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise ValueError(f"{where}: not JSON ({exc.msg}); write one JSON object per line") from None
        if not isinstance(item, dict) or not isinstance(item.get("prompt"), str) or not item["prompt"].strip():
            raise ValueError(f'{where}: needs a non-empty "prompt" string')
        unknown = set(item) - fields - {"prompt", "seconds"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}; checks are {sorted(fields)}")
        expected = {k: v for k, v in item.items() if k in fields}
        if not expected:
            raise ValueError(f"{where}: asks for no check; add one of {sorted(fields)}")
        try:
            prompts.append(ChecklistPrompt(item["prompt"], Expectation(**expected), float(item.get("seconds", 5.0))))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{where}: {exc}") from None
    if not prompts:
        raise ValueError(f"{path}: holds no prompts")
    return tuple(prompts)


def run_checklist(pipeline, prompts=CHECKLIST, *, seed: int = 0, steps: int | None = None, encoder: str = "ada",
                  guidance_scale: float = 2.5, sampler: str = "ddpm", postprocess: str = "none") -> list[ChecklistRow]:
    """Generate every prompt once (one batch, each at its own length) and check it."""
    skeleton = pipeline.skeleton
    lengths = [min(max(int(round(p.seconds * skeleton.fps)), skeleton.min_frames), skeleton.max_frames)
               for p in prompts]
    out = pipeline([p.prompt for p in prompts], lengths=lengths, seed=seed, steps=steps, encoder=encoder,
                   guidance_scale=guidance_scale, sampler=sampler, postprocess=postprocess)
    rows = []
    for item, joints in zip(prompts, out.joints):
        readings = read_motion(joints, skeleton)
        rows.append(ChecklistRow(item.prompt, seed, readings, check(readings, item.expectation)))
    return rows


def pass_rate(rows: list[ChecklistRow]) -> float:
    return sum(r.passed for r in rows) / max(len(rows), 1)


def format_checklist(rows: list[ChecklistRow], title: str = "Prompts carried out") -> str:
    lines = [f"## {title}", "", "| prompt | check | expected | measured | pass |", "|---|---|---|---|---|"]
    for row in rows:
        for i, result in enumerate(row.results):
            lines.append(f"| {row.prompt if i == 0 else ''} | {result.check} | {result.expected} | {result.measured} "
                         f"| {'✓' if result.passed else '✗'} |")
    passed = sum(r.passed for r in rows)
    lines += ["", f"**{passed} of {len(rows)} prompts carried out ({pass_rate(rows):.0%}).**"]
    return "\n".join(lines)


def checklist_json(rows: list[ChecklistRow]) -> dict:
    return {"pass_rate": pass_rate(rows), "passed": sum(r.passed for r in rows), "prompts": len(rows),
            "rows": [{"prompt": r.prompt, "seed": r.seed, "passed": r.passed, "readings": asdict(r.readings),
                      "checks": [asdict(c) for c in r.results]} for r in rows]}


def write_checklist(rows: list[ChecklistRow], out: str | Path, title: str = "Prompts carried out") -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    md, js = out / "checklist.md", out / "checklist.json"
    md.write_text(format_checklist(rows, title) + "\n", encoding="utf-8")
    js.write_text(json.dumps(checklist_json(rows), indent=2) + "\n", encoding="utf-8")
    return {"md": md, "json": js}
