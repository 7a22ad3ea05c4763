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


def port_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on host:port (None when it can): checked before any model is loaded."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"cannot resolve --host {host!r} ({exc}); use e.g. 127.0.0.1 or 0.0.0.0"
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no conflict
        try:
            sock.bind(address)
        except OSError as exc:
            return (f"port {port} on {host} is not available ({exc.strerror or exc}); stop the other server or "
                    f"pass another --port (or set ADAMOTION_PORT)")
    return None


def main(argv: list[str] | None = None) -> None:
    from app.config import parse_args
    from app.server import create_app

    from adamotion.study.store import StudyError
    from adamotion.utils.serialization import CheckpointError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = parse_args(argv)
    problem = port_problem(config.host, config.port)
    if problem:  # before the models load: a busy port is reported at once, in one line
        sys.exit(f"python -m app: error: {problem}")
    try:
        demo = create_app(config)
    except (StudyError, CheckpointError, FileNotFoundError) as exc:  # bad --study / --checkpoint: say which, no traceback
        sys.exit(f"python -m app: error: {exc}")
    demo.launch(server_name=config.host, server_port=config.port, share=config.share, show_error=True,
                **demo.launch_options)


if __name__ == "__main__":
    main()
