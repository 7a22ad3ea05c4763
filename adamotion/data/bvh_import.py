"""BVH files -> a HumanML3D-layout dataset folder (``adamotion data import-bvh``).

The BVH reader, the joint mapping and the solver live in :mod:`adamotion.io.bvh`; this module turns the
joints they give into a dataset: features, canonical joints, captions, splits and normalisation statistics.
"""
from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from adamotion.data.captions import format_caption_line
from adamotion.data.meta import group_std
from adamotion.io.bvh import load_bvh_motion
from adamotion.motion.features import features_from_joints, joints_from_features
from adamotion.motion.skeleton import HUMANML3D, Skeleton
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


def import_bvh_dataset(files: Iterable[PathLike], out: PathLike, captions_tsv: PathLike | None = None,
                       name_map: Any = None, scale: float | None = None, *, skeleton: Skeleton = HUMANML3D,
                       up_axis: str = "auto", overwrite: bool = False) -> Path:
    """Build a HumanML3D-layout dataset folder from BVH files; returns the folder.

    Layout: ``new_joint_vecs/<id>.npy`` (T-1, F) features from :func:`features_from_joints`;
    ``new_joints/<id>.npy`` (T-1, J, 3) the canonical joints those features describe
    (:func:`joints_from_features`, as in HumanML3D); ``texts/<id>.txt`` one ``caption#tokens#0.0#0.0`` line per
    caption (from ``captions_tsv``, else the file stem with ``_``/``-`` as spaces); ``train.txt`` with every id,
    empty ``val.txt``/``test.txt``; ``Mean.npy``/``Std.npy`` (per-dimension mean, std averaged per feature
    group, no further scaling); ``import_meta.json`` recording every choice. ``<id>`` is the file stem.

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
        all_features, records = [], []
        for motion_id, path in tqdm(ids.items(), desc="import-bvh", unit="file", disable=None):
            loaded = load_bvh_motion(path, name_map=name_map, scale=scale, skeleton=skeleton, up_axis=up_axis)
            if loaded.joints.shape[0] < 2:
                raise ValueError(f"{path}: only {loaded.joints.shape[0]} frame at {loaded.fps:g} fps; a motion "
                                 f"needs at least 2 frames")
            features = features_from_joints(loaded.joints, skeleton)  # (T-1, F)
            canonical = np.asarray(joints_from_features(features, skeleton), np.float32)  # (T-1, J, 3)
            np.save(tmp / "new_joint_vecs" / f"{motion_id}.npy", features.astype(np.float32))
            np.save(tmp / "new_joints" / f"{motion_id}.npy", canonical)
            texts = captions.get(path.stem)
            if texts is None:
                if captions_tsv is not None:
                    logger.warning("%s: no caption for stem %r in %s; using the stem", path, path.stem, captions_tsv)
                texts = [re.sub(r"[_-]+", " ", path.stem).strip() or motion_id]
            (tmp / "texts" / f"{motion_id}.txt").write_text(
                "".join(_caption_line(t) + "\n" for t in texts), encoding="utf-8")
            if not skeleton.min_frames <= features.shape[0] <= skeleton.max_frames:
                logger.info("%s: %d feature frames, outside the %d..%d frames of the HumanML3D training "
                            "protocol", path, features.shape[0], skeleton.min_frames, skeleton.max_frames)
            all_features.append(features)
            records.append({"id": motion_id, "captions": texts,
                            "feature_frames": int(features.shape[0]), **loaded.metadata()})

        (tmp / "train.txt").write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
        (tmp / "val.txt").write_text("", encoding="utf-8")
        (tmp / "test.txt").write_text("", encoding="utf-8")
        stacked = np.concatenate(all_features, axis=0).astype(np.float64)  # (sum T-1, F)
        np.save(tmp / "Mean.npy", stacked.mean(axis=0).astype(np.float32))
        np.save(tmp / "Std.npy", group_std(stacked.std(axis=0), skeleton).astype(np.float32))
        atomic_write_json(tmp / "import_meta.json", {
            "format": "humanml3d",
            "skeleton": skeleton.name,
            "fps": skeleton.fps,
            "feature_dim": skeleton.feature_dim,
            "new_joints": "joints_from_features(new_joint_vecs): canonical frame, T-1 frames",
            "std": "per-dimension std averaged within each feature group (skeleton.feature_slices); no extra scaling",
            "splits": {"train": len(ids), "val": 0, "test": 0},
            "captions_tsv": None if captions_tsv is None else str(captions_tsv),
            "motions": records,
        })
    logger.info("imported %d BVH file(s) into %s", len(ids), out)
    return out
