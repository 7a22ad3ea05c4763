"""Fit imported motion to the lengths the HumanML3D protocol trains on (40 <= feature frames <= 196).

Used by every importer (``import-bvh``, ``import-bandai-namco``) so that every dataset they write loads and
trains. Lengths are counted in *feature* frames (joint frames - 1).

* Short clips (< ``MIN_FRAMES``): padded by holding the first and/or last pose, but only at an end where the
  actor is at rest (mean joint speed of the three boundary frames below ``REST_SPEED`` m/s): that is what the
  actor did just before/after the recording, so the motion stays plausible. A clip moving at both ends, or
  shorter than ``MIN_KEEP_FRAMES``, is dropped (``None`` with the reason).
* Long clips (> ``MAX_FRAMES``): up to ``CROP_TOLERANCE`` times too long, the most active ``MAX_FRAMES`` window
  is kept (one gesture with idle margins stays whole); longer ones are cut into equal, non-overlapping windows
  of at most ``MAX_FRAMES``, and windows in which the actor stands still throughout (mean joint speed below
  ``IDLE_SPEED``, e.g. the still intro of a dance take) are dropped: the take's caption would not describe them.
"""
from __future__ import annotations

import numpy as np

MIN_FRAMES = 40  # HumanML3D training minimum (feature frames)
MIN_KEEP_FRAMES = 24  # shorter clips are dropped (1.2 s at 20 fps)
MAX_FRAMES = 196  # generator maximum (feature frames, 9.8 s)
CROP_TOLERANCE = 1.25  # up to this factor over MAX_FRAMES: keep the most active window instead of splitting
REST_SPEED = 0.25  # m/s mean joint speed at a clip's ends: below it the actor is at rest there
IDLE_SPEED = 0.05  # m/s mean joint speed over a whole window: below it the actor stands still throughout


def _speed(joints: np.ndarray, fps: float) -> np.ndarray:
    """(T-1,) mean joint speed in m/s between consecutive frames."""
    return np.linalg.norm(np.diff(joints, axis=0), axis=-1).mean(axis=-1) * fps


def pad_or_drop(joints: np.ndarray, fps: float) -> tuple[np.ndarray | None, str]:
    """Hold resting end poses until the clip has ``MIN_FRAMES`` feature frames; ``(None, reason)`` to drop."""
    rows = len(joints) - 1
    if rows >= MIN_FRAMES:
        return joints, "kept"
    if rows < MIN_KEEP_FRAMES:
        return None, f"shorter than {MIN_KEEP_FRAMES} frames ({rows})"
    speed = _speed(joints, fps)
    rest_start, rest_end = speed[:3].mean() < REST_SPEED, speed[-3:].mean() < REST_SPEED
    if not (rest_start or rest_end):
        return None, f"{rows} frames and moving at both ends"
    missing = MIN_FRAMES - rows
    before = missing // 2 if rest_start and rest_end else (missing if rest_start else 0)
    after = missing - before
    padded = np.concatenate([np.repeat(joints[:1], before, 0), joints, np.repeat(joints[-1:], after, 0)])
    return padded, f"padded (+{before} held frames before, +{after} after)"


def windows(joints: np.ndarray, fps: float) -> list[np.ndarray]:
    """Clips of at most ``MAX_FRAMES`` feature frames (see the module docstring); resting windows dropped."""
    rows = len(joints) - 1
    if rows <= MAX_FRAMES:
        return [joints]
    speed = _speed(joints, fps)  # (rows,)
    if rows <= CROP_TOLERANCE * MAX_FRAMES:
        activity = np.convolve(speed, np.ones(MAX_FRAMES), mode="valid")  # (rows - MAX_FRAMES + 1,)
        start = int(np.argmax(activity))
        return [joints[start:start + MAX_FRAMES + 1]]
    count = int(np.ceil(rows / MAX_FRAMES))
    size = int(np.ceil(rows / count))
    out = []
    for k in range(count):
        clip = joints[k * size:min((k + 1) * size, rows) + 1]
        if len(clip) - 1 >= MIN_FRAMES and _speed(clip, fps).mean() >= IDLE_SPEED:
            out.append(clip)
    return out
