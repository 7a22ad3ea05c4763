"""The text encoder of AdaMotion: a pretrained text transformer with optional LoRA adapters.

With adapters enabled (and trained under motion-quality feedback) this is "AdaCLIP"/AdaQF; with the
adapters disabled - ``with encoder.vanilla():`` - the very same module is the original pretrained
encoder. Per-token hidden states condition the motion generator by cross-attention; the pooled vector
is used for retrieval and similarity.

Typical use::

    encoder = TextEncoder.from_pretrained("minilm")           # MiniLM-L6 + zero-initialised LoRA
    encoder.set_trainable("lora")                              # only adapter weights train
    out = encoder(["a person walks forward"])                  # TextEncoding(hidden, mask, pooled)
    with encoder.vanilla():                                    # adapters off, same weights in memory
        baseline = encoder(["a person walks forward"])
    encoder.save_adapter("checkpoints/text_adapter")           # a few MB: config.json + safetensors
    encoder = TextEncoder.from_pretrained("minilm", adapter_dir="checkpoints/text_adapter")

Saved formats (both through :mod:`adamotion.utils.serialization`, written atomically):

* ``save_adapter(dir)`` - component ``"text_adapter"``: the LoRA weights only, plus the backbone's
  identity (spec, display name, weight SHA-256) so that :meth:`TextEncoder.load_adapter` refuses an
  adapter made for another backbone.
* ``save_pretrained(dir)`` - component ``"text_encoder"``: spec + LoRA settings + adapter weights, and
  for a fully fine-tuned backbone (mode ``"full"``) every backbone weight. ``from_pretrained(dir)``
  rebuilds it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple, Sequence

import torch
from torch import nn

from adamotion.text.backbones import (
    BACKBONES,
    DEFAULT_LORA_TARGETS,
    DEFAULT_SPEC,
    LoadedBackbone,
    available_backbones,
    linear_shapes_per_layer,
    load_backbone,
)
from adamotion.utils.config import StrictConfig
from adamotion.utils.serialization import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    CheckpointError,
    load_config,
    load_state_strict,
    load_tensors,
    save_folder,
)

logger = logging.getLogger(__name__)

ENCODER_COMPONENT = "text_encoder"
ADAPTER_COMPONENT = "text_adapter"
TRAINABLE_MODES = ("frozen", "lora", "full")


# --------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class LoraSettings(StrictConfig):
    """LoRA adapter hyper-parameters (paper: rank 16 on Q, K, V and the MLP of every block).

    Each adapted ``nn.Linear`` with weight W (out x in) computes ``W x + (alpha / rank) * B A x`` with
    A (rank x in) and B (out x rank); B starts at zero, so a fresh adapter leaves the output unchanged.
    It adds ``rank * (in + out)`` trainable parameters per adapted Linear.
    """

    rank: int = 16  # r, the inner dimension of B @ A
    alpha: float = 16.0  # scale numerator: the update is multiplied by alpha / rank (16 / 16 = 1.0)
    dropout: float = 0.0  # dropout applied to the adapter's input, in training mode only
    target_modules: tuple[str, ...] | None = None  # Linear name suffixes to adapt; None = backbone default
    # (CLIP: q_proj, k_proj, v_proj, fc1, fc2; BERT/MiniLM: query, key, value, dense)

    def __post_init__(self):
        if int(self.rank) != self.rank or self.rank < 1:
            raise ValueError(f"LoRA rank must be a positive integer, got {self.rank!r}")
        if self.alpha <= 0:
            raise ValueError(f"LoRA alpha must be positive, got {self.alpha!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout!r}")
        if self.target_modules is not None:
            if isinstance(self.target_modules, str):  # "q_proj,k_proj" is a common way to write it
                object.__setattr__(self, "target_modules", tuple(t.strip() for t in self.target_modules.split(",") if t.strip()))
            else:
                object.__setattr__(self, "target_modules", tuple(self.target_modules))
            if not self.target_modules:
                raise ValueError("LoRA target_modules is empty; use None for the backbone's default targets")

    @property
    def scale(self) -> float:
        """Multiplier of the adapter update, ``alpha / rank``."""
        return self.alpha / self.rank

    def resolved_targets(self, default: Sequence[str]) -> tuple[str, ...]:
        """The explicit targets, or ``default`` (the backbone's) when none were given."""
        return tuple(self.target_modules) if self.target_modules is not None else tuple(default)



class TextEncoding(NamedTuple):
    """Encoder output for a batch of B texts, padded to the longest text in the batch (L tokens)."""

    hidden: torch.Tensor  # (B, L, D) float per-token states; zero at padding positions
    mask: torch.Tensor  # (B, L) bool, True = real token (special tokens included)
    pooled: torch.Tensor  # (B, D) sentence vector: masked mean (MiniLM/BERT) or EOS token state (CLIP)

    def to(self, device: torch.device | str) -> "TextEncoding":
        return TextEncoding(self.hidden.to(device), self.mask.to(device), self.pooled.to(device))


def _is_lora_parameter(name: str) -> bool:
    return ".lora_" in name or name.startswith("lora_")


def _lora_key(name: str) -> str:
    """A peft parameter name without the wrapper prefix and adapter name, stable across peft versions.

    ``base_model.model.encoder.layer.0.attention.self.query.lora_A.default.weight``
    -> ``encoder.layer.0.attention.self.query.lora_A.weight``
    """
    if name.startswith("base_model.model."):
        name = name[len("base_model.model."):]
    return name.replace(".default.", ".")


# --------------------------------------------------------------------------------------------- encoder
class TextEncoder(nn.Module):
    """Pretrained text transformer (+ optional LoRA adapters) mapping captions to token states.

    Build it with :meth:`from_pretrained`. The module starts in eval mode; trainable parameters default
    to the LoRA weights when adapters exist (peft's convention) and to nothing otherwise - call
    :meth:`set_trainable` to choose. ``forward``, ``vanilla()`` and ``encode_cached`` share a re-entrant
    lock, so concurrent requests (e.g. Gradio worker threads) never see adapters toggled mid-forward.
    """

    def __init__(self, backbone: LoadedBackbone, *, lora: LoraSettings | None = LoraSettings(),
                 max_length: int = 77, cache_size: int = 1024):
        super().__init__()
        if max_length < 2:
            raise ValueError(f"max_length must be at least 2 (room for the special tokens), got {max_length}")
        self.backbone: nn.Module = backbone.model  # the Hugging Face encoder, later wrapped by peft
        self.tokenizer = backbone.tokenizer
        self.spec = backbone.spec  # backbone spec string, e.g. "minilm"
        self.backbone_name = backbone.display_name  # e.g. "MiniLM-L6"
        self.backbone_identity = backbone.identity()  # spec, family, name, sha256, config overrides
        self.default_lora_targets = tuple(backbone.lora_targets)
        self.pooling = backbone.pooling
        if max_length > backbone.max_length:
            logger.info("max_length %d exceeds %s's limit; using %d", max_length, self.backbone_name, backbone.max_length)
        self.max_length = min(int(max_length), backbone.max_length)
        self.lora_settings: LoraSettings | None = None
        self.lora_targets: tuple[str, ...] = ()
        self.trainable_mode = "frozen"
        self.backbone_finetuned = False  # True once the base weights may differ from the pretrained ones
        # Inference cache (see encode_cached) and the state that guards it.
        self.cache_size = int(cache_size)
        self._cache: OrderedDict[tuple[str, bool], tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._cache_key_version: tuple | None = None
        self._cache_hits = 0
        self._cache_misses = 0
        self._weights_version = 0  # bumped whenever weights may have changed (load, train(), set_trainable)
        self._vanilla_depth = 0  # nesting depth of vanilla() blocks
        self._lock = threading.RLock()
        for param in self.backbone.parameters():
            param.requires_grad_(False)
        if lora is not None:
            self._add_adapters(lora)
        self.eval()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, spec: str | Path = DEFAULT_SPEC, *, lora: LoraSettings | None = LoraSettings(),
                        adapter_dir: str | Path | None = None, max_length: int = 77,
                        backbone_config: dict | None = None, cache_size: int = 1024) -> "TextEncoder":
        """Build an encoder from a backbone spec, or reload one saved with :meth:`save_pretrained`.

        Args:
            spec: a backbone spec (``"minilm"``, ``"clip:<folder or hub id>"``, ``"hf:<folder>"``,
                ``"clip-random:<tokenizer folder>"``; see :func:`~adamotion.text.backbones.available_backbones`)
                or a folder written by :meth:`save_pretrained` (then ``lora``/``max_length`` come from the folder).
            lora: adapter settings, or None for the plain pretrained encoder. With ``adapter_dir`` the
                adapter's own saved settings are used.
            adapter_dir: a folder written by :meth:`save_adapter` to load into the new encoder.
            max_length: most tokens per text (longer texts are truncated), capped at the backbone's limit.
            backbone_config: ``CLIPTextConfig`` overrides, for ``clip-random:`` specs only.
            cache_size: most texts kept by :meth:`encode_cached`.
        """
        folder = cls._saved_folder_or_none(spec)
        if folder is not None:
            if adapter_dir is not None:
                raise ValueError(f"{folder}: a saved text encoder already holds its adapter; do not pass adapter_dir")
            return cls._from_saved_folder(folder, cache_size=cache_size)
        spec = str(spec)
        if adapter_dir is not None:
            adapter_config = load_config(adapter_dir, ADAPTER_COMPONENT)
            saved = cls._settings_from_config(adapter_config, Path(adapter_dir) / CONFIG_NAME)
            if saved is None:
                raise CheckpointError(f"{Path(adapter_dir) / CONFIG_NAME}: records no LoRA settings")
            if lora is not None and lora != LoraSettings() and lora != saved:
                logger.warning("adapter %s was saved with %s; using those settings instead of %s", adapter_dir, saved, lora)
            lora = saved
        backbone = load_backbone(spec, backbone_config)
        encoder = cls(backbone, lora=lora, max_length=max_length, cache_size=cache_size)
        if adapter_dir is not None:
            encoder.load_adapter(adapter_dir)
        return encoder

    @staticmethod
    def _saved_folder_or_none(spec_or_folder: str | Path) -> Path | None:
        """A saved-encoder folder when the argument names one; None when it is a backbone spec."""
        if isinstance(spec_or_folder, os.PathLike):
            return Path(spec_or_folder).expanduser()
        if not isinstance(spec_or_folder, str):
            raise TypeError(f"expected a backbone spec string or a folder, got {type(spec_or_folder).__name__}")
        prefix = spec_or_folder.strip().partition(":")[0]
        if prefix in BACKBONES:
            return None
        if Path(spec_or_folder).expanduser().is_dir():
            return Path(spec_or_folder).expanduser()
        raise ValueError(
            f"{spec_or_folder!r} is neither a backbone spec nor a saved text-encoder folder; available specs: "
            + "; ".join(available_backbones())
        )

    @staticmethod
    def _settings_from_config(config: dict, where: Path) -> LoraSettings | None:
        raw = config.get("lora")
        if raw is None:
            return None
        try:
            return LoraSettings.from_dict(raw, "LoRA settings")
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{where}: invalid LoRA settings {raw!r} ({exc})") from exc

    @classmethod
    def _from_saved_folder(cls, folder: Path, *, cache_size: int) -> "TextEncoder":
        config_path = folder / CONFIG_NAME
        try:
            config = load_config(folder, ENCODER_COMPONENT)
        except CheckpointError as exc:
            raise CheckpointError(
                f"{exc}. For a Hugging Face model folder use the spec 'hf:<folder>' or 'clip:<folder>'; "
                "for a folder written by save_adapter use from_pretrained(spec, adapter_dir=<folder>)"
            ) from exc
        identity = config.get("backbone")
        if not isinstance(identity, dict) or not isinstance(identity.get("spec"), str):
            raise CheckpointError(f"{config_path}: no 'backbone' record with a spec")
        lora = cls._settings_from_config(config, config_path)
        backbone = load_backbone(identity["spec"], identity.get("config_overrides") or None)
        encoder = cls(backbone, lora=lora, max_length=int(config.get("max_length", 77)), cache_size=cache_size)
        includes_backbone = bool(config.get("includes_backbone_weights", False))
        if not includes_backbone:
            encoder._check_backbone_identity(identity, config_path, what="text encoder")
        tensors = load_tensors(folder)
        weights_path = folder / WEIGHTS_NAME
        if includes_backbone:
            backbone_state = {k[len("backbone."):]: v for k, v in tensors.items() if k.startswith("backbone.")}
            load_state_strict(encoder.backbone, backbone_state, weights_path)
            encoder.backbone_finetuned = True
        elif encoder.has_adapters:
            encoder._load_lora_state({k[len("lora."):]: v for k, v in tensors.items() if k.startswith("lora.")}, weights_path)
        encoder._invalidate()
        logger.info("loaded %s from %s", encoder.display_name, folder)
        return encoder

    def _add_adapters(self, settings: LoraSettings) -> None:
        """Wrap the backbone with peft LoRA layers (B = 0, so outputs are unchanged)."""
        from peft import LoraConfig, get_peft_model

        if self.has_adapters:
            raise RuntimeError("this encoder already has LoRA adapters")
        targets = settings.resolved_targets(self.default_lora_targets)
        if not targets:
            raise ValueError(f"no default LoRA targets known for {self.backbone_name}; pass LoraSettings(target_modules=...)")
        peft_config = LoraConfig(r=int(settings.rank), lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                                 target_modules=list(targets), bias="none")
        with warnings.catch_warnings():  # peft probes a deprecated transformers attribute while wrapping
            warnings.simplefilter("ignore", FutureWarning)
            self.backbone = get_peft_model(self.backbone, peft_config)
        self.lora_settings = settings
        self.lora_targets = targets
        self.set_trainable("lora")
        logger.info("added LoRA adapters to %s: rank %d, alpha %g, targets %s, %s parameters", self.backbone_name,
                    settings.rank, settings.alpha, ",".join(targets), f"{self.lora_parameter_count():,}")

    # ------------------------------------------------------------------ properties
    @property
    def base_model(self) -> nn.Module:
        """The underlying Hugging Face model (without the peft wrapper)."""
        return self.backbone.get_base_model() if self.has_adapters else self.backbone

    @property
    def backbone_config(self):
        """The backbone's Hugging Face config (``hidden_size``, ``num_hidden_layers``, ...)."""
        return self.base_model.config

    @property
    def hidden_size(self) -> int:
        """D, the width of ``hidden`` and ``pooled``."""
        return int(self.backbone_config.hidden_size)

    @property
    def has_adapters(self) -> bool:
        """Whether LoRA adapters are attached (they may be temporarily off inside ``vanilla()``)."""
        return self.lora_settings is not None

    @property
    def adapters_active(self) -> bool:
        """Whether forward passes currently use the adapters."""
        return self.has_adapters and self._vanilla_depth == 0

    @property
    def display_name(self) -> str:
        """UI name in the current state: "MiniLM-L6 + LoRA (AdaQF)" with adapters on, else "MiniLM-L6 (vanilla)"."""
        return self.label(adapters=self.adapters_active)

    def label(self, adapters: bool = True) -> str:
        """UI name with the adapters on or off, independent of the live state (which another thread may toggle)."""
        name = self.backbone_name
        if self.backbone_finetuned:
            name += " (full fine-tune)"
        if adapters and self.has_adapters:
            return f"{name} + LoRA (AdaQF)"
        return name if self.backbone_finetuned else f"{name} (vanilla)"

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ encoding
    @staticmethod
    def _check_texts(texts) -> list[str]:
        if isinstance(texts, str):
            raise TypeError("TextEncoder expects a list of strings; wrap a single text as [text]")
        texts = list(texts)
        if not texts:
            raise ValueError("TextEncoder got an empty list of texts")
        bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
        if bad:
            raise TypeError(f"TextEncoder expects strings, got {sorted(set(bad))}")
        return texts

    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """Token ids and attention mask, padded to the longest text, truncated at ``max_length``, on the module's device."""
        texts = self._check_texts(texts)
        tokens = self.tokenizer(texts, padding="longest", truncation=True, max_length=self.max_length, return_tensors="pt")
        device = self.device
        return {"input_ids": tokens["input_ids"].to(device),  # (B, L)
                "attention_mask": tokens["attention_mask"].to(device)}  # (B, L)

    def forward(self, texts: Sequence[str]) -> TextEncoding:
        """Tokenise and encode ``texts`` (adapters on unless inside ``vanilla()``)."""
        tokens = self.tokenize(texts)
        with self._lock:
            outputs = self.backbone(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        mask = tokens["attention_mask"].bool()  # (B, L)
        hidden = outputs.last_hidden_state.masked_fill(~mask.unsqueeze(-1), 0.0)  # (B, L, D)
        if self.pooling == "mean":
            counts = mask.sum(dim=1, keepdim=True).clamp(min=1).to(hidden.dtype)  # (B, 1)
            pooled = hidden.sum(dim=1) / counts  # (B, D)
        else:  # "eos": the last real token is CLIP's end-of-text token (kept by truncation)
            last = mask.sum(dim=1) - 1  # (B,)
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]  # (B, D)
        return TextEncoding(hidden=hidden, mask=mask, pooled=pooled)

    @contextlib.contextmanager
    def vanilla(self) -> Iterator["TextEncoder"]:
        """Temporarily disable the LoRA adapters: inside, this module *is* the pretrained encoder.

        No second copy of the backbone exists; the adapter layers are switched off and back on.
        Re-entrant (nested blocks keep adapters off until the outermost exits) and exception-safe.
        A no-op for an encoder without adapters. Note that a fully fine-tuned backbone stays fine-tuned.
        """
        with self._lock:
            if not self.has_adapters:
                yield self
                return
            self._vanilla_depth += 1
            if self._vanilla_depth == 1:
                self.backbone.base_model.disable_adapter_layers()
            try:
                yield self
            finally:
                self._vanilla_depth -= 1
                if self._vanilla_depth == 0:
                    self.backbone.base_model.enable_adapter_layers()

    # ------------------------------------------------------------------ training
    def set_trainable(self, mode: str) -> int:
        """Choose which parameters train; returns how many parameters now require gradients.

        ``"frozen"``: none. ``"lora"``: only the LoRA adapter weights. ``"full"``: every backbone weight
        (and the adapters, when present) - ``save_pretrained`` then stores the whole backbone.
        """
        if mode not in TRAINABLE_MODES:
            raise ValueError(f"unknown trainable mode {mode!r}; choose one of {TRAINABLE_MODES}")
        if mode == "lora" and not self.has_adapters:
            raise ValueError("set_trainable('lora') needs LoRA adapters; build the encoder with lora=LoraSettings()")
        for name, param in self.backbone.named_parameters():
            param.requires_grad_(mode == "full" or (mode == "lora" and _is_lora_parameter(name)))
        self.trainable_mode = mode
        if mode == "full":
            self.backbone_finetuned = True
        self._invalidate()
        count = sum(p.numel() for p in self.parameters() if p.requires_grad)
        logger.debug("text encoder trainable mode %s: %s parameters", mode, f"{count:,}")
        return count

    def lora_parameters(self) -> list[nn.Parameter]:
        """The LoRA adapter weights (empty without adapters), e.g. for an optimizer parameter group."""
        return [p for name, p in self.backbone.named_parameters() if _is_lora_parameter(name)]

    def lora_parameter_count(self) -> int:
        """Number of LoRA adapter parameters (0 without adapters)."""
        return sum(p.numel() for p in self.lora_parameters())

    @staticmethod
    def analytic_lora_count(backbone_config, settings: LoraSettings | None = None) -> int:
        """LoRA parameter count from the architecture alone: ``rank * (in + out)`` per adapted Linear.

        ``backbone_config`` is a Hugging Face config (or its dict) of a BERT-style or CLIP text model;
        a full ``CLIPConfig`` is reduced to its ``text_config``. CLIP ViT-B/32 with rank 16 gives 1,572,864.
        """
        settings = settings or LoraSettings()
        config = backbone_config.to_dict() if hasattr(backbone_config, "to_dict") else dict(backbone_config)
        model_type = config.get("model_type")
        if model_type == "clip" and isinstance(config.get("text_config"), dict):
            config, model_type = config["text_config"], "clip_text_model"
        if model_type not in DEFAULT_LORA_TARGETS:
            raise ValueError(f"cannot count LoRA parameters for model_type {model_type!r}; known: {sorted(DEFAULT_LORA_TARGETS)}")
        shapes = linear_shapes_per_layer(model_type, int(config["hidden_size"]), int(config["intermediate_size"]))
        targets = settings.resolved_targets(DEFAULT_LORA_TARGETS[model_type])
        unknown = [t for t in targets if t not in shapes]
        if unknown:
            raise ValueError(f"targets {unknown} are not Linear layers of a {model_type} block; known: {sorted(shapes)}")
        per_layer = sum(settings.rank * (fan_in + fan_out) for t in targets for fan_in, fan_out in shapes[t])
        return int(config["num_hidden_layers"]) * per_layer

    def train(self, mode: bool = True) -> "TextEncoder":
        """Switch train/eval mode; entering training invalidates the inference cache (weights will change)."""
        if mode:
            self._invalidate()
        return super().train(mode)

    # ------------------------------------------------------------------ inference cache
    def _invalidate(self) -> None:
        """Mark the weights as (possibly) changed: drops every cached encoding."""
        self._weights_version += 1
        self._cache.clear()

    def _cache_version(self) -> tuple:
        # In-place updates (optimizer.step, load_state_dict, copy_) bump each tensor's version counter, so
        # this also catches weights changed behind the encoder's back, e.g. training while in eval mode.
        return (self._weights_version, sum(p._version for p in self.parameters()), str(self.device),
                next(self.parameters()).dtype)

    def clear_cache(self) -> None:
        """Forget every cached encoding (hit/miss counters are kept)."""
        with self._lock:
            self._cache.clear()

    def cache_info(self) -> dict:
        """``{"hits", "misses", "size", "capacity"}`` of the :meth:`encode_cached` LRU cache."""
        return {"hits": self._cache_hits, "misses": self._cache_misses, "size": len(self._cache), "capacity": self.cache_size}

    def encode_cached(self, texts: Sequence[str], adapters: bool = True) -> TextEncoding:
        """Encode for inference, reusing earlier results for the same text (LRU, ``cache_size`` texts).

        Entries are keyed by (text, adapters on/off) and dropped whenever the weights may have changed
        (``load_adapter``, ``train()``, ``set_trainable``, or any in-place parameter update) or the module
        moved device/dtype. Only texts not yet cached are encoded (together, under ``torch.inference_mode``);
        results are assembled and **padded to the longest text in this batch**, so ``L`` depends on the
        batch, not on the cache. Returned tensors are ordinary (not inference-mode) tensors on the module's
        current device, without gradient. ``adapters=False`` encodes with the adapters disabled; inside a
        ``vanilla()`` block the adapters are off regardless. In training mode nothing is cached (plain
        forward without gradient).
        """
        texts = self._check_texts(texts)
        with self._lock:
            use_adapters = bool(adapters) and self.adapters_active
            if self.training:
                with torch.no_grad(), (contextlib.nullcontext() if use_adapters else self.vanilla()):
                    return self.forward(texts)
            version = self._cache_version()
            if version != self._cache_key_version:
                self._cache.clear()
                self._cache_key_version = version
            found: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
            for text in dict.fromkeys(texts):
                entry = self._cache.get((text, use_adapters))
                if entry is not None:
                    self._cache.move_to_end((text, use_adapters))
                    found[text] = entry
            missing = [text for text in dict.fromkeys(texts) if text not in found]
            self._cache_hits += sum(text in found for text in texts)
            self._cache_misses += len(missing)
            if missing:
                with torch.inference_mode(), (contextlib.nullcontext() if use_adapters else self.vanilla()):
                    encoded = self.forward(missing)
                    lengths = encoded.mask.sum(dim=1).tolist()
                    rows = [(encoded.hidden[i, :n], encoded.pooled[i]) for i, n in enumerate(lengths)]
                # Clone outside inference mode (even when the caller is inside one) so that cached tensors are
                # ordinary tensors that later autograd-recording code (e.g. a trainable denoiser) may use.
                with torch.inference_mode(False):
                    for text, (hidden_row, pooled_row) in zip(missing, rows):
                        entry = (hidden_row.clone(), pooled_row.clone())
                        found[text] = entry
                        self._cache[(text, use_adapters)] = entry
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
            return self._assemble([found[text] for text in texts])

    def _assemble(self, entries: list[tuple[torch.Tensor, torch.Tensor]]) -> TextEncoding:
        """Pad cached per-text states (L_i, D) into a batch (B, L_max, D) with its mask."""
        device = self.device
        longest = max(hidden.shape[0] for hidden, _ in entries)
        first_hidden = entries[0][0]
        hidden = first_hidden.new_zeros(len(entries), longest, first_hidden.shape[-1])  # (B, L, D)
        mask = torch.zeros(len(entries), longest, dtype=torch.bool, device=first_hidden.device)  # (B, L)
        for row, (states, _) in enumerate(entries):
            hidden[row, : states.shape[0]] = states
            mask[row, : states.shape[0]] = True
        pooled = torch.stack([p for _, p in entries])  # (B, D)
        return TextEncoding(hidden.to(device), mask.to(device), pooled.to(device))

    # ------------------------------------------------------------------ adapters on disk
    def _lora_state(self) -> dict[str, torch.Tensor]:
        return {_lora_key(name): p.detach() for name, p in self.backbone.named_parameters() if _is_lora_parameter(name)}

    def _load_lora_state(self, state: dict[str, torch.Tensor], path: Path) -> None:
        """Copy adapter weights in place after checking names and shapes match exactly."""
        own = {_lora_key(name): p for name, p in self.backbone.named_parameters() if _is_lora_parameter(name)}
        missing = sorted(set(own) - set(state))
        unexpected = sorted(set(state) - set(own))
        bad = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
               for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
        if missing or unexpected or bad:
            details = "; ".join(part for part in (
                f"missing {missing[:3]}{' ...' if len(missing) > 3 else ''} ({len(missing)} total)" if missing else "",
                f"unexpected {unexpected[:3]}{' ...' if len(unexpected) > 3 else ''} ({len(unexpected)} total)" if unexpected else "",
                f"shape mismatch {bad[:3]}" if bad else "") if part)
            raise CheckpointError(f"{path}: adapter weights do not fit this encoder ({details})")
        with torch.no_grad():
            for key, param in own.items():
                param.copy_(state[key].to(dtype=param.dtype, device=param.device))
        self._invalidate()

    def _check_backbone_identity(self, saved: dict | None, config_path: Path, *, what: str) -> None:
        """Refuse weights made for another backbone (checksums when both known, else specs)."""
        if not isinstance(saved, dict) or not isinstance(saved.get("spec"), str):
            raise CheckpointError(f"{config_path}: no 'backbone' record; cannot tell which backbone this {what} belongs to")
        own = self.backbone_identity
        if saved.get("sha256") and own.get("sha256"):
            same = saved["sha256"] == own["sha256"]
        else:
            same = saved["spec"] == own["spec"] and (saved.get("config_overrides") or {}) == (own.get("config_overrides") or {})
        if not same:
            def describe(identity: dict) -> str:
                sha = identity.get("sha256")
                return f"{identity.get('name', '?')} (spec {identity['spec']!r}, sha256 {sha[:12] if sha else 'unknown'})"

            raise CheckpointError(
                f"{config_path}: this {what} was made for backbone {describe(saved)}, but this encoder's backbone is "
                f"{describe(own)}; build the encoder with TextEncoder.from_pretrained({saved['spec']!r}) to use it"
            )

    def save_adapter(self, directory: str | Path) -> Path:
        """Write the LoRA weights and the backbone identity (component ``"text_adapter"``); a few MB."""
        if not self.has_adapters:
            raise ValueError("this encoder has no LoRA adapters to save; build it with lora=LoraSettings()")
        config = {
            "backbone": self.backbone_identity,
            "lora": self.lora_settings.to_dict(),
            "lora_targets": list(self.lora_targets),
            "lora_parameters": self.lora_parameter_count(),
            "hidden_size": self.hidden_size,
        }
        path = save_folder(directory, ADAPTER_COMPONENT, config, self._lora_state())
        logger.info("saved %s adapter (%s parameters) to %s", self.backbone_name, f"{self.lora_parameter_count():,}", path)
        return path

    def load_adapter(self, directory: str | Path) -> None:
        """Load adapter weights saved by :meth:`save_adapter` (adds adapters if this encoder has none).

        Fails with :class:`CheckpointError` naming the path when the folder is missing or corrupt, when
        the adapter was trained for another backbone, or when its rank/targets differ from this encoder's.
        """
        directory = Path(directory)
        config_path = directory / CONFIG_NAME
        config = load_config(directory, ADAPTER_COMPONENT)
        self._check_backbone_identity(config.get("backbone"), config_path, what="adapter")
        settings = self._settings_from_config(config, config_path)
        if settings is None:
            raise CheckpointError(f"{config_path}: records no LoRA settings")
        state = load_tensors(directory)  # read (and validate) the file before touching the model
        with self._lock:
            if not self.has_adapters:
                self._add_adapters(settings)
            else:
                theirs = (settings.rank, settings.alpha, settings.resolved_targets(self.default_lora_targets))
                ours = (self.lora_settings.rank, self.lora_settings.alpha, self.lora_targets)
                if theirs != ours:
                    raise CheckpointError(
                        f"{config_path}: adapter has rank {theirs[0]}, alpha {theirs[1]:g}, targets {list(theirs[2])} but this "
                        f"encoder has rank {ours[0]}, alpha {ours[1]:g}, targets {list(ours[2])}; build it with "
                        f"TextEncoder.from_pretrained(spec, adapter_dir={str(directory)!r})"
                    )
            self._load_lora_state(state, directory / WEIGHTS_NAME)
        logger.info("loaded adapter %s into %s", directory, self.display_name)

    # ------------------------------------------------------------------ whole encoder on disk
    def get_config(self) -> dict:
        """Everything needed to rebuild this encoder (besides weights)."""
        return {
            "backbone": self.backbone_identity,
            "lora": self.lora_settings.to_dict() if self.lora_settings is not None else None,
            "max_length": self.max_length,
            "hidden_size": self.hidden_size,
            "trainable_mode": self.trainable_mode,
            "display_name": self.display_name,
        }

    def save_pretrained(self, directory: str | Path, *, include_backbone_weights: bool | None = None) -> Path:
        """Save as component ``"text_encoder"``: spec, LoRA settings and adapter weights.

        The whole backbone is stored as well when ``include_backbone_weights`` is True, or by default
        when it was fully fine-tuned (``set_trainable("full")``); otherwise it is rebuilt from its spec
        (and checked against the recorded checksum) on load.
        """
        include = self.backbone_finetuned if include_backbone_weights is None else bool(include_backbone_weights)
        if include:
            # clone: safetensors refuses tensors that share storage
            tensors = {f"backbone.{k}": v.detach().clone() for k, v in self.backbone.state_dict().items()}
        else:
            tensors = {f"lora.{k}": v for k, v in self._lora_state().items()}
        config = {**self.get_config(), "includes_backbone_weights": include}
        path = save_folder(directory, ENCODER_COMPONENT, config, tensors)
        logger.info("saved %s to %s (%d tensors)", self.display_name, path, len(tensors))
        return path

    # ------------------------------------------------------------------ pickling / deepcopy
    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("_lock", None)  # locks cannot be copied; a copy gets its own
        state["_cache"] = OrderedDict()
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._lock = threading.RLock()

    def extra_repr(self) -> str:
        return f"spec={self.spec!r}, name={self.display_name!r}, hidden_size={self.hidden_size}, max_length={self.max_length}"
