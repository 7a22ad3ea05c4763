"""Loader for the HumanML3D / KIT-ML directory layout (and the procedural corpus, which uses it).

::

    <root>/new_joint_vecs/<id>.npy   (T, F) float32 features (F = skeleton.feature_dim)
    <root>/texts/<id>.txt            caption#word/POS ...#start#end, one caption per line
    <root>/<split>.txt               ids; ``M<id>`` is the mirrored copy of ``<id>``
    <root>/Mean.npy Std.npy          normalisation statistics

One dataset item per (motion, caption). A caption with start/end times other than ``0.0#0.0`` (or
NaN) describes the sub-clip ``features[int(start * fps):int(end * fps)]`` and becomes its own item.
Clips are kept when ``min_frames <= length < SOURCE_MAX_FRAMES`` (HumanML3D's rule), then cropped to
at most ``max_frames`` frames, rounded down to a multiple of ``unit_length``; the crop offset is
random but deterministic given ``seed``, the epoch (:meth:`MotionTextDataset.set_epoch`) and the item.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from adamotion.data.captions import parse_caption_line
from adamotion.data.meta import DatasetMeta
from adamotion.motion.skeleton import Skeleton

logger = logging.getLogger(__name__)

SOURCE_MAX_FRAMES = 200  # HumanML3D keeps clips shorter than this (before cropping to max_frames)
_FEATURES_DIR = "new_joint_vecs"
_TEXTS_DIR = "texts"
_BUILD_HINT = "build the procedural corpus with `adamotion data synth --out DIR` or point at a HumanML3D-layout folder"


def _check_root(root: str | os.PathLike) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found; {_BUILD_HINT}")
    return root


def load_split_ids(root: str | os.PathLike, split: str) -> list[str]:
    """Ids listed in ``<root>/<split>.txt`` (blank lines ignored), in file order."""
    root = _check_root(root)
    path = root / f"{split}.txt"
    if not path.is_file():
        available = sorted(p.stem for p in root.glob("*.txt"))
        raise FileNotFoundError(f"{path}: split file not found; available splits: {available or 'none'} ({_BUILD_HINT})")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_captions(path: str | os.PathLike) -> list[dict]:
    """Captions of one ``texts/<id>.txt`` file: dicts with ``caption``, ``tokens`` (list of ``word/POS``),
    ``start`` and ``end`` (seconds; 0/0 or NaN = whole clip). Empty files and bad lines raise ValueError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: caption file not found; every id of a split needs texts/<id>.txt")
    out = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = parse_caption_line(raw)
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}; expected 'caption#word/POS ...#start#end'") from None
        out.append({"caption": line.caption, "tokens": list(line.tokens), "start": line.start, "end": line.end})
    if not out:
        raise ValueError(f"{path}: caption file is empty; write at least one 'caption#word/POS ...#0.0#0.0' line "
                         "or remove the id from the split file")
    return out


def _frame_index(seconds: float, fps: float) -> int:
    """``int(seconds * fps)`` as the published loader does, robust to float error (2.3 * 20 = 45.99...)."""
    return int(math.floor(seconds * fps + 1e-6))


@dataclass(frozen=True)
class _Item:
    motion: int  # index into the dataset's motion arrays
    start: int  # clip start frame in the motion's features
    end: int  # one past the clip's last frame
    caption: str
    tokens: tuple[str, ...]
    motion_id: str  # "<id>" for whole clips, "<id>:<start>-<end>" for sub-clips


class MotionTextDataset(Dataset):
    """(motion features, caption) items of one split of a HumanML3D-layout dataset."""

    def __init__(self, root: str | os.PathLike, split: str, *, skeleton: Skeleton,
                 meta: DatasetMeta | None = None, min_frames: int | None = None, max_frames: int | None = None,
                 unit_length: int | None = None, normalize: bool = True, seed: int = 0, random_crop: bool = True):
        self.root = _check_root(root)
        self.split = split
        self.skeleton = skeleton
        self.min_frames = skeleton.min_frames if min_frames is None else int(min_frames)
        self.max_frames = skeleton.max_frames if max_frames is None else int(max_frames)
        self.unit_length = skeleton.unit_length if unit_length is None else int(unit_length)
        if self.unit_length < 1 or self.max_frames < self.unit_length or self.min_frames < 1:
            raise ValueError(f"bad length settings: min_frames={self.min_frames}, max_frames={self.max_frames}, "
                             f"unit_length={self.unit_length}")
        self.normalize = normalize
        self.seed = int(seed)
        self.random_crop = random_crop
        self.epoch = 0
        for sub in (_FEATURES_DIR, _TEXTS_DIR):
            if not (self.root / sub).is_dir():
                raise FileNotFoundError(f"{self.root / sub}: folder missing; a HumanML3D-layout dataset needs "
                                        f"{_FEATURES_DIR}/ and {_TEXTS_DIR}/ ({_BUILD_HINT})")
        if meta is None and normalize:
            meta = DatasetMeta.from_dataset_root(self.root, skeleton)
        if meta is not None and meta.feature_dim != skeleton.feature_dim:
            raise ValueError(f"meta {meta.name!r} has {meta.feature_dim} features but skeleton {skeleton.name!r} has "
                             f"{skeleton.feature_dim}; use the statistics of this dataset")
        self.meta = meta

        self.ids = load_split_ids(self.root, split)
        self.motions: list[np.ndarray] = []  # (T, F) float32 per motion, normalised when `normalize`
        self.items: list[_Item] = []
        dropped = 0
        for motion_id in self.ids:
            features = self._load_features(motion_id)
            captions = read_captions(self.root / _TEXTS_DIR / f"{motion_id}.txt")
            index = len(self.motions)
            kept = 0
            for entry in captions:
                if _whole_clip(entry["start"], entry["end"]):
                    start, end, name = 0, len(features), motion_id
                else:
                    start = _frame_index(entry["start"], skeleton.fps)
                    end = min(_frame_index(entry["end"], skeleton.fps), len(features))
                    name = f"{motion_id}:{start}-{end}"
                if not self.min_frames <= end - start < SOURCE_MAX_FRAMES:
                    dropped += 1
                    continue
                self.items.append(_Item(index, start, end, entry["caption"], tuple(entry["tokens"]), name))
                kept += 1
            if kept:
                self.motions.append(meta.normalize(features).astype(np.float32) if normalize else features)
        logger.info("%s/%s: %d items from %d motions (%d captions outside %d..%d frames dropped)", self.root.name, split,
                    len(self.items), len(self.motions), dropped, self.min_frames, SOURCE_MAX_FRAMES - 1)

    def _load_features(self, motion_id: str) -> np.ndarray:
        path = self.root / _FEATURES_DIR / f"{motion_id}.npy"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: feature file missing for id {motion_id!r} listed in {self.split}.txt; "
                                    "regenerate the dataset or remove the id from the split file")
        try:
            features = np.load(path)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: unreadable feature file ({exc}); regenerate it") from exc
        width = self.skeleton.feature_dim
        if features.ndim != 2 or features.shape[1] != width:
            raise ValueError(f"{path}: features have shape {features.shape}, expected (T, {width}) for skeleton "
                             f"{self.skeleton.name!r}; pass the dataset's skeleton (KIT-ML: skeleton=KIT) or "
                             "regenerate the file with features_from_joints")
        if not np.isfinite(features).all():
            raise ValueError(f"{path}: features contain NaN/inf; regenerate the file (features_from_joints on its "
                             "joints) or remove the id from the split file")
        return features.astype(np.float32, copy=False)

    # ------------------------------------------------------------------ Dataset API
    def __len__(self) -> int:
        return len(self.items)

    def set_epoch(self, epoch: int) -> None:
        """Change the random crops (deterministically) for a new epoch."""
        self.epoch = int(epoch)

    def crop_length(self, index: int) -> int:
        """Frames item ``index`` yields: clip length capped at max_frames, floored to unit_length."""
        item = self.items[index]
        return (min(item.end - item.start, self.max_frames) // self.unit_length) * self.unit_length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < len(self.items):
            raise IndexError(f"index {index} out of range for {len(self.items)} items")
        item = self.items[index]
        clip = self.motions[item.motion][item.start:item.end]  # (L, F)
        length = self.crop_length(index)
        offset = 0
        if self.random_crop and len(clip) > length:
            rng = np.random.default_rng((self.seed, self.epoch, index))
            offset = int(rng.integers(0, len(clip) - length + 1))
        features = torch.from_numpy(np.ascontiguousarray(clip[offset:offset + length], dtype=np.float32))  # (T, F)
        return {"features": features, "length": length, "caption": item.caption, "tokens": list(item.tokens),
                "motion_id": item.motion_id}


def _whole_clip(start: float, end: float) -> bool:
    return (start == 0.0 and end == 0.0) or math.isnan(start) or math.isnan(end)


def collate_motion_text(batch: list[dict]) -> dict:
    """Pad items of :class:`MotionTextDataset` into a batch.

    Returns ``features`` (B, Tmax, F) zero-padded, ``lengths`` LongTensor (B,), ``frame_mask`` BoolTensor
    (B, Tmax) True on valid frames, and lists ``captions``, ``tokens``, ``motion_ids``.
    """
    if not batch:
        raise ValueError("collate_motion_text got an empty batch")
    lengths = torch.tensor([int(b["length"]) for b in batch], dtype=torch.long)  # (B,)
    t_max = int(lengths.max())
    width = batch[0]["features"].shape[-1]
    features = torch.zeros(len(batch), t_max, width, dtype=torch.float32)  # (B, Tmax, F)
    for i, b in enumerate(batch):
        features[i, : int(b["length"])] = b["features"][: int(b["length"])]
    frame_mask = torch.arange(t_max)[None, :] < lengths[:, None]  # (B, Tmax)
    return {"features": features, "lengths": lengths, "frame_mask": frame_mask,
            "captions": [b["caption"] for b in batch], "tokens": [b["tokens"] for b in batch],
            "motion_ids": [b["motion_id"] for b in batch]}
