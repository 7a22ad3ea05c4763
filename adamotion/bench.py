"""``adamotion bench [SECTION]``: speed measurements, one registered section per subsystem.

Sections register themselves with :func:`bench_section`; running the command without a section runs every
registered section with its default arguments, ``adamotion bench generate --batch 8`` runs one. Each section
returns a :class:`BenchReport` (a printed table plus machine-readable data for ``--json``).

This module defines the core sections (``generate``). Higher layers register their own sections into the
same registry and run it through :func:`main`: ``python -m app.bench`` adds the app and renderer sections
(the library never imports the app or the renderers to find them).
"""
from __future__ import annotations

import argparse
import logging
import platform
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- registry
@dataclass
class BenchReport:
    """What one section measured: rows for the table, notes, and a JSON-ready dict."""

    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)  # (what, formatted value)
    notes: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def format(self) -> str:
        width = max((len(label) for label, _ in self.rows), default=0)
        lines = [self.title, "-" * len(self.title)]
        lines += [f"{label:<{width}}  {value}" for label, value in self.rows]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)


@dataclass
class BenchSection:
    name: str  # subcommand name, e.g. "generate"
    help: str  # one line for `adamotion bench --help`
    add_arguments: Callable[[argparse.ArgumentParser], None]  # the section's options (all with defaults)
    run: Callable[[argparse.Namespace], BenchReport]


SECTIONS: dict[str, BenchSection] = {}


def bench_section(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Decorator registering ``run(args) -> BenchReport`` as ``adamotion bench <name>``."""
    def decorate(run: Callable[[argparse.Namespace], BenchReport]):
        if name in SECTIONS:
            raise ValueError(f"bench section {name!r} is already registered")
        SECTIONS[name] = BenchSection(name=name, help=help, add_arguments=add_arguments, run=run)
        return run

    return decorate


def add_bench_arguments(bench: argparse.ArgumentParser) -> None:
    """``--json`` and one subcommand per registered section."""
    bench.add_argument("--json", dest="json_all", default=None, help="write every section's results to this file")
    sections = bench.add_subparsers(dest="bench_section", metavar="SECTION")
    for section in SECTIONS.values():
        parser = sections.add_parser(section.name, help=section.help)
        section.add_arguments(parser)
        parser.add_argument("--json", default=None, help="also write the results to this JSON file")
    bench.set_defaults(func=_run)


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="measure speed of the library (generation); `python -m app.bench` adds the "
                                         "app and renderer sections; without a section runs them all")
    add_bench_arguments(bench)


def main(argv: list[str] | None = None, prog: str = "adamotion bench") -> int:
    """Run the registered sections from a command line of their own (``python -m app.bench``)."""
    import sys

    parser = argparse.ArgumentParser(prog=prog, description="speed measurements; without a section runs them all")
    add_bench_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:  # the path and the fix, no traceback
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2


def _defaults(section: BenchSection) -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False)
    section.add_arguments(parser)
    return parser.parse_args([])


def environment() -> dict:
    import torch

    return {"torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
            "machine": platform.machine(), "processor": platform.processor() or platform.machine()}


def _run(args) -> int:
    if args.bench_section is not None:
        chosen = [(SECTIONS[args.bench_section], args)]
        out_path = args.json
    else:
        chosen = [(section, _defaults(section)) for section in SECTIONS.values()]
        out_path = args.json_all
    results = {"environment": environment()}
    for section, section_args in chosen:
        report = section.run(section_args)
        print(report.format())
        print()
        results[section.name] = {"title": report.title, "rows": [list(row) for row in report.rows],
                                 "notes": report.notes, **report.data}
    if out_path:
        from adamotion.utils.serialization import atomic_write_json

        atomic_write_json(out_path, results)
        print(f"wrote {out_path}")
    return 0


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _median_seconds(fn: Callable[[], object], repeats: int) -> float:
    return statistics.median(_seconds(fn) for _ in range(repeats))


# ----------------------------------------------------------------------------- generate
BENCH_PROMPTS = [
    "a person walks forward and waves with the right hand", "someone jumps up twice", "a person sits down slowly",
    "a man kicks with his left leg", "the person turns around and walks back", "a person dances in a circle",
    "someone crouches and then stands up", "a person raises both arms above the head",
]


def _generate_arguments(parser: argparse.ArgumentParser) -> None:
    from adamotion.generate_commands import DEFAULT_CHECKPOINT

    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT,
                        help="pipeline folder; when missing, a randomly initialised default pipeline is timed")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: all training steps, 50)")
    parser.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddpm",
                        help="ddpm (ancestral, all training steps) or ddim (any --steps)")
    parser.add_argument("--batch", type=int, default=32, help="batch size of the throughput measurement")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per latency figure (median reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def random_default_pipeline(device: str = "cpu"):
    """The default architecture with random denoiser weights and the real MiniLM (+ fresh LoRA) encoder."""
    import numpy as np
    import torch

    from adamotion.data.meta import DatasetMeta
    from adamotion.diffusion.scheduler import DiffusionScheduler
    from adamotion.models.denoiser import DenoiserConfig, MotionDenoiser
    from adamotion.motion.skeleton import HUMANML3D
    from adamotion.pipeline import MotionPipeline
    from adamotion.text.encoder import LoraSettings, TextEncoder

    encoder = TextEncoder.from_pretrained("minilm", lora=LoraSettings())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        denoiser = MotionDenoiser(DenoiserConfig.for_skeleton(HUMANML3D, encoder.hidden_size))
    F = HUMANML3D.feature_dim
    meta = DatasetMeta(name="random-init", skeleton=HUMANML3D, fps=HUMANML3D.fps, feature_dim=F,
                       mean=np.zeros(F, np.float32), std=np.ones(F, np.float32))
    pipe = MotionPipeline(encoder, denoiser, DiffusionScheduler(), meta, name="random-init", method="untrained")
    return pipe.to(device)


def generate_two_pass(pipe, prompt: str, frames: int, *, seed: int = 0, guidance_scale: float = 2.5,
                      steps: int | None = None, sampler: str = "ddpm", encoder: str = "ada"):
    """The naive guidance baseline, written on the pipeline's public steps: the conditional and the
    unconditional branch as two separate denoiser passes that re-project the text at every step.

    Returns (features, joints) of the one sample; equal (to float rounding) to ``pipe(prompt, ...)``.
    """
    import torch

    denoiser = pipe.denoiser

    def two_pass_x0(x, t_batch, frame_mask):
        cond = denoiser(x, t_batch, denoiser.prepare_condition(hidden, text_mask), frame_mask)
        null = torch.ones(x.shape[0], dtype=torch.bool, device=x.device)
        uncond = denoiser(x, t_batch, denoiser.prepare_condition(hidden, text_mask, null), frame_mask)
        return uncond + guidance_scale * (cond - uncond)  # (1, T, F)

    with torch.inference_mode():
        scheduler = pipe.scheduler.copy()
        scheduler.set_timesteps(steps, sampler=sampler)
        hidden, text_mask = pipe.encode_prompt([prompt], encoder)  # (1, L, Dt), (1, L)
        x = pipe.sample_loop(two_pass_x0, scheduler, [frames], [seed])
        features, joints = pipe.decode(x, [frames])
    return features[0], joints[0]


@bench_section("generate", "text-to-motion latency (batched vs two-pass guidance) and throughput", _generate_arguments)
def bench_generate(args) -> BenchReport:
    import torch

    from adamotion.generate_commands import resolve_checkpoint
    from adamotion.pipeline import MotionPipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    notes = []
    checkpoint = resolve_checkpoint(args.checkpoint)
    if checkpoint.is_dir():
        pipe = MotionPipeline.from_pretrained(checkpoint, device=args.device)
        source = str(checkpoint)
    else:
        pipe = random_default_pipeline(args.device)
        source = "random-init default architecture"
        notes.append(f"checkpoint {checkpoint} not found: timing a randomly initialised pipeline of the default "
                     "architecture with the real MiniLM encoder (motions are meaningless; speed is representative)")
    skeleton = pipe.skeleton
    frames = skeleton.max_frames
    steps = args.steps or pipe.scheduler.num_train_timesteps
    repeats = max(1, args.repeats)
    cfg = pipe.denoiser.config
    params = sum(p.numel() for p in pipe.denoiser.parameters())
    prompt = BENCH_PROMPTS[0]

    # text encoding: a fresh (uncached) forward, and a cache hit
    encoder = pipe.text_encoder
    with torch.inference_mode():
        encoder([prompt])
        text_s = _median_seconds(lambda: encoder([prompt]), max(repeats, 5))
        encoder.encode_cached([prompt])
        cached_s = _median_seconds(lambda: encoder.encode_cached([prompt]), max(repeats, 5))

    def batched():
        return pipe(prompt, lengths=frames, seed=0, guidance_scale=2.5, steps=steps, sampler=args.sampler)

    def two_pass():
        return generate_two_pass(pipe, prompt, frames, seed=0, guidance_scale=2.5, steps=steps, sampler=args.sampler)

    batched()  # warm-up (allocations, kernels, caches)
    batched_all, unbatched_all = [], []
    for _ in range(repeats):  # interleaved, so a load change on a shared machine hits both alike
        batched_all.append(_seconds(batched))
        unbatched_all.append(_seconds(two_pass))
    batched_s, unbatched_s = statistics.median(batched_all), statistics.median(unbatched_all)

    prompts = [BENCH_PROMPTS[i % len(BENCH_PROMPTS)] for i in range(args.batch)]
    batch_s = _seconds(lambda: pipe(prompts, lengths=frames, seed=0, guidance_scale=2.5, steps=steps, sampler=args.sampler))

    sampler = {"ddpm": "ancestral DDPM", "ddim": "DDIM, eta 0"}[args.sampler]
    title = (f"bench generate: {source} on {args.device} ({torch.get_num_threads()} threads), denoiser "
             f"{params / 1e6:.1f}M params (width {cfg.width}, depth {cfg.depth}), {frames} frames, {steps} steps "
             f"({sampler}), guidance 2.5")
    rows = [
        ("text encoding, 1 prompt (uncached)", f"{text_s * 1e3:8.1f} ms"),
        ("text encoding, 1 prompt (cache hit)", f"{cached_s * 1e3:8.2f} ms"),
        ("latency batch 1, batched guidance", f"{batched_s:8.2f} s/sample  ({batched_s / steps * 1e3:.1f} ms/step)"),
        ("latency batch 1, two-pass guidance", f"{unbatched_s:8.2f} s/sample  ({unbatched_s / steps * 1e3:.1f} ms/step)"),
        ("speed-up of batched guidance", f"{unbatched_s / batched_s:8.2f} x"),
        (f"throughput batch {args.batch}", f"{args.batch / batch_s:8.2f} samples/s  ({batch_s / args.batch:.2f} s/sample, "
                                           f"{batch_s:.1f} s per batch)"),
    ]
    notes.append(f"latencies are medians of {repeats} interleaved runs after one warm-up; on a shared machine other "
                 "processes inflate them (see the per-run times in --json)")
    notes.append("two-pass guidance = conditional and unconditional branches as separate forward passes that "
                 "re-project the text every step (the naive baseline); batched = one pass over the doubled batch "
                 "with the text condition projected once per call")
    data = {
        "source": source, "device": args.device, "threads": torch.get_num_threads(), "frames": frames, "steps": steps,
        "sampler": sampler, "denoiser_params": params, "denoiser_config": pipe.denoiser.get_config(),
        "text_encoder": encoder.display_name, "text_encode_uncached_s": text_s, "text_encode_cached_s": cached_s,
        "latency_batched_s": batched_s, "latency_batched_runs_s": batched_all,
        "latency_unbatched_s": unbatched_s, "latency_unbatched_runs_s": unbatched_all,
        "batched_speedup": unbatched_s / batched_s, "throughput_batch": args.batch, "throughput_batch_s": batch_s,
        "throughput_samples_per_s": args.batch / batch_s,
    }
    return BenchReport(title=title, rows=rows, notes=notes, data=data)
