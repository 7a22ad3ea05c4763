"""Gaussian diffusion noise schedule and sampler for an x0-predicting denoiser.

One algorithm, no model code (the diffusers split): the training loop calls :meth:`add_noise` and
:meth:`sample_timesteps`; the pipeline calls :meth:`set_timesteps` once and :meth:`step` per timestep.
The sampler is named by the caller, never inferred from the number of steps:

* ``set_timesteps(sampler="ddpm")`` samples ancestrally from the DDPM posterior ``q(x_{t-1} | x_t, x0_hat)``
  over all ``num_train_timesteps`` (the method's setting: 50 steps at training and inference).
* ``set_timesteps(n, sampler="ddim", eta=...)`` runs DDIM over ``n`` evenly spaced timesteps; ``eta = 0`` is
  deterministic, ``eta > 0`` adds fresh noise of standard deviation ``eta * sigma_t`` at every step.

Noise is drawn inside :meth:`step` from the caller's ``generator`` (one, or one per batch row).

Timestep indices run from 0 (least noise) to ``num_train_timesteps - 1`` (most noise). The last step of
either sampler returns the model's x0 prediction unchanged.
"""
from __future__ import annotations

import copy
import logging
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import torch

from adamotion.utils.config import StrictConfig
from adamotion.utils.serialization import CONFIG_NAME, CheckpointError, load_config, save_folder

log = logging.getLogger(__name__)

BETA_SCHEDULES = ("cosine", "linear")
SAMPLERS = ("ddpm", "ddim")


@dataclass
class SchedulerConfig(StrictConfig):
    num_train_timesteps: int = 50  # T: diffusion steps used at training (and by ancestral sampling)
    beta_schedule: str = "cosine"  # "cosine" (Nichol & Dhariwal 2021) or "linear" (Ho et al. 2020, rescaled to T)
    prediction_type: str = "x0"  # what the model predicts; only "x0" (MDM-style) is implemented
    cosine_offset: float = 0.008  # s in the cosine schedule, keeps beta_0 away from zero
    max_beta: float = 0.999  # betas are clipped here so the last step never divides by zero


def _betas(config: SchedulerConfig) -> torch.Tensor:
    """(T,) float64 noise variances of the forward process."""
    T = config.num_train_timesteps
    if config.beta_schedule == "cosine":
        s = config.cosine_offset

        def alpha_bar(u: float) -> float:
            return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

        betas = [min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), config.max_beta) for i in range(T)]
        return torch.tensor(betas, dtype=torch.float64)
    if config.beta_schedule == "linear":
        scale = 1000.0 / T  # the classic 1e-4..0.02 range was tuned for T = 1000
        return torch.linspace(scale * 1e-4, scale * 0.02, T, dtype=torch.float64).clamp(max=config.max_beta)
    raise ValueError(f"unknown beta_schedule {config.beta_schedule!r}; choose one of {BETA_SCHEDULES}")


def draw_noise(shape: Sequence[int], generator=None, *, lengths: Sequence[int] | None = None,
               device=None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard normal noise of ``shape`` (B, T, ...), drawn in float32 and cast to ``dtype`` on ``device``.

    ``generator``: one ``torch.Generator`` or a list with one per batch row. With ``lengths`` (one per row),
    row ``i`` draws only its first ``lengths[i]`` entries along dim 1 from its own generator and is zero
    beyond, so a row's noise does not depend on how long its batch-mates are (needs one generator per row).
    """
    shape = tuple(int(n) for n in shape)
    if isinstance(generator, (list, tuple)):
        if len(generator) != shape[0]:
            raise ValueError(f"got {len(generator)} generators for a batch of {shape[0]}")
        if lengths is not None and len(lengths) != shape[0]:
            raise ValueError(f"got {len(lengths)} lengths for a batch of {shape[0]}")
        noise = torch.zeros(shape, dtype=torch.float32, device=generator[0].device)
        for i, g in enumerate(generator):
            n = shape[1] if lengths is None else int(lengths[i])
            noise[i, :n] = torch.randn((n, *shape[2:]), generator=g, device=g.device, dtype=torch.float32)
    else:
        if lengths is not None:
            raise ValueError("lengths need one generator per batch row (a list of generators)")
        gen_device = generator.device if generator is not None else (device or "cpu")
        noise = torch.randn(shape, generator=generator, device=gen_device, dtype=torch.float32)
    return noise.to(device=device if device is not None else noise.device, dtype=dtype)


class DiffusionScheduler:
    """Forward noising and reverse sampling for a diffusion model that predicts the clean sample x0."""

    component_name = "scheduler"

    def __init__(self, config: SchedulerConfig | None = None, **overrides):
        config = copy.deepcopy(config) if config is not None else SchedulerConfig()
        for key, value in overrides.items():
            if not hasattr(config, key):
                raise TypeError(f"unknown scheduler option {key!r}; options are {[f.name for f in fields(SchedulerConfig)]}")
            setattr(config, key, value)
        if config.num_train_timesteps < 1:
            raise ValueError(f"num_train_timesteps must be >= 1, got {config.num_train_timesteps}")
        if config.prediction_type != "x0":
            raise ValueError(f"prediction_type {config.prediction_type!r} is not supported; this scheduler expects x0")
        self.config = config

        betas = _betas(config)  # (T,) float64
        alphas = 1.0 - betas
        alphas_cumprod = torch.cumprod(alphas, dim=0)  # (T,) \bar{alpha}_t, strictly decreasing
        self.betas = betas
        self.alphas = alphas
        self.alphas_cumprod = alphas_cumprod
        # \bar{alpha}_{t-1}, with \bar{alpha}_{-1} = 1 (no noise before the first step)
        self.alphas_cumprod_prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])
        # Posterior q(x_{t-1} | x_t, x0) = N(c0 * x0 + ct * x_t, var)
        self.posterior_variance = betas * (1 - self.alphas_cumprod_prev) / (1 - alphas_cumprod)
        self.posterior_coef_x0 = betas * self.alphas_cumprod_prev.sqrt() / (1 - alphas_cumprod)
        self.posterior_coef_xt = (1 - self.alphas_cumprod_prev) * alphas.sqrt() / (1 - alphas_cumprod)

        self.set_timesteps(sampler="ddpm")

    # ------------------------------------------------------------------ properties
    @property
    def num_train_timesteps(self) -> int:
        return self.config.num_train_timesteps

    @property
    def sampler(self) -> str:
        """The sampler chosen by the last :meth:`set_timesteps`: ``"ddpm"`` or ``"ddim"``."""
        return self._sampler

    @property
    def eta(self) -> float:
        """DDIM's noise scale chosen by the last :meth:`set_timesteps` (0 = deterministic; always 0 for DDPM)."""
        return self._eta

    def __repr__(self) -> str:
        return (f"DiffusionScheduler(T={self.num_train_timesteps}, beta_schedule={self.config.beta_schedule!r}, "
                f"sampler={self._sampler!r}, eta={self._eta}, steps={len(self.timesteps)})")

    def copy(self) -> "DiffusionScheduler":
        """An independent copy (the pipeline samples with a copy so concurrent calls never share state)."""
        return copy.deepcopy(self)

    # ------------------------------------------------------------------ training side
    def _gather(self, table: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        """``table[t]`` shaped to broadcast over ``like`` (B, ...)."""
        t = torch.as_tensor(t, device="cpu").long()
        if t.numel() and (t.min() < 0 or t.max() >= self.num_train_timesteps):
            raise ValueError(f"timesteps must be in [0, {self.num_train_timesteps - 1}], got {t.tolist()}")
        values = table[t].to(device=like.device, dtype=like.dtype)
        return values.reshape(values.shape + (1,) * (like.dim() - values.dim()))

    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor | int) -> torch.Tensor:
        """Sample q(x_t | x0) = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise. ``t`` is an int or (B,) long."""
        if noise.shape != x0.shape:
            raise ValueError(f"noise shape {tuple(noise.shape)} differs from x0 shape {tuple(x0.shape)}")
        sqrt_ab = self._gather(self.alphas_cumprod.sqrt(), t, x0)
        sqrt_1mab = self._gather((1 - self.alphas_cumprod).sqrt(), t, x0)
        return sqrt_ab * x0 + sqrt_1mab * noise

    def sample_timesteps(self, batch: int, generator: torch.Generator | None = None, device="cpu") -> torch.Tensor:
        """(batch,) long timesteps drawn uniformly from [0, T)."""
        gen_device = generator.device if generator is not None else "cpu"
        t = torch.randint(0, self.num_train_timesteps, (batch,), generator=generator, device=gen_device)
        return t.to(device)

    # ------------------------------------------------------------------ sampling side
    def set_timesteps(self, num_inference_steps: int | None = None, *, sampler: str = "ddpm", eta: float = 0.0) -> None:
        """Choose the sampler and its reverse-process timesteps.

        ``sampler="ddpm"``: ancestral sampling over all T training steps (``num_inference_steps`` None or T).
        ``sampler="ddim"``: ``num_inference_steps`` (default T) evenly spaced timesteps with noise scale ``eta``
        in [0, 1] (0 = deterministic; 1 draws as much fresh noise as the DDPM posterior).
        """
        T = self.num_train_timesteps
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if num_inference_steps is None:
            num_inference_steps = T
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, int):
            raise ValueError(f"num_inference_steps must be an integer, got {num_inference_steps!r}")
        if not 1 <= num_inference_steps <= T:
            raise ValueError(f"num_inference_steps must be between 1 and {T} (the training steps), got {num_inference_steps}")
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 <= float(eta) <= 1.0:
            raise ValueError(f"eta must be a number in [0, 1], got {eta!r}")
        if sampler == "ddpm":
            if num_inference_steps != T:
                raise ValueError(f"the ddpm sampler runs all {T} training steps, got num_inference_steps="
                                 f"{num_inference_steps}; use sampler='ddim' for fewer steps")
            if eta != 0.0:
                raise ValueError(f"eta is a DDIM setting (DDPM's noise is fixed by its posterior), got eta={eta}")
            steps = list(range(T - 1, -1, -1))
        elif num_inference_steps == 1:
            steps = [T - 1]
        else:
            grid = torch.linspace(0, T - 1, num_inference_steps, dtype=torch.float64).round().long().tolist()
            steps = sorted(set(grid), reverse=True)
        self._sampler = sampler
        self._eta = float(eta)
        self.timesteps = torch.tensor(steps, dtype=torch.long)  # descending
        # previous (less noisy) timestep of each scheduled step; -1 = the clean sample
        self._prev = {t: (steps[i + 1] if i + 1 < len(steps) else -1) for i, t in enumerate(steps)}

    def previous_timestep(self, t: int) -> int:
        try:
            return self._prev[int(t)]
        except KeyError:
            raise ValueError(f"timestep {int(t)} is not in the current schedule {self.timesteps.tolist()}") from None

    def step(self, x0_pred: torch.Tensor, t: int | torch.Tensor, x_t: torch.Tensor, *, generator=None,
             lengths: Sequence[int] | None = None) -> torch.Tensor:
        """One reverse step from ``x_t`` at timestep ``t`` (shared by the batch) to the previous timestep.

        Args:
            x0_pred: (B, ...) the model's prediction of the clean sample.
            t: the current timestep (an element of :attr:`timesteps`).
            x_t: (B, ...) the current noisy sample.
            generator: ``torch.Generator`` or a list with one per batch row; the step's noise (DDPM, or DDIM
                with eta > 0) is drawn from it, nothing is drawn otherwise.
            lengths: optional valid entries along dim 1 per row (see :func:`draw_noise`).
        Returns:
            (B, ...) x_{prev}; at the last step this is ``x0_pred`` itself.
        """
        t = int(t)
        prev = self.previous_timestep(t)
        if prev < 0:
            return x0_pred
        ab_t = self.alphas_cumprod[t]
        ab_prev = self.alphas_cumprod[prev]
        if self._sampler == "ddpm":
            mean = float(self.posterior_coef_x0[t]) * x0_pred + float(self.posterior_coef_xt[t]) * x_t
            noise = draw_noise(x_t.shape, generator, lengths=lengths, device=x_t.device, dtype=x_t.dtype)
            return mean + float(self.posterior_variance[t].sqrt()) * noise
        # DDIM: re-noise x0_pred to the previous level along the implied noise direction (Song et al. 2021, eq. 12)
        eps = (x_t - float(ab_t.sqrt()) * x0_pred) / float((1 - ab_t).sqrt())
        sigma = self._eta * ((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)).sqrt()  # float64 scalar
        x_prev = float(ab_prev.sqrt()) * x0_pred + float((1 - ab_prev - sigma ** 2).sqrt()) * eps
        if self._eta > 0:
            noise = draw_noise(x_t.shape, generator, lengths=lengths, device=x_t.device, dtype=x_t.dtype)
            x_prev = x_prev + float(sigma) * noise
        return x_prev

    # ------------------------------------------------------------------ persistence
    def get_config(self) -> dict:
        return asdict(self.config)

    @classmethod
    def from_config(cls, config: dict) -> "DiffusionScheduler":
        return cls(SchedulerConfig.from_dict(config, "scheduler config"))

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` only (a scheduler has no weights)."""
        return save_folder(directory, self.component_name, {"config": self.get_config()})

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "DiffusionScheduler":
        raw = load_config(directory, cls.component_name)
        if "config" not in raw:
            raise CheckpointError(f"{Path(directory) / CONFIG_NAME}: no 'config' entry")
        try:
            return cls.from_config(raw["config"])
        except (TypeError, ValueError) as exc:
            raise CheckpointError(f"{Path(directory) / CONFIG_NAME}: invalid scheduler config ({exc})") from exc
