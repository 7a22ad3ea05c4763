"""Save and load components as a folder: ``config.json`` + ``*.safetensors``.

Writes are atomic (temporary folder, then rename) so a killed process never leaves a half-written
checkpoint in place; reads fail loudly with the path and the reason.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from adamotion.utils.files import atomic_folder, atomic_write_json, atomic_write_text, read_json, replace_dir

__all__ = [
    "CONFIG_NAME", "WEIGHTS_NAME", "FORMAT_VERSION", "CheckpointError", "PretrainedMixin", "atomic_write_json",
    "atomic_write_text", "load_config", "load_state_strict", "load_tensors", "replace_dir", "save_folder",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint folder is missing, partial, corrupt or made for another component."""


def save_folder(directory: str | os.PathLike, component: str, config: dict, tensors: dict | None = None,
                extra_files: dict[str, dict] | None = None) -> Path:
    """Write ``config.json`` (with ``component`` and format version) and ``model.safetensors`` atomically."""
    from safetensors.torch import save_file

    with atomic_folder(directory) as tmp:
        full = {"component": component, "format_version": FORMAT_VERSION, **config}
        (tmp / CONFIG_NAME).write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        if tensors is not None:
            contiguous = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
            save_file(contiguous, str(tmp / WEIGHTS_NAME), metadata={"component": component})
        for name, obj in (extra_files or {}).items():
            (tmp / name).write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return Path(directory)


def load_config(directory: str | os.PathLike, component: str | None = None) -> dict:
    """Read ``config.json``; check it describes ``component`` when given."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: checkpoint folder not found (expected a folder with {CONFIG_NAME})")
    path = directory / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; this folder is not a saved {component or 'component'}")
    config = read_json(path, what="checkpoint config", error=CheckpointError,
                       fix="re-save or re-download the checkpoint")
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(config).__name__}")
    if component is not None and config.get("component") != component:
        raise CheckpointError(
            f"{path}: holds a {config.get('component')!r} component, expected {component!r}; point at the right folder"
        )
    return config


def load_tensors(directory: str | os.PathLike, name: str = WEIGHTS_NAME) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(directory) / name
    if not path.is_file():
        raise CheckpointError(f"{path}: missing weights file")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: corrupt or partial safetensors file ({exc})") from exc


def read_numpy_tensors(path: str | os.PathLike, *, fix: str, required: tuple[str, ...] = ()) -> dict:
    """numpy arrays of a safetensors file; a missing, truncated or corrupt file, or one lacking a ``required``
    tensor, raises :class:`CheckpointError` naming the path, the reason and ``fix``."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; {fix}")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: unreadable, truncated or corrupt ({exc}); {fix}") from None
    missing = [key for key in required if key not in tensors]
    if missing:
        raise CheckpointError(f"{path}: lacks {', '.join(map(repr, missing))}; {fix}")
    return tensors


def load_state_strict(module, state: dict, path: str | os.PathLike) -> None:
    """``load_state_dict(strict=True)`` with an error naming the file and the mismatching keys/shapes."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    bad_shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in set(own) & set(state) if tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or bad_shapes:
        parts = []
        if missing:
            parts.append(f"missing {missing[:5]}{'…' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected {unexpected[:5]}{'…' if len(unexpected) > 5 else ''}")
        if bad_shapes:
            parts.append(f"shape mismatch {bad_shapes[:3]}")
        raise CheckpointError(f"{path}: weights do not match the config ({'; '.join(parts)})")
    module.load_state_dict(state, strict=True)


class PretrainedMixin:
    """``save_pretrained`` / ``from_pretrained`` for an ``nn.Module`` rebuilt from its own config.

    Subclasses set ``component_name`` and implement ``get_config() -> dict`` and ``from_config(dict)``.
    """

    component_name: str = ""

    def get_config(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict):  # pragma: no cover - abstract
        raise NotImplementedError

    def save_pretrained(self, directory: str | os.PathLike, dtype=None) -> Path:
        state = self.state_dict()
        if dtype is not None:
            state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}
        return save_folder(directory, self.component_name, {"config": self.get_config()}, state)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str = "cpu"):
        raw = load_config(directory, cls.component_name)
        if "config" not in raw:
            raise CheckpointError(f"{Path(directory) / CONFIG_NAME}: no 'config' entry")
        model = cls.from_config(raw["config"])
        state = load_tensors(directory)
        own = model.state_dict()
        state = {k: v.to(own[k].dtype) if k in own and v.is_floating_point() else v for k, v in state.items()}
        load_state_strict(model, state, Path(directory) / WEIGHTS_NAME)
        return model.to(map_location)


def weights_fingerprint(directory: str | os.PathLike) -> str:
    """sha256 (hex) of every ``*.safetensors`` file under ``directory``, in sorted relative-path order.

    Identifies trained weights independently of where they are copied: an evaluator and the feedback
    extractors a generator trained against are compared by it (``adamotion evaluate`` refuses a match).
    """
    import hashlib

    directory = Path(directory)
    files = sorted(p for p in directory.rglob("*.safetensors") if "checkpoint" not in p.relative_to(directory).parts)
    if not files:
        raise CheckpointError(f"{directory}: no *.safetensors weights to fingerprint; point at a saved component folder")
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()
