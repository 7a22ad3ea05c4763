"""Config dataclasses from and to plain JSON dicts, with the one strict check for unknown fields.

Every config that is saved in a ``config.json`` or read from ``configs/*.json`` goes through
:func:`config_from_dict`: a typo in a field name is an error that lists the known fields, never silently
ignored. Dataclass configs get ``from_dict`` / ``to_dict`` by inheriting :class:`StrictConfig`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Mapping


def merge_dicts(base: dict, override: Mapping) -> dict:
    """Recursive dict update returning a new dict (``override`` wins)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_dicts(dict(out[key]), value)
        else:
            out[key] = value
    return out


def config_from_dict(cls, data: Mapping[str, Any] | None, where: str = "config"):
    """Build dataclass ``cls`` from a (possibly partial) dict, recursing into dataclass fields.

    Missing keys keep their defaults; for a nested dataclass field, the defaults of the field's own default
    instance (so ``{"loop": {"steps": 10}}`` keeps the job's other loop settings). Unknown keys are an error
    that names ``where`` and the allowed keys (a typo must not be silently ignored).
    """
    if data is not None and not isinstance(data, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(data).__name__}")
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; allowed: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        f = fields[name]
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(default) and not isinstance(default, type):
            if not isinstance(value, Mapping):
                raise ValueError(f"{where}.{name}: expected a JSON object, got {value!r}")
            # a partial section overrides the field's own defaults (e.g. the job's LoopConfig), not the class's
            value = config_from_dict(type(default), merge_dicts(config_to_dict(default), value), f"{where}.{name}")
        elif isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def config_to_dict(config) -> dict:
    """Plain JSON-able dict of a (nested) config dataclass."""
    def convert(obj):
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            return {f.name: convert(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        if isinstance(obj, (list, tuple)):
            return [convert(v) for v in obj]
        if isinstance(obj, dict):
            return {k: convert(v) for k, v in obj.items()}
        if isinstance(obj, Path):
            return str(obj)
        return obj
    return convert(config)


class StrictConfig:
    """Mixin for config dataclasses: ``from_dict`` (unknown fields are an error) and ``to_dict``."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str | None = None):
        return config_from_dict(cls, data, where or cls.__name__)

    def to_dict(self) -> dict:
        return config_to_dict(self)
