"""Train the text-to-motion generator, with or without AdaQF's quality feedback and text-encoder tuning.

The five ablations of the paper, chosen with ``method``:

=========== ========================= ============================= ======================
method      loss                      text encoder                  paper row (Table 4)
=========== ========================= ============================= ======================
baseline    MSE                       frozen                        ① baseline MDM
constraints MSE + λ_M L_M + λ_T L_T   frozen                        ② + constraints
lora        MSE                       LoRA adapters train           ③ + LoRA only
adaqf       MSE + λ_M L_M + λ_T L_T   LoRA adapters train           ④ AdaQF (full model)
full        MSE + λ_M L_M + λ_T L_T   every backbone weight trains  ⑤ full fine-tune
=========== ========================= ============================= ======================

with ``L_M = 1 - cos(E_M(x̂0), E_M(x0))`` and ``L_T = 1 - cos(E_M(x̂0), E_T(c))`` (method.md §4). The
extractors are frozen (no parameter trains, eval mode) but stay differentiable, so the constraint gradients
flow through x̂0 into the denoiser and, through its cross-attention, into the LoRA weights. E_M reads
un-normalised features: x̂0 and x0 are un-normalised with the dataset meta first (E_M applies its own
statistics). The MSE averages over valid frames only. ``L_T`` skips samples whose condition was dropped
for classifier-free guidance (their x̂0 is not meant to follow the text).

At the end the EMA weights are loaded, a :class:`LengthEstimator` is fitted on pooled *vanilla* text
embeddings of the training captions, and a complete :class:`MotionPipeline` is written into ``out_dir``
(so ``MotionPipeline.from_pretrained(out_dir)`` works) next to ``config.json`` (the resolved run config),
``log.csv``, ``val.csv``, ``train_summary.json`` and ``checkpoint/``.
"""
from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from adamotion.models.denoiser import DenoiserSizes
from adamotion.text.encoder import LoraSettings
from adamotion.train import MethodSpec, method_spec
from adamotion.train.geometric import GeometricLossConfig, geometric_losses
from adamotion.train.loop import (
    LoopConfig, check_data_root, export_into, finish_training, fixed_batches, open_training_data, start_training,
)
from adamotion.utils.config import config_from_dict, config_to_dict
from adamotion.utils.serialization import weights_fingerprint

logger = logging.getLogger(__name__)

RUN_CONFIG_NAME = "config.json"


SAVE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass
class GeneratorTrainConfig:
    """Everything ``train_generator`` needs (section ``generator`` of ``configs/default.json``)."""

    loop: LoopConfig = field(default_factory=lambda: LoopConfig(
        steps=4000, batch_size=64, lr=2e-4, warmup_steps=200, lr_decay_at=0.75, ema_decay=0.999,
        checkpoint_every=500, val_every=500))  # optimisation and bookkeeping; loop.lr is the denoiser's lr
    backbone: str = "minilm"  # text backbone spec: "minilm", "clip:<folder>", "hf:<folder>", ...
    denoiser: DenoiserSizes = field(default_factory=lambda: DenoiserSizes(temporal_kernel=5))  # new runs: temporal prior on
    lora: LoraSettings = field(default_factory=LoraSettings)  # adapter settings (lora / adaqf; paper: rank 16)
    lora_lr: float | None = None  # peak lr of the LoRA weights; None = loop.lr
    encoder_lr: float = 1e-5  # peak lr of the backbone weights when method = full
    lambda_m: float = 10.0  # weight of the motion consistency term L_M (paper: 10)
    lambda_t: float = 2.0  # weight of the text consistency term L_T (paper: 2)
    geometric: GeometricLossConfig = field(default_factory=GeometricLossConfig)  # joint-space losses (all 0 = off)
    cond_dropout: float = 0.1  # share of samples trained without text (classifier-free guidance)
    num_train_timesteps: int = 50  # diffusion steps T (paper: 50)
    beta_schedule: str = "cosine"  # noise schedule of the DiffusionScheduler
    log_constraints: bool = True  # also log L_M / L_T (without gradient) for methods that do not train on them
    text_cache_size: int = 4096  # captions whose frozen encodings are cached (frozen-encoder methods); 0 = off
    val_max_items: int = 256  # val motions used for the validation losses
    save_dtype: str = "float32"  # dtype of the saved denoiser weights: float32, float16 or bfloat16
    length_max_captions: int = 20000  # most training captions used to fit the length estimator

    @classmethod
    def from_dict(cls, data: dict | None) -> "GeneratorTrainConfig":
        config = config_from_dict(cls, data, "generator config")
        if config.save_dtype not in SAVE_DTYPES:
            raise ValueError(f"generator config: save_dtype must be one of {list(SAVE_DTYPES)}, "
                             f"got {config.save_dtype!r}")
        return config


# ------------------------------------------------------------------------------------------ the loss
def masked_mse(pred: torch.Tensor, target: torch.Tensor, frame_mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over valid frames only: pred/target (B, T, F), frame_mask (B, T) bool."""
    w = frame_mask[..., None].to(pred.dtype)  # (B, T, 1)
    return ((pred - target) ** 2 * w).sum() / (w.sum() * pred.shape[-1]).clamp(min=1.0)


def draw_condition_dropout(probability: float, batch_size: int, generator: torch.Generator | None = None,
                           device="cpu") -> torch.Tensor:
    """(B,) bool: which training samples drop their text for classifier-free guidance.

    The denoiser never drops on its own; the objective draws this mask from the run's generator and passes
    it to ``prepare_condition`` so that runs stay reproducible.
    """
    gen_device = generator.device if generator is not None else "cpu"
    draw = torch.rand(batch_size, generator=generator, device=gen_device)
    return (draw < probability).to(device)


class GeneratorObjective:
    """Computes the named losses of one batch for a method; shared by training and validation."""

    def __init__(self, *, method: str, config: GeneratorTrainConfig, text_encoder, denoiser, scheduler, meta,
                 extractors, denoise_fn=None):
        self.spec = method_spec(method)
        self.config = config
        self.text_encoder = text_encoder
        self.denoiser = denoiser
        self.denoise_fn = denoise_fn or denoiser  # a torch.compile'd wrapper on CUDA
        self.scheduler = scheduler
        self.meta = meta
        self.skeleton = meta.skeleton
        self.extractors = extractors

    def encode_text(self, captions: list[str]):
        if self.spec.encoder_mode == "frozen" and self.config.text_cache_size > 0:
            return self.text_encoder.encode_cached(captions)  # eval mode, no grad, LRU cache
        if self.spec.encoder_mode == "frozen":
            with torch.no_grad():
                return self.text_encoder(captions)
        return self.text_encoder(captions)  # gradients reach LoRA / backbone weights

    def __call__(self, batch: dict, generator: torch.Generator, *, drop: torch.Tensor | None = None) -> dict:
        x0 = batch["features"]  # (B, T, F) normalised
        mask = batch["frame_mask"]  # (B, T) bool
        B = x0.shape[0]
        device = x0.device
        text = self.encode_text(batch["captions"])
        t = self.scheduler.sample_timesteps(B, generator, device=device)  # (B,)
        noise = torch.randn(x0.shape, generator=generator, device=generator.device).to(device, x0.dtype)
        x_t = self.scheduler.add_noise(x0, noise, t) * mask[..., None].to(x0.dtype)  # (B, T, F)
        if drop is None:  # (B,) classifier-free guidance: rows trained on the null text token
            drop = draw_condition_dropout(self.denoiser.config.cond_dropout, B, generator, device=device)
        condition = self.denoiser.prepare_condition(text.hidden.to(device), text.mask.to(device), drop)
        x0_hat = self.denoise_fn(x_t, t, condition, mask)  # (B, T, F)
        losses = {"mse": masked_mse(x0_hat.float(), x0.float(), mask)}
        total = losses["mse"]
        if self.config.geometric.enabled:
            with torch.autocast(x0_hat.device.type, enabled=False):  # cumulative sums want float32
                geo = geometric_losses(self.meta.denormalize(x0_hat.float()), self.meta.denormalize(x0.float()),
                                       mask, self.skeleton, self.config.geometric)
            losses.update(geo)
            total = total + geo["geometric"]
        if self.extractors is not None and (self.spec.constraints or self.config.log_constraints):
            with torch.enable_grad() if self.spec.constraints else torch.no_grad():
                lm, lt = self.consistency(x0_hat, x0, mask, batch["captions"], drop)
            losses["motion_consistency"] = lm
            losses["text_consistency"] = lt
            if self.spec.constraints:
                total = total + self.config.lambda_m * lm + self.config.lambda_t * lt
        losses["total"] = total
        return losses

    def consistency(self, x0_hat, x0, mask, captions, drop):
        """(L_M, L_T): cosine distances in the frozen extractors' space (gradient flows into x0_hat only).

        The GRU extractors always run in float32 (outside any bf16 autocast)."""
        with torch.autocast(x0_hat.device.type, enabled=False):
            raw_hat = self.meta.denormalize(x0_hat.float())  # (B, T, F) un-normalised for E_M
            e_hat = self.extractors.encode_motion(raw_hat, mask)  # (B, E)
            with torch.no_grad():
                e_gt = self.extractors.encode_motion(self.meta.denormalize(x0.float()), mask)  # (B, E)
                e_text = self.extractors.encode_text(captions).to(e_hat.device)  # (B, E)
        lm = (1.0 - F.cosine_similarity(e_hat, e_gt, dim=-1)).mean()
        keep = (~drop).to(e_hat.dtype)  # L_T only where the text was seen
        lt = ((1.0 - F.cosine_similarity(e_hat, e_text, dim=-1)) * keep).sum() / keep.sum().clamp(min=1.0)
        return lm, lt


# ------------------------------------------------------------------------------------------ builders
def load_extractors(extractors_dir, device=None):
    """Frozen, differentiable extractor pair; a clear error when the folder is missing or wrong."""
    from adamotion.models.extractors import ExtractorPair

    if extractors_dir is None:
        raise ValueError("no extractors given; train them first (`adamotion train extractors --data DIR --out DIR`) "
                         "and pass --extractors DIR")
    path = Path(extractors_dir).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: extractors folder not found; train them with "
                                f"`adamotion train extractors --data DIR --out {path}`")
    pair = ExtractorPair.from_pretrained(path).freeze()
    return pair.to(device) if device is not None else pair


def build_text_encoder(config: GeneratorTrainConfig, spec: MethodSpec):
    from adamotion.text.encoder import TextEncoder

    lora = None
    if spec.adapters:
        lora = config.lora
    cache = config.text_cache_size if spec.encoder_mode == "frozen" else 0
    encoder = TextEncoder.from_pretrained(config.backbone, lora=lora, cache_size=max(cache, 1))
    n = encoder.set_trainable(spec.encoder_mode)
    logger.info("text encoder %s: mode %s, %s trainable parameters", encoder.display_name, spec.encoder_mode, f"{n:,}")
    return encoder


def collect_train_captions(dataset, limit: int) -> tuple[list[str], list[int]]:
    """(caption, length) pairs of the split for the length estimator: every caption of each motion when the
    dataset exposes them (``all_captions(i)``), else the epoch-0 caption of each item."""
    captions, lengths = [], []
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(0)
    for i in range(len(dataset)):
        item = dataset[i]
        texts = dataset.all_captions(i) if hasattr(dataset, "all_captions") else [item["caption"]]
        for text in texts:
            captions.append(text)
            lengths.append(int(item["length"]))
        if len(captions) >= limit:
            break
    return captions[:limit], lengths[:limit]


@torch.no_grad()
def fit_length_estimator(text_encoder, captions: list[str], lengths: list[int], skeleton, batch_size: int = 256):
    """LengthEstimator fitted on pooled *vanilla* embeddings (adapters off), so that the adapters never
    change which length "auto" picks; the pipeline encodes in that mode when it predicts."""
    from adamotion.models.length import LengthEstimator

    was_training = text_encoder.training
    text_encoder.eval()
    pooled = []
    with text_encoder.vanilla():
        for s in range(0, len(captions), batch_size):
            pooled.append(text_encoder(captions[s:s + batch_size]).pooled.float().cpu())
    text_encoder.train(was_training)
    estimator = LengthEstimator(text_encoder.hidden_size, skeleton=skeleton, encoder="vanilla")
    return estimator.fit(torch.cat(pooled), np.asarray(lengths))


@dataclass
class GeneratorParts:
    """The models of one generator run and how they train."""

    spec: MethodSpec  # the method's row of the ablation table
    text_encoder: object  # TextEncoder (trainable per spec.encoder_mode)
    denoiser: object  # MotionDenoiser
    scheduler: object  # DiffusionScheduler
    objective: GeneratorObjective  # batch -> named losses
    modules: dict  # name -> module being trained (checkpointed, EMA-averaged)
    param_groups: list  # optimizer groups: denoiser (loop.lr), text_encoder (lora_lr / encoder_lr)


def build_generator(method: str, config: GeneratorTrainConfig, *, meta, extractors) -> GeneratorParts:
    """Text encoder, denoiser, scheduler, objective and parameter groups for ``method`` (no data needed)."""
    from adamotion.diffusion.scheduler import DiffusionScheduler
    from adamotion.models.denoiser import DenoiserConfig, MotionDenoiser

    spec = method_spec(method)
    skeleton = meta.skeleton
    feature_dim = skeleton.feature_dim
    if spec.constraints and extractors is None:
        raise ValueError(f"method {method!r} trains with quality feedback and needs the extractors (--extractors DIR)")
    if extractors is not None and extractors.motion.config.feature_dim != feature_dim:
        raise ValueError(f"the extractors read {extractors.motion.config.feature_dim}-dim motion but the dataset has "
                         f"{feature_dim}; train extractors on this dataset")
    text_encoder = build_text_encoder(config, spec)
    denoiser = MotionDenoiser(DenoiserConfig(
        feature_dim=feature_dim, text_dim=text_encoder.hidden_size, max_frames=skeleton.max_frames,
        cond_dropout=config.cond_dropout, **config_to_dict(config.denoiser)))
    scheduler = DiffusionScheduler(num_train_timesteps=config.num_train_timesteps, beta_schedule=config.beta_schedule)
    objective = GeneratorObjective(method=method, config=config, text_encoder=text_encoder, denoiser=denoiser,
                                   scheduler=scheduler, meta=meta, extractors=extractors)
    modules = {"denoiser": denoiser}
    groups = [{"name": "denoiser", "params": list(denoiser.parameters()), "lr": config.loop.lr}]
    if spec.encoder_mode != "frozen":
        modules["text_encoder"] = text_encoder
        lr = (config.lora_lr or config.loop.lr) if spec.encoder_mode == "lora" else config.encoder_lr
        groups.append({"name": "text_encoder", "params": [p for p in text_encoder.parameters() if p.requires_grad],
                       "lr": lr})
    return GeneratorParts(spec, text_encoder, denoiser, scheduler, objective, modules, groups)


# ------------------------------------------------------------------------------------------ the job
def train_generator(data_root, extractors_dir, out_dir, method: str = "adaqf",
                    config: GeneratorTrainConfig | dict | None = None, *, resume: bool | None = None,
                    callbacks=()) -> Path:
    """Train a generator with one of the five methods and save a complete pipeline into ``out_dir``."""
    from adamotion.data.humanml3d import collate_motion_text
    from adamotion.pipeline import MotionPipeline

    spec = method_spec(method)
    if not isinstance(config, GeneratorTrainConfig):
        config = GeneratorTrainConfig.from_dict(config)
    check_data_root(data_root)  # before loading the extractors
    extractors = load_extractors(extractors_dir) if (spec.constraints or config.log_constraints) else None
    if extractors is None and extractors_dir is not None:
        load_extractors(extractors_dir)  # still fail early on a wrong path
    out_dir = Path(out_dir)
    loop = config.loop
    data = open_training_data(data_root, loop, normalize=True)
    root, meta = data.root, data.meta
    skeleton = meta.skeleton
    parts = build_generator(method, config, meta=meta, extractors=extractors)
    text_encoder, denoiser, objective = parts.text_encoder, parts.denoiser, parts.objective
    # The weights' fingerprint, so that `adamotion evaluate` can refuse to grade this generator with them.
    run_config = {"job": "generator", "method": method, "paper_row": spec.paper_row, "data": str(root),
                  "extractors": str(extractors_dir) if extractors_dir is not None else None,
                  "feedback_extractors_sha256": weights_fingerprint(extractors_dir) if extractors_dir is not None else None,
                  **config_to_dict(config)}
    trainer = start_training(out_dir, run_config, RUN_CONFIG_NAME, loop=loop, data=data, modules=parts.modules,
                             param_groups=parts.param_groups, loss_fn=objective, resume=resume, callbacks=callbacks)
    device = trainer.device
    text_encoder.to(device)
    if extractors is not None:
        extractors.to(device)
    objective.denoise_fn = trainer.maybe_compile(denoiser)

    val_batches = fixed_batches(data.val_set, config.val_max_items, loop.batch_size, collate_motion_text)

    def validate() -> dict:
        g = torch.Generator(device).manual_seed(loop.seed + 12345)
        sums: dict[str, float] = {}
        count = 0
        for batch in val_batches:
            batch = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
            B = batch["features"].shape[0]
            losses = objective(batch, g, drop=torch.zeros(B, dtype=torch.bool, device=device))
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + float(v) * B
            count += B
        return {k: v / count for k, v in sums.items()}

    trainer.validate_fn = validate

    def export(state) -> None:
        text_encoder.to("cpu").eval()
        denoiser.to("cpu").eval()
        captions, lengths = collect_train_captions(data.train_set, config.length_max_captions)
        length_estimator = fit_length_estimator(text_encoder, captions, lengths, skeleton)
        save_denoiser = denoiser
        if config.save_dtype != "float32":
            save_denoiser = copy.deepcopy(denoiser).to(SAVE_DTYPES[config.save_dtype])
        pipeline = MotionPipeline(text_encoder, save_denoiser, parts.scheduler, meta,
                                  length_estimator=length_estimator, name=method, method=spec.title)
        export_into(out_dir, pipeline.save_pretrained)
        logger.info("%s generator saved to %s (final losses %s)", method, out_dir,
                    ", ".join(f"{k}={v:.4f}" for k, v in state.last_losses.items()))

    finish_training(trainer, "generator", export, {
        "method": method, "text_encoder": text_encoder.display_name,
        "trainable_parameters": {g["name"]: int(sum(p.numel() for p in g["params"])) for g in parts.param_groups}})
    return out_dir
