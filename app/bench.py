"""``python -m app.bench [SECTION]``: every speed measurement, the app's and the renderers' included.

This module is where the top layer registers its sections into :mod:`adamotion.bench`'s registry:

* ``app``: model load time, click-to-playable-video time and peak memory of the real app back end. The
  reference in the same run is the naive path for the same request: two-pass guidance and the matplotlib
  ``FuncAnimation`` renderer, one clip per encoder.
* ``render``: the torch-free renderers' frames per second (:func:`renderers.bench.benchmark_renderers`).

The library's own sections (``generate``) run too; ``python -m app.bench --json bench.json`` writes them all.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adamotion import bench as core_bench  # noqa: E402
from adamotion.bench import BenchReport, bench_section, generate_two_pass  # noqa: E402
from renderers import bench as render_bench  # noqa: E402

PROMPT = "a person walks forward, then turns left and waves"


def _arguments(parser: argparse.ArgumentParser) -> None:
    from app.config import DEFAULT_CHECKPOINT

    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="app checkpoint folder")
    parser.add_argument("--seconds", type=float, default=9.8, help="motion length of the timed request")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true", help="skip the slow naive reference")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def _load_in_fresh_process(config) -> dict:
    """``{"import_s", "load_s"}`` of building the app back end in a new Python process."""
    code = (
        "import json, sys, time\n"
        "t0 = time.perf_counter()\n"
        "import torch, gradio\n"
        "from pathlib import Path\n"
        "from app.config import AppConfig\n"
        "from app.service import Studio\n"
        "t1 = time.perf_counter()\n"
        "a = json.loads(sys.argv[1])\n"
        "studio = Studio(AppConfig(checkpoint=Path(a['checkpoint']), workdir=Path(a['workdir']),"
        " index_cache=Path(a['index_cache'])))\n"
        "t2 = time.perf_counter()\n"
        "studio.workspaces.close()\n"
        "print(json.dumps({'import_s': t1 - t0, 'load_s': t2 - t1}))\n")
    argument = json.dumps({"checkpoint": str(config.checkpoint), "workdir": str(config.workdir),
                           "index_cache": str(config.index_cache)})
    done = subprocess.run([sys.executable, "-c", code, argument], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    if done.returncode != 0:
        raise RuntimeError(f"the app back end failed to load in a fresh process:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


@bench_section("app", "app back end: load time, click-to-video latency, peak memory", _arguments)
def bench_app(args) -> BenchReport:
    from app.config import AppConfig
    from app.service import Studio

    workdir = Path(tempfile.mkdtemp(prefix="adamotion-bench-app-"))
    config = AppConfig(checkpoint=Path(args.checkpoint), workdir=workdir, index_cache=workdir / "index-cache")
    # Start-up is timed in fresh processes (nothing imported or loaded yet): the first start builds the
    # retrieval embedding indexes, every later one reads them from the cache folder.
    cold = _load_in_fresh_process(config)
    warm = _load_in_fresh_process(config)
    load_s = warm["import_s"] + warm["load_s"]
    studio = Studio(config)
    studio.generate(PROMPT, seconds=args.seconds, seed=0)  # warm-up
    cases = [(args.seconds, 50, "ddpm"), (args.seconds, 25, "ddim")]
    timings = {}
    for seconds, steps, sampler in cases:
        runs = []
        for seed in range(args.repeats):
            start = time.perf_counter()
            studio.generate(PROMPT, seconds=seconds, seed=seed, steps=steps, sampler=sampler)
            runs.append(time.perf_counter() - start)
        timings[(seconds, steps, sampler)] = runs
    e2e_s = statistics.median(timings[cases[0]])
    rows = [("app start, first time (imports + models + builds the retrieval indexes)",
             f"{cold['import_s'] + cold['load_s']:8.2f} s"),
            ("app start (imports + 2 pipelines, evaluator, cached gallery index)", f"{load_s:8.2f} s"),
            ("  of which model load (torch already imported)", f"{warm['load_s']:8.2f} s")]
    rows += [(f"click to playable videos ({seconds:g} s motion, {steps} {sampler} steps, both encoders)",
              f"{statistics.median(runs):8.2f} s") for (seconds, steps, sampler), runs in timings.items()]
    rows.append(("peak resident memory", f"{_peak_rss_mb():8.0f} MB"))
    data = {"load_s": load_s, "model_load_s": warm["load_s"], "import_s": warm["import_s"],
            "cold_load_s": cold["import_s"] + cold["load_s"], "click_to_video_s": e2e_s,
            "click_to_video_runs_s": timings[cases[0]],
            "click_to_video_by_case": [{"seconds": sec, "steps": st, "sampler": sa, "median_s": statistics.median(r),
                                        "runs_s": r} for (sec, st, sa), r in timings.items()],
            "peak_rss_mb": _peak_rss_mb()}
    if not args.no_reference:
        from renderers.skeleton import render_naive_matplotlib

        frames = int(round(args.seconds * studio.skeleton.fps))
        start = time.perf_counter()
        for pipe, encoder in ((studio.adapted, "ada"), (studio.vanilla, "vanilla")):
            _, joints = generate_two_pass(pipe, PROMPT, frames, seed=0, encoder=encoder)
            render_naive_matplotlib(joints, workdir / f"naive-{encoder}.mp4", fps=studio.skeleton.fps,
                                    skeleton=studio.skeleton)
        reference_s = time.perf_counter() - start
        rows.append(("naive reference (two-pass guidance + matplotlib)", f"{reference_s:8.2f} s"))
        rows.append(("speed-up over the naive reference", f"{reference_s / e2e_s:8.2f} x"))
        data.update(reference_s=reference_s, speedup=reference_s / e2e_s)
    studio.workspaces.close()
    return BenchReport(title=f"bench app: {args.checkpoint}", rows=rows, data=data,
                       notes=["click-to-video = both generations, evaluator scores, three mp4 renders and the downloads"])


@bench_section("render", "skeleton / matplotlib / mesh video rendering frames per second", render_bench.add_arguments)
def bench_render(args) -> BenchReport:
    summary = render_bench.benchmark_renderers(args.frames, size=tuple(args.size), out_dir=args.out_dir,
                                               include_naive=not args.skip_naive, include_mesh=not args.skip_mesh,
                                               verbose=False)
    rows = [(name, f"{row['fps']:.1f} frames/s ({row['seconds']:.2f} s wall, {row['fps_per_cpu_second']:.1f} frames "
                   "per CPU-s)") for name, row in summary["results"].items()]
    if summary["speedup_fast_vs_naive"]:
        rows.append(("fast / naive skeleton renderer", f"{summary['speedup_fast_vs_naive']:.1f}x"))
    load = ", ".join(f"{v:.1f}" for v in summary["load_average"])
    return BenchReport(title=f"renderers: {args.frames} frames at {args.size[0]}x{args.size[1]}", rows=rows,
                       notes=[f"{summary['cpus']} CPUs, load average {load} during the run"], data=summary)


def main(argv: list[str] | None = None) -> int:
    return core_bench.main(argv, prog="python -m app.bench")


if __name__ == "__main__":
    sys.exit(main())
