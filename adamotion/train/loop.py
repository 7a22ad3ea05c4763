"""Shared training machinery: config helpers, EMA, resumable checkpoints, CSV logging, the step loop.

One :class:`Trainer` runs every training job of the project (extractors, generator, retrieval encoder).
The job supplies the modules being trained, their parameter groups, a ``loss_fn(batch, generator) ->
{name: scalar tensor}`` whose ``"total"`` entry is optimised, and optionally a ``validate_fn() -> {name:
float}``. The trainer owns everything else:

* **Resume.** Every ``checkpoint_every`` steps and at the end, ``<run>/checkpoint/`` is replaced atomically
  (temporary folder, then rename) with the trainable weights, their EMA, the optimizer and lr-scheduler
  state, the data position (epoch, batch in epoch), every RNG state (torch CPU/CUDA, numpy, python and the
  trainer's own generator) and the resolved run config. A run started again on the same folder continues
  from there (automatically, or required with ``resume=True``): on one process, with ``num_workers=0`` or a
  dataset whose randomness is keyed on (seed, epoch, index), the resumed run ends with the same weights as
  an uninterrupted one. Log rows written after the checkpoint by the killed process are dropped.
* **EMA.** An exponential moving average of every trainable weight; validation and the exported weights
  use it (``ema_decay=0`` turns it off).
* **Logging.** ``<run>/log.csv`` (step, each loss, grad_norm, lr per group, elapsed time), ``<run>/val.csv``
  (step + validation metrics), TensorBoard under ``<run>/tb`` when ``tensorboard`` is installed, and a tqdm
  bar showing the losses.
* **Accelerators.** On CUDA: bf16 autocast (``mixed_precision``) and ``torch.compile`` of the modules the job
  marks with :meth:`Trainer.maybe_compile` (``compile``). Both are ignored on CPU.
* **Several GPUs.** Start the same command with ``torchrun --nproc_per_node N -m adamotion train ...`` or
  ``accelerate launch --multi_gpu --num_processes N -m adamotion train ...`` (both set ``RANK``/``WORLD_SIZE``/
  ``LOCAL_RANK``). Each process takes a disjoint slice of every global batch (``batch_size`` is per
  process), gradients are averaged with ``all_reduce`` before the optimizer step (so every replica keeps the
  same weights), and only rank 0 writes logs and checkpoints. A single process never touches
  ``torch.distributed``. Bitwise-identical resume is promised for single-process runs only.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import logging
import os
import platform
import random
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from adamotion.utils.version import __version__
from adamotion.utils.files import atomic_file, atomic_folder, make_public, read_json
from adamotion.utils.serialization import CheckpointError, atomic_write_json, load_config, replace_dir

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_COMPONENT = "training_state"
CHECKPOINT_VERSION = 1
LOG_NAME = "log.csv"
VAL_LOG_NAME = "val.csv"


# --------------------------------------------------------------------------------------------- config
@dataclass
class LoopConfig:
    """Settings every training job shares (one section ``loop`` in each job's config)."""

    steps: int = 3000  # optimizer steps in the whole run
    batch_size: int = 64  # samples per step (per process when several GPUs are used)
    lr: float = 2e-4  # peak learning rate of the main parameter group (after warm-up)
    weight_decay: float = 0.0  # AdamW decoupled weight decay
    adam_betas: tuple[float, float] = (0.9, 0.999)  # AdamW (beta1, beta2)
    warmup_steps: int = 100  # linear lr warm-up from 0 over this many steps
    lr_decay_at: float = 0.5  # fraction of `steps` from which the lr is x lr_decay_factor (paper: x0.1 at 300k of 600k)
    lr_decay_factor: float = 0.1  # the step decay factor; 1.0 = constant lr after warm-up
    grad_clip: float = 1.0  # max global gradient norm; 0 = no clipping
    ema_decay: float = 0.999  # EMA of trainable weights (used for validation and export); 0 = no EMA
    checkpoint_every: int = 500  # save the resumable state every N steps (always at the end too)
    keep_checkpoint: bool = True  # keep <run>/checkpoint after the run ends (needed to extend/resume it later)
    log_every: int = 10  # write one log.csv row (mean over the window) every N steps
    val_every: int = 500  # validate every N steps (always at the end); 0 = only at the end
    seed: int = 0  # seeds weights, data order, noise and dropout
    crop_frames: int | None = None  # train on random crops of at most N frames (None = skeleton.max_frames); smoke runs
    num_workers: int = 0  # DataLoader worker processes (0 = in the main process; exact resume guaranteed)
    device: str = "auto"  # "auto" (cuda when available), "cpu", "cuda", "cuda:1", ...
    mixed_precision: str = "bf16"  # "bf16" or "no"; autocast is only used on CUDA
    compile: bool = True  # torch.compile the generator's denoiser; only used on CUDA
    progress: bool = True  # show a tqdm progress bar
    tensorboard: bool = True  # also write TensorBoard scalars to <run>/tb when tensorboard is installed

    def validate(self) -> None:
        if self.steps < 1:
            raise ValueError(f"loop.steps must be >= 1, got {self.steps}")
        if self.batch_size < 1:
            raise ValueError(f"loop.batch_size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"loop.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"loop.ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.mixed_precision not in ("bf16", "no"):
            raise ValueError(f"loop.mixed_precision must be 'bf16' or 'no', got {self.mixed_precision!r}")
        if self.checkpoint_every < 1 or self.log_every < 1 or self.val_every < 0:
            raise ValueError("loop.checkpoint_every and loop.log_every must be >= 1, loop.val_every >= 0")


# Keys of a run config that may change between a run and its resumption (they do not change the maths).
RESUME_TOLERANT_KEYS = frozenset({
    "steps", "checkpoint_every", "keep_checkpoint", "log_every", "val_every", "num_workers", "progress",
    "tensorboard", "device", "compile",
})


def read_json_config(path: str | os.PathLike, section: str | None = None) -> dict:
    """Read a JSON config file; with ``section``, return that sub-object when the file has it.

    So ``--config configs/default.json`` (the whole ``train all`` config) and a file holding only one job's
    section both work for a single job.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: config file not found")
    data = read_json(path, what="config file", fix="fix the JSON syntax")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object at the top level")
    if section is not None and isinstance(data.get(section), dict):
        return data[section]
    return data


# -------------------------------------------------------------------------------------- environment
def resolve_device(spec: str = "auto") -> torch.device:
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {spec!r} requested but CUDA is not available; use --device cpu or 'auto'")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def hardware_summary() -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


@dataclass(frozen=True)
class DistributedContext:
    """Process layout from the environment that ``torchrun`` and ``accelerate launch`` set."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "DistributedContext":
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return cls()
        return cls(rank=int(os.environ.get("RANK", "0")), world_size=world,
                   local_rank=int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def setup(self, device: torch.device) -> torch.device:
        """Join the process group; on CUDA each process takes GPU ``local_rank``."""
        if not self.enabled:
            return device
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
        return device

    def all_reduce_mean_(self, tensors: Iterable[torch.Tensor]) -> None:
        if not self.enabled:
            return
        import torch.distributed as dist

        handles = [dist.all_reduce(t, op=dist.ReduceOp.SUM, async_op=True) for t in tensors]
        for handle in handles:
            handle.wait()
        for t in tensors:
            t.div_(self.world_size)

    def barrier(self) -> None:
        if self.enabled:
            import torch.distributed as dist

            dist.barrier()


# -------------------------------------------------------------------------------------------- data
class EpochBatchSampler(torch.utils.data.Sampler):
    """Shuffled batches that depend only on (seed, epoch): restartable mid-epoch and shardable.

    Epoch ``e`` draws one permutation from a generator seeded with ``(seed, e)``; global batch ``b`` is the
    slice ``[b * B * W, (b + 1) * B * W)`` of it, and process ``r`` takes its ``r``-th sub-slice of ``B``.
    Incomplete trailing batches are dropped (a dataset smaller than one global batch gives one smaller batch).
    """

    def __init__(self, num_items: int, batch_size: int, seed: int, *, rank: int = 0, world_size: int = 1):
        if num_items < 1:
            raise ValueError("cannot train on an empty dataset split")
        self.num_items = num_items
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        per_process = min(batch_size, num_items // world_size)
        if per_process < 1:
            raise ValueError(f"{num_items} samples cannot be shared by {world_size} processes")
        if per_process < batch_size:
            logger.warning("dataset has %d samples, fewer than one batch of %d x %d processes; using batches of %d",
                           num_items, batch_size, world_size, per_process)
        self.batch_size = per_process
        self.epoch = 0
        self.start_batch = 0

    def set_position(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start_batch = epoch, start_batch

    def __len__(self) -> int:
        return self.num_items // (self.batch_size * self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        perm = torch.randperm(self.num_items, generator=g).tolist()
        global_batch = self.batch_size * self.world_size
        for b in range(self.start_batch, len(self)):
            start = b * global_batch + self.rank * self.batch_size
            yield perm[start:start + self.batch_size]


def to_device(obj, device: torch.device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and obj and isinstance(obj[0], torch.Tensor):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


# -------------------------------------------------------------------------------------------- EMA
class EMA:
    """Exponential moving average of named parameters (kept in fp32 on the parameters' device).

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` so the average is not stuck at the initial
    weights in short runs.
    """

    def __init__(self, params: Mapping[str, nn.Parameter], decay: float):
        self.params = dict(params)
        self.decay = decay
        self.num_updates = 0
        self.shadow = {k: p.detach().float().clone() for k, p in self.params.items()}

    @torch.no_grad()
    def update(self) -> None:
        self.num_updates += 1
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        for k, p in self.params.items():
            self.shadow[k].lerp_(p.detach().float(), 1.0 - d)

    @torch.no_grad()
    def copy_to_params(self) -> None:
        for k, p in self.params.items():
            p.copy_(self.shadow[k].to(p.dtype))

    @contextlib.contextmanager
    def applied(self):
        """Temporarily load the EMA weights into the parameters (restored on exit)."""
        backup = {k: p.detach().clone() for k, p in self.params.items()}
        self.copy_to_params()
        try:
            yield
        finally:
            with torch.no_grad():
                for k, p in self.params.items():
                    p.copy_(backup[k])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: Mapping[str, torch.Tensor], num_updates: int) -> None:
        missing = sorted(set(self.shadow) - set(state))
        if missing:
            raise CheckpointError(f"EMA state lacks {missing[:5]}")
        for k in self.shadow:
            self.shadow[k].copy_(state[k])
        self.num_updates = num_updates


# ------------------------------------------------------------------------------------------ logging
class CSVLogger:
    """Append rows to a CSV whose columns are fixed by the first row; on resume, rows past ``step`` are cut."""

    def __init__(self, path: Path, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled
        self.columns: list[str] | None = None
        if enabled and self.path.is_file():
            with self.path.open(newline="", encoding="utf-8") as f:
                reader = csv.reader(f)
                self.columns = next(reader, None)

    def truncate_after(self, step: int) -> None:
        if not (self.enabled and self.path.is_file()):
            return
        with self.path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        if not rows:
            return
        kept = [rows[0]] + [r for r in rows[1:] if r and int(float(r[0])) <= step]
        if len(kept) != len(rows):
            with atomic_file(self.path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows(kept)

    def log(self, row: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        if self.columns is None:
            self.columns = list(row)
            with self.path.open("w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerow(self.columns)
        extra = [k for k in row if k not in self.columns]
        if extra:
            logger.debug("%s: columns %s not in the header; dropped", self.path.name, extra)
        with self.path.open("a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerow([_fmt(row.get(c, "")) for c in self.columns])


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def read_log(path: str | os.PathLike) -> list[dict[str, float]]:
    """Rows of a log.csv / val.csv as dicts of floats (for tests and reports)."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def _tensorboard_writer(run_dir: Path, wanted: bool):
    if not wanted:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        logger.debug("tensorboard not installed; logging to CSV only")
        return None
    return SummaryWriter(str(run_dir / "tb"))


# ------------------------------------------------------------------------------------------ trainer
def lr_multiplier(step: int, loop: LoopConfig) -> float:
    """Multiplier of each group's peak lr at optimizer step ``step`` (0-based): linear warm-up, then one
    step decay by ``lr_decay_factor`` from ``lr_decay_at * steps`` on (the paper: x0.1 half-way)."""
    factor = 1.0
    if loop.warmup_steps > 0:
        factor = min(1.0, (step + 1) / loop.warmup_steps)
    if step >= int(loop.lr_decay_at * loop.steps):
        factor *= loop.lr_decay_factor
    return factor


@dataclass
class TrainState:
    """Everything about the run's progress that is not a tensor (``config.json`` of the checkpoint)."""

    step: int = 0  # optimizer steps done
    epoch: int = 0  # current epoch (data permutation index)
    batch_in_epoch: int = 0  # batches of the current epoch already consumed
    elapsed_s: float = 0.0  # training wall time summed over all processes' lives
    version: str = __version__  # adamotion version that wrote the checkpoint
    checkpoint_version: int = CHECKPOINT_VERSION
    config: dict = field(default_factory=dict)  # resolved run config
    last_losses: dict = field(default_factory=dict)  # window means of the last log row
    last_val: dict = field(default_factory=dict)  # last validation metrics
    window: dict = field(default_factory=dict)  # per-step losses since the last log row (so rows resume exactly)


LossFn = Callable[[dict, torch.Generator], dict]


class Trainer:
    """Runs ``loss_fn`` over shuffled batches with AdamW, EMA, checkpoints, logs and validation.

    ``modules``: name -> module being trained; their parameters with ``requires_grad`` are the trainable
    set (checkpointed, EMA-averaged) and must be exactly those of ``param_groups``.
    ``param_groups``: list of ``{"name": str, "params": [...], "lr": float}`` (lr = that group's peak lr).
    ``run_config``: the job's resolved config; written to the checkpoint and checked on resume.
    ``loop``: the job's :class:`LoopConfig`.
    ``resume``: ``None`` = resume when ``<run>/checkpoint`` exists; ``True`` = it must exist; ``False`` =
    start fresh (an existing checkpoint is overwritten at the next save).
    ``callbacks``: ``f(trainer, losses)`` called after every step (progress reporting; tests inject kills).
    """

    def __init__(self, *, run_dir: str | os.PathLike, loop: LoopConfig, modules: Mapping[str, nn.Module],
                 param_groups: list[dict], loss_fn: LossFn, train_dataset, collate_fn: Callable,
                 run_config: dict, validate_fn: Callable[[], dict] | None = None, resume: bool | None = None,
                 callbacks: Iterable[Callable] = (), device: torch.device | None = None):
        loop.validate()
        self.run_dir = Path(run_dir)
        self.loop = loop
        self.modules = dict(modules)
        self.loss_fn = loss_fn
        self.validate_fn = validate_fn
        self.train_dataset = train_dataset
        self.collate_fn = collate_fn
        self.callbacks = list(callbacks)
        self.resume = resume
        self.dist = DistributedContext.from_env()
        self.device = self.dist.setup(device or resolve_device(loop.device))
        self.use_bf16 = self.device.type == "cuda" and loop.mixed_precision == "bf16"
        self.use_compile = self.device.type == "cuda" and loop.compile
        self.state = TrainState(config=run_config)

        for module in self.modules.values():
            module.to(self.device)
        self.trainable = self._collect_trainable()
        self._check_groups(param_groups)
        self.param_groups = param_groups
        self.optimizer = torch.optim.AdamW(
            [{"params": g["params"], "lr": g["lr"], "name": g["name"]} for g in param_groups],
            lr=loop.lr, betas=tuple(loop.adam_betas), weight_decay=loop.weight_decay)
        self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self.lr_factor)
        self.ema = EMA(self.trainable, loop.ema_decay) if loop.ema_decay > 0 else None
        self.generator = torch.Generator(self.device).manual_seed(loop.seed + 1_000 * self.dist.rank)
        self.sampler = EpochBatchSampler(len(train_dataset), loop.batch_size, loop.seed,
                                         rank=self.dist.rank, world_size=self.dist.world_size)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        main = self.dist.is_main
        self.log_csv = CSVLogger(self.run_dir / LOG_NAME, enabled=main)
        self.val_csv = CSVLogger(self.run_dir / VAL_LOG_NAME, enabled=main)
        self.tb = None
        self.resumed_from: int | None = None
        self._step_lrs: list[float] = []

    # ---------------------------------------------------------------- setup helpers
    def _collect_trainable(self) -> dict[str, nn.Parameter]:
        out = {}
        for mname, module in self.modules.items():
            for pname, p in module.named_parameters():
                if p.requires_grad:
                    out[f"{mname}.{pname}"] = p
        if not out:
            raise ValueError("nothing to train: no parameter of " + ", ".join(self.modules) + " requires grad")
        return out

    def _check_groups(self, groups: list[dict]) -> None:
        ids_groups = [id(p) for g in groups for p in g["params"]]
        if len(ids_groups) != len(set(ids_groups)):
            raise ValueError("a parameter appears in two parameter groups")
        ids_trainable = {id(p) for p in self.trainable.values()}
        if set(ids_groups) != ids_trainable:
            raise ValueError(f"parameter groups hold {len(set(ids_groups))} tensors but the modules have "
                             f"{len(ids_trainable)} trainable ones; every trainable weight needs a group")

    def lr_factor(self, step: int) -> float:
        return lr_multiplier(step, self.loop)

    def maybe_compile(self, module: nn.Module) -> Callable:
        """``torch.compile(module)`` on CUDA when ``loop.compile``; the module itself otherwise.

        The compiled wrapper is only used for calls: checkpoints always read the original module's
        state (no ``_orig_mod.`` prefixes).
        """
        if self.use_compile:
            logger.info("torch.compile(%s)", type(module).__name__)
            return torch.compile(module)
        return module

    def autocast(self):
        if self.use_bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / CHECKPOINT_DIR

    @property
    def step(self) -> int:
        return self.state.step

    # ---------------------------------------------------------------- checkpoints
    def _trainable_state(self) -> dict[str, torch.Tensor]:
        """Trainable parameters and all buffers of the trained modules (frozen weights come from their source)."""
        out = {}
        for mname, module in self.modules.items():
            frozen = {n for n, p in module.named_parameters(remove_duplicate=False) if not p.requires_grad}
            for key, value in module.state_dict().items():
                if key not in frozen:
                    out[f"{mname}.{key}"] = value
        return out

    def save_checkpoint(self) -> Path | None:
        """Atomically replace ``<run>/checkpoint`` with the full resumable state (rank 0 only)."""
        if not self.dist.is_main:
            self.dist.barrier()
            return None
        from safetensors.torch import save_file

        with atomic_folder(self.checkpoint_dir) as tmp:
            save_file({k: v.detach().contiguous().cpu() for k, v in self._trainable_state().items()},
                      str(tmp / "trainable.safetensors"))
            rng = {"torch_cpu": torch.get_rng_state(), "generator": self.generator.get_state().cpu()}
            if torch.cuda.is_available():
                for i, s in enumerate(torch.cuda.get_rng_state_all()):
                    rng[f"torch_cuda_{i}"] = s
            save_file(rng, str(tmp / "rng.safetensors"))
            if self.ema is not None:
                save_file({k: v.contiguous().cpu() for k, v in self.ema.state_dict().items()},
                          str(tmp / "ema.safetensors"))
            torch.save({"optimizer": self.optimizer.state_dict(), "lr_scheduler": self.lr_scheduler.state_dict()},
                       tmp / "optimizer.pt")
            np_state = np.random.get_state()
            py_state = random.getstate()
            info = {
                "component": CHECKPOINT_COMPONENT,
                "format_version": 1,
                **dataclasses.asdict(self.state),
                "ema_updates": self.ema.num_updates if self.ema else 0,
                "numpy_rng": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]),
                              float(np_state[4])],
                "python_rng": [py_state[0], list(py_state[1]), py_state[2]],
                "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            (tmp / "config.json").write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
        self.dist.barrier()
        logger.debug("checkpoint at step %d -> %s", self.state.step, self.checkpoint_dir)
        return self.checkpoint_dir

    def load_checkpoint(self) -> None:
        from safetensors.torch import load_file

        ckpt = self.checkpoint_dir
        info = load_config(ckpt, CHECKPOINT_COMPONENT)
        if info.get("checkpoint_version") != CHECKPOINT_VERSION:
            raise CheckpointError(f"{ckpt}: checkpoint format {info.get('checkpoint_version')} is not "
                                  f"{CHECKPOINT_VERSION}; it cannot be resumed by this version")
        self._check_resume_config(info.get("config", {}))
        try:
            trainable = load_file(str(ckpt / "trainable.safetensors"))
            rng = load_file(str(ckpt / "rng.safetensors"))
            opt = torch.load(ckpt / "optimizer.pt", map_location="cpu", weights_only=True)
            ema = load_file(str(ckpt / "ema.safetensors")) if self.ema is not None else None
        except (OSError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{ckpt}: partial or corrupt training checkpoint ({exc}); "
                                  f"delete the folder to start the run again") from exc
        own = self._trainable_state()
        missing, unexpected = sorted(set(own) - set(trainable)), sorted(set(trainable) - set(own))
        if missing or unexpected:
            raise CheckpointError(f"{ckpt}: trainable weights do not match this run (missing {missing[:5]}, "
                                  f"unexpected {unexpected[:5]}); was it made with another method/config?")
        for mname, module in self.modules.items():
            prefix = f"{mname}."
            sub = {k[len(prefix):]: v for k, v in trainable.items() if k.startswith(prefix)}
            result = module.load_state_dict(sub, strict=False)
            if result.unexpected_keys:
                raise CheckpointError(f"{ckpt}: unexpected keys for {mname}: {result.unexpected_keys[:5]}")
        self.optimizer.load_state_dict(opt["optimizer"])
        self.lr_scheduler.load_state_dict(opt["lr_scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(ema, int(info.get("ema_updates", 0)))
        torch.set_rng_state(rng["torch_cpu"])
        self.generator.set_state(rng["generator"].to(self.generator.get_state().device))
        cuda_states = [rng[k] for k in sorted(rng) if k.startswith("torch_cuda_")]
        if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        n = info["numpy_rng"]
        np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
        p = info["python_rng"]
        random.setstate((p[0], tuple(p[1]), p[2]))
        names = {f.name for f in dataclasses.fields(TrainState)}
        saved = {k: v for k, v in info.items() if k in names}
        saved["config"] = self.state.config  # the current config (only tolerant keys may differ)
        self.state = TrainState(**saved)
        self.resumed_from = self.state.step
        logger.info("resumed %s at step %d (epoch %d)", self.run_dir, self.state.step, self.state.epoch)

    def _check_resume_config(self, saved: dict) -> None:
        diffs = _dict_diff(saved, self.state.config)
        blocking = [f"{k}: {a!r} -> {b!r}" for k, a, b in diffs if k.split(".")[-1] not in RESUME_TOLERANT_KEYS]
        if blocking:
            raise CheckpointError(
                f"{self.checkpoint_dir}: the run was started with a different config ({'; '.join(blocking[:6])}); "
                f"use another --out folder, or delete {self.checkpoint_dir} to start this one again")
        for k, a, b in diffs:
            logger.info("resume: config change accepted: %s: %r -> %r", k, a, b)

    # ---------------------------------------------------------------- the loop
    def train(self) -> TrainState:
        loop = self.loop
        if self.checkpoint_dir.exists() and self.resume is not False:
            self.load_checkpoint()
        elif self.resume:
            raise CheckpointError(f"{self.checkpoint_dir}: nothing to resume (no checkpoint folder); "
                                  f"drop --resume to start a new run")
        else:
            seed_everything(loop.seed)
        self.log_csv.truncate_after(self.state.step)
        self.val_csv.truncate_after(self.state.step)
        if self.dist.is_main:
            self.tb = _tensorboard_writer(self.run_dir, loop.tensorboard)
        for module in self.modules.values():
            module.train()

        start_time = time.perf_counter() - self.state.elapsed_s
        bar = None
        if loop.progress and self.dist.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=loop.steps, initial=min(self.state.step, loop.steps), desc=self.run_dir.name,
                       dynamic_ncols=True, leave=False)
        try:
            while self.state.step < loop.steps:
                self._run_epoch(bar, start_time)
            self.state.elapsed_s = time.perf_counter() - start_time
            if not self.state.last_val or self.state.last_val.get("step") != self.state.step:
                self.run_validation()
            self.save_checkpoint()
        finally:
            if bar is not None:
                bar.close()
            if self.tb is not None:
                self.tb.close()
        return self.state

    def _run_epoch(self, bar, start_time: float) -> None:
        loop, st = self.loop, self.state
        if hasattr(self.train_dataset, "set_epoch"):
            self.train_dataset.set_epoch(st.epoch)
        self.sampler.set_position(st.epoch, st.batch_in_epoch)
        loader = torch.utils.data.DataLoader(
            self.train_dataset, batch_sampler=self.sampler, collate_fn=self.collate_fn,
            num_workers=loop.num_workers, pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(loop.seed * 7919 + st.epoch))
        for batch in loader:
            losses = self.train_step(to_device(batch, self.device))
            st.batch_in_epoch += 1
            st.step += 1
            st.elapsed_s = time.perf_counter() - start_time
            self._record(losses, bar)
            for callback in self.callbacks:
                callback(self, losses)
            if st.step >= loop.steps:
                return
            if loop.val_every and st.step % loop.val_every == 0:
                self.run_validation()
            if st.step % loop.checkpoint_every == 0:
                self.save_checkpoint()
        st.epoch += 1
        st.batch_in_epoch = 0

    def train_step(self, batch: dict) -> dict[str, float]:
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            losses = self.loss_fn(batch, self.generator)
        if "total" not in losses:
            raise KeyError(f"loss_fn must return a 'total' entry; got {sorted(losses)}")
        total = losses["total"]
        if not torch.isfinite(total):
            values = {k: float(v) for k, v in losses.items()}
            raise RuntimeError(f"{self.run_dir}: non-finite loss at step {self.state.step + 1}: {values}; "
                               f"lower the lr or check the data (last good checkpoint: {self.checkpoint_dir})")
        total.backward()
        params = list(self.trainable.values())
        if self.dist.enabled:  # every rank must reduce the same tensors, also where a weight got no gradient
            for p in params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            self.dist.all_reduce_mean_([p.grad for p in params])
        if self.loop.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, self.loop.grad_clip)
        else:
            grad_norm = torch.sqrt(sum((p.grad.float() ** 2).sum() for p in params if p.grad is not None))
        self.optimizer.step()
        self._step_lrs = [group["lr"] for group in self.optimizer.param_groups]  # the lr this step used
        self.lr_scheduler.step()
        if self.ema is not None:
            self.ema.update()
        out = {k: float(v.detach()) for k, v in losses.items()}
        out["grad_norm"] = float(grad_norm)
        return out

    def _record(self, losses: dict[str, float], bar) -> None:
        st = self.state
        for k, v in losses.items():
            st.window.setdefault(k, []).append(v)
        if bar is not None:
            bar.update(1)
            if st.step % max(1, min(self.loop.log_every, 10)) == 0:
                bar.set_postfix({k: f"{v:.4f}" for k, v in losses.items() if k != "grad_norm"}, refresh=False)
        if st.step % self.loop.log_every and st.step < self.loop.steps:
            return
        means = {k: float(np.mean(v)) for k, v in st.window.items()}
        st.window = {}
        st.last_losses = means
        row = {"step": st.step, **means}
        for i, (group, lr) in enumerate(zip(self.optimizer.param_groups, self._step_lrs)):
            row["lr" if i == 0 else f"lr_{group['name']}"] = lr
        row["time"] = round(st.elapsed_s, 3)
        self.log_csv.log(row)
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("step", "time"):
                    self.tb.add_scalar(f"train/{k}", v, st.step)
        logger.debug("step %d %s", st.step, means)

    @torch.no_grad()
    def run_validation(self) -> dict:
        if self.validate_fn is None or not self.dist.is_main:
            self.dist.barrier()
            return {}
        for module in self.modules.values():
            module.eval()
        try:
            with self.ema.applied() if self.ema is not None else contextlib.nullcontext():
                with self.autocast():
                    metrics = {k: float(v) for k, v in self.validate_fn().items()}
        finally:
            for module in self.modules.values():
                module.train()
        self.state.last_val = {"step": self.state.step, **metrics}
        self.val_csv.log({"step": self.state.step, **metrics, "time": round(self.state.elapsed_s, 3)})
        if self.tb is not None:
            for k, v in metrics.items():
                self.tb.add_scalar(f"val/{k}", v, self.state.step)
        logger.info("step %d validation: %s", self.state.step, ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
        self.dist.barrier()
        return metrics

    def finish(self) -> None:
        """Load the EMA weights into the modules for export and drop the checkpoint unless it is kept."""
        if self.ema is not None:
            self.ema.copy_to_params()
        if not self.loop.keep_checkpoint and self.dist.is_main and self.checkpoint_dir.exists():
            logger.info("removing the training state %s (loop.keep_checkpoint=false)", self.checkpoint_dir)
            shutil.rmtree(self.checkpoint_dir)


def _dict_diff(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted.key, old, new)`` for every leaf that differs between two nested dicts."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _dict_diff(a.get(key, "<absent>"), b.get(key, "<absent>"), f"{prefix}.{key}" if prefix else key)
        return out
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        a, b = list(a), list(b)
    return [] if a == b else [(prefix, a, b)]


def export_into(run_dir: str | os.PathLike, save: Callable[[Path], Any]) -> None:
    """Save a component *into* an existing run folder without wiping its logs and checkpoint.

    Component writers replace their target folder atomically (see ``save_folder``), which would delete
    ``log.csv`` and ``checkpoint/`` if pointed at the run folder itself; so ``save(tmp)`` writes to a
    temporary sibling and each of its entries is then moved into ``run_dir`` (replacing an older export).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp_parent = Path(tempfile.mkdtemp(dir=run_dir, prefix=".export-"))
    try:
        target = tmp_parent / "component"
        save(target)
        for entry in sorted(target.iterdir()):
            make_public(entry)
            dest = run_dir / entry.name
            if entry.is_dir():
                replace_dir(entry, dest)
            else:
                os.replace(entry, dest)
    finally:
        shutil.rmtree(tmp_parent, ignore_errors=True)


def write_run_config(run_dir: str | os.PathLike, config: dict, name: str = "config.json") -> Path:
    path = Path(run_dir) / name
    atomic_write_json(path, config)
    make_public(path)
    return path


# ------------------------------------------------------------------------------------ dataset access
def check_data_root(data_root: str | os.PathLike) -> Path:
    """The dataset folder, or a clear error saying how to make one."""
    if data_root is None:
        raise ValueError("no dataset given; pass --data DIR (a HumanML3D-layout folder)")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"{root}: dataset folder not found; build the procedural corpus with "
            f"`adamotion data synth --out {root}` or point --data at a HumanML3D-layout folder")
    return root


def open_split(data_root: str | os.PathLike, split: str, *, normalize: bool, meta, seed: int = 0,
               max_frames: int | None = None):
    """``MotionTextDataset`` of one split of a dataset with ``meta`` (its skeleton and statistics), with the
    folder checked first (clear error when absent/empty).

    ``max_frames`` crops longer clips (randomly per epoch) to at most that many frames."""
    from adamotion.data.humanml3d import MotionTextDataset

    root = check_data_root(data_root)
    kwargs = {} if max_frames is None else {"max_frames": int(max_frames)}
    dataset = MotionTextDataset(root, split, skeleton=meta.skeleton, meta=meta, normalize=normalize, seed=seed,
                                **kwargs)
    if len(dataset) == 0:
        raise ValueError(f"{root}: split {split!r} has no usable motions")
    return dataset


def fixed_batches(dataset, max_items: int, batch_size: int, collate) -> list[dict]:
    """Deterministic validation batches: the first item (caption) of each motion, in split order, at most
    ``max_items`` motions (0 = all), epoch-0 crops. One item per motion, so retrieval over these batches has
    exactly one correct gallery entry per query."""
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(0)
    chosen, seen = [], set()
    for i in range(len(dataset)):
        item = dataset[i]
        if item["motion_id"] in seen:
            continue
        seen.add(item["motion_id"])
        chosen.append(item)
        if 0 < max_items <= len(chosen):
            break
    return [collate(chosen[s:s + batch_size]) for s in range(0, len(chosen), batch_size)]


# ------------------------------------------------------------------------------------------ the job template
SUMMARY_NAME = "train_summary.json"


@dataclass
class TrainingData:
    """What every training job reads first: the dataset folder, its meta and the train / val splits."""

    root: Path
    meta: Any  # adamotion.data.meta.DatasetMeta
    train_set: Any  # MotionTextDataset, random crops of at most loop.crop_frames
    val_set: Any


def open_training_data(data_root: str | os.PathLike, loop: LoopConfig, *, normalize: bool) -> TrainingData:
    """Seed everything with ``loop.seed``, then read the dataset meta and open the train and val splits."""
    from adamotion.data.meta import DatasetMeta

    root = check_data_root(data_root)
    seed_everything(loop.seed)
    meta = DatasetMeta.from_dataset_root(root)
    train_set = open_split(root, "train", normalize=normalize, meta=meta, seed=loop.seed, max_frames=loop.crop_frames)
    val_set = open_split(root, "val", normalize=normalize, meta=meta, seed=loop.seed)
    return TrainingData(root=root, meta=meta, train_set=train_set, val_set=val_set)


def start_training(out_dir: str | os.PathLike, run_config: dict, run_config_name: str, *, loop: LoopConfig,
                   data: TrainingData, modules: Mapping[str, nn.Module], param_groups: list[dict], loss_fn,
                   validate_fn: Callable[[], dict] | None = None, resume: bool | None = None,
                   callbacks=()) -> Trainer:
    """Write the run's resolved config beside its weights and build the :class:`Trainer` (resuming when the
    folder holds a checkpoint)."""
    from adamotion.data.humanml3d import collate_motion_text

    write_run_config(out_dir, run_config, run_config_name)
    return Trainer(run_dir=out_dir, loop=loop, modules=modules, param_groups=param_groups, loss_fn=loss_fn,
                   train_dataset=data.train_set, collate_fn=collate_motion_text, run_config=run_config,
                   validate_fn=validate_fn, resume=resume, callbacks=callbacks)


def finish_training(trainer: Trainer, job: str, export: Callable[[TrainState], Any],
                    summary: Mapping[str, Any] | Callable[[TrainState], Mapping[str, Any]] = ()) -> TrainState:
    """Train to the end, put the EMA weights into the modules, then (main process only) ``export(state)``
    the component into the run folder and write ``train_summary.json`` (steps, time, final losses, the last
    validation and the job's own ``summary`` entries)."""
    started = time.perf_counter()
    state = trainer.train()
    trainer.finish()
    if trainer.dist.is_main:
        export(state)
        extra = summary(state) if callable(summary) else summary
        write_run_config(trainer.run_dir, {
            "job": job, "steps": state.step, "elapsed_s": round(state.elapsed_s, 2),
            "this_process_s": round(time.perf_counter() - started, 2), "final_losses": state.last_losses,
            "validation": state.last_val, **dict(extra),
        }, SUMMARY_NAME)
    return state
