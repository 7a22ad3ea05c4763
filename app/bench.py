"""``adamotion bench app``: model load time, click-to-playable-video time and peak memory of the real app back end.

The reference in the same run is the naive path for the same request: two-pass guidance and the matplotlib
``FuncAnimation`` renderer, one clip per encoder.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

from adamotion.bench import BenchReport, bench_section

PROMPT = "a person walks forward, then turns left and waves"


def _arguments(parser: argparse.ArgumentParser) -> None:
    from app.config import DEFAULT_CHECKPOINT

    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT), help="app checkpoint folder")
    parser.add_argument("--seconds", type=float, default=9.8, help="motion length of the timed request")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true", help="skip the slow naive reference")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


@bench_section("app", "app back end: load time, click-to-video latency, peak memory", _arguments)
def bench_app(args) -> BenchReport:
    from app.config import AppConfig
    from app.service import Studio

    workdir = Path(tempfile.mkdtemp(prefix="adamotion-bench-app-"))
    start = time.perf_counter()
    studio = Studio(AppConfig(checkpoint=Path(args.checkpoint), workdir=workdir))
    load_s = time.perf_counter() - start
    studio.generate(PROMPT, seconds=args.seconds, seed=0)  # warm-up
    runs = []
    for seed in range(args.repeats):
        start = time.perf_counter()
        studio.generate(PROMPT, seconds=args.seconds, seed=seed)
        runs.append(time.perf_counter() - start)
    e2e_s = statistics.median(runs)
    rows = [("model load (2 pipelines, evaluator, gallery index)", f"{load_s:8.2f} s"),
            (f"click to playable videos ({args.seconds:g} s motion, 50 steps, both encoders)", f"{e2e_s:8.2f} s"),
            ("peak resident memory", f"{_peak_rss_mb():8.0f} MB")]
    data = {"load_s": load_s, "click_to_video_s": e2e_s, "click_to_video_runs_s": runs, "peak_rss_mb": _peak_rss_mb()}
    if not args.no_reference:
        from renderers.skeleton import render_naive_matplotlib

        frames = int(round(args.seconds * studio.skeleton.fps))
        start = time.perf_counter()
        for pipe, encoder in ((studio.adapted, "ada"), (studio.vanilla, "vanilla")):
            out = pipe([PROMPT], lengths=frames, seed=0, encoder=encoder, guidance_impl="unbatched")
            render_naive_matplotlib(out.joints[0], workdir / f"naive-{encoder}.mp4", fps=studio.skeleton.fps)
        reference_s = time.perf_counter() - start
        rows.append(("naive reference (two-pass guidance + matplotlib)", f"{reference_s:8.2f} s"))
        rows.append(("speed-up over the naive reference", f"{reference_s / e2e_s:8.2f} x"))
        data.update(reference_s=reference_s, speedup=reference_s / e2e_s)
    studio.workspaces.close()
    return BenchReport(title=f"bench app: {args.checkpoint}", rows=rows, data=data,
                       notes=["click-to-video = both generations, evaluator scores, three mp4 renders and the downloads"])
