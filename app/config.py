"""App configuration from command-line flags and environment variables (flags win)."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "default"
# Extra time of the very first start with the shipped checkpoint, when the retrieval embedding indexes are built
# (`adamotion bench app`: first start 14.6 s − later start 5.5 s, checkpoints/default/bench.json).
INDEX_BUILD_NOTE = "~16 s on 2 CPU cores"


def _env(name: str, default=None):
    value = os.environ.get(name)
    return value if value not in (None, "") else default


@dataclass
class AppConfig:
    checkpoint: Path = DEFAULT_CHECKPOINT  # folder with adaqf/, baseline/, extractors/, retrieval_*/ and gallery/
    device: str = "cpu"  # torch device for the models ("cuda" on a GPU Space)
    host: str = "127.0.0.1"
    port: int = 7860
    smpl_dir: str | None = None  # folder with SMPL_NEUTRAL.pkl; None = capsule body
    study: Path | None = None  # a study folder made by `adamotion study build`; enables the Study tab
    admin_token: str | None = None  # unlocks study results; None = results tab hidden
    workdir: Path | None = None  # per-request output folders live here (default: a private temp folder)
    index_cache: Path | None = None  # retrieval embedding indexes, kept across restarts (None: $ADAMOTION_CACHE/indexes)
    video_size: tuple[int, int] = (480, 360)  # each panel's width x height; 640x480 costs ~1.7x the render time
    concurrency: int = 2  # generate requests processed at once (2 CPU cores)
    max_queue: int = 32  # requests waiting beyond this are refused with a "busy" message
    cleanup_after_s: int = 3600  # request folders and Gradio's cached copies older than this are removed...
    cleanup_every_s: int = 300  # ...every this many seconds
    share: bool = False
    extra: dict = field(default_factory=dict)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value} (0 would accept requests and never run them)")
    return value


def _video_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"video size must look like 480x360, got {text!r}") from None
    if not (64 <= width <= 3840 and 64 <= height <= 2160):
        raise argparse.ArgumentTypeError(f"video size {width}x{height} is outside 64x64..3840x2160")
    return width, height


def parse_args(argv: list[str] | None = None) -> AppConfig:
    parser = argparse.ArgumentParser(prog="python -m app", description="AdaMotion Studio demo")
    parser.add_argument("--checkpoint", default=_env("ADAMOTION_CHECKPOINT", str(DEFAULT_CHECKPOINT)))
    parser.add_argument("--device", default=_env("ADAMOTION_DEVICE", "cpu"))
    parser.add_argument("--host", default=_env("ADAMOTION_HOST", _env("GRADIO_SERVER_NAME", "127.0.0.1")))
    # Numeric defaults stay text: argparse converts a text default like a flag, so a bad environment value
    # gives a one-line usage error instead of a traceback.
    parser.add_argument("--port", type=int, default=str(_env("ADAMOTION_PORT", _env("GRADIO_SERVER_PORT", 7860))))
    parser.add_argument("--smpl-dir", default=_env("ADAMOTION_SMPL_DIR"))
    parser.add_argument("--study", default=_env("ADAMOTION_STUDY"))
    parser.add_argument("--admin-token", default=_env("ADAMOTION_ADMIN_TOKEN"))
    parser.add_argument("--workdir", default=_env("ADAMOTION_WORKDIR"))
    parser.add_argument("--index-cache", default=_env("ADAMOTION_INDEX_CACHE"),
                        help=f"folder of the retrieval embedding indexes (built on the first start, {INDEX_BUILD_NOTE} "
                             "with the shipped checkpoint, then reused)")
    parser.add_argument("--video-size", type=_video_size, default=_env("ADAMOTION_VIDEO_SIZE", "480x360"),
                        help="each panel's size as WIDTHxHEIGHT (default 480x360)")
    parser.add_argument("--concurrency", type=_positive_int, default=str(_env("ADAMOTION_CONCURRENCY", 2)),
                        help="generate requests processed at once (at least 1; default 2)")
    parser.add_argument("--max-queue", type=_positive_int, default=str(_env("ADAMOTION_MAX_QUEUE", 32)),
                        help="requests that may wait; more are refused with 'Queue is full' (at least 1)")
    parser.add_argument("--share", action="store_true")
    args = parser.parse_args(argv)
    return AppConfig(
        checkpoint=Path(args.checkpoint), device=args.device, host=args.host, port=args.port,
        smpl_dir=args.smpl_dir, study=Path(args.study) if args.study else None, admin_token=args.admin_token,
        workdir=Path(args.workdir) if args.workdir else None,
        index_cache=Path(args.index_cache) if args.index_cache else None, video_size=args.video_size,
        concurrency=args.concurrency,
        max_queue=args.max_queue, share=args.share,
    )
