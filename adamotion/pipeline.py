"""Text-to-motion inference: prompt(s) -> motion features and joint positions. Inference only.

A :class:`MotionPipeline` ties together the components saved in one checkpoint folder::

    <dir>/pipeline.json        component "motion_pipeline": name, method, display names (informational)
    <dir>/text_encoder/        TextEncoder (backbone spec + LoRA adapter weights)
    <dir>/denoiser/            MotionDenoiser (config.json + model.safetensors)
    <dir>/scheduler/           DiffusionScheduler (config.json)
    <dir>/meta/                DatasetMeta (skeleton, fps, feature mean/std used to (de)normalise)
    <dir>/length_estimator/    optional LengthEstimator ("auto" length from the prompt)

Usage::

    pipe = MotionPipeline.from_pretrained("checkpoints/default/adaqf")
    out = pipe("a person jumps forward", lengths=80, seed=0)            # adapted encoder
    base = pipe("a person jumps forward", lengths=80, seed=0, encoder="vanilla")  # adapters off
    out.joints[0]  # (80, 22, 3) metres

Every prompt x sample is sampled in ONE batch. Classifier-free guidance lives here: the conditional rows and
the same rows with the null text token go through the denoiser in one forward pass, and the text condition
is projected once per call. The sampler is named explicitly (``sampler="ddpm"``, all training steps, or
``sampler="ddim"`` with ``steps`` and ``eta``). Randomness comes from one CPU ``torch.Generator`` per sample,
seeded with ``seed + sample_index``, drawing noise of that sample's own length (inside the scheduler's
``step``): the same (prompt, length, seed) gives the same motion whether it is generated alone or together
with others.
"""
from __future__ import annotations

import json
import logging
import math
import numbers
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from adamotion.diffusion.scheduler import DiffusionScheduler, draw_noise
from adamotion.models.denoiser import MotionDenoiser, PreparedCondition
from adamotion.models.length import LengthEstimator, default_length
from adamotion.motion.postprocess import check_postprocess
from adamotion.motion.postprocess import decode as decode_features
from adamotion.motion.skeleton import Skeleton
from adamotion.utils.files import atomic_folder, read_json
from adamotion.utils.serialization import CONFIG_NAME, FORMAT_VERSION, CheckpointError

log = logging.getLogger(__name__)

PIPELINE_COMPONENT = "motion_pipeline"
PIPELINE_FILE = "pipeline.json"
SUBFOLDERS = ("text_encoder", "denoiser", "scheduler", "meta")  # required; "length_estimator" is optional
ENCODER_MODES = ("ada", "vanilla")
MAX_PROMPT_CHARS = 2000


# ----------------------------------------------------------------------------- helpers
def seconds_to_frames(seconds: float, skeleton: Skeleton) -> int:
    """Seconds -> whole frames at the skeleton's fps (no range check; see :func:`check_length`)."""
    seconds = float(seconds)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"seconds must be a positive number, got {seconds}")
    return int(round(seconds * skeleton.fps))


def frames_to_seconds(frames: int, skeleton: Skeleton) -> float:
    return frames / skeleton.fps


def length_range_message(skeleton: Skeleton) -> str:
    lo, hi = skeleton.min_frames, skeleton.max_frames
    return f"length must be between {lo} and {hi} frames ({lo / skeleton.fps:.1f}–{hi / skeleton.fps:.1f} s)"


def check_length(frames, skeleton: Skeleton) -> int:
    """A length in frames as int, or ValueError when it is not a whole number in the skeleton's range."""
    if isinstance(frames, bool) or not isinstance(frames, numbers.Real):
        raise ValueError(f"{length_range_message(skeleton)}; got {frames!r}")
    if not math.isfinite(float(frames)) or float(frames) != int(frames):
        raise ValueError(f"{length_range_message(skeleton)} (a whole number); got {frames!r}")
    frames = int(frames)
    if not skeleton.min_frames <= frames <= skeleton.max_frames:
        raise ValueError(f"{length_range_message(skeleton)}; got {frames}")
    return frames


def _check_int(value, name: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _check_seeds(seed, num_prompts: int, num_samples: int) -> list[int]:
    """One base seed per prompt from an int (shared by every prompt) or a sequence with one per prompt."""
    hi = 2**63 - 1 - num_samples
    if isinstance(seed, (list, tuple)):
        if len(seed) != num_prompts:
            raise ValueError(f"got {len(seed)} seeds for {num_prompts} prompts; give one int or one seed per prompt")
        return [_check_int(s, "seed", 0, hi) for s in seed]
    return [_check_int(seed, "seed", 0, hi)] * num_prompts


@dataclass
class MotionOutput:
    """Generated motions, one entry per (prompt, sample) in prompt-major order."""

    features: list[np.ndarray]  # (T_i, F) float32, un-normalised HumanML3D-style features
    joints: list[np.ndarray]  # (T_i, J, 3) float32 joint positions in metres, y up
    prompts: list[str]  # the (whitespace-normalised) prompt of each sample
    lengths: list[int]  # T_i in frames
    seeds: list[int]  # the seed that reproduces each sample (seed + sample index)
    encoder: str  # display name of the text encoder used, e.g. "MiniLM-L6 + LoRA (AdaQF)"
    fps: float  # frames per second of the motions (the skeleton's)
    encoder_mode: str = "ada"  # "ada" (adapters on) or "vanilla" (adapters off)
    guidance_scale: float = 2.5
    steps: int = 50
    sampler: str = "ddpm"  # "ddpm" or "ddim"
    eta: float = 0.0  # DDIM noise scale (0 = deterministic)
    postprocess: str = "none"  # clean-up applied after the model ("none" = the raw output)
    timings: dict = field(default_factory=dict)  # seconds spent in "text", "sampling", "decode", "total"

    def __len__(self) -> int:
        return len(self.features)


# ----------------------------------------------------------------------------- the pipeline
class MotionPipeline:
    """Text encoder + motion denoiser + diffusion scheduler + dataset statistics -> motions."""

    def __init__(self, text_encoder, denoiser: MotionDenoiser, scheduler: DiffusionScheduler, meta,
                 length_estimator: LengthEstimator | None = None, *, name: str = "adaqf", method: str = "AdaQF"):
        self.skeleton: Skeleton = meta.skeleton  # the feature format, from the dataset the models were trained on
        feature_dim = self.skeleton.feature_dim
        if denoiser.config.feature_dim != feature_dim:
            raise ValueError(f"denoiser predicts {denoiser.config.feature_dim} features per frame but the dataset "
                             f"meta's skeleton {self.skeleton.name!r} has {feature_dim}")
        if denoiser.config.text_dim != text_encoder.hidden_size:
            raise ValueError(f"denoiser expects text states of width {denoiser.config.text_dim} but the text encoder "
                             f"({text_encoder.display_name}) gives {text_encoder.hidden_size}")
        if length_estimator is not None and length_estimator.dim != text_encoder.hidden_size:
            raise ValueError(f"length estimator expects {length_estimator.dim}-d embeddings, the text encoder gives "
                             f"{text_encoder.hidden_size}")
        self.text_encoder = text_encoder
        self.denoiser = denoiser.eval()
        self.scheduler = scheduler
        self.meta = meta
        self.length_estimator = length_estimator
        self.name = name  # short id, e.g. "adaqf" or "baseline"
        self.method = method  # which training method made it, e.g. "AdaQF" or "baseline MDM"
        if denoiser.config.max_frames < self.skeleton.max_frames:
            raise ValueError(f"denoiser covers {denoiser.config.max_frames} frames, the skeleton allows {self.skeleton.max_frames}")

    def __repr__(self) -> str:
        return (f"MotionPipeline(name={self.name!r}, method={self.method!r}, encoder={self.text_encoder.display_name!r}, "
                f"skeleton={self.skeleton.name!r}, device={self.device})")

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def to(self, device) -> "MotionPipeline":
        self.text_encoder.to(device)
        self.denoiser.to(device)
        return self

    def display_name(self, encoder: str = "ada") -> str:
        """UI name of the text encoder in a mode, e.g. "MiniLM-L6 + LoRA (AdaQF)" / "MiniLM-L6 (vanilla)"."""
        self._check_encoder_mode(encoder)
        return self.text_encoder.label(adapters=encoder != "vanilla")

    # ------------------------------------------------------------------ persistence
    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: str | torch.device = "cpu", *,
                        text_encoder=None) -> "MotionPipeline":
        """Load a pipeline folder (see the module docstring).

        ``text_encoder``: reuse an already loaded encoder instead of ``<dir>/text_encoder`` (e.g. one module
        shared by an adapted and a baseline pipeline); it must be built on the same backbone.
        Missing folders or files raise :class:`CheckpointError` naming the missing path.
        """
        from adamotion.data.meta import DatasetMeta
        from adamotion.text.encoder import TextEncoder
        from adamotion.utils.serialization import load_config

        directory = Path(directory)
        if not directory.is_dir():
            raise CheckpointError(f"{directory}: pipeline folder not found (train one with `adamotion train generator`, "
                                  "or `make default-checkpoints`)")
        info_path = directory / PIPELINE_FILE
        if not info_path.is_file():
            raise CheckpointError(f"{info_path}: missing; this folder is not a saved motion pipeline")
        info = read_json(info_path, what="pipeline description", error=CheckpointError)
        if not isinstance(info, dict) or info.get("component") != PIPELINE_COMPONENT:
            got = info.get("component") if isinstance(info, dict) else type(info).__name__
            raise CheckpointError(f"{info_path}: holds {got!r}, expected a {PIPELINE_COMPONENT!r}")
        for sub in SUBFOLDERS:
            if sub == "text_encoder" and text_encoder is not None:
                continue
            if not (directory / sub).is_dir():
                raise CheckpointError(f"{directory / sub}: missing; a pipeline folder holds {', '.join(SUBFOLDERS)}")

        if text_encoder is None:
            text_encoder = TextEncoder.from_pretrained(directory / "text_encoder")
        elif (directory / "text_encoder").is_dir():
            saved = load_config(directory / "text_encoder", "text_encoder").get("backbone") or {}
            own = getattr(text_encoder, "backbone_identity", {}) or {}
            if saved.get("sha256") and own.get("sha256") and saved["sha256"] != own["sha256"]:
                raise CheckpointError(f"{directory / 'text_encoder' / CONFIG_NAME}: this pipeline was trained with "
                                      f"{saved.get('name')!r}, the shared encoder is {own.get('name')!r}")
        denoiser = MotionDenoiser.from_pretrained(directory / "denoiser")
        scheduler = DiffusionScheduler.from_pretrained(directory / "scheduler")
        meta = DatasetMeta.load(directory / "meta")
        length_estimator = None
        if (directory / "length_estimator").exists():
            length_estimator = LengthEstimator.from_pretrained(directory / "length_estimator")
        try:
            pipe = cls(text_encoder, denoiser, scheduler, meta, length_estimator,
                       name=str(info.get("name", directory.name)), method=str(info.get("method", "")))
        except ValueError as exc:
            raise CheckpointError(f"{directory}: components do not fit together ({exc})") from exc
        log.info("loaded pipeline %s from %s", pipe.name, directory)
        return pipe.to(device)

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write every component into ``directory`` atomically (a temporary folder swapped into place)."""
        directory = Path(directory)
        with atomic_folder(directory) as tmp:
            self.text_encoder.save_pretrained(tmp / "text_encoder")
            self.denoiser.save_pretrained(tmp / "denoiser")
            self.scheduler.save_pretrained(tmp / "scheduler")
            self.meta.save(tmp / "meta")
            if self.length_estimator is not None:
                self.length_estimator.save_pretrained(tmp / "length_estimator")
            info = {
                "component": PIPELINE_COMPONENT, "format_version": FORMAT_VERSION, "name": self.name,
                "method": self.method, "skeleton": self.skeleton.name,
                "display_names": {mode: self.display_name(mode) for mode in ENCODER_MODES},
            }
            (tmp / PIPELINE_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        log.info("saved pipeline %s to %s", self.name, directory)
        return directory

    # ------------------------------------------------------------------ validation
    @staticmethod
    def _check_encoder_mode(encoder: str) -> None:
        if encoder not in ENCODER_MODES:
            raise ValueError(f"encoder must be one of {ENCODER_MODES}, got {encoder!r}")

    def _check_prompts(self, prompts) -> list[str]:
        if isinstance(prompts, str):
            prompts = [prompts]
        if not isinstance(prompts, (list, tuple)) or not prompts:
            raise ValueError("prompts must be a non-empty string or list of strings")
        out = []
        limit = getattr(self.text_encoder, "max_length", None)  # the encoder owns the token limit (it truncates)
        tokenizer = getattr(self.text_encoder, "tokenizer", None)
        for i, prompt in enumerate(prompts):
            if not isinstance(prompt, str):
                raise ValueError(f"prompt {i} must be a string, got {type(prompt).__name__}")
            if len(prompt) > MAX_PROMPT_CHARS:
                raise ValueError(f"prompt {i} is {len(prompt):,} characters long; the limit is {MAX_PROMPT_CHARS:,}")
            text = " ".join(prompt.split())
            if not text:
                raise ValueError(f"prompt {i} is empty; describe a motion, e.g. 'a person walks forward'")
            if tokenizer is not None and limit is not None:
                count = len(tokenizer(text, truncation=False)["input_ids"])
                if count > limit:
                    log.warning("prompt %d has %d tokens; only the first %d are used: %.60r...", i, count, limit, text)
            out.append(text)
        return out

    def _check_lengths(self, lengths, num_prompts: int) -> list[int] | None:
        if lengths is None:
            return None
        if isinstance(lengths, (list, tuple, np.ndarray, torch.Tensor)):
            values = lengths.tolist() if hasattr(lengths, "tolist") else list(lengths)
            if len(values) != num_prompts:
                raise ValueError(f"got {len(values)} lengths for {num_prompts} prompts (give one per prompt, or one int)")
            return [check_length(v, self.skeleton) for v in values]
        return [check_length(lengths, self.skeleton)] * num_prompts

    # ------------------------------------------------------------------ steps of __call__
    def _encode(self, prompts: list[str], mode: str):
        """(TextEncoding of the unique prompts, index of each prompt's row, encoder display name)."""
        unique = list(dict.fromkeys(prompts))
        if mode == "vanilla":
            with self.text_encoder.vanilla():
                encoding = self.text_encoder.encode_cached(unique, adapters=False)
        else:
            encoding = self.text_encoder.encode_cached(unique, adapters=True)
        label = self.display_name(mode)  # from the mode: another thread may be inside a vanilla() block now
        rows = torch.tensor([unique.index(p) for p in prompts])
        return encoding, rows, label

    def _auto_lengths(self, encoding, rows: torch.Tensor, unique_prompts: list[str], mode: str) -> list[int]:
        if self.length_estimator is None:
            frames = default_length(self.skeleton)
            log.info("no length estimator in this pipeline; using the default %d frames", frames)
            return [frames] * len(rows)
        if self.length_estimator.encoder != mode:  # embeddings must come from the mode it was fitted on
            encoding, _, _ = self._encode(unique_prompts, self.length_estimator.encoder)
        predicted = self.length_estimator.predict(encoding.pooled.float().cpu())  # (U,)
        return [int(predicted[r]) for r in rows.tolist()]

    @torch.inference_mode()
    def __call__(self, prompts: str | Sequence[str], lengths: int | Sequence[int] | None = None, seed: int | Sequence[int] = 0,
                 guidance_scale: float = 2.5, steps: int | None = None, encoder: str = "ada", num_samples: int = 1,
                 progress: Callable[[int, int], None] | None = None, *, sampler: str = "ddpm",
                 eta: float = 0.0, postprocess: str = "none") -> MotionOutput:
        """Generate ``num_samples`` motions per prompt.

        Args:
            prompts: one prompt or a list (max 2,000 characters each; overlong token sequences are truncated
                with a warning).
            lengths: frames, one int for all prompts or one per prompt; None = the length estimator's
                prediction (or 6 s without one). Must lie in [min_frames, max_frames] of the skeleton.
            seed: one int for every prompt, or one per prompt; sample k of a prompt uses its ``seed + k``.
                Equal (prompt, length, seed) give equal motions, so a caption repeated in ``prompts`` needs its
                own seed per repeat to give different motions (evaluation passes one seed per caption).
            guidance_scale: classifier-free guidance weight s (x0 = uncond + s * (cond - uncond)); 1 = no guidance.
            steps: sampling steps, 1..num_train_timesteps (default: all). ``sampler="ddpm"`` needs all of them.
            encoder: "ada" (adapters on) or "vanilla" (the same encoder with adapters disabled).
            progress: called as ``progress(step, total)`` after each denoising step.
            sampler: "ddpm" (ancestral, all training steps) or "ddim" (``steps`` evenly spaced timesteps).
            eta: DDIM's noise scale in [0, 1] (0 = deterministic); DDPM takes 0.
            postprocess: an optional clean-up of the raw output (``adamotion.motion.postprocess``): "none"
                (the raw model), "smooth", "rigid" or "smooth+rigid". Published numbers use "none".
        """
        started = time.perf_counter()
        prompts = self._check_prompts(prompts)
        self._check_encoder_mode(encoder)
        T_train = self.scheduler.num_train_timesteps
        steps = T_train if steps is None else _check_int(steps, "steps", 1, T_train)
        num_samples = _check_int(num_samples, "num_samples", 1)
        prompt_seeds = _check_seeds(seed, len(prompts), num_samples)
        if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, numbers.Real) \
                or not math.isfinite(float(guidance_scale)):
            raise ValueError(f"guidance_scale must be a finite number, got {guidance_scale!r}")
        guidance_scale = float(guidance_scale)
        check_postprocess(postprocess)
        scheduler = self.scheduler.copy()  # concurrent calls never share sampler state
        scheduler.set_timesteps(steps, sampler=sampler, eta=eta)  # checks the sampler settings before any work
        per_prompt_lengths = self._check_lengths(lengths, len(prompts))

        # -- text: encoded once per unique prompt (cached across calls), expanded to prompts x samples
        t0 = time.perf_counter()
        encoding, rows, label = self._encode(prompts, encoder)
        if per_prompt_lengths is None:
            per_prompt_lengths = self._auto_lengths(encoding, rows, list(dict.fromkeys(prompts)), encoder)
        hidden, text_mask = self._text_rows(encoding, rows.repeat_interleave(num_samples))  # (B, L, Dt), (B, L)
        item_prompts = [p for p in prompts for _ in range(num_samples)]
        item_lengths = [n for n in per_prompt_lengths for _ in range(num_samples)]
        item_seeds = [s + k for s in prompt_seeds for k in range(num_samples)]
        text_time = time.perf_counter() - t0

        # -- sampling
        t0 = time.perf_counter()
        condition = self.prepare_guided_condition(hidden, text_mask, guidance_scale)  # projected once for every step

        def predict_x0(x, t_batch, frame_mask):
            return self.guided_x0(x, t_batch, condition, frame_mask, guidance_scale)

        x = self.sample_loop(predict_x0, scheduler, item_lengths, item_seeds, progress)
        sampling_time = time.perf_counter() - t0

        # -- decode: un-normalise, per-sample slices, joints
        t0 = time.perf_counter()
        features, joints = self.decode(x, item_lengths, postprocess)
        decode_time = time.perf_counter() - t0
        return MotionOutput(
            features=features, joints=joints, prompts=item_prompts, lengths=item_lengths, seeds=item_seeds,
            encoder=label, encoder_mode=encoder, guidance_scale=guidance_scale, steps=steps, sampler=sampler,
            eta=float(eta), postprocess=postprocess, fps=self.skeleton.fps,
            timings={"text": text_time, "sampling": sampling_time, "decode": decode_time,
                     "total": time.perf_counter() - started},
        )

    # ------------------------------------------------------------------ the steps (public for benchmarks)
    def encode_prompt(self, prompts: Sequence[str], encoder: str = "ada") -> tuple[torch.Tensor, torch.Tensor]:
        """Text states (B, L, Dt) in the denoiser's dtype and mask (B, L) of already checked prompts."""
        self._check_encoder_mode(encoder)
        encoding, rows, _ = self._encode(list(prompts), encoder)
        return self._text_rows(encoding, rows)

    def _text_rows(self, encoding, item_rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-item text states (B, L, Dt) in the denoiser's dtype and mask (B, L), on the pipeline's device."""
        device = self.device
        hidden = encoding.hidden.to(device=device, dtype=next(self.denoiser.parameters()).dtype)  # (U, L, Dt)
        item_rows = item_rows.to(device)
        return hidden[item_rows], encoding.mask.to(device)[item_rows]

    def prepare_guided_condition(self, hidden: torch.Tensor, text_mask: torch.Tensor,
                                 guidance_scale: float) -> PreparedCondition:
        """The denoiser's condition for guided sampling: B conditional rows, then (when guiding) the same B
        rows with the null text token, so that both branches run in one forward pass."""
        if guidance_scale == 1.0:
            return self.denoiser.prepare_condition(hidden, text_mask)
        B = hidden.shape[0]
        drop = torch.cat([torch.zeros(B, dtype=torch.bool), torch.ones(B, dtype=torch.bool)]).to(hidden.device)
        return self.denoiser.prepare_condition(torch.cat([hidden, hidden]), torch.cat([text_mask, text_mask]), drop)

    def guided_x0(self, x_t: torch.Tensor, timesteps: torch.Tensor, condition: PreparedCondition,
                  frame_mask: torch.Tensor, guidance_scale: float) -> torch.Tensor:
        """Classifier-free guided x0 (B, T, F): ``uncond + s * (cond - uncond)`` from one batched forward pass
        over a condition made by :meth:`prepare_guided_condition` (no doubling when s = 1)."""
        if guidance_scale == 1.0:
            return self.denoiser(x_t, timesteps, condition, frame_mask)
        B = x_t.shape[0]
        x0 = self.denoiser(torch.cat([x_t, x_t]), torch.cat([timesteps, timesteps]), condition,
                           torch.cat([frame_mask, frame_mask]))  # (2B, T, F)
        cond, uncond = x0[:B], x0[B:]
        return uncond + guidance_scale * (cond - uncond)  # (B, T, F)

    def sample_loop(self, predict_x0: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
                    scheduler: DiffusionScheduler, lengths: list[int], seeds: list[int], progress=None) -> torch.Tensor:
        """The reverse diffusion loop over ``scheduler.timesteps`` (already set); returns normalised x0
        (B, T, F) with zeros on padded frames.

        ``predict_x0(x_t, timesteps, frame_mask)`` gives the (guided) x0 prediction. Each sample draws noise of
        its own length from its own CPU generator seeded with ``seeds[i]``.
        """
        device = self.device
        dtype = next(self.denoiser.parameters()).dtype
        B, T, Fdim = len(lengths), max(lengths), self.denoiser.config.feature_dim
        frame_mask = (torch.arange(T)[None] < torch.tensor(lengths)[:, None]).to(device)  # (B, T)
        generators = [torch.Generator().manual_seed(s) for s in seeds]  # CPU, one per sample
        timesteps = scheduler.timesteps.tolist()
        x = draw_noise((B, T, Fdim), generators, lengths=lengths, device=device, dtype=dtype)  # (B, T, F) x_T
        for i, t in enumerate(timesteps):
            t_batch = torch.full((B,), t, dtype=torch.long, device=device)  # (B,)
            x0 = predict_x0(x, t_batch, frame_mask)  # (B, T, F)
            x = scheduler.step(x0, t, x, generator=generators, lengths=lengths) * frame_mask[..., None]
            if progress is not None:
                progress(i + 1, len(timesteps))
        return x

    def decode(self, x: torch.Tensor, lengths: list[int],
               postprocess: str = "none") -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Normalised x0 (B, T, F) -> per-sample features (T_i, F) and joints (T_i, J, 3), float32, after the
        optional clean-up ``postprocess`` (see :mod:`adamotion.motion.postprocess`; "none" = raw)."""
        features_all = self.meta.denormalize(x.float().cpu()).numpy().astype(np.float32)  # (B, T, F)
        features, joints = [], []
        for i, n in enumerate(lengths):
            feats, positions = decode_features(np.ascontiguousarray(features_all[i, :n]), self.skeleton, postprocess)
            features.append(feats)  # (T_i, F)
            joints.append(positions)  # (T_i, J, 3)
        return features, joints
