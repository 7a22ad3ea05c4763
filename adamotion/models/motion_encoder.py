"""Retrieval motion encoder: motion features -> one embedding in a text encoder's pooled space.

A text encoder can only retrieve motions through a motion encoder that shares its embedding space
(``shared/docs/method.md``, retrieval protocol). :class:`RetrievalMotionEncoder` is trained contrastively
against the *frozen* pooled embeddings of one text encoder (vanilla or AdaQF-adapted, see
``adamotion/train/retrieval.py``); its saved config names that text encoder, so a retrieval index can check
it pairs the right two.

Reads top to bottom: :class:`MotionEncoderConfig` (every size, saved in ``config.json``), then the model:
input projection + learned frame positions -> a pre-norm transformer encoder over valid frames -> masked
mean pool -> projection to ``embed_dim`` -> L2 normalisation.

Input: normalised features (B, T, F) (``DatasetMeta.normalize``) and frame_mask (B, T) bool, True = valid.
The dataset statistics are kept as buffers, so :meth:`encode_raw` also accepts un-normalised features.
"""
from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from adamotion.utils.config import StrictConfig
from adamotion.utils.serialization import (
    CONFIG_NAME, WEIGHTS_NAME, CheckpointError, PretrainedMixin, load_config, load_state_strict, load_tensors,
    save_folder,
)

log = logging.getLogger(__name__)

TEXT_ENCODER_KINDS = ("vanilla", "ada")


@dataclass
class MotionEncoderSizes(StrictConfig):
    """The sizes a run chooses (section ``retrieval.model`` of the training config)."""

    width: int = 256  # transformer width
    depth: int = 2  # transformer layers
    heads: int = 4  # attention heads (width must be divisible by heads)
    ff_mult: int = 2  # MLP hidden size = ff_mult * width
    dropout: float = 0.1  # dropout inside the transformer (training only)


@dataclass(kw_only=True)
class MotionEncoderConfig(MotionEncoderSizes):
    """Every size of the encoder: the chosen :class:`MotionEncoderSizes` plus what data and text encoder fix."""

    feature_dim: int  # F: motion features per frame (Skeleton.feature_dim)
    embed_dim: int  # output size = the paired text encoder's hidden size (its pooled embedding)
    max_frames: int  # longest motion the positional table covers (Skeleton.max_frames)
    temperature: float = 0.07  # InfoNCE temperature it was trained with (similarities / temperature)
    text_encoder: dict = field(default_factory=dict)  # the text encoder it pairs with: kind, backbone, pipeline, sha256

    def __post_init__(self):
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be divisible by heads ({self.heads})")
        for name in ("feature_dim", "embed_dim", "width", "depth", "heads", "ff_mult", "max_frames"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        kind = self.text_encoder.get("kind")
        if kind is not None and kind not in TEXT_ENCODER_KINDS:
            raise ValueError(f"text_encoder.kind must be one of {TEXT_ENCODER_KINDS}, got {kind!r}")


class RetrievalMotionEncoder(PretrainedMixin, nn.Module):
    """(B, T, F) normalised motion + (B, T) frame mask -> (B, embed_dim) unit-norm embedding."""

    component_name = "retrieval_motion_encoder"

    def __init__(self, config: MotionEncoderConfig):
        super().__init__()
        self.config = config
        D = config.width
        self.input_proj = nn.Linear(config.feature_dim, D)
        self.pos_embedding = nn.Parameter(torch.randn(config.max_frames, D) * 0.02)  # (Tmax, D)
        layer = nn.TransformerEncoderLayer(D, config.heads, dim_feedforward=config.ff_mult * D, dropout=config.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, config.depth, enable_nested_tensor=False)
        self.norm_out = nn.LayerNorm(D)
        self.head = nn.Linear(D, config.embed_dim)
        # dataset statistics for encode_raw (identity until set_normalization)
        self.register_buffer("feature_mean", torch.zeros(config.feature_dim))
        self.register_buffer("feature_std", torch.ones(config.feature_dim))

    # -- PretrainedMixin
    def get_config(self) -> dict:
        return asdict(self.config)

    @classmethod
    def from_config(cls, config: dict) -> "RetrievalMotionEncoder":
        return cls(MotionEncoderConfig.from_dict(config, "motion encoder config"))

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str = "cpu") -> "RetrievalMotionEncoder":
        raw = load_config(directory, cls.component_name)
        if "config" not in raw:
            raise CheckpointError(f"{Path(directory) / CONFIG_NAME}: no 'config' entry")
        try:
            model = cls.from_config(raw["config"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{Path(directory) / CONFIG_NAME}: invalid motion encoder config ({exc})") from exc
        state = load_tensors(directory)
        state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        load_state_strict(model, state, Path(directory) / WEIGHTS_NAME)
        return model.to(map_location).eval()

    def save_pretrained(self, directory: str | os.PathLike, dtype=None, extra: dict | None = None) -> Path:
        """Write ``config.json`` (+ ``extra`` entries, e.g. training info) and ``model.safetensors``."""
        state = self.state_dict()
        if dtype is not None:
            state = {k: (v.to(dtype) if v.is_floating_point() else v) for k, v in state.items()}
        return save_folder(directory, self.component_name, {"config": self.get_config(), **(extra or {})}, state)

    # -- normalisation
    @torch.no_grad()
    def set_normalization(self, mean, std) -> None:
        """Store the dataset statistics used by :meth:`encode_raw` (arrays or tensors of shape (F,))."""
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(-1)
        if mean.numel() != self.config.feature_dim or std.numel() != self.config.feature_dim:
            raise ValueError(f"normalisation stats have {mean.numel()}/{std.numel()} entries, "
                             f"expected feature_dim={self.config.feature_dim}")
        self.feature_mean.copy_(mean)
        self.feature_std.copy_(std)

    # -- encoding
    def forward(self, features: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """Unit-norm embedding (B, E) of normalised features (B, T, F) with frame_mask (B, T) True = valid."""
        B, T, Fdim = features.shape
        if Fdim != self.config.feature_dim:
            raise ValueError(f"features have {Fdim} dims per frame, the encoder expects {self.config.feature_dim}")
        if T > self.config.max_frames:
            raise ValueError(f"features have {T} frames, more than max_frames={self.config.max_frames}")
        if frame_mask.shape != (B, T):
            raise ValueError(f"frame_mask shape {tuple(frame_mask.shape)} does not match features {(B, T)}")
        mask = frame_mask.bool()
        if not bool(mask.any(dim=1).all()):
            raise ValueError("every motion needs at least one valid frame")
        h = self.input_proj(features) + self.pos_embedding[:T]  # (B, T, D)
        h = self.encoder(h, src_key_padding_mask=~mask)  # (B, T, D)
        weights = mask[..., None].to(h.dtype)  # (B, T, 1)
        pooled = (h * weights).sum(1) / weights.sum(1)  # (B, D) mean over valid frames
        return F.normalize(self.head(self.norm_out(pooled)), dim=-1)  # (B, E)

    def encode_raw(self, features: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
        """Like :meth:`forward` for un-normalised features (normalised here with the stored statistics)."""
        normed = (features - self.feature_mean) / self.feature_std
        return self(normed * frame_mask[..., None].to(normed.dtype), frame_mask)
