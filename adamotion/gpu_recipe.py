"""The GPU recipe: on one GPU machine with nothing but the repository (and a carried backbone pack), build
the corpus, train extractors + AdaQF + baseline with ``configs/gpu_h200.json`` (bf16, batch 256), benchmark
and leave at most :data:`MAX_OUTPUT_FILES` files of at most :data:`MAX_OUTPUT_BYTES` in the output folder.

Run it as ``scripts/gpu_train.sh OUT`` (``adamotion gpu-recipe``; see the script for the one-time
``adamotion pack-backbone`` step on a CPU machine).
``--tiny`` runs the same stages at smoke-test scale on the CPU (the test suite does), so every step but the
GPU's speed is checked before a GPU is ever lent.

Stages, each timed in ``recipe.json``:

1. corpus: the procedural corpus (16 worker processes) into ``<work>/corpus`` unless ``--data`` names one;
2. backbone: the carried pack (:mod:`adamotion.text.pack`) unpacked into ``<work>/backbone``, and every
   caption of the corpus checked to be covered by it;
3. train: ``train all`` with the backbone switched to ``hf:<work>/backbone`` everywhere;
4. bench: ``adamotion bench generate`` on the AdaQF pipeline (latency at batch 1, throughput at ``--batch``);
5. pack: one tar per trained component plus the logs, ``bench.json`` and ``recipe.json`` into ``OUT``.
"""
from __future__ import annotations

import json
import logging
import os
import tarfile
import time
from pathlib import Path

logger = logging.getLogger(__name__)

MAX_OUTPUT_FILES = 8
MAX_OUTPUT_BYTES = 16 * 1024 * 1024
GPU_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "gpu_h200.json"
TINY_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "tiny.json"
DEFAULT_PACK = Path("build") / "gpu" / "minilm-pack.safetensors"
COMPONENTS = ("extractors", "adaqf", "baseline")
LOG_FILES = ("log.csv", "val.csv", "config.json", "train_summary.json", "train_config.json")


def corpus_captions(root: str | os.PathLike) -> list[str]:
    """Every caption of a HumanML3D-layout dataset (the texts the backbone pack must cover)."""
    captions = set()
    for path in sorted(Path(root, "texts").glob("*.txt")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                captions.add(line.split("#", 1)[0].strip())
    return sorted(captions)


def demo_prompts() -> list[str]:
    """Prompts the recipe's benchmark and the checklist use (the pack covers them too)."""
    from adamotion.bench import BENCH_PROMPTS
    from adamotion.eval.checklist import CHECKLIST

    return list(BENCH_PROMPTS) + [item.prompt for item in CHECKLIST]


def recipe_config(base: dict, backbone_folder: Path, *, device: str, tiny: bool) -> dict:
    """The train-all config of the recipe: ``base`` with the unpacked backbone everywhere, no retrieval
    encoders and no gallery (the demo's extras are trained on the CPU path)."""
    config = json.loads(json.dumps(base))
    spec = f"hf:{backbone_folder}"
    config["extractors"].setdefault("model", {})["word_vectors"] = spec
    config["generator"]["backbone"] = spec
    config["retrieval_encoders"] = []
    config.setdefault("gallery", {})["enabled"] = False
    for section in ("extractors", "generator"):
        loop = config[section].setdefault("loop", {})
        loop.update(device=device, progress=False, tensorboard=False, keep_checkpoint=False)
        if tiny:
            loop.update(steps=4, checkpoint_every=4, val_every=4, log_every=1)
    return config


def _tar(out: Path, name: str, folder: Path, only: tuple[str, ...] | None = None) -> Path:
    path = out / f"{name}.tar"
    with tarfile.open(path, "w") as tar:
        for item in sorted(folder.rglob("*")):
            if item.is_file() and "checkpoint" not in item.relative_to(folder).parts[:1] and \
                    (only is None or item.name in only):
                tar.add(item, arcname=str(Path(name) / item.relative_to(folder)))
    return path


def check_outputs(out: Path) -> list[Path]:
    """The output folder's files, or a ValueError when they break the machine's limits."""
    files = sorted(p for p in out.rglob("*") if p.is_file())
    if len(files) > MAX_OUTPUT_FILES:
        raise ValueError(f"{out}: {len(files)} files, at most {MAX_OUTPUT_FILES} come back from the GPU machine")
    big = [f"{p.name} ({p.stat().st_size / 2**20:.1f} MiB)" for p in files if p.stat().st_size > MAX_OUTPUT_BYTES]
    if big:
        raise ValueError(f"{out}: {', '.join(big)} over the {MAX_OUTPUT_BYTES // 2**20} MiB limit per file; "
                         "lower save_dtype or the denoiser width in the recipe config")
    return files


def run_recipe(out: str | os.PathLike, *, work: str | os.PathLike | None = None, pack: str | os.PathLike = DEFAULT_PACK,
               data: str | os.PathLike | None = None, config_path: str | os.PathLike | None = None,
               device: str | None = None, tiny: bool = False, bench_batch: int = 256) -> dict:
    """Run the five stages; returns the recipe record (also ``OUT/recipe.json``)."""
    import torch

    from adamotion.bench import main as bench_main
    from adamotion.text.pack import check_coverage, unpack_backbone
    from adamotion.train.all import train_all
    from adamotion.train.loop import read_json_config
    from adamotion.utils.serialization import atomic_write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if any(out.iterdir()):
        raise ValueError(f"{out}: the output folder must be empty (it is what comes back from the GPU machine)")
    work = Path(work) if work is not None else out.parent / f"{out.name}-work"
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    config_path = Path(config_path or (TINY_CONFIG if tiny else GPU_CONFIG))
    record = {"device": device, "torch": torch.__version__, "config": str(config_path), "tiny": tiny, "stages": {}}
    if device.startswith("cuda"):
        record["gpu"] = torch.cuda.get_device_name(0)
    started = time.perf_counter()

    def stage(name: str, fn):
        t0 = time.perf_counter()
        logger.info("recipe stage %s", name)
        result = fn()
        record["stages"][name] = round(time.perf_counter() - t0, 2)
        return result

    base = read_json_config(config_path)
    if data is None:
        from adamotion.data.synthetic import build_corpus
        from adamotion.motion.skeleton import HUMANML3D

        corpus = work / "corpus"
        size = base.get("data", {}).get("size", "default")
        workers = base.get("data", {}).get("workers") or os.cpu_count()
        if not (corpus / "train.txt").is_file():
            stage("corpus", lambda: build_corpus(corpus, size=size, seed=base.get("data", {}).get("seed", 0),
                                                 workers=workers, skeleton=HUMANML3D))  # the procedural rig
    else:
        corpus = Path(data)
    backbone = work / "backbone"
    stage("backbone", lambda: (unpack_backbone(pack, backbone),
                               check_coverage(backbone, corpus_captions(corpus) + demo_prompts())))
    config = recipe_config(base, backbone, device=device, tiny=tiny)
    run_dir = work / "run"
    stage("train", lambda: train_all(config_path, run_dir, data_root=corpus, config=config))
    bench_json = out / "bench.json"
    bench_args = ["generate", "--checkpoint", str(run_dir / "adaqf"), "--device", device,
                  "--batch", str(2 if tiny else bench_batch), "--repeats", "1" if tiny else "3", "--json", str(bench_json)]
    stage("bench", lambda: bench_main(bench_args))
    for name in COMPONENTS:
        _tar(out, name, run_dir / name)
    logs = out / "logs.tar"
    with tarfile.open(logs, "w") as tar:
        for item in sorted(run_dir.rglob("*")):
            if item.is_file() and (item.name in LOG_FILES or item.name == "training_summary.json"):
                tar.add(item, arcname=str(Path("logs") / item.relative_to(run_dir)))
    record["total_s"] = round(time.perf_counter() - started, 2)
    atomic_write_json(out / "recipe.json", record)
    record["files"] = {p.name: p.stat().st_size for p in check_outputs(out)}
    atomic_write_json(out / "recipe.json", record)
    return record


# ----------------------------------------------------------------------------- commands
def register(sub) -> None:
    pack = sub.add_parser("pack-backbone", help="one-file fp16 copy of the text backbone for the GPU machine "
                                                 "(keeps the embedding rows a corpus's captions use)")
    pack.add_argument("--data", required=True, help="dataset folder whose captions the pack must cover")
    pack.add_argument("--out", default="build/gpu/minilm-pack.safetensors", help="pack file to write")
    pack.add_argument("--backbone-folder", default=None,
                      help="Hugging Face folder to pack (default: the installed all-MiniLM-L6-v2)")
    pack.set_defaults(func=_pack)

    recipe = sub.add_parser("gpu-recipe", help="corpus -> extractors, AdaQF, baseline (bf16) -> bench, into OUT "
                                                "(<= 8 files of <= 16 MiB); scripts/gpu_train.sh calls this")
    recipe.add_argument("--out", required=True, help="empty output folder (what comes back from the GPU machine)")
    recipe.add_argument("--pack", default="build/gpu/minilm-pack.safetensors", help="backbone pack (pack-backbone)")
    recipe.add_argument("--work", default=None, help="scratch folder for the corpus and the run (default OUT-work)")
    recipe.add_argument("--data", default=None, help="an existing dataset folder instead of building the corpus")
    recipe.add_argument("--config", default=None, help="train-all config (default configs/gpu_h200.json)")
    recipe.add_argument("--device", default=None, help="default: cuda when available")
    recipe.add_argument("--tiny", action="store_true", help="smoke-test scale on the CPU (configs/tiny.json, 4 steps)")
    recipe.add_argument("--bench-batch", type=int, default=256, help="batch of the throughput measurement")
    recipe.set_defaults(func=_gpu_recipe)


def _pack(args) -> int:
    from adamotion.text.backbones import default_minilm_folder
    from adamotion.text.pack import pack_backbone

    folder = args.backbone_folder or default_minilm_folder()
    info = pack_backbone(folder, corpus_captions(args.data) + demo_prompts(), args.out)
    print(f"wrote {info['path']}: {info['bytes'] / 2**20:.1f} MiB, {info['kept_tokens']} of {info['vocab_size']} "
          "token rows")
    return 0


def _gpu_recipe(args) -> int:
    record = run_recipe(args.out, work=args.work, pack=args.pack, data=args.data, config_path=args.config,
                        device=args.device, tiny=args.tiny, bench_batch=args.bench_batch)
    stages = ", ".join(f"{k} {v:.0f} s" for k, v in record["stages"].items())
    print(f"recipe on {record['device']} in {record['total_s'] / 60:.1f} min ({stages}); "
          f"{len(record['files'])} files in {args.out}")
    return 0
