"""Renderer speed benchmark: ``python -m renderers.bench [--frames 196] [--size 640x480]``.

Measures end-to-end frames/s (drawing + encoding + file written) of

* :func:`renderers.skeleton.render_video` (Pillow rasteriser -> H.264),
* :func:`renderers.skeleton.render_naive_matplotlib` (matplotlib FuncAnimation baseline),
* :func:`renderers.mesh.render_mesh_video` with the capsule body (pyrender offscreen),

on a procedural walking clip (:func:`synthetic_walk`), and prints a table. Torch-free.
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from adamotion.motion import rotations as R
from adamotion.motion.kinematics import matrix_forward_kinematics
from adamotion.motion.skeleton import HUMANML3D, Skeleton

logger = logging.getLogger(__name__)

__all__ = ["benchmark_renderers", "format_table", "synthetic_walk"]


def synthetic_walk(frames: int = 196, *, skeleton: Skeleton, fps: float | None = None,
                   speed: float = 1.2, turn_deg_per_s: float = 12.0, cadence_hz: float = 0.9) -> np.ndarray:
    """A procedural walk on a gently curving path: (frames, J, 3) joint positions in metres, y up.

    Built by forward kinematics on ``skeleton.target_offsets`` with sinusoidal hip/knee/shoulder/elbow
    swings (joints found by name), a yaw that turns ``turn_deg_per_s`` and a small vertical bob. Frame 0
    faces +z. For tests and benchmarks only; it is not motion data.
    """
    fps = float(fps or skeleton.fps)
    offsets = skeleton.target_offsets.astype(np.float64)  # (J, 3)
    num_joints = skeleton.num_joints
    t = np.arange(frames) / fps  # (T,) seconds
    phase = 2 * math.pi * cadence_hz * t  # one stride (two steps) per 1 / cadence_hz seconds
    local = np.repeat(np.eye(3)[None, None], frames, 0).repeat(num_joints, 1)  # (T, J, 3, 3)

    def swing(name: str, angle: np.ndarray) -> None:
        local[:, skeleton.index(name)] = R.axis_rotation("x", angle)

    # a rotation about +x with a negative angle moves a downward bone forward (+z)
    swing("left_hip", -0.45 * np.sin(phase))
    swing("right_hip", 0.45 * np.sin(phase))
    swing("left_knee", 0.7 * np.clip(np.sin(phase + math.pi / 2), 0, None))
    swing("right_knee", 0.7 * np.clip(np.sin(phase - math.pi / 2), 0, None))
    swing("left_shoulder", 0.4 * np.sin(phase))
    swing("right_shoulder", -0.4 * np.sin(phase))
    swing("left_elbow", -0.3 - 0.15 * np.sin(phase))
    swing("right_elbow", -0.3 + 0.15 * np.sin(phase))

    yaw = np.radians(turn_deg_per_s) * t  # (T,)
    root_rotation = R.axis_rotation("y", yaw)  # (T, 3, 3)
    heading = np.stack([np.sin(yaw), np.zeros_like(yaw), np.cos(yaw)], -1)  # (T, 3) facing direction
    # integrate the heading so the path curves with the body
    step = np.concatenate([np.zeros((1, 3)), heading[:-1] * speed / fps], 0)
    root_xz = np.cumsum(step, 0)  # (T, 3), y filled in below

    roots = np.asarray(skeleton.parents) < 0
    local[:, roots] = root_rotation[:, None] @ local[:, roots]
    translations = np.repeat(offsets[None], frames, 0)  # (T, J, 3) bone offsets in the parent's frame
    translations[:, roots] = root_xz[:, None]
    _, positions = matrix_forward_kinematics(skeleton.parents, local, translations)  # (T, J, 3)
    # stand on the floor with a small bob at twice the stride frequency
    positions[..., 1] -= positions[..., 1].min()
    positions[..., 1] += 0.02 * (1 + np.cos(2 * phase))[:, None]
    return positions.astype(np.float32)


def _cpu_seconds() -> float:
    """CPU time of this process (all threads) plus its finished children (ffmpeg encoders)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _time_call(function, *args, **kwargs) -> tuple[float, float]:
    """(wall seconds, CPU seconds incl. encoder subprocesses) of one call."""
    started, cpu_started = time.perf_counter(), _cpu_seconds()
    function(*args, **kwargs)
    return time.perf_counter() - started, _cpu_seconds() - cpu_started


def benchmark_renderers(frames: int = 196, *, size: tuple[int, int] = (640, 480), out_dir: str | Path | None = None,
                        include_naive: bool = True, include_mesh: bool = True, verbose: bool = True) -> dict:
    """Frames/s of each renderer on a ``frames``-long clip at ``size``; prints a table when ``verbose``.

    Returns ``{"frames", "size", "load_average", "results": {name: {"seconds", "fps", "cpu_seconds",
    "fps_per_cpu_second", "path"}}, "speedup_fast_vs_naive"}``. Each renderer is timed end to end after a
    2-frame warm-up call (imports, fonts, GL context). ``cpu_seconds`` counts every thread of this process
    and the ffmpeg encoder, so ``fps_per_cpu_second`` stays meaningful on a busy shared machine, where
    wall-clock frames/s mostly measure the other users (see ``load_average``).
    """
    from renderers.skeleton import render_naive_matplotlib, render_video

    skeleton = HUMANML3D  # the benchmark clip is a walk on the SMPL-22 body
    joints = synthetic_walk(frames, skeleton=skeleton)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="adamotion-bench-") as tmp:
        folder = Path(out_dir) if out_dir is not None else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)

        def record(name: str, timing: tuple[float, float], path: Path) -> None:
            seconds, cpu_seconds = timing
            results[name] = {"seconds": seconds, "fps": frames / seconds, "cpu_seconds": cpu_seconds,
                             "fps_per_cpu_second": frames / max(cpu_seconds, 1e-9),
                             "path": str(path) if out_dir else None}

        caption = "a person walks in a gentle curve"
        render_video(joints[:2], folder / "warmup.mp4", size=size, skeleton=skeleton)  # fonts, ffmpeg page cache
        path = folder / "skeleton_fast.mp4"
        record("skeleton (Pillow)", _time_call(render_video, joints, path, size=size, title=caption, skeleton=skeleton), path)
        if include_naive:
            render_naive_matplotlib(joints[:2], folder / "warmup_naive.mp4", size=size, skeleton=skeleton)  # matplotlib 3D imports
            path = folder / "skeleton_matplotlib.mp4"
            record("skeleton (matplotlib FuncAnimation)",
                   _time_call(render_naive_matplotlib, joints, path, size=size, title=caption, skeleton=skeleton), path)
        if include_mesh:
            from renderers.mesh import render_mesh_video

            render_mesh_video(joints[:2], folder / "warmup_mesh.mp4", size=size, smpl_dir=None, skeleton=skeleton)  # GL context, shaders
            path = folder / "mesh_capsules.mp4"
            record("mesh (capsule body, pyrender)",
                   _time_call(render_mesh_video, joints, path, size=size, title=caption, smpl_dir=None, skeleton=skeleton), path)
    summary = {"frames": frames, "size": list(size), "load_average": list(os.getloadavg()), "cpus": os.cpu_count(),
               "results": results}
    fast, naive = results.get("skeleton (Pillow)"), results.get("skeleton (matplotlib FuncAnimation)")
    summary["speedup_fast_vs_naive"] = fast["fps"] / naive["fps"] if (fast and naive) else None
    if verbose:
        print(format_table(summary))
    return summary


def format_table(summary: dict) -> str:
    """A plain-text table of a :func:`benchmark_renderers` result."""
    width, height = summary["size"]
    load = ", ".join(f"{value:.1f}" for value in summary.get("load_average", []))
    lines = [f"renderer benchmark: {summary['frames']} frames at {width}x{height} "
             f"({summary.get('cpus')} CPUs, load average {load})", ""]
    name_width = max(len(name) for name in summary["results"]) if summary["results"] else 10
    lines.append(f"{'renderer':<{name_width}}  {'seconds':>8}  {'frames/s':>9}  {'CPU s':>7}  {'frames/CPU-s':>12}")
    lines.append("-" * (name_width + 46))
    for name, row in summary["results"].items():
        lines.append(f"{name:<{name_width}}  {row['seconds']:>8.2f}  {row['fps']:>9.1f}  {row['cpu_seconds']:>7.2f}"
                     f"  {row['fps_per_cpu_second']:>12.1f}")
    if summary.get("speedup_fast_vs_naive"):
        lines.append("")
        lines.append(f"fast / naive skeleton renderer: {summary['speedup_fast_vs_naive']:.1f}x")
    return "\n".join(lines)


# ------------------------------------------------------------------ `adamotion bench render`
def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x480, got {text!r}") from None
    return width, height


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=196, help="clip length in frames (default 196 = 9.8 s)")
    parser.add_argument("--size", type=_parse_size, default=(640, 480), help="WIDTHxHEIGHT of each video (default 640x480)")
    parser.add_argument("--out-dir", default=None, help="keep the rendered videos in this folder")
    parser.add_argument("--skip-naive", action="store_true", help="do not run the matplotlib baseline")
    parser.add_argument("--skip-mesh", action="store_true", help="do not run the pyrender capsule renderer")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m renderers.bench", description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    benchmark_renderers(args.frames, size=tuple(args.size), out_dir=args.out_dir,
                        include_naive=not args.skip_naive, include_mesh=not args.skip_mesh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
