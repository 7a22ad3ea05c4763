"""BVH files -> a HumanML3D-layout dataset folder (``adamotion data import-bvh``).

The BVH reader, the joint mapping and the solver live in :mod:`adamotion.io.bvh`; this module turns the
joints they give into a dataset: features, canonical joints, captions, splits and normalisation statistics.
"""
from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from adamotion.data.captions import format_caption_line
from adamotion.data.clips import MIN_KEEP_FRAMES, pad_or_drop, windows
from adamotion.data.meta import write_mean_std
from adamotion.io.bvh import load_bvh_motion
from adamotion.motion.features import features_from_joints, joints_from_features
from adamotion.motion.skeleton import Skeleton
from adamotion.utils.files import atomic_folder, atomic_write_json

__all__ = ["import_bvh_dataset", "read_captions_tsv"]

logger = logging.getLogger(__name__)

PathLike = str | os.PathLike

_ID_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_CAPTION_STEM_COLUMNS = ("stem", "trial", "id", "name", "file")
_CAPTION_TEXT_COLUMNS = ("caption", "description", "text")


def read_captions_tsv(path: PathLike) -> dict[str, list[str]]:
    """Captions per file stem from a TSV.

    Two layouts: lines ``stem<TAB>caption`` (several lines per stem allowed; blank lines and ``#`` comments
    skipped), or a table whose header names a stem column (``stem``/``trial``/``id``/``name``/``file``) and a
    caption column (``caption``/``description``/``text``), such as ``shared/data/cmu/cmu_descriptions.tsv``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: captions TSV not found")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [(number, row) for number, row in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE),
                                                           start=1)
                if row and any(cell.strip() for cell in row) and not row[0].lstrip().startswith("#")]
    captions: dict[str, list[str]] = {}
    if not rows:
        return captions
    header = [cell.strip().lower() for cell in rows[0][1]]
    stem_column = next((header.index(c) for c in _CAPTION_STEM_COLUMNS if c in header), None)
    text_column = next((header.index(c) for c in _CAPTION_TEXT_COLUMNS if c in header), None)
    if stem_column is not None and text_column is not None:
        rows = rows[1:]
    else:
        stem_column, text_column = 0, 1
    for number, row in rows:
        if len(row) <= max(stem_column, text_column):
            raise ValueError(f"{path}:{number}: expected 'stem<TAB>caption', found {row!r}; separate the file "
                             f"stem and the caption with a tab")
        stem, caption = row[stem_column].strip(), row[text_column].strip()
        if stem and caption:
            captions.setdefault(stem, []).append(caption)
    return captions


def _caption_line(caption: str) -> str:
    """HumanML3D ``texts/<id>.txt`` line ``caption#word/POS ...#0.0#0.0`` (covering the whole clip).

    ``#`` (the format's separator) and line breaks inside a caption become spaces; tokens come from the
    project's rule-based tagger (:func:`adamotion.data.captions.format_caption_line`).
    """
    return format_caption_line(" ".join(caption.replace("#", " ").split()))


def _motion_id(path: Path) -> str:
    """Dataset id of a BVH file: its stem, made filename-safe; ids starting with ``M`` would read as mirrors."""
    motion_id = _ID_UNSAFE.sub("_", path.stem).strip("_") or "motion"
    if motion_id.startswith("M"):
        motion_id = "bvh_" + motion_id
    return motion_id


def _split_files(motion_ids: list[str]) -> dict[str, list[str]]:
    """Train/val/test by file: 15 % test and 5 % val (at least one each from 3 files on), chosen by a hash of
    the id so adding files does not reshuffle the others. With fewer than 3 files val/test reuse the training
    files (logged), so that every written dataset still loads and trains."""
    def rank(motion_id: str) -> str:
        return hashlib.sha256(motion_id.encode("utf-8")).hexdigest()

    if len(motion_ids) < 3:
        logger.warning("only %d BVH file(s): the val and test splits reuse the training files", len(motion_ids))
        return {"train": list(motion_ids), "val": list(motion_ids), "test": list(motion_ids)}
    ordered = sorted(motion_ids, key=rank)
    n_test = max(1, round(0.15 * len(ordered)))
    n_val = max(1, round(0.05 * len(ordered)))
    held = {"test": set(ordered[:n_test]), "val": set(ordered[n_test:n_test + n_val])}
    return {"train": [i for i in motion_ids if i not in held["test"] and i not in held["val"]],
            "val": [i for i in motion_ids if i in held["val"]],
            "test": [i for i in motion_ids if i in held["test"]]}


def import_bvh_dataset(files: Iterable[PathLike], out: PathLike, captions_tsv: PathLike | None = None,
                       name_map: Any = None, scale: float | None = None, *, skeleton: Skeleton,
                       up_axis: str = "auto", overwrite: bool = False) -> Path:
    """Build a HumanML3D-layout dataset folder from BVH files; returns the folder.

    Layout: ``new_joint_vecs/<id>.npy`` (T-1, F) features from :func:`features_from_joints`;
    ``new_joints/<id>.npy`` (T-1, J, 3) the canonical joints those features describe
    (:func:`joints_from_features`, as in HumanML3D); ``texts/<id>.txt`` one ``caption#tokens#0.0#0.0`` line per
    caption (from ``captions_tsv``, else the file stem with ``_``/``-`` as spaces); ``train.txt``/``val.txt``/
    ``test.txt`` split by file (:func:`_split_files`); ``Mean.npy``/``Std.npy`` over the train split
    (per-dimension mean, std averaged per feature group, no further scaling); ``import_meta.json`` recording
    every choice. ``<id>`` is the file stem; a long file cut into windows gives ``<id>_w<k>`` clips and a short
    one is padded or left out (:mod:`adamotion.data.clips`), so every written dataset loads and trains under
    the HumanML3D length protocol.

    Written to a temporary sibling folder and renamed into place, so a failed import leaves nothing behind. An
    existing non-empty ``out`` is an error unless ``overwrite``.
    """
    from tqdm import tqdm

    paths = [Path(f) for f in files]
    if not paths:
        raise ValueError("import_bvh_dataset: no BVH files given")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"BVH file(s) not found: {missing}")
    ids: dict[str, Path] = {}
    for path in paths:
        motion_id = _motion_id(path)
        if motion_id in ids:
            raise ValueError(f"{path} and {ids[motion_id]} both give dataset id {motion_id!r}; rename one file")
        ids[motion_id] = path
    captions = read_captions_tsv(captions_tsv) if captions_tsv is not None else {}

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out}: exists and is a file; the dataset output must be a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out}: already exists and is not empty; choose a new output folder or pass "
                              f"overwrite=True")
    with atomic_folder(out) as tmp:
        for folder in ("new_joints", "new_joint_vecs", "texts"):
            (tmp / folder).mkdir()
        features_of, records, clip_ids, dropped = {}, [], {}, {}
        for motion_id, path in tqdm(ids.items(), desc="import-bvh", unit="file", disable=None):
            loaded = load_bvh_motion(path, name_map=name_map, scale=scale, skeleton=skeleton, up_axis=up_axis)
            if loaded.joints.shape[0] < 2:
                raise ValueError(f"{path}: only {loaded.joints.shape[0]} frame at {loaded.fps:g} fps; a motion "
                                 f"needs at least 2 frames")
            texts = captions.get(path.stem)
            if texts is None:
                if captions_tsv is not None:
                    logger.warning("%s: no caption for stem %r in %s; using the stem", path, path.stem, captions_tsv)
                texts = [re.sub(r"[_-]+", " ", path.stem).strip() or motion_id]
            # Fit the training protocol's 40..196 frames (hold resting ends / cut long trials into windows).
            joints, length_policy = pad_or_drop(loaded.joints, loaded.fps)
            clips = windows(joints, loaded.fps) if joints is not None else []
            if not clips:
                dropped[motion_id] = length_policy if joints is None else "no window in which the actor moves"
                logger.warning("%s: left out (%s)", path, dropped[motion_id])
                continue
            clip_ids[motion_id] = []
            for k, clip in enumerate(clips):
                clip_id = motion_id if len(clips) == 1 else f"{motion_id}_w{k}"
                features = features_from_joints(clip, skeleton)  # (T-1, F)
                canonical = np.asarray(joints_from_features(features, skeleton), np.float32)  # (T-1, J, 3)
                np.save(tmp / "new_joint_vecs" / f"{clip_id}.npy", features.astype(np.float32))
                np.save(tmp / "new_joints" / f"{clip_id}.npy", canonical)
                (tmp / "texts" / f"{clip_id}.txt").write_text(
                    "".join(_caption_line(t) + "\n" for t in texts), encoding="utf-8")
                features_of[clip_id] = features
                clip_ids[motion_id].append(clip_id)
            records.append({"id": motion_id, "clips": clip_ids[motion_id], "length_policy": length_policy,
                            "captions": texts, **loaded.metadata()})
        if not clip_ids:
            raise ValueError(f"no BVH file gave a clip of at least {MIN_KEEP_FRAMES} frames at {skeleton.fps:g} fps "
                             f"({dropped}); import longer recordings")

        splits = _split_files(list(clip_ids))
        split_ids = {split: [c for motion_id in files for c in clip_ids[motion_id]] for split, files in splits.items()}
        for split, split_list in split_ids.items():
            (tmp / f"{split}.txt").write_text("".join(f"{i}\n" for i in split_list), encoding="utf-8")
        train = [features_of[i].astype(np.float64) for i in split_ids["train"]]  # (T_i, F) each
        write_mean_std(tmp, [(f.sum(0), (f ** 2).sum(0), len(f)) for f in train], skeleton)
        atomic_write_json(tmp / "import_meta.json", {
            "format": "humanml3d",
            "skeleton": skeleton.name,
            "fps": skeleton.fps,
            "feature_dim": skeleton.feature_dim,
            "new_joints": "joints_from_features(new_joint_vecs): canonical frame, T-1 frames",
            "std": "per-dimension std averaged within each feature group (skeleton.feature_slices) over the train "
                   "split; no extra scaling",
            "splits": {split: len(v) for split, v in split_ids.items()},
            "split_files": splits,
            "dropped": dropped,
            "captions_tsv": None if captions_tsv is None else str(captions_tsv),
            "motions": records,
        })
    logger.info("imported %d BVH file(s) into %s", len(ids), out)
    return out
