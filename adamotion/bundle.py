"""The checkpoint bundle: one folder with every component the demo, the benchmarks and the model card load.

    bundle = adamotion.load("default")          # checkpoints/default, or any folder path
    pipe = bundle.pipeline("adaqf")               # MotionPipeline
    bundle.path("extractors")                     # a part's folder (a clear error when the bundle lacks it)
    adamotion.available_checkpoints()             # ["default", ...]

The layout (which sub-folder holds what) is :data:`BUNDLE_PARTS`; ``adamotion train all`` writes it and
``python -m adamotion.bundle parts DIR`` prints the parts a folder holds (the Makefile copies those).
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from adamotion.utils.serialization import CheckpointError

CHECKPOINTS_ROOT = Path(__file__).resolve().parents[1] / "checkpoints"  # where named bundles live


@dataclass(frozen=True)
class BundlePart:
    folder: str  # sub-folder of the bundle
    what: str  # one line for listings and the model card


# In the order listings show them (the model card's contents table).
BUNDLE_PARTS: dict[str, BundlePart] = {part.folder: part for part in (
    BundlePart("adaqf", "AdaQF generator pipeline: denoiser + LoRA adapters of the text encoder + length estimator"),
    BundlePart("baseline", "baseline generator pipeline (frozen vanilla text encoder, plain MSE), ablation ①"),
    BundlePart("extractors", "GRU text/motion extractors: AdaQF's quality feedback while training (never the evaluator)"),
    BundlePart("retrieval_vanilla", "retrieval motion encoder aligned to the vanilla encoder's space"),
    BundlePart("retrieval_ada", "retrieval motion encoder aligned to the adapted encoder's space"),
    BundlePart("gallery", "retrieval gallery (procedural train/test motions, float16 features and captions)"),
    BundlePart("evaluator", "independent text–motion evaluator (T2M architecture, own seed; judges every table, "
                            "loaded by no training job) + real_motion.json (physical readings of real clips)"),
    BundlePart("coverage", "known actions of the training corpus and the calibrated out-of-domain prompt threshold"),
)}
RETRIEVAL_PARTS = ("retrieval_vanilla", "retrieval_ada", "gallery")  # what the Retrieve tab needs


class CheckpointBundle:
    """A bundle folder; every part is looked up here, never spelled out by callers.

    A bundle may hold a subset of :data:`BUNDLE_PARTS` (the demo needs adaqf and baseline, the retrieval bench
    adaqf and the retrieval parts); asking for a part it lacks raises an error that lists what it has.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise CheckpointError(f"{self.root}: checkpoint bundle not found; {_available_hint()}")
        if not self.parts():
            raise CheckpointError(f"{self.root}: not a checkpoint bundle (none of {list(BUNDLE_PARTS)} inside); build "
                                  "one with `make default-checkpoints` or `adamotion train all`")

    def __repr__(self) -> str:
        return f"CheckpointBundle({str(self.root)!r}, parts={self.parts()})"

    @property
    def name(self) -> str:
        return self.root.name

    def has(self, part: str) -> bool:
        return (self.root / _part(part).folder).is_dir()

    def parts(self) -> list[str]:
        """The parts this bundle holds, in :data:`BUNDLE_PARTS` order."""
        return [name for name in BUNDLE_PARTS if self.has(name)]

    def path(self, part: str) -> Path:
        """The folder of ``part``; a :class:`CheckpointError` naming the parts the bundle has when it is missing."""
        folder = self.root / _part(part).folder
        if not folder.is_dir():
            raise CheckpointError(f"{folder}: this bundle has no {part!r} ({_part(part).what}); it has "
                                  f"{self.parts()}")
        return folder

    # -- components
    def pipeline(self, part: str = "adaqf", device: str = "cpu", *, text_encoder=None):
        """A generator :class:`~adamotion.pipeline.MotionPipeline` (``"adaqf"`` or ``"baseline"``)."""
        from adamotion.pipeline import MotionPipeline

        return MotionPipeline.from_pretrained(self.path(part), device=device, text_encoder=text_encoder)

    def extractors(self, device: str = "cpu"):
        """The frozen quality-feedback extractors (:class:`~adamotion.models.extractors.ExtractorPair`)."""
        from adamotion.models.extractors import ExtractorPair

        return ExtractorPair.from_pretrained(self.path("extractors")).to(device).eval()

    def evaluator(self, device: str = "cpu"):
        """The independent evaluator (:class:`~adamotion.eval.t2m_evaluator.TextMotionEvaluator`) that judges
        every published number; no generator was trained against it."""
        from adamotion.eval.t2m_evaluator import TextMotionEvaluator

        return TextMotionEvaluator.from_pretrained(self.path("evaluator"), map_location=device)

    def retrieval_gallery(self, *, text_encoder, cache_dir: str | os.PathLike, gallery_dir: str | os.PathLike | None = None):
        """The Retrieve tab's gallery with both retrieval motion encoders; ``gallery_dir`` replaces the bundle's
        own gallery (e.g. one written from another dataset)."""
        from adamotion.retrieval.gallery import ENCODER_KEYS, RetrievalGallery

        adapter = self.root / BUNDLE_PARTS["adaqf"].folder / "text_encoder"
        return RetrievalGallery.from_folders(
            {key: self.path(f"retrieval_{key}") for key in ENCODER_KEYS},
            Path(gallery_dir) if gallery_dir is not None else self.path("gallery"),
            text_encoder=text_encoder, cache_dir=cache_dir, adapter_dir=adapter if adapter.is_dir() else None)


def _part(part: str) -> BundlePart:
    if part not in BUNDLE_PARTS:
        raise ValueError(f"unknown bundle part {part!r}; the parts are {list(BUNDLE_PARTS)}")
    return BUNDLE_PARTS[part]


def available_checkpoints(root: str | os.PathLike = CHECKPOINTS_ROOT) -> list[str]:
    """Names of the bundles under ``root`` (``checkpoints/`` of the project): folders holding a generator."""
    root = Path(root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / BUNDLE_PARTS["adaqf"].folder).is_dir())


def _available_hint() -> str:
    names = available_checkpoints()
    listed = ", ".join(repr(n) for n in names) if names else "none yet (`make default-checkpoints` builds one)"
    return f"available under {CHECKPOINTS_ROOT}: {listed}; or pass a bundle folder's path"


def load(name_or_path: str | os.PathLike = "default") -> CheckpointBundle:
    """The bundle called ``name_or_path`` under ``checkpoints/``, or the folder at that path."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return CheckpointBundle(path)
    named = CHECKPOINTS_ROOT / str(name_or_path)
    if isinstance(name_or_path, str) and os.sep not in name_or_path and named.is_dir():
        return CheckpointBundle(named)
    raise CheckpointError(f"{name_or_path}: checkpoint bundle not found; {_available_hint()}")


def main(argv: list[str] | None = None) -> int:
    """``python -m adamotion.bundle parts DIR`` prints the bundle parts DIR holds (one line, spaces)."""
    parser = argparse.ArgumentParser(prog="python -m adamotion.bundle", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    parts = sub.add_parser("parts", help="print the part folders a bundle (or a `train all` run folder) holds")
    parts.add_argument("folder")
    sub.add_parser("list", help="print the names of the bundles under checkpoints/")
    args = parser.parse_args(argv)
    if args.command == "list":
        print(" ".join(available_checkpoints()))
        return 0
    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"python -m adamotion.bundle: error: {folder}: folder not found", file=sys.stderr)
        return 2
    print(" ".join(part.folder for part in BUNDLE_PARTS.values() if (folder / part.folder).is_dir()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
