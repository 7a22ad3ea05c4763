"""Per-request output folders: no two requests ever share an output path; old folders are removed on a schedule."""
from __future__ import annotations

import logging
import re
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

log = logging.getLogger(__name__)
REQUEST_FOLDER = re.compile(r"[a-z][a-z_]*-[0-9a-f]{12}")  # what new() makes; caches beside them are kept


class Workspaces:
    def __init__(self, root: Path | None = None, max_age_s: int = 3600, sweep_every_s: int = 300):
        self.root = Path(root) if root else Path(tempfile.mkdtemp(prefix="adamotion-app-"))
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_age_s = max_age_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sweep_loop, args=(sweep_every_s,), daemon=True)
        self._thread.start()

    def new(self, kind: str) -> Path:
        """A fresh folder for one request, e.g. ``<root>/generate-<uuid>``."""
        path = self.root / f"{kind}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    def sweep(self, now: float | None = None) -> int:
        """Remove request folders older than ``max_age_s``; returns how many were removed.

        Only folders made by :meth:`new` are removed: caches kept in the root (gallery index, thumbnails)
        and anything else placed there stay.
        """
        now = time.time() if now is None else now
        removed = 0
        for child in self.root.iterdir():
            if not REQUEST_FOLDER.fullmatch(child.name):
                continue
            try:
                if child.is_dir() and now - child.stat().st_mtime > self.max_age_s:
                    shutil.rmtree(child, ignore_errors=True)
                    removed += 1
            except FileNotFoundError:
                continue
        if removed:
            log.info("removed %d expired request folders from %s", removed, self.root)
        return removed

    def _sweep_loop(self, every_s: int) -> None:
        while not self._stop.wait(every_s):
            self.sweep()

    def close(self) -> None:
        self._stop.set()
