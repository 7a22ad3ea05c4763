"""``adamotion train all``: every model the demo needs, from one config, into one checkpoint folder.

Stages (each one a normal training job in its own run folder, resumable on its own)::

    corpus      procedural corpus (adamotion.data.synthetic.build_corpus) in a cache folder, unless --data
    extractors  <out>/extractors/            ExtractorPair (quality feedback while training; never the evaluator)
    generators  <out>/<method>/              MotionPipeline per method: "methods" (adaqf, baseline) + "extra_methods"
    retrieval   <out>/retrieval_<kind>/      RetrievalMotionEncoder for the vanilla and the adapted text encoder
    gallery     <out>/gallery/               motions the demo's retrieval tab searches (optional)
    evaluator   <out>/evaluator/             TextMotionEvaluator: the independent judge of every published number;
                                             trained last, with its own seed, and loaded by no training stage
    summary     <out>/training_summary.json  per-stage times, results and sizes, hardware, the resolved config

A stage that already completed with the same config and inputs is skipped (``--force`` retrains it); an
interrupted stage resumes from its ``checkpoint/``.
"""
from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from adamotion.motion.skeleton import HUMANML3D
from adamotion.train import METHODS
from adamotion.train.evaluator import EvaluatorTrainConfig, train_evaluator
from adamotion.train.extractors import ExtractorTrainConfig, train_extractors
from adamotion.train.generator import GeneratorTrainConfig, train_generator
from adamotion.train.loop import (
    hardware_summary, read_json_config,
)
from adamotion.utils.config import config_from_dict, config_to_dict
from adamotion.train.retrieval import TEXT_ENCODER_CHOICES, RetrievalTrainConfig, train_retrieval
from adamotion.utils.paths import cache_root
from adamotion.utils.files import atomic_write_json, json_sha256

logger = logging.getLogger(__name__)

SUMMARY_NAME = "training_summary.json"
CORPUS_SIZES = ("tiny", "small", "default")


@dataclass
class CorpusConfig:
    """The procedural corpus built when no ``--data`` folder is given."""

    size: str = "default"  # build_corpus size preset: tiny | small | default
    num_motions: int | None = None  # override the preset's number of base motions
    seed: int = 0  # corpus seed
    cache_dir: str | None = None  # build folder; None: ($ADAMOTION_CACHE or ~/.cache/adamotion)/corpus-<size>-seed<N>
    workers: int | None = None  # corpus builder processes (None = all cores)


@dataclass
class GalleryConfig:
    """The retrieval gallery copied into ``<out>/gallery`` for the demo."""

    enabled: bool = True  # write it (needs adamotion.retrieval.gallery)
    splits: list[str] = field(default_factory=lambda: ["train", "test"])  # dataset splits it holds
    max_per_split: int | None = 160  # most motions per split (None = all); ~55 kB each (fp16), keeps the default under 40 MB


@dataclass
class CoverageConfig:
    """``<out>/coverage``: the known actions and the calibrated out-of-domain threshold the demo warns with."""

    enabled: bool = True  # write it (needs adaqf/text_encoder)
    per_action: int = 40  # example training captions kept per known action
    max_false_warnings: float = 0.05  # share of held-out test captions allowed below the threshold
    out_of_domain: str = "configs/coverage_out_of_domain.txt"  # calibration prompts (relative to the repository)


@dataclass
class TrainAllConfig:
    """``configs/default.json``: every hyper-parameter of ``adamotion train all``."""

    data: CorpusConfig = field(default_factory=CorpusConfig)  # corpus used when --data is not given
    extractors: ExtractorTrainConfig = field(default_factory=ExtractorTrainConfig)  # E_T / E_M training
    generator: GeneratorTrainConfig = field(default_factory=GeneratorTrainConfig)  # shared by every method
    methods: list[str] = field(default_factory=lambda: ["adaqf", "baseline"])  # generators the demo needs
    extra_methods: list[str] = field(default_factory=list)  # further ablations: constraints, lora, full
    method_overrides: dict = field(default_factory=dict)  # {method: partial generator config} per method
    retrieval: RetrievalTrainConfig = field(default_factory=RetrievalTrainConfig)  # retrieval motion encoders
    retrieval_encoders: list[str] = field(default_factory=lambda: ["vanilla", "ada"])  # text encoders to pair
    retrieval_pipeline: str = "adaqf"  # the method whose text encoder (adapters on / off) retrieval uses
    gallery: GalleryConfig = field(default_factory=GalleryConfig)  # demo retrieval gallery
    evaluator: EvaluatorTrainConfig = field(default_factory=EvaluatorTrainConfig)  # the independent evaluator
    coverage: CoverageConfig = field(default_factory=CoverageConfig)  # demo's "outside the training data" warning

    @classmethod
    def from_dict(cls, data: dict | None) -> "TrainAllConfig":
        data = {k: v for k, v in (data or {}).items() if not k.startswith("_")}  # "_about" etc. are comments
        config = config_from_dict(cls, data, "train-all config")
        methods = list(config.methods) + list(config.extra_methods)
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"train-all config: unknown method(s) {unknown}; choose from {list(METHODS)}")
        if len(set(methods)) != len(methods):
            raise ValueError(f"train-all config: a method is listed twice in methods + extra_methods: {methods}")
        bad = [k for k in config.retrieval_encoders if k not in TEXT_ENCODER_CHOICES]
        if bad:
            raise ValueError(f"train-all config: retrieval_encoders {bad} not in {list(TEXT_ENCODER_CHOICES)}")
        if "ada" in config.retrieval_encoders and config.retrieval_pipeline not in methods:
            raise ValueError(f"train-all config: retrieval_pipeline {config.retrieval_pipeline!r} is not trained "
                             f"(methods: {methods})")
        if config.data.size not in CORPUS_SIZES:
            raise ValueError(f"train-all config: data.size must be one of {CORPUS_SIZES}, got {config.data.size!r}")
        unknown = sorted(set(config.method_overrides) - set(methods))
        if unknown:
            raise ValueError(f"train-all config: method_overrides for methods not trained: {unknown}")
        return config

    def generator_config(self, method: str) -> GeneratorTrainConfig:
        from adamotion.utils.config import merge_dicts

        base = config_to_dict(self.generator)
        return GeneratorTrainConfig.from_dict(merge_dicts(base, self.method_overrides.get(method, {})))


def corpus_dir(config: CorpusConfig) -> Path:
    if config.cache_dir:
        return Path(config.cache_dir).expanduser()
    base = cache_root()
    suffix = f"-n{config.num_motions}" if config.num_motions else ""
    return base / f"corpus-{config.size}{suffix}-seed{config.seed}"


def ensure_corpus(config: CorpusConfig) -> Path:
    """The procedural corpus folder, built on first use (a finished build is reused)."""
    from adamotion.data.synthetic import build_corpus

    root = corpus_dir(config)
    marker = root / ".adamotion-corpus.json"
    wanted = config_to_dict(config)
    if marker.is_file() and json.loads(marker.read_text(encoding="utf-8")) == wanted:
        logger.info("corpus: reusing %s", root)
        return root
    logger.info("corpus: building the procedural corpus (%s) into %s", config.size, root)
    report = build_corpus(root, size=config.size, num_motions=config.num_motions, seed=config.seed,
                          workers=config.workers, skeleton=HUMANML3D)  # the procedural rig is HumanML3D's SMPL-22
    logger.info("corpus: %s", report.format() if hasattr(report, "format") else report)
    atomic_write_json(marker, wanted)
    return root


def _fingerprint(obj) -> str:
    return json_sha256(obj)[:16]


def _folder_mb(path: Path) -> float:
    """Size of a folder's deliverables (training checkpoints and TensorBoard logs not counted)."""
    total = 0
    for p in path.rglob("*"):
        parts = p.relative_to(path).parts
        if p.is_file() and "checkpoint" not in parts and "tb" not in parts and not parts[0].startswith("."):
            total += p.stat().st_size
    return total / 2**20


def train_all(config_path, out_dir, *, data_root=None, force: bool = False, device: str | None = None,
              config: dict | None = None) -> dict:
    """Run every stage; returns the summary dict (also written to ``<out>/training_summary.json``)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise RuntimeError("`train all` runs in one process; to use several GPUs launch the single jobs "
                           "(`adamotion train extractors|generator|retrieval`) with torchrun / accelerate launch")
    raw = dict(config) if config is not None else read_json_config(config_path)
    if device is not None:
        for section in ("extractors", "generator", "retrieval"):
            raw.setdefault(section, {}).setdefault("loop", {})["device"] = device
    cfg = TrainAllConfig.from_dict(raw)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary_path = out_dir / SUMMARY_NAME
    previous = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}
    done_before = previous.get("stages", {}) if not force else {}
    started = time.time()
    summary = {"config_file": str(config_path) if config_path else None, "config": config_to_dict(cfg),
               "hardware": hardware_summary(), "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "stages": {}}

    def run_stage(name: str, folder: Path, inputs: dict, fn) -> None:
        fingerprint = _fingerprint(inputs)
        old = done_before.get(name)
        if old and old.get("fingerprint") == fingerprint and folder.exists():
            logger.info("stage %s: already done (%s); skipping (--force retrains)", name, folder)
            summary["stages"][name] = old
            return
        logger.info("stage %s -> %s", name, folder)
        t0 = time.perf_counter()
        fn()
        entry = {"fingerprint": fingerprint, "seconds": round(time.perf_counter() - t0, 1), "out": str(folder)}
        result = folder / "train_summary.json"
        if result.is_file():
            entry["result"] = json.loads(result.read_text(encoding="utf-8"))
        summary["stages"][name] = entry
        _write_summary(summary, summary_path, started, out_dir)

    # corpus
    t0 = time.perf_counter()
    if data_root is None:
        root = ensure_corpus(cfg.data)
        summary["data"] = {"root": str(root), "built": True, "seconds": round(time.perf_counter() - t0, 1)}
    else:
        from adamotion.train.loop import check_data_root

        root = check_data_root(data_root)
        summary["data"] = {"root": str(root), "built": False}

    ext_dir = out_dir / "extractors"
    run_stage("extractors", ext_dir, {"data": str(root), "config": config_to_dict(cfg.extractors)},
              lambda: train_extractors(root, ext_dir, cfg.extractors))
    ext_fp = summary["stages"]["extractors"]["fingerprint"]

    for method in list(cfg.methods) + list(cfg.extra_methods):
        gen_cfg = cfg.generator_config(method)
        folder = out_dir / method
        run_stage(method, folder, {"data": str(root), "extractors": ext_fp, "config": config_to_dict(gen_cfg)},
                  lambda m=method, c=gen_cfg, f=folder: train_generator(root, ext_dir, f, m, c))

    for kind in cfg.retrieval_encoders:
        folder = out_dir / f"retrieval_{kind}"
        pipeline_dir = out_dir / cfg.retrieval_pipeline if cfg.retrieval_pipeline in summary["stages"] else None
        inputs = {"data": str(root), "config": config_to_dict(cfg.retrieval), "kind": kind,
                  "pipeline": summary["stages"][cfg.retrieval_pipeline]["fingerprint"] if pipeline_dir else None}
        run_stage(f"retrieval_{kind}", folder, inputs,
                  lambda k=kind, f=folder, p=pipeline_dir: train_retrieval(root, f, k, p, cfg.retrieval))

    if cfg.gallery.enabled:
        folder = out_dir / "gallery"
        inputs = {"data": str(root), "gallery": config_to_dict(cfg.gallery)}
        run_stage("gallery", folder, inputs, lambda: _write_gallery(root, folder, cfg.gallery, cfg.data.seed))

    folder = out_dir / "evaluator"
    run_stage("evaluator", folder, {"data": str(root), "config": config_to_dict(cfg.evaluator)},
              lambda: train_evaluator(root, folder, cfg.evaluator))

    if cfg.coverage.enabled and (out_dir / "adaqf" / "text_encoder").is_dir():
        folder = out_dir / "coverage"
        inputs = {"data": str(root), "coverage": config_to_dict(cfg.coverage),
                  "adaqf": summary["stages"].get("adaqf", {}).get("fingerprint")}
        run_stage("coverage", folder, inputs, lambda: _write_coverage(root, out_dir, folder, cfg.coverage, cfg.data.seed))

    return _write_summary(summary, summary_path, started, out_dir, finished=True)


def _write_coverage(root: Path, out_dir: Path, folder: Path, config: CoverageConfig, seed: int) -> None:
    from adamotion.text.coverage import write_coverage

    ood = Path(config.out_of_domain)
    if not ood.is_absolute():
        ood = Path(__file__).resolve().parents[2] / ood
    _, record = write_coverage(root, out_dir, ood, out_dir=folder, per_action=config.per_action, seed=seed,
                               max_false_warnings=config.max_false_warnings)
    logger.info("coverage threshold %.3f: %.0f%% of held-out captions pass, %.0f%% of out-of-domain prompts flagged",
                record["threshold"], 100 * record["in_domain_passed"], 100 * record["out_of_domain_flagged"])


def _write_gallery(root: Path, folder: Path, config: GalleryConfig, seed: int) -> None:
    from adamotion.retrieval.gallery import write_gallery

    write_gallery(root, folder, splits=tuple(config.splits), max_per_split=config.max_per_split, seed=seed)


def _write_summary(summary: dict, path: Path, started: float, out_dir: Path, finished: bool = False) -> dict:
    summary["total_s"] = round(sum(s.get("seconds", 0.0) for s in summary["stages"].values())
                               + summary.get("data", {}).get("seconds", 0.0), 1)
    summary["wall_s_this_run"] = round(time.time() - started, 1)
    summary["size_mb"] = round(sum(_folder_mb(out_dir / name) for name in summary["stages"]
                                   if (out_dir / name).is_dir()), 2)
    summary["sizes_mb"] = {name: round(_folder_mb(out_dir / name), 2) for name in summary["stages"]
                           if (out_dir / name).is_dir()}
    if finished:
        summary["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    summary["path"] = str(path)
    atomic_write_json(path, summary)
    return summary
