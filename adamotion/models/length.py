"""Motion length from text: ridge regression on the text encoder's pooled embedding.

When a user asks for "auto" length the pipeline predicts the number of frames from the prompt. The estimator
is tiny (one weight vector), fitted in closed form on the training captions, and saved as a folder
(``config.json`` + ``model.safetensors``, component ``"length_estimator"``). Without one, the pipeline falls
back to :func:`default_length` (6 s).

Predictions are clipped to ``[skeleton.min_frames, skeleton.max_frames]`` and rounded to the skeleton's
``unit_length`` (the evaluation protocol's length unit).
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np
import torch

from adamotion.motion.skeleton import Skeleton
from adamotion.utils.serialization import CONFIG_NAME, CheckpointError, load_config, load_tensors, save_folder

log = logging.getLogger(__name__)

DEFAULT_SECONDS = 6.0  # length used when no estimator is available


def _round_to_unit(frames: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Round to multiples of unit_length inside [min_frames, max_frames] (both ends rounded inwards)."""
    unit = skeleton.unit_length
    lo = math.ceil(skeleton.min_frames / unit) * unit
    hi = (skeleton.max_frames // unit) * unit
    return np.clip(np.round(np.asarray(frames, np.float64) / unit) * unit, lo, hi).astype(np.int64)


def default_length(skeleton: Skeleton) -> int:
    """The fallback length in frames (6 s, rounded to the skeleton's unit length)."""
    return int(_round_to_unit(np.array([DEFAULT_SECONDS * skeleton.fps]), skeleton)[0])


class LengthEstimator:
    """Ridge regression ``frames ≈ w · (x - mu) + b`` on a pooled text embedding x (D,)."""

    component_name = "length_estimator"

    def __init__(self, dim: int, *, alpha: float = 1.0, skeleton: Skeleton, encoder: str = "ada"):
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        if encoder not in ("ada", "vanilla"):
            raise ValueError(f"encoder must be 'ada' or 'vanilla', got {encoder!r}")
        self.dim = int(dim)  # D: size of the pooled text embedding
        self.alpha = float(alpha)  # ridge penalty (on the weights, not the intercept)
        self.skeleton = skeleton
        self.encoder = encoder  # which text-encoder mode produced the training embeddings
        self.center = np.zeros(self.dim, np.float64)  # (D,) training mean of the embeddings
        self.weight = np.zeros(self.dim, np.float64)  # (D,)
        self.bias = float(default_length(skeleton))  # intercept = mean training length after fitting
        self.fitted = False
        self.train_r2 = float("nan")  # coefficient of determination on the training set

    def __repr__(self) -> str:
        state = f"fitted, train R²={self.train_r2:.3f}" if self.fitted else "unfitted"
        return f"LengthEstimator(dim={self.dim}, alpha={self.alpha}, skeleton={self.skeleton.name!r}, {state})"

    @staticmethod
    def _as_2d(pooled, dim: int) -> np.ndarray:
        if isinstance(pooled, torch.Tensor):
            pooled = pooled.detach().cpu().float().numpy()
        x = np.asarray(pooled, np.float64)
        if x.ndim == 1:
            x = x[None]
        if x.ndim != 2 or x.shape[1] != dim:
            raise ValueError(f"pooled embeddings must be (N, {dim}), got {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("pooled embeddings contain non-finite values")
        return x

    def fit(self, pooled, lengths) -> "LengthEstimator":
        """Fit on (N, D) pooled embeddings and (N,) lengths in frames (closed form, intercept unpenalised)."""
        x = self._as_2d(pooled, self.dim)
        y = np.asarray(lengths.cpu().numpy() if isinstance(lengths, torch.Tensor) else lengths, np.float64).reshape(-1)
        if y.shape[0] != x.shape[0]:
            raise ValueError(f"got {x.shape[0]} embeddings and {y.shape[0]} lengths")
        if x.shape[0] < 2:
            raise ValueError("need at least 2 examples to fit a length estimator")
        self.center = x.mean(axis=0)
        xc = x - self.center  # (N, D)
        y_mean = float(y.mean())
        gram = xc.T @ xc + self.alpha * np.eye(self.dim)  # (D, D)
        self.weight = np.linalg.solve(gram, xc.T @ (y - y_mean))  # (D,)
        self.bias = y_mean
        pred = xc @ self.weight + self.bias
        ss_tot = float(((y - y_mean) ** 2).sum())
        self.train_r2 = 1.0 - float(((y - pred) ** 2).sum()) / ss_tot if ss_tot > 0 else 0.0
        self.fitted = True
        log.info("length estimator fitted on %d captions: train R²=%.3f, mean %.1f frames", len(y), self.train_r2, y_mean)
        return self

    def predict_raw(self, pooled) -> np.ndarray:
        """(N,) float predictions in frames, before clipping and rounding."""
        x = self._as_2d(pooled, self.dim)
        return (x - self.center) @ self.weight + self.bias

    def predict(self, pooled) -> np.ndarray:
        """(N,) int64 lengths in frames, clipped to the skeleton's range and rounded to its unit length."""
        return _round_to_unit(self.predict_raw(pooled), self.skeleton)

    # -- persistence
    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        config = {"dim": self.dim, "alpha": self.alpha, "skeleton": self.skeleton.name, "encoder": self.encoder,
                  "bias": self.bias, "fitted": self.fitted, "train_r2": self.train_r2}
        tensors = {"weight": torch.from_numpy(self.weight.copy()), "center": torch.from_numpy(self.center.copy())}
        return save_folder(directory, self.component_name, {"config": config}, tensors)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike) -> "LengthEstimator":
        directory = Path(directory)
        raw = load_config(directory, cls.component_name)
        try:
            config = raw["config"]
            est = cls(int(config["dim"]), alpha=float(config["alpha"]), skeleton=Skeleton.from_name(config["skeleton"]),
                      encoder=config.get("encoder", "ada"))
            est.bias = float(config["bias"])
            est.fitted = bool(config["fitted"])
            est.train_r2 = float(config.get("train_r2", float("nan")))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{directory / CONFIG_NAME}: invalid length estimator config ({exc!r})") from exc
        tensors = load_tensors(directory)
        for name in ("weight", "center"):
            if name not in tensors or tuple(tensors[name].shape) != (est.dim,):
                raise CheckpointError(f"{directory}: weights must hold {name!r} of shape ({est.dim},)")
            setattr(est, name, tensors[name].numpy().astype(np.float64))
        return est
