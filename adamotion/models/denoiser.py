"""MDM-style motion denoiser: a transformer that predicts the clean motion x0 from (x_t, t, text).

Reads top to bottom:

1. :class:`DenoiserConfig` - every size of the network, saved in ``config.json`` and rebuilt from it.
2. Building blocks - sinusoidal embeddings, self- and cross-attention on ``F.scaled_dot_product_attention``,
   a pre-norm decoder block (self-attention over frames, cross-attention to text tokens, MLP).
3. :class:`MotionDenoiser` - input projection + positions + timestep embedding, the blocks, an optional
   depthwise temporal convolution (``temporal_kernel``), an output projection predicting x0. Two public steps: :meth:`MotionDenoiser.prepare_condition` and ``forward``.
   Classifier-free guidance is the pipeline's business (it batches the conditional and null rows).

Masks are boolean with ``True`` = real (a valid frame / a real text token). Padded frames never influence
valid frames (they are masked out as attention keys) and come out as zeros.

The text condition is projected by :meth:`MotionDenoiser.prepare_condition`, which also precomputes every
block's cross-attention keys and values; a sampling loop prepares it once and passes it to every step.
How many text tokens there may be is the text encoder's business (it truncates); the denoiser accepts any.
"""
from __future__ import annotations

import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from adamotion.motion.skeleton import Skeleton
from adamotion.utils.config import StrictConfig
from adamotion.utils.serialization import CONFIG_NAME, CheckpointError, PretrainedMixin

log = logging.getLogger(__name__)


@dataclass
class DenoiserSizes(StrictConfig):
    """The sizes a run chooses (section ``generator.denoiser`` of the training config)."""

    width: int = 256  # D: transformer width
    depth: int = 4  # number of decoder blocks
    heads: int = 4  # attention heads (width must be divisible by heads)
    ff_mult: int = 2  # MLP hidden size = ff_mult * width
    dropout: float = 0.1  # dropout on attention outputs and MLP (training only)
    temporal_kernel: int = 0  # frames seen by the depthwise temporal convolution before the output; 0 = none


@dataclass(kw_only=True)
class DenoiserConfig(DenoiserSizes):
    """Every size of the network: the chosen :class:`DenoiserSizes` plus what data and text encoder fix."""

    feature_dim: int  # F: motion features per frame (Skeleton.feature_dim, 263 for HumanML3D)
    text_dim: int  # Dt: width of the text encoder's per-token hidden states
    max_frames: int  # longest motion the positional table covers (Skeleton.max_frames)
    cond_dropout: float = 0.1  # share of training samples whose text is replaced by the null token (CFG)

    def __post_init__(self):
        if self.width % self.heads:
            raise ValueError(f"width ({self.width}) must be divisible by heads ({self.heads})")
        for name in ("feature_dim", "text_dim", "width", "depth", "heads", "ff_mult", "max_frames"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.cond_dropout < 1.0:
            raise ValueError(f"cond_dropout must be in [0, 1), got {self.cond_dropout}")
        if self.temporal_kernel < 0 or (self.temporal_kernel and self.temporal_kernel % 2 == 0):
            raise ValueError(f"temporal_kernel must be 0 (off) or an odd number of frames, got {self.temporal_kernel}")

    @classmethod
    def for_skeleton(cls, skeleton: Skeleton, text_dim: int, **kwargs) -> "DenoiserConfig":
        """The config for a skeleton's feature size and maximum length."""
        return cls(feature_dim=skeleton.feature_dim, text_dim=text_dim, max_frames=skeleton.max_frames, **kwargs)


# fields older checkpoints carry that no longer configure anything; ignored on load
RETIRED_CONFIG_FIELDS = ("text_tokens_max",)  # the token limit belongs to the text encoder


# ----------------------------------------------------------------------------- building blocks
def sinusoidal_embedding(positions: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(N,) positions (int or float) -> (N, dim) [sin | cos] features at geometric frequencies."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=positions.device) / half)
    angles = positions.float()[:, None] * freqs[None]  # (N, half)
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)  # (N, 2*half)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor, dropout: float) -> torch.Tensor:
    """q (B, H, T, Dh) over k, v (B, H, S, Dh) where key_mask (B, S) is True -> (B, T, H*Dh)."""
    B, H, T, Dh = q.shape
    attn_mask = key_mask[:, None, None, :]  # (B, 1, 1, S) True = attend
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout)  # (B, H, T, Dh)
    return y.transpose(1, 2).reshape(B, T, H * Dh)


class SelfAttention(nn.Module):
    """Multi-head self-attention over frames with one fused QKV projection."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.heads, -1).permute(2, 0, 3, 1, 4)  # 3 x (B, H, T, Dh)
        return self.out(attend(q, k, v, key_mask, self.dropout if self.training else 0.0))  # (B, T, D)


class CrossAttention(nn.Module):
    """Multi-head attention from frames to text tokens; keys/values are precomputed once per condition."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)
        self.dropout = dropout

    def project_kv(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, D) text memory -> keys, values each (B, H, L, Dh)."""
        B, L, _ = memory.shape
        k, v = self.kv(memory).view(B, L, 2, self.heads, -1).permute(2, 0, 3, 1, 4)  # 2 x (B, H, L, Dh)
        return k, v

    def forward(self, x: torch.Tensor, kv: tuple[torch.Tensor, torch.Tensor], key_mask: torch.Tensor) -> torch.Tensor:
        B, T, D = x.shape
        q = self.q(x).view(B, T, self.heads, -1).transpose(1, 2)  # (B, H, T, Dh)
        return self.out(attend(q, *kv, key_mask, self.dropout if self.training else 0.0))  # (B, T, D)


class DecoderBlock(nn.Module):
    """Pre-norm block: self-attention over frames, cross-attention to text tokens, MLP; residual each."""

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        D = config.width
        self.norm_self = nn.LayerNorm(D)
        self.self_attn = SelfAttention(D, config.heads, dropout=config.dropout)
        self.norm_cross = nn.LayerNorm(D)
        self.cross_attn = CrossAttention(D, config.heads, dropout=config.dropout)
        self.norm_mlp = nn.LayerNorm(D)
        self.mlp = nn.Sequential(
            nn.Linear(D, config.ff_mult * D), nn.GELU(), nn.Linear(config.ff_mult * D, D), nn.Dropout(config.dropout),
        )
        self.drop = nn.Dropout(config.dropout)

    def forward(self, h: torch.Tensor, frame_mask: torch.Tensor, text_kv, text_mask: torch.Tensor) -> torch.Tensor:
        h = h + self.drop(self.self_attn(self.norm_self(h), frame_mask))  # (B, T, D)
        h = h + self.drop(self.cross_attn(self.norm_cross(h), text_kv, text_mask))
        h = h + self.mlp(self.norm_mlp(h))
        return h  # (B, T, D)


@dataclass
class PreparedCondition:
    """The text condition projected for every block, reusable across sampling steps.

    ``memory`` (B, L, D) projected text tokens (the null token at position 0 where dropped), ``mask`` (B, L)
    True = attend, ``kv`` one (keys, values) pair per block, each (B, H, L, D/H).
    """

    memory: torch.Tensor
    mask: torch.Tensor
    kv: list[tuple[torch.Tensor, torch.Tensor]]

    @property
    def batch_size(self) -> int:
        return self.memory.shape[0]


# ----------------------------------------------------------------------------- the denoiser
class MotionDenoiser(PretrainedMixin, nn.Module):
    """Predicts x0 (B, T, F) from a noisy motion x_t, the diffusion timestep and text token states."""

    component_name = "motion_denoiser"

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        self.config = config
        D = config.width
        self.input_proj = nn.Linear(config.feature_dim, D)
        # learned frame positions, initialised with sinusoids so early training already sees order
        self.pos_embedding = nn.Parameter(sinusoidal_embedding(torch.arange(config.max_frames), D) * 0.1)  # (Tmax, D)
        self.time_mlp = nn.Sequential(nn.Linear(D, D), nn.SiLU(), nn.Linear(D, D))
        self.text_proj = nn.Sequential(nn.LayerNorm(config.text_dim), nn.Linear(config.text_dim, D))
        self.null_token = nn.Parameter(torch.randn(D) * 0.02)  # replaces the text when the condition is dropped
        self.blocks = nn.ModuleList([DecoderBlock(config) for _ in range(config.depth)])
        if config.temporal_kernel:
            # A temporal prior: every output frame mixes its neighbours' states, so the x0 prediction can be
            # smooth over time instead of passing each frame's own input noise through (residual, zero-init:
            # training starts from the plain transformer).
            self.temporal_norm = nn.LayerNorm(D)
            self.temporal_conv = nn.Conv1d(D, D, config.temporal_kernel, padding=config.temporal_kernel // 2, groups=D)
        self.norm_out = nn.LayerNorm(D)
        self.output_proj = nn.Linear(D, config.feature_dim)
        self.apply(self._init_weights)
        if config.temporal_kernel:
            nn.init.zeros_(self.temporal_conv.weight)
            nn.init.zeros_(self.temporal_conv.bias)
        log.debug("MotionDenoiser: %.2fM parameters", sum(p.numel() for p in self.parameters()) / 1e6)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    # -- PretrainedMixin
    def get_config(self) -> dict:
        return asdict(self.config)

    @classmethod
    def from_config(cls, config: dict) -> "MotionDenoiser":
        config = {k: v for k, v in config.items() if k not in RETIRED_CONFIG_FIELDS}
        return cls(DenoiserConfig.from_dict(config, "denoiser config"))

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, map_location: str = "cpu") -> "MotionDenoiser":
        try:
            return super().from_pretrained(directory, map_location=map_location)
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{Path(directory) / CONFIG_NAME}: invalid denoiser config ({exc})") from exc

    # -- condition
    def prepare_condition(self, text_hidden: torch.Tensor, text_mask: torch.Tensor,
                          drop_condition: torch.Tensor | None = None) -> PreparedCondition:
        """Project text tokens (B, L, Dt) once; rows in ``drop_condition`` see only the learned null token."""
        B, L, Dt = text_hidden.shape
        if Dt != self.config.text_dim:
            raise ValueError(f"text_hidden has width {Dt}, the denoiser expects text_dim={self.config.text_dim}")
        if text_mask.shape != (B, L):
            raise ValueError(f"text_mask shape {tuple(text_mask.shape)} does not match text_hidden {(B, L)}")
        mask = text_mask.bool()
        memory = self.text_proj(text_hidden)  # (B, L, D)
        if drop_condition is not None:
            drop = drop_condition.to(device=memory.device, dtype=torch.bool)  # (B,)
            if drop.shape != (B,):
                raise ValueError(f"drop_condition must have shape ({B},), got {tuple(drop.shape)}")
            first = torch.zeros(L, dtype=torch.bool, device=memory.device)
            first[0] = True
            null_mask = first[None].expand(B, L)  # (B, L) only position 0
            mask = torch.where(drop[:, None], null_mask, mask)
            null_memory = memory.clone()
            null_memory[:, 0] = self.null_token.to(memory.dtype)
            memory = torch.where(drop[:, None, None], null_memory, memory)  # (B, L, D)
        if not bool(mask.any(dim=1).all()):
            raise ValueError("every text row needs at least one real token (text_mask is all False for some row)")
        kv = [block.cross_attn.project_kv(memory) for block in self.blocks]
        return PreparedCondition(memory=memory, mask=mask, kv=kv)

    # -- denoising
    def forward(self, x_t: torch.Tensor, timesteps: torch.Tensor, condition: PreparedCondition,
                frame_mask: torch.Tensor) -> torch.Tensor:
        """x0 prediction.

        Args:
            x_t: (B, T, F) noisy normalised motion.
            timesteps: (B,) long diffusion step per sample.
            condition: the text from :meth:`prepare_condition`, B rows.
            frame_mask: (B, T) bool, True = valid frame.
        Returns:
            (B, T, F) predicted clean motion, zero on padded frames.
        """
        B, T, Fdim = x_t.shape
        if Fdim != self.config.feature_dim:
            raise ValueError(f"x_t has {Fdim} features per frame, the denoiser expects {self.config.feature_dim}")
        if T > self.config.max_frames:
            raise ValueError(f"x_t has {T} frames, more than max_frames={self.config.max_frames}")
        if frame_mask.shape != (B, T):
            raise ValueError(f"frame_mask shape {tuple(frame_mask.shape)} does not match x_t {(B, T)}")
        if condition.batch_size != B:
            raise ValueError(f"condition has batch {condition.batch_size}, x_t has {B}")
        frame_mask = frame_mask.bool()
        if not bool(frame_mask[:, 0].all()):
            raise ValueError("frame_mask must mark at least the first frame of every row as valid (lengths >= 1)")
        h = self.input_proj(x_t) + self.pos_embedding[:T]  # (B, T, D)
        t_emb = self.time_mlp(sinusoidal_embedding(timesteps.reshape(B), self.config.width))  # (B, D)
        h = h + t_emb[:, None, :].to(h.dtype)  # timestep added to every frame
        for block, kv in zip(self.blocks, condition.kv):
            h = block(h, frame_mask, kv, condition.mask)  # (B, T, D)
        if self.config.temporal_kernel:
            valid = frame_mask[..., None].to(h.dtype)  # (B, T, 1) padded frames neither give nor take
            mixed = self.temporal_conv((self.temporal_norm(h) * valid).transpose(1, 2)).transpose(1, 2)  # (B, T, D)
            h = h + mixed * valid
        x0 = self.output_proj(self.norm_out(h))  # (B, T, F)
        return x0 * frame_mask[..., None].to(x0.dtype)  # padded frames are exactly zero
