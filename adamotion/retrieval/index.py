"""A searchable gallery of text/motion embeddings, cached on disk by the content of what produced it.

:class:`EmbeddingIndex` holds a motion gallery (L2-normalised (N, D) embeddings, one id and display
caption per motion, free-form metadata) and optionally a caption gallery in the same embedding space
((M, D) embeddings, caption texts, and the id of the motion each caption describes). Scores are cosine
similarities.

* ``search_text(query_emb, k)``: caption embedding(s) -> the k nearest motions ``(id, score, caption)``.
* ``search_motion(query_emb, k)``: motion embedding(s) -> the k nearest captions ``(motion id, score, text)``.

:func:`build_or_load_index` caches an index under ``cache_dir`` in a folder named by a SHA-256 of
``key_parts`` (e.g. ``{"checkpoint": checksum_paths(ckpt_dir), "data": checksum_paths(split_files)}``), so
the gallery is rebuilt exactly when the checkpoint bytes or the data bytes change. Each cache folder is
``embeddings.safetensors`` + ``index.json`` written atomically. Caches of other keys are kept (switching
back to an earlier checkpoint is free); delete ``cache_dir`` to reclaim the space.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from adamotion.utils.numeric import to_numpy
from adamotion.utils.files import atomic_folder, json_sha256, read_json

__all__ = ["EmbeddingIndex", "IndexFormatError", "build_or_load_index", "checksum_paths", "cache_key"]

log = logging.getLogger(__name__)

INDEX_JSON = "index.json"
INDEX_TENSORS = "embeddings.safetensors"
INDEX_FORMAT_VERSION = 1
_HASH_CHUNK_BYTES = 1 << 20  # files are hashed in 1 MiB chunks, never read whole

SearchHit = tuple[str, float, str]  # (id, cosine score, caption)


class IndexFormatError(RuntimeError):
    """A saved index folder is missing, partial, corrupt or of another format version."""


def _unit_rows(array: Any, name: str) -> np.ndarray:
    """(N, D) float32 rows scaled to unit length; zero or non-finite rows are an error."""
    matrix = to_numpy(array, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D (N, D) array, got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} contains NaN or infinite values")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)  # (N, 1)
    if np.any(norms == 0):
        raise ValueError(f"{name} rows {np.flatnonzero(norms[:, 0] == 0).tolist()[:5]} are zero vectors")
    return (matrix / norms).astype(np.float32)


def _string_list(values: Iterable | None, length: int, name: str, default: str | None = "") -> list[str]:
    if values is None:
        if default is None:
            raise ValueError(f"{name} is required")
        return [default] * length
    out = [str(value) for value in values]
    if len(out) != length:
        raise ValueError(f"{name} has {len(out)} entries, expected {length} (one per embedding row)")
    return out


class EmbeddingIndex:
    """A motion gallery, optionally with a caption gallery, searchable by cosine similarity."""

    def __init__(
        self,
        *,
        embeddings: Any,
        ids: Iterable,
        captions: Iterable | None = None,
        metadata: dict | None = None,
        caption_embeddings: Any | None = None,
        caption_texts: Iterable | None = None,
        caption_ids: Iterable | None = None,
    ) -> None:
        """
        Args:
            embeddings: (N, D) motion embeddings; stored L2-normalised (float32).
            ids: N motion ids (unique; converted to str).
            captions: N display captions, one per motion (default empty).
            metadata: JSON-serialisable dict describing the gallery (encoder, split, ...).
            caption_embeddings: (M, D) caption embeddings for motion -> text search, or None.
            caption_texts: M caption texts (required with caption_embeddings).
            caption_ids: M motion ids, the motion each caption describes (default: ``ids`` when M == N).
        """
        self.embeddings = _unit_rows(embeddings, "embeddings")  # (N, D)
        num_motions, dim = self.embeddings.shape
        self.ids = _string_list(ids, num_motions, "ids", default=None)
        if len(set(self.ids)) != num_motions:
            duplicates = sorted(i for i, count in Counter(self.ids).items() if count > 1)[:5]
            raise ValueError(f"ids must be unique; repeated: {duplicates}")
        self.captions = _string_list(captions, num_motions, "captions")
        self.metadata = dict(metadata or {})
        try:
            json.dumps(self.metadata)
        except TypeError as exc:
            raise ValueError(f"metadata must be JSON-serialisable: {exc}") from exc

        self.caption_embeddings: np.ndarray | None = None  # (M, D)
        self.caption_texts: list[str] | None = None
        self.caption_ids: list[str] | None = None
        if caption_embeddings is not None:
            self.caption_embeddings = _unit_rows(caption_embeddings, "caption_embeddings")
            num_captions, caption_dim = self.caption_embeddings.shape
            if caption_dim != dim:
                raise ValueError(f"caption_embeddings are {caption_dim}-d but motion embeddings are {dim}-d")
            self.caption_texts = _string_list(caption_texts, num_captions, "caption_texts", default=None)
            if caption_ids is None and num_captions == num_motions:
                caption_ids = self.ids
            self.caption_ids = _string_list(caption_ids, num_captions, "caption_ids", default=None)
        elif caption_texts is not None or caption_ids is not None:
            raise ValueError("caption_texts/caption_ids given without caption_embeddings")

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        return self.embeddings.shape[0]

    @property
    def dim(self) -> int:
        return self.embeddings.shape[1]

    def __repr__(self) -> str:
        captions = 0 if self.caption_embeddings is None else self.caption_embeddings.shape[0]
        return f"EmbeddingIndex(motions={len(self)}, captions={captions}, dim={self.dim})"

    # ------------------------------------------------------------------ search
    def _search(self, query_emb: Any, gallery: np.ndarray, labels: list[str], texts: list[str], k: int):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        query = to_numpy(query_emb)
        single = query.ndim == 1
        queries = _unit_rows(query[None] if single else query, "query_emb")  # (Q, D)
        if queries.shape[1] != gallery.shape[1]:
            raise ValueError(f"query_emb is {queries.shape[1]}-d but the gallery is {gallery.shape[1]}-d")
        scores = queries @ gallery.T  # (Q, G) cosine similarity
        top = min(k, gallery.shape[0])
        order = np.argsort(-scores, axis=1, kind="stable")[:, :top]  # (Q, top), ties keep gallery order
        results = [
            [(labels[j], float(scores[q, j]), texts[j]) for j in order[q]] for q in range(queries.shape[0])
        ]
        return results[0] if single else results

    def search_text(self, query_emb: Any, k: int = 10) -> list[SearchHit] | list[list[SearchHit]]:
        """Nearest motions to caption embedding(s): (D,) -> one list, (Q, D) -> Q lists of ``(id, score, caption)``.

        At most ``min(k, N)`` hits, best first.
        """
        return self._search(query_emb, self.embeddings, self.ids, self.captions, k)

    def search_motion(self, query_emb: Any, k: int = 10) -> list[SearchHit] | list[list[SearchHit]]:
        """Nearest captions to motion embedding(s): ``(motion id of the caption, score, caption text)`` lists."""
        if self.caption_embeddings is None:
            raise ValueError("this index has no caption gallery; build it with caption_embeddings and caption_texts")
        return self._search(query_emb, self.caption_embeddings, self.caption_ids, self.caption_texts, k)

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str | os.PathLike, extra: dict | None = None) -> Path:
        """Write ``embeddings.safetensors`` + ``index.json`` into ``directory`` atomically (temp folder, rename)."""
        from safetensors.numpy import save_file

        directory = Path(directory)
        with atomic_folder(directory) as tmp:
            tensors = {"embeddings": np.ascontiguousarray(self.embeddings)}
            if self.caption_embeddings is not None:
                tensors["caption_embeddings"] = np.ascontiguousarray(self.caption_embeddings)
            save_file(tensors, str(tmp / INDEX_TENSORS))
            description = {
                "format_version": INDEX_FORMAT_VERSION,
                "ids": self.ids,
                "captions": self.captions,
                "caption_texts": self.caption_texts,
                "caption_ids": self.caption_ids,
                "metadata": self.metadata,
                **(extra or {}),
            }
            (tmp / INDEX_JSON).write_text(json.dumps(description, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        return directory

    @staticmethod
    def read_description(directory: str | os.PathLike) -> dict:
        """The parsed ``index.json`` of a saved index (raises :class:`IndexFormatError`)."""
        path = Path(directory) / INDEX_JSON
        if not path.is_file():
            raise IndexFormatError(f"{path}: missing; {directory} is not a saved index")
        description = read_json(path, what="index description", error=IndexFormatError)
        if not isinstance(description, dict) or description.get("format_version") != INDEX_FORMAT_VERSION:
            raise IndexFormatError(f"{path}: not an index of format version {INDEX_FORMAT_VERSION}")
        return description

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "EmbeddingIndex":
        """Read an index written by :meth:`save` (raises :class:`IndexFormatError` on a bad folder)."""
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        description = cls.read_description(directory)
        tensor_path = Path(directory) / INDEX_TENSORS
        try:
            tensors = load_file(str(tensor_path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise IndexFormatError(f"{tensor_path}: missing, corrupt or partial ({exc})") from exc
        try:
            return cls(
                embeddings=tensors["embeddings"],
                ids=description["ids"],
                captions=description["captions"],
                metadata=description["metadata"],
                caption_embeddings=tensors.get("caption_embeddings"),
                caption_texts=description.get("caption_texts"),
                caption_ids=description.get("caption_ids"),
            )
        except (KeyError, ValueError) as exc:
            raise IndexFormatError(f"{directory}: inconsistent index files ({exc})") from exc


# ----------------------------------------------------------------------------- content keys and the cache
def _files_under(path: Path) -> list[tuple[str, Path]]:
    """``(label, file)`` for a file (label = its name) or every non-hidden file below a folder (relative path)."""
    if path.is_file():
        return [(path.name, path)]
    if path.is_dir():
        files = []
        for file in sorted(path.rglob("*")):
            relative = file.relative_to(path)
            if file.is_file() and not any(part.startswith(".") for part in relative.parts):
                files.append((relative.as_posix(), file))
        return files
    raise FileNotFoundError(f"checksum_paths: {path} does not exist")


def checksum_paths(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> str:
    """SHA-256 (hex) of the bytes of the given files and of every file inside the given folders.

    Files are visited sorted by label (a file's name, or a path relative to the folder it was found in)
    and streamed in chunks; each contributes its label, its size and its bytes, so renaming, adding,
    removing or editing any file changes the digest, while moving the whole tree elsewhere does not.
    Hidden files and folders (``.name``, e.g. half-written temporaries) are skipped.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    entries: list[tuple[str, str, Path]] = []
    for given in paths:
        given = Path(given)
        entries += [(label, str(file), file) for label, file in _files_under(given)]
    if not entries:
        raise ValueError("checksum_paths: no files found in the given paths; check the checkpoint/data locations")
    digest = hashlib.sha256()
    for label, _, file in sorted(entries):
        digest.update(label.encode("utf-8") + b"\0")
        digest.update(str(file.stat().st_size).encode("ascii") + b"\0")
        with open(file, "rb") as handle:
            while chunk := handle.read(_HASH_CHUNK_BYTES):
                digest.update(chunk)
    return digest.hexdigest()


def cache_key(key_parts: dict) -> str:
    """SHA-256 (hex) of the canonical JSON of ``key_parts`` (sorted keys): the identity of a cached index."""
    if not isinstance(key_parts, dict) or not key_parts:
        raise ValueError("key_parts must be a non-empty dict, e.g. {'checkpoint': checksum_paths(ckpt), 'data': ...}")
    try:
        json.dumps(key_parts)
    except TypeError as exc:
        raise ValueError(f"key_parts must be JSON-serialisable (strings, numbers, lists, dicts): {exc}") from exc
    return json_sha256(key_parts, compact=True)


def build_or_load_index(
    cache_dir: str | os.PathLike, key_parts: dict, build_fn: Callable[[], EmbeddingIndex]
) -> EmbeddingIndex:
    """Load the index cached for ``key_parts`` under ``cache_dir``, or call ``build_fn()`` and cache its result.

    ``key_parts`` names everything the gallery depends on, as content checksums
    (``{"checkpoint": checksum_paths(ckpt_dir), "data": checksum_paths(data_files)}``); the cache folder is
    ``cache_dir/index-<first 16 hex digits of cache_key(key_parts)>`` and its ``index.json`` stores the full
    key, which must match. A missing, corrupt or mismatching cache is rebuilt (a corrupt one with a warning).
    """
    key = cache_key(key_parts)
    folder = Path(cache_dir) / f"index-{key[:16]}"
    if folder.exists():
        try:
            if EmbeddingIndex.read_description(folder).get("cache_key") == key:
                index = EmbeddingIndex.load(folder)
                log.info("loaded embedding index %s from %s", key[:16], folder)
                return index
            log.warning("%s holds an index for another key; rebuilding", folder)
        except IndexFormatError as exc:
            log.warning("cached index unusable, rebuilding: %s", exc)

    index = build_fn()
    if not isinstance(index, EmbeddingIndex):
        raise TypeError(f"build_fn must return an EmbeddingIndex, got {type(index).__name__}")
    try:
        index.save(folder, extra={"cache_key": key, "key_parts": key_parts})
        log.info("built and cached embedding index %s in %s", key[:16], folder)
    except OSError as exc:  # e.g. another process swapped in the same cache concurrently
        log.warning("could not write the index cache %s (%s); using the freshly built index", folder, exc)
    return index
