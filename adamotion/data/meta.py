"""Dataset metadata: which skeleton/format the features use and how they are normalised.

A :class:`DatasetMeta` travels with every model trained on a dataset (saved as a folder beside the
weights), so a checkpoint always de-normalises its output with the statistics it was trained with.
The evaluator models keep their own statistics; never mix the two.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from adamotion.motion.skeleton import HUMANML3D, Skeleton
from adamotion.utils.files import read_json
from adamotion.utils.serialization import CheckpointError, load_config, load_tensors, save_folder

log = logging.getLogger(__name__)

COMPONENT = "dataset_meta"
PROJECT_LICENSE = {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0", "attribution": ""}
DEFAULT_NORMALIZATION = "mean/std read from the dataset's Mean.npy/Std.npy"
CONSTANT_GROUP_STD = 1e-6  # a feature group whose mean std is below this is constant; its std becomes 1


def read_dataset_index(root: str | os.PathLike) -> tuple[Path, dict]:
    """(the checked folder, its ``corpus.json`` or ``{}``) of a HumanML3D-layout dataset folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder not found; build one with `adamotion data synth --out {root}`")
    index: dict = {}
    if (root / "corpus.json").is_file():
        index = read_json(root / "corpus.json", what="corpus index", fix="rebuild the corpus")
    return root, index


def dataset_skeleton(index: dict, skeleton: Skeleton | str | None = None) -> Skeleton:
    """``skeleton`` when given, else the one ``corpus.json`` names; a folder without one is HumanML3D (the
    layout's own format)."""
    if skeleton is None:
        skeleton = index.get("skeleton", HUMANML3D.name)
    return Skeleton.from_name(skeleton) if isinstance(skeleton, str) else skeleton


def group_std(per_dim_std: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """(F,) std with every feature group of ``skeleton.feature_slices`` set to its mean per-dimension std.

    Used for the ``Std.npy`` of every dataset this project writes (procedural corpora, BVH imports), so a
    group's dimensions are normalised alike; a constant group gets std 1 (with a warning) instead of 0.
    """
    per_dim_std = np.asarray(per_dim_std)
    if per_dim_std.shape != (skeleton.feature_dim,):
        raise ValueError(f"per_dim_std must have shape ({skeleton.feature_dim},) for {skeleton.name}, "
                         f"got {per_dim_std.shape}")
    out = np.empty_like(per_dim_std)
    for name, columns in skeleton.feature_slices.items():
        value = float(per_dim_std[columns].mean())
        if value < CONSTANT_GROUP_STD:
            log.warning("feature group %s is constant over the dataset; its std is set to 1", name)
            value = 1.0
        out[columns] = value
    return out


def write_mean_std(root: str | os.PathLike, sums, skeleton: Skeleton) -> None:
    """``Mean.npy``/``Std.npy`` of a dataset from per-clip ``(sum (F,), sum of squares (F,), frames)`` float64
    triples: per-dimension mean, :func:`group_std` of the per-dimension std."""
    total, total_sq, frames = np.zeros(skeleton.feature_dim), np.zeros(skeleton.feature_dim), 0
    for clip_sum, clip_sum_sq, clip_frames in sums:
        total, total_sq, frames = total + clip_sum, total_sq + clip_sum_sq, frames + clip_frames
    if frames == 0:
        raise ValueError(f"{root}: no training frames to compute Mean.npy/Std.npy from; the train split is empty")
    mean = total / frames
    std = np.sqrt(np.maximum(total_sq / frames - mean ** 2, 0.0))
    np.save(Path(root) / "Mean.npy", mean.astype(np.float32))
    np.save(Path(root) / "Std.npy", group_std(std, skeleton).astype(np.float32))


@dataclass
class DatasetMeta:
    """Feature format and normalisation statistics of a motion dataset."""

    name: str  # dataset name, e.g. the folder name
    skeleton: Skeleton  # the format object (a name such as "humanml3d" is resolved)
    fps: float  # frames per second of the features
    feature_dim: int  # F, e.g. 263 for HumanML3D
    mean: np.ndarray  # (F,) float32, subtracted by normalize()
    std: np.ndarray  # (F,) float32, divided by normalize(); all > 0
    normalization: str = DEFAULT_NORMALIZATION  # how mean/std were computed (group-averaged std, splits, ...)
    extra: dict = field(default_factory=dict)  # free-form provenance (JSON-serialisable)

    def __post_init__(self):
        if isinstance(self.skeleton, str):
            self.skeleton = Skeleton.from_name(self.skeleton)
        if not isinstance(self.skeleton, Skeleton):
            raise TypeError(f"skeleton must be a Skeleton or its name, got {type(self.skeleton).__name__}")
        self.fps = float(self.fps)
        self.feature_dim = int(self.feature_dim)
        self.mean = _as_vector(self.mean, "mean")
        self.std = _as_vector(self.std, "std")
        for label, arr in (("mean", self.mean), ("std", self.std)):
            if arr.shape != (self.feature_dim,):
                raise ValueError(f"DatasetMeta {self.name!r}: {label} has shape {arr.shape}, expected ({self.feature_dim},)")
            if not np.isfinite(arr).all():
                raise ValueError(f"DatasetMeta {self.name!r}: {label} contains NaN/inf; recompute the dataset statistics")
        if np.any(self.std <= 0):
            raise ValueError(f"DatasetMeta {self.name!r}: std must be > 0 everywhere "
                             f"({int(np.sum(self.std <= 0))} entries are not); recompute the dataset statistics")
        if self.skeleton.feature_dim != self.feature_dim:
            raise ValueError(f"DatasetMeta {self.name!r}: skeleton {self.skeleton.name!r} has {self.skeleton.feature_dim} "
                             f"features per frame but feature_dim is {self.feature_dim}")

    # ------------------------------------------------------------------ (de)normalisation
    def normalize(self, x: Any) -> Any:
        """``(x - mean) / std`` over the last axis; numpy in -> numpy out, torch in -> torch out."""
        mean, std = self._stats_like(x)
        return (x - mean) / std

    def denormalize(self, x: Any) -> Any:
        """``x * std + mean`` over the last axis (inverse of :meth:`normalize`)."""
        mean, std = self._stats_like(x)
        return x * std + mean

    def _stats_like(self, x: Any):
        shape = tuple(getattr(x, "shape", ()))
        if not shape or shape[-1] != self.feature_dim:
            raise ValueError(f"expected features with last dimension {self.feature_dim} ({self.skeleton.name}), "
                             f"got shape {shape}")
        if _is_torch(x):
            import torch

            dtype = x.dtype if x.is_floating_point() else torch.float32
            return (torch.as_tensor(self.mean, dtype=dtype, device=x.device),
                    torch.as_tensor(self.std, dtype=dtype, device=x.device))
        x_dtype = np.asarray(x).dtype
        dtype = x_dtype if np.issubdtype(x_dtype, np.floating) else np.float32
        return self.mean.astype(dtype), self.std.astype(dtype)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (mean, std) atomically."""
        import torch

        config = {"name": self.name, "skeleton": self.skeleton.name, "fps": self.fps, "feature_dim": self.feature_dim,
                  "normalization": self.normalization, "extra": self.extra}
        tensors = {"mean": torch.from_numpy(self.mean.copy()), "std": torch.from_numpy(self.std.copy())}
        return save_folder(directory, COMPONENT, config, tensors)

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "DatasetMeta":
        """Read a folder written by :meth:`save`; problems raise :class:`CheckpointError` naming the file."""
        config = load_config(directory, COMPONENT)
        tensors = load_tensors(directory)
        missing = [k for k in ("mean", "std") if k not in tensors]
        if missing:
            raise CheckpointError(f"{Path(directory)}: dataset statistics lack {missing}; re-save the DatasetMeta")
        try:
            return cls(name=config.get("name", Path(directory).name), skeleton=config["skeleton"], fps=config["fps"],
                       feature_dim=config["feature_dim"], mean=tensors["mean"].numpy(), std=tensors["std"].numpy(),
                       normalization=config.get("normalization", DEFAULT_NORMALIZATION), extra=config.get("extra", {}))
        except KeyError as exc:
            raise CheckpointError(f"{Path(directory) / 'config.json'}: missing entry {exc}; re-save the DatasetMeta") from exc
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{Path(directory)}: inconsistent dataset metadata ({exc})") from exc

    @classmethod
    def from_dataset_root(cls, root: str | os.PathLike, skeleton: Skeleton | str | None = None,
                          name: str | None = None) -> "DatasetMeta":
        """Statistics of a HumanML3D-layout folder (``Mean.npy``/``Std.npy``).

        The skeleton comes from the argument, else from the folder's ``corpus.json``, else HumanML3D.
        """
        root, info = read_dataset_index(root)
        skeleton = dataset_skeleton(info, skeleton)
        arrays = {}
        for label in ("Mean", "Std"):
            path = root / f"{label}.npy"
            if not path.is_file():
                raise FileNotFoundError(f"{path}: missing; the dataset's normalisation statistics are needed "
                                        "(rebuild the corpus, or compute Mean.npy/Std.npy over the training split)")
            try:
                arr = np.load(path)
            except (OSError, ValueError) as exc:
                raise ValueError(f"{path}: unreadable ({exc}); recompute the statistics") from exc
            if arr.shape != (skeleton.feature_dim,):
                raise ValueError(f"{path}: shape {arr.shape}, expected ({skeleton.feature_dim},) for skeleton "
                                 f"{skeleton.name!r}; pass the dataset's skeleton (e.g. KIT for KIT-ML)")
            arrays[label] = arr
        note = info.get("normalization", {}).get("note", DEFAULT_NORMALIZATION)
        extra = {"root": str(root), "license": dict(info.get("license") or PROJECT_LICENSE)}
        if info.get("sources"):
            extra["sources"] = [{k: s[k] for k in ("name", "kind", "license") if k in s} for s in info["sources"]]
        return cls(name=name or root.name, skeleton=skeleton, fps=skeleton.fps, feature_dim=skeleton.feature_dim,
                   mean=arrays["Mean"], std=arrays["Std"], normalization=note, extra=extra)

    @property
    def license(self) -> dict:
        """Licence of the training data (``name``, ``url``, ``attribution``): what models trained on it inherit.

        Recorded from the dataset's ``corpus.json``; metadata saved before licences were recorded, and datasets
        that record none (the procedural corpus), are the project's own Apache-2.0 data.
        """
        return dict(self.extra.get("license") or PROJECT_LICENSE)


def _as_vector(x: Any, label: str) -> np.ndarray:
    if _is_torch(x):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float32)
    if arr.ndim != 1:
        raise ValueError(f"DatasetMeta: {label} must be a 1-D vector, got shape {arr.shape}")
    return arr


def _is_torch(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "device")
