"""Import the Bandai Namco Research Motion dataset into the HumanML3D layout (``adamotion data import-bandai-namco``).

Source: the dataset's own ``dataset/`` folder (``Bandai-Namco-Research-Motiondataset-{1,2}/data/*.bvh`` with a
``.json`` label beside each take and ``cfg/{content,style}_label.txt``), or one sub-dataset folder, or its
``data/`` folder. Labels come from the ``.json`` + ``cfg`` files when present, else from the file name
``dataset-N_<action>_<style>_<take>.bvh``.

Per take (the project's one BVH reader and one :func:`features_from_joints`):

1. ``load_bvh_motion(rig="bandai-namco")``: 22 SMPL joints in metres, y up, 30 -> 20 fps (rotations slerped).
2. **Short takes** (fewer than ``MIN_FRAMES`` = 40 feature frames, the HumanML3D training minimum; 448 of the
   3,006 takes, almost all "raise-up-*-hand" gestures that the authors clipped tightly around the motion):
   a take is padded to 40 frames by *holding* its first and/or last pose, but only at an end where the actor
   is at rest (mean joint speed of the three boundary frames below ``REST_SPEED`` m/s). Holding a resting
   pose is what the actor did just before/after the clip, so the motion stays physically plausible and the
   caption still covers it; holding a moving pose would create a sudden freeze, so such takes are dropped
   instead, as are takes shorter than ``MIN_KEEP_FRAMES`` (1.2 s) whose action is not complete. Dropped takes
   are listed in ``corpus.json`` with the reason.
3. **Long takes** (more than 196 feature frames = 9.8 s, the generator's maximum): up to 25 % too long, the
   most active 196-frame window is kept (a single gesture with idle margins stays whole); longer takes are
   cut into equal, non-overlapping windows of at most 196 frames, each its own clip ``<take>_w<k>`` with the
   take's captions. Windows in which the actor stands still throughout (mean joint speed below ``IDLE_SPEED``,
   e.g. the still intro of the long dance) are dropped: a dance caption would not describe them.
4. ``features_from_joints`` (retarget, feet on the floor, facing +z at the first frame) and the canonical
   joints ``joints_from_features`` (what ``new_joints`` holds, as :func:`import_bvh_dataset` writes).
5. A mirrored copy ``M<id>``: the joints mirrored (x negated, left/right swapped) and the captions with
   left/right swapped (:func:`adamotion.data.captions.mirror_caption`).

Captions (:mod:`adamotion.data.bandai_captions`): three per clip, seen phrasing for train/val and held-out
phrasing for test. The side of one-handed gestures is read from the motion for dataset-1 actions (which hand
moves most), from the label for dataset-2 ("wave-left-hand"); the labelled side is checked against the motion
and disagreements are counted in ``corpus.json``. Splits are by take, stratified by action x style
(:func:`assign_splits`).

Takes whose action or style has no caption phrases here, or that the length rules drop, are left out and
listed in ``corpus.json`` with the reason; the rest of the import goes on.

The data is CC BY-NC 4.0; ``corpus.json`` records the licence and attribution, and every model trained on a
dataset containing it carries them in its saved dataset metadata.
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adamotion.data import bandai_captions as bcap
from adamotion.data import captions as cap
from adamotion.data.clips import (CROP_TOLERANCE, IDLE_SPEED, MAX_FRAMES, MIN_FRAMES, MIN_KEEP_FRAMES, REST_SPEED,
                                  pad_or_drop, windows)
from adamotion.data.meta import write_mean_std
from adamotion.motion.skeleton import HUMANML3D, Skeleton
from adamotion.utils.files import atomic_folder, atomic_write_json
from adamotion.utils.parallel import map_with_workers

logger = logging.getLogger(__name__)

RIG = "bandai-namco"
MIRROR_PREFIX = "M"
SOURCE_KIND = "motion capture"
LICENSE = {
    "name": "CC BY-NC 4.0",
    "url": "https://creativecommons.org/licenses/by-nc/4.0/",
    "attribution": "Bandai Namco Research Motion Dataset, © Bandai Namco Research Inc., CC BY-NC 4.0",
    "citation": ("M. Kobayashi, C.-C. Liao, K. Inoue, S. Yojima, M. Takahashi, \"Motion Capture Dataset for "
                 "Practical Use of AI-based Motion Editing and Stylization\", arXiv:2306.08861, 2023"),
    "source": "https://github.com/BandaiNamcoResearchInc/Bandai-Namco-Research-Motiondataset",
}
MIN_TAKES_TO_HOLD_OUT = 5  # actions with fewer takes are kept for training only
SPLIT_PATTERN = ("test", "test", "test", "val") + ("train",) * 16  # 15 % test, 5 % val per action x style

# Dataset labels -> caption action keys; sided actions name how their side is found.
ACTIONS: dict[str, tuple[str, str | None]] = {
    "walk": ("walk", None), "run": ("run", None), "dash": ("dash", None), "walk-back": ("walk-back", None),
    "walk-left": ("walk-left", None), "walk-right": ("walk-right", None),
    "walk-turn-left": ("walk-turn", "label-left"), "walk-turn-right": ("walk-turn", "label-right"),
    "bow": ("bow", None), "bye": ("bye", "arm"), "byebye": ("byebye", None), "guide": ("guide", "arm"),
    "respond": ("respond", "arm"), "call": ("call", None), "punch": ("punch", "reach"), "kick": ("kick", "leg"),
    "slash": ("slash", None), "dance-long": ("dance", None), "dance-short": ("dance", None),
    "wave-left-hand": ("wave", "label-left"), "wave-right-hand": ("wave", "label-right"),
    "wave-both-hands": ("wave", "label-both"), "raise-up-left-hand": ("raise", "label-left"),
    "raise-up-right-hand": ("raise", "label-right"), "raise-up-both-hands": ("raise", "label-both"),
}
_NAME_RE = re.compile(r"^dataset-(\d+)_(.+)_([^_]+)_(\d+)$")


class BandaiNamcoError(ValueError):
    """A problem with the dataset folder or a take (the message names the path and the fix)."""


@dataclass(frozen=True)
class Take:
    path: Path
    subset: int  # 1 or 2
    action: str  # dataset label, e.g. "raise-up-left-hand"
    style: str  # dataset label, e.g. "elderly"
    number: int

    @property
    def stem(self) -> str:
        return self.path.stem


# ============================================================================================ discovery
def _read_labels(cfg: Path, name: str) -> list[str] | None:
    path = cfg / name
    if not path.is_file():
        return None
    labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [re.sub(r"^dataset-\d+_", "", label) for label in labels]


def _data_folders(src: Path) -> list[Path]:
    if (src / "data").is_dir():
        return [src / "data"]
    if any(src.glob("*.bvh")):
        return [src]
    folders = sorted(p / "data" for p in src.iterdir() if p.is_dir() and (p / "data").is_dir())
    return folders


def discover_takes(src: str | os.PathLike) -> list[Take]:
    """Every take under ``src`` with its action and style (json + cfg labels, else the file name)."""
    src = Path(src).expanduser()
    if not src.is_dir():
        raise BandaiNamcoError(f"{src}: not a folder; pass the dataset's dataset/ folder (with "
                               f"Bandai-Namco-Research-Motiondataset-1/ and/or -2/)")
    folders = _data_folders(src)
    takes: list[Take] = []
    for folder in folders:
        contents = _read_labels(folder.parent / "cfg", "content_label.txt")
        styles = _read_labels(folder.parent / "cfg", "style_label.txt")
        for path in sorted(folder.glob("*.bvh")):
            match = _NAME_RE.match(path.stem)
            if match is None:
                raise BandaiNamcoError(f"{path}: file name is not dataset-N_<action>_<style>_<take>.bvh; rename it "
                                       f"or remove it from the folder")
            subset, action, style, number = int(match[1]), match[2], match[3], int(match[4])
            label = path.with_suffix(".json")
            if label.is_file() and contents and styles:
                try:
                    info = json.loads(label.read_text(encoding="utf-8"))
                    action, style = contents[int(info["content"])], styles[int(info["style"])]
                except (ValueError, KeyError, IndexError, TypeError) as exc:
                    logger.warning("%s: unreadable label (%s; expected {\"content\": i, \"style\": j} indexing "
                                   "cfg/*_label.txt); using the file name's labels", label, exc)
            # Unknown labels are kept here and left out by the import with the reason in corpus.json.
            takes.append(Take(path, subset, action, style, number))
    if not takes:
        raise BandaiNamcoError(f"{src}: no dataset-N_*.bvh takes found; pass the dataset's dataset/ folder "
                               f"(or one Bandai-Namco-Research-Motiondataset-N/ folder)")
    return takes


def assign_splits(takes: list[Take], seed: int = 0) -> dict[str, str]:
    """Split per take, stratified by action x style: each group walks :data:`SPLIT_PATTERN` from a random offset.

    Actions with fewer than :data:`MIN_TAKES_TO_HOLD_OUT` takes in all (e.g. "call", "respond", "kick") go to
    train whole: held out, they would be actions the model never saw, and too few to measure anything.
    """
    groups: dict[tuple[str, str], list[Take]] = {}
    per_action: dict[str, int] = {}
    for take in takes:
        groups.setdefault((take.action, take.style), []).append(take)
        per_action[take.action] = per_action.get(take.action, 0) + 1
    out: dict[str, str] = {t.stem: "train" for t in takes if per_action[t.action] < MIN_TAKES_TO_HOLD_OUT}
    for key in sorted(groups):
        if per_action[key[0]] < MIN_TAKES_TO_HOLD_OUT:
            continue
        members = sorted(groups[key], key=lambda t: t.stem)
        rng = np.random.default_rng(np.random.SeedSequence([seed, *map(ord, "|".join(key))]))
        order = rng.permutation(len(members))
        offset = int(rng.integers(len(SPLIT_PATTERN)))
        for k, index in enumerate(order):
            out[members[index].stem] = SPLIT_PATTERN[(offset + k) % len(SPLIT_PATTERN)]
    return out


# ============================================================================================ motion
def _moving_side(first: np.ndarray, second: np.ndarray) -> str:
    """"left"/"right"/"both" from two activity scores (both when within a factor 1.6)."""
    low, high = sorted((float(first), float(second)))
    if high <= 0 or low / high > 1 / 1.6:
        return "both"
    return "left" if first > second else "right"


def motion_side(joints: np.ndarray, how: str, skeleton: Skeleton = HUMANML3D) -> str:
    """Which side a gesture uses, from canonical joints ``(T, 22, 3)`` (facing +z; the figure's left is +x).

    ``arm``: wrist path length relative to the pelvis; ``reach``: how far each wrist gets in front of its
    shoulder; ``leg``: how high each foot gets.
    """
    s = skeleton.index
    if how == "leg":
        return _moving_side(joints[:, s("left_foot"), 1].max(), joints[:, s("right_foot"), 1].max())
    scores = []
    for side in ("left", "right"):
        wrist = joints[:, s(f"{side}_wrist")] - joints[:, s("pelvis")]  # (T, 3)
        if how == "reach":
            forward = joints[:, s(f"{side}_wrist"), 2] - joints[:, s(f"{side}_shoulder"), 2]  # (T,)
            scores.append(np.clip(forward, 0, None).sum())
        else:
            scores.append(np.linalg.norm(np.diff(wrist, axis=0), axis=-1).sum())
    side = _moving_side(*scores)
    return side if how == "reach" or side != "both" else ("left" if scores[0] >= scores[1] else "right")


# ============================================================================================ one take
_WORKER: dict = {}


def _init_worker(root: str, seed: int, skeleton_name: str) -> None:
    _WORKER.update(root=Path(root), seed=seed, skeleton=Skeleton.from_name(skeleton_name))


def _write_clip(root: Path, clip_id: str, features: np.ndarray, joints: np.ndarray, lines: list[str]) -> None:
    np.save(root / "new_joint_vecs" / f"{clip_id}.npy", features.astype(np.float32))
    np.save(root / "new_joints" / f"{clip_id}.npy", joints.astype(np.float32))
    (root / "texts" / f"{clip_id}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _import_take(task: tuple[Take, str]) -> dict:
    """Load, pad/window, featurise, caption and mirror one take; returns its record."""
    from adamotion.io.bvh import load_bvh_motion
    from adamotion.motion.features import features_from_joints, joints_from_features, mirror_joints

    take, split = task
    root, skeleton = _WORKER["root"], _WORKER["skeleton"]
    record = {"take": take.stem, "subset": take.subset, "action": take.action, "style": take.style, "split": split,
              "clips": [], "frames": 0}
    unknown = [f"unknown {kind} {label!r} (known: {sorted(known)})" for kind, label, known in
               (("action", take.action, ACTIONS), ("style", take.style, bcap.STYLE_PHRASES)) if label not in known]
    if unknown:
        logger.warning("%s: left out: %s", take.path, "; ".join(unknown))
        record["dropped"] = "; ".join(unknown)
        return record
    try:
        loaded = load_bvh_motion(take.path, name_map=RIG, skeleton=skeleton)
    except (ValueError, OSError) as exc:
        record["dropped"] = f"unreadable: {exc}"
        return record
    record["source_frames"] = loaded.source_frames
    joints, status = pad_or_drop(loaded.joints, loaded.fps)
    record["length"] = status
    if joints is None:
        record["dropped"] = status
        return record
    clips = windows(joints, loaded.fps)
    if not clips:
        record["dropped"] = "no window in which the actor moves"
        return record
    key, side_rule = ACTIONS[take.action]
    lexicon = cap.HELD_OUT if split == "test" else cap.SEEN
    rng = np.random.default_rng(np.random.SeedSequence([_WORKER["seed"], *map(ord, take.stem)]))
    for k, clip in enumerate(clips):
        clip_id = take.stem if len(clips) == 1 else f"{take.stem}_w{k}"
        features = features_from_joints(clip, skeleton)  # (T-1, F)
        canonical = np.asarray(joints_from_features(features, skeleton), np.float32)  # (T-1, J, 3)
        side = turn = None
        if side_rule is not None and side_rule.startswith("label-"):
            side = side_rule.removeprefix("label-")
            if key == "walk-turn":
                turn, side = side, None
            else:
                seen = motion_side(canonical, "arm", skeleton) if side != "both" else side
                record.setdefault("side_check", []).append(seen == side)
        elif side_rule is not None:
            side = motion_side(canonical, side_rule, skeleton)
        texts = bcap.describe_take(key, take.style, lexicon, rng, side=side, turn=turn)
        lines = [cap.format_caption_line(t) for t in texts]
        mirrored = mirror_joints(clip, skeleton)
        mirrored_features = features_from_joints(mirrored, skeleton)
        mirrored_canonical = np.asarray(joints_from_features(mirrored_features, skeleton), np.float32)
        _write_clip(root, clip_id, features, canonical, lines)
        _write_clip(root, MIRROR_PREFIX + clip_id, mirrored_features, mirrored_canonical,
                    [cap.mirror_caption(line) for line in lines])
        record["clips"].append({"id": clip_id, "frames": int(len(features)), "side": side, "turn": turn,
                                "captions": texts})
        record["frames"] += int(len(features))
        if split == "train":
            both = np.concatenate([features, mirrored_features]).astype(np.float64)
            sums = (both.sum(0), (both ** 2).sum(0), len(both))
            prev = record.get("sums")
            record["sums"] = sums if prev is None else tuple(a + b for a, b in zip(prev, sums))
    return record


# ============================================================================================ dataset
def import_bandai_namco(src: str | os.PathLike, out: str | os.PathLike, *, seed: int = 0, workers: int = 2,
                        limit: int | None = None, skeleton: Skeleton = HUMANML3D, overwrite: bool = False) -> Path:
    """Import the takes under ``src`` into a HumanML3D-layout folder ``out`` (atomically); returns ``out``.

    ``workers``: processes (at most 2 by project rule; 1 runs in-process). ``limit``: import only the first
    ``limit`` takes in name order (for quick checks). An existing non-empty ``out`` is refused unless
    ``overwrite`` or it is an earlier import (its ``corpus.json`` says so).
    """
    takes = discover_takes(src)
    if limit is not None:
        takes = takes[:int(limit)]
    splits = assign_splits(takes, seed)
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not overwrite
                                              and not _is_bandai_import(out))):
        raise FileExistsError(f"{out}: exists and is not an earlier Bandai Namco import; choose another --out "
                              f"or remove it")
    workers = max(1, min(int(workers), 2, len(takes)))
    with atomic_folder(out) as tmp:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a dataset folder is readable like any other
        for sub in ("new_joints", "new_joint_vecs", "texts"):
            (tmp / sub).mkdir()
        records = map_with_workers(_import_take, [(t, splits[t.stem]) for t in takes], workers=workers,
                                   initializer=_init_worker, initargs=(str(tmp), seed, skeleton.name),
                                   progress=dict(desc="import bandai-namco", unit="take"))
        _write_index(tmp, records, skeleton, src=Path(src), seed=seed)
    return out


def _is_bandai_import(folder: Path) -> bool:
    try:
        return json.loads((folder / "corpus.json").read_text(encoding="utf-8")).get("generator") == __name__
    except (OSError, ValueError):
        return False


def _write_index(root: Path, records: list[dict], skeleton: Skeleton, *, src: Path, seed: int) -> None:
    kept = [r for r in records if r["clips"]]
    if not any(r["split"] == "train" for r in kept):
        raise BandaiNamcoError(f"{src}: no take was imported into the training split "
                               f"({len(records)} takes, {len(records) - len(kept)} dropped); import more takes")
    split_ids: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for r in kept:
        for clip in r["clips"]:
            split_ids[r["split"]] += [clip["id"], MIRROR_PREFIX + clip["id"]]
    # Every split must load: borrow one training take's clips for an empty val/test (tiny imports only).
    borrowed = {}
    for split in ("val", "test"):
        if not split_ids[split]:
            donor = next(r for r in kept if r["split"] == "train")
            split_ids[split] = [mid for c in donor["clips"] for mid in (c["id"], MIRROR_PREFIX + c["id"])]
            borrowed[split] = donor["take"]
            logger.warning("%s split is empty (only %d takes); it reuses training take %s", split, len(kept),
                           donor["take"])
    for split, ids in split_ids.items():
        (root / f"{split}.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    write_mean_std(root, [r.pop("sums") for r in records if "sums" in r], skeleton)
    checks = [ok for r in records for ok in r.pop("side_check", [])]
    index = {
        "format": "humanml3d",
        "generator": __name__,
        "dataset": "Bandai Namco Research Motion dataset",
        "source_kind": SOURCE_KIND,
        "license": LICENSE,
        "skeleton": skeleton.name,
        "fps": skeleton.fps,
        "feature_dim": skeleton.feature_dim,
        "seed": seed,
        "source": str(src),
        "rig": RIG,
        "mirror_prefix": MIRROR_PREFIX,
        "new_joints": "joints_from_features(new_joint_vecs): canonical frame, as many frames as the features (T-1)",
        "split_sizes": {k: len(v) for k, v in split_ids.items()},
        "borrowed_splits": borrowed,
        "caption_lexicons": {"train_val": cap.SEEN, "test": cap.HELD_OUT},
        "normalization": {"statistics_split": "train",
                          "note": "Mean: per dimension over the training split (mirrors included). Std: per-dimension "
                                  "std averaged within each feature group; no further group scaling."},
        "length_policy": {"min_frames": MIN_FRAMES, "min_keep_frames": MIN_KEEP_FRAMES, "max_frames": MAX_FRAMES,
                          "crop_tolerance": CROP_TOLERANCE, "rest_speed_m_s": REST_SPEED,
                          "idle_window_speed_m_s": IDLE_SPEED},
        "side_label_agreement": {"checked": len(checks), "agree": int(sum(checks))},
        "takes": {r["take"]: {k: v for k, v in r.items() if k != "take"} for r in records},
    }
    atomic_write_json(root / "corpus.json", index)
    os.chmod(root / "corpus.json", 0o644)
