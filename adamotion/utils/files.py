"""File plumbing shared by every package: atomic file and folder writes, JSON reading that names the path,
checksums. Standard library only (the torch-free renderers use it too).

An atomic write goes to a temporary sibling first and is renamed into place only when complete, so a killed
process or a failed encoder never leaves a half-written file or folder where a reader looks.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator


def make_public(path: Path) -> None:
    """mkstemp/mkdtemp create private (0600/0700) entries; saved artefacts are read by other users (servers)."""
    umask = os.umask(0)
    os.umask(umask)
    if path.is_dir():
        os.chmod(path, 0o777 & ~umask)
        for child in path.rglob("*"):
            os.chmod(child, (0o777 if child.is_dir() else 0o666) & ~umask)
    else:
        os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block succeeds it replaces ``path``.

    ``suffix`` keeps the extension some writers insist on (e.g. ``".partial.mp4"`` for ffmpeg). On an
    exception the temporary file is removed and ``path`` keeps its old content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        make_public(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, write: Callable[[Any], None]) -> Path:
    """Atomically write ``path`` with ``write(binary_file)`` (flushed and fsynced before the rename)."""
    path = Path(path)
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def replace_dir(tmp_dir: Path, final_dir: Path) -> None:
    """Move a fully written ``tmp_dir`` into place at ``final_dir`` (old content kept until the swap)."""
    final_dir = Path(final_dir)
    make_public(Path(tmp_dir))
    if final_dir.exists():
        backup = final_dir.with_name(f".{final_dir.name}.old-{os.getpid()}")
        os.replace(final_dir, backup)
        os.replace(tmp_dir, final_dir)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(tmp_dir, final_dir)


@contextlib.contextmanager
def atomic_folder(directory: str | os.PathLike, *, before_replace: Callable[[Path], None] | None = None
                  ) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``directory``; when the block succeeds it replaces ``directory``.

    ``before_replace(directory)`` runs after the content is written and before the swap (a last check, e.g.
    refusing to replace a folder that holds data). On an exception the temporary folder is deleted and
    ``directory`` is left as it was.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.tmp-"))
    try:
        yield tmp
        if before_replace is not None:
            before_replace(directory)
        replace_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def read_json(path: str | os.PathLike, *, what: str = "JSON file", error: type[Exception] = ValueError,
              fix: str = "") -> Any:
    """Parse a JSON file; a missing, unreadable or corrupt file raises ``error`` naming the path and the reason.

    ``what`` names the file in the message ("dataset meta", "pipeline description"); ``fix`` says what to do.
    """
    path = Path(path)
    hint = f"; {fix}" if fix else ""
    if not path.is_file():
        raise error(f"{path}: {what} not found{hint}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path}: corrupt {what} ({exc}){hint}") from exc
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc}){hint}") from exc


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, memoised per (path, size, mtime) so repeated loads in one process hash once."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def json_sha256(obj: Any, *, compact: bool = False) -> str:
    """Hex SHA-256 of a JSON-able object in canonical form (sorted keys; ``compact`` drops the spaces after
    separators), e.g. to key caches by their settings."""
    separators = (",", ":") if compact else (", ", ": ")
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=separators, default=str).encode("utf-8")).hexdigest()
