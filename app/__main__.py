"""``python -m app``: serve AdaMotion Studio (also the Hugging Face Space entry point)."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file (Hugging Face Spaces: `python app/__main__.py`)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Offline and private by default: no analytics, no telemetry, no hub look-ups at launch.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")


def main(argv: list[str] | None = None) -> None:
    from app.config import parse_args
    from app.server import create_app

    from adamotion.study.store import StudyError
    from adamotion.utils.serialization import CheckpointError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = parse_args(argv)
    try:
        demo = create_app(config)
    except (StudyError, CheckpointError, FileNotFoundError) as exc:  # bad --study / --checkpoint: say which, no traceback
        sys.exit(f"python -m app: error: {exc}")
    demo.launch(server_name=config.host, server_port=config.port, share=config.share, show_error=True,
                allowed_paths=demo.serve_paths)


if __name__ == "__main__":
    main()
