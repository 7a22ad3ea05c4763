"""Where the project keeps rebuildable files (corpora, retrieval embedding indexes)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """``$ADAMOTION_CACHE``, else ``~/.cache/adamotion``: everything in it can be deleted and rebuilt."""
    return Path(os.environ.get("ADAMOTION_CACHE", Path.home() / ".cache" / "adamotion")).expanduser()


def index_cache_dir(checkpoint: str | os.PathLike) -> Path:
    """The persistent folder of a checkpoint's retrieval embedding indexes.

    Indexes are keyed by checksums of the weights and the gallery, so a retrained checkpoint never reads a stale
    one; keeping them across restarts is what makes the app's second start fast (building them costs ~20 s on CPU).
    """
    return cache_root() / "indexes" / Path(checkpoint).resolve().name
