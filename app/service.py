"""The app's back end: everything loaded once, one call per UI action, inputs validated with clear messages.

No model code lives here: generation goes through :class:`adamotion.pipeline.MotionPipeline`, videos through
``renderers``, retrieval through :class:`adamotion.retrieval.gallery.RetrievalGallery`.
"""
from __future__ import annotations

import logging
import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adamotion.motion.postprocess import POSTPROCESS_OPTIONS
from adamotion.motion.skeleton import Skeleton
from adamotion.text.coverage import CoverageReport
from adamotion.utils.serialization import CheckpointError
from app.config import AppConfig
from app.workspace import Workspaces

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 500
MAX_SAMPLES = 4
# Work one request may ask for: samples × length, per encoder ('auto' counts as the longest length). 20 s about
# halves the worst request allowed before (4 × 9.8 s, mesh style: 24 s of CPU on 2 cores), so one user cannot
# hold a worker for long.
MAX_MOTION_SECONDS = 20.0


class UserInputError(ValueError):
    """Bad input from a user: shown as a message in the UI and as a 4xx-style error through the API."""


# ----------------------------------------------------------------------------- validation
def validate_prompt(prompt) -> str:
    if not isinstance(prompt, str):
        raise UserInputError("The prompt must be text.")
    text = " ".join(prompt.split())
    if not text:
        raise UserInputError("Please type a prompt describing a motion, e.g. 'a person walks forward and waves'.")
    if len(text) > MAX_PROMPT_CHARS:
        raise UserInputError(f"The prompt is {len(text):,} characters long; please keep it under {MAX_PROMPT_CHARS}.")
    if not any(ch.isalpha() for ch in text):
        raise UserInputError("The prompt has no words; describe the motion in English, e.g. 'a person jumps'.")
    return text


def parse_seconds(value, skeleton: Skeleton) -> int | None:
    """Seconds (number or numeric text) or 'auto' → frames (None = let the length estimator decide)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"Length must be a number of seconds or 'auto', got {value!r}.") from None
    lo, hi = skeleton.min_frames / skeleton.fps, skeleton.max_frames / skeleton.fps
    if not math.isfinite(seconds) or not lo <= seconds <= hi:
        raise UserInputError(f"Length must be between {lo:g} and {hi:g} seconds (or 'auto'), got {value!r}.")
    frames = int(round(seconds * skeleton.fps))
    return min(max(frames, skeleton.min_frames), skeleton.max_frames)


def parse_seed(value) -> int:
    try:
        seed = int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise UserInputError(f"Seed must be a whole number, got {value!r}.") from None
    if not 0 <= seed < 2**31:
        raise UserInputError(f"Seed must be between 0 and {2**31 - 1}, got {seed}.")
    return seed


def parse_float(value, name: str, lo: float, hi: float) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserInputError(f"{name} must be a number, got {value!r}.") from None
    if not math.isfinite(number) or not lo <= number <= hi:
        raise UserInputError(f"{name} must be between {lo:g} and {hi:g}, got {value!r}.")
    return number


def check_work(num_samples: int, frames: int | None, skeleton: Skeleton) -> None:
    """Refuse a request whose samples × length exceeds :data:`MAX_MOTION_SECONDS` ('auto' = the longest length)."""
    seconds = (frames if frames is not None else skeleton.max_frames) / skeleton.fps
    if num_samples * seconds > MAX_MOTION_SECONDS + 1e-9:
        length = f"{seconds:g} s" if frames is not None else f"up to {seconds:g} s ('auto')"
        most = max(1, int(MAX_MOTION_SECONDS // seconds))
        raise UserInputError(
            f"One request may render at most {MAX_MOTION_SECONDS:g} s of motion per encoder (samples × length); "
            f"{num_samples} samples × {length} is more. Choose at most {most} sample(s) or a shorter length.")


def parse_int(value, name: str, lo: int, hi: int) -> int:
    number = parse_float(value, name, lo, hi)
    if number != int(number):
        raise UserInputError(f"{name} must be a whole number, got {value!r}.")
    return int(number)


# ----------------------------------------------------------------------------- results
@dataclass
class EncoderResult:
    label: str  # e.g. "MiniLM-L6 + LoRA (AdaQF)"
    video: Path
    joints: list[np.ndarray]  # per sample (T, J, 3)
    features: list[np.ndarray]  # per sample (T, F)
    similarity: list[float]  # evaluator text-motion cosine per sample
    rprecision_rank: list[int]  # rank of the prompt among 32 captions (1 = best) per sample
    physical: list[str] = field(default_factory=list)  # per sample, its physical readings next to real motion's


@dataclass
class GenerateResult:
    prompt: str
    seed: int
    lengths: list[int]
    side_by_side: Path
    adapted: EncoderResult
    vanilla: EncoderResult
    downloads: list[Path] = field(default_factory=list)
    coverage: CoverageReport | None = None  # how close the prompt is to the training data (None: not known)


def _data_line(meta) -> str:
    """About-tab line naming the training data, read from the checkpoint's saved dataset metadata (not assumed)."""
    sources = meta.extra.get("sources") or []
    if not sources:
        return ("- training data: the project's procedural motion-language corpus (`adamotion data synth`), "
                "not HumanML3D")
    named = [f"{s.get('name', '?')} ({s.get('kind', '?')}, {s.get('license', {}).get('name', '?')})" for s in sources]
    return f"- training data: {' + '.join(named)}; not HumanML3D"


def _license_line(meta) -> str:
    """About-tab line naming the licence the checkpoint inherits from its training data (saved dataset metadata)."""
    license = meta.license
    if not license.get("attribution"):
        return f"- models and training data: {license['name']}"
    return (f"- models: **{license['name']}** (non-commercial use only), inherited from the training data; "
            f"attribution: {license['attribution']}")


class Studio:
    """Loads the two pipelines, the evaluator, the retrieval gallery and the renderers once."""

    def __init__(self, config: AppConfig):
        from adamotion.bundle import load

        self.config = config
        self.bundle = load(config.checkpoint)
        self.adapted = self.bundle.pipeline("adaqf", device=config.device)
        # The vanilla side uses the *same* text encoder module with adapters switched off (no second copy).
        self.vanilla = self.bundle.pipeline("baseline", device=config.device, text_encoder=self.adapted.text_encoder)
        self.skeleton: Skeleton = self.adapted.skeleton  # the format every motion of this app is in
        if self.vanilla.skeleton.name != self.skeleton.name:
            raise CheckpointError(f"{self.bundle.root}: adaqf generates {self.skeleton.name} motion, baseline "
                                  f"{self.vanilla.skeleton.name}; both sides must share one skeleton")
        # The independent evaluator judges; the extractors the AdaQF generator trained against never do.
        self.evaluator = self._load_evaluator()
        self.real_motion = self._load_real_motion()
        self.gallery = self._load_gallery()
        self.coverage = self._load_coverage()
        # Created only once everything loaded: a bad checkpoint leaves no temporary folder or sweeper behind.
        self.workspaces = Workspaces(config.workdir, max_age_s=config.cleanup_after_s,
                                     sweep_every_s=config.cleanup_every_s)
        self._render_lock = threading.Lock()
        self.checkpoint_id = self.bundle.name

    # -- loading helpers
    def _load_evaluator(self):
        if not self.bundle.has("evaluator"):
            log.warning("no evaluator in %s: similarity scores are hidden", self.bundle.root)
            return None
        return self.bundle.evaluator(device=self.config.device)

    def _load_real_motion(self) -> dict | None:
        """Physical readings of real motion (the corpus's own clips), stored beside the evaluator."""
        from adamotion.eval.evaluate import REAL_MOTION_FILE, read_real_motion_reference

        if not self.bundle.has("evaluator"):
            return None  # _load_evaluator already says so
        try:
            return read_real_motion_reference(self.bundle.path("evaluator") / REAL_MOTION_FILE)
        except (FileNotFoundError, ValueError) as exc:
            log.warning("%s; physical readings are shown without a real-motion reference", exc)
            return None

    def _load_gallery(self):
        from adamotion.bundle import RETRIEVAL_PARTS

        missing = [part for part in RETRIEVAL_PARTS if not self.bundle.has(part)]
        if missing:
            log.warning("no %s in %s: the Retrieve tab is disabled", ", ".join(missing), self.bundle.root)
            return None
        from adamotion.utils.paths import index_cache_dir

        cache_dir = self.config.index_cache or index_cache_dir(self.bundle.root)
        return self.bundle.retrieval_gallery(text_encoder=self.adapted.text_encoder, cache_dir=cache_dir)

    def _load_coverage(self):
        from adamotion.text.coverage import Coverage

        if not self.bundle.has("coverage"):
            log.warning("no coverage in %s: prompts are not checked against the training data (build it with "
                        "`adamotion coverage build`)", self.bundle.root)
            return None
        return Coverage.from_pretrained(self.bundle.path("coverage"))

    def check_coverage(self, prompt: str):
        """Nearest known actions, the out-of-domain verdict and a language warning (None without coverage data)."""
        if self.coverage is None:
            return None
        return self.coverage.check(self.adapted.text_encoder, prompt)

    @property
    def labels(self) -> tuple[str, str]:
        return (self.adapted.display_name(encoder="ada"), self.vanilla.display_name(encoder="vanilla"))

    def about_markdown(self) -> str:
        """The About tab: what the two columns are, what was loaded, how to reproduce a result."""
        ada_label, van_label = self.labels
        ckpt = self.bundle.root
        lines = [
            "## What you see",
            f"Every prompt is generated twice with the same seed and the same starting noise: once with **{ada_label}** "
            f"(the text encoder with its motion-aware LoRA adapters, trained with motion-quality feedback) and once "
            f"with **{van_label}** (the same pretrained encoder with the adapters switched off, paired with a motion "
            "generator trained on it). The two generators share architecture, data and recipe; they differ in the text "
            "encoder.",
            "",
            self._judge_text(),
            "",
            "## Loaded",
            f"- checkpoint: `{ckpt}` (generators `adaqf`, `baseline`)",
            f"- text backbone: {self.adapted.text_encoder.backbone_name} (frozen; the adapted side adds LoRA adapters)",
            _data_line(self.adapted.meta),
            _license_line(self.adapted.meta),
            f"- retrieval gallery: {len(self.gallery.motion_ids())} motions" if self.gallery is not None
            else "- retrieval gallery: none (Retrieve tab disabled)",
        ]
        if (ckpt / "MODEL_CARD.md").is_file():
            lines.append(f"- model card: `{ckpt / 'MODEL_CARD.md'}` (data, hyper-parameters, evaluation)")
        summary_path = ckpt / "training_summary.json"
        if summary_path.is_file():
            import json

            try:
                summary = json.loads(summary_path.read_text(encoding="utf-8"))
                hardware = summary.get("hardware", {})
                lines.append(f"- trained: `adamotion train all --config {summary.get('config_file', '?')}`, started "
                             f"{summary.get('started', '?')}, {summary.get('total_s', 0) / 60:.0f} min on "
                             f"{hardware.get('cpu_count', '?')} CPU cores{' + CUDA' if hardware.get('cuda') else ''} "
                             f"(torch {hardware.get('torch', '?')})")
            except (ValueError, OSError) as exc:
                log.warning("unreadable %s: %s", summary_path, exc)
        lines += [
            "",
            "## Reproduce a result",
            "The downloads hold the joints and features (`.npy`), a BVH per sample and a `.npz` bundle recording "
            "prompt, seed, guidance, steps, encoder and checkpoint. The same settings give the same motion. "
            "Programmatic use: *Use via API* below (endpoints `generate`, `retrieve`, `motion_to_text`).",
        ]
        return "\n".join(lines)

    # -- generation
    def generate(self, prompt, seconds="auto", seed=0, guidance_scale=2.5, steps=50, num_samples=1,
                 style="skeleton", progress=None, sampler=None, postprocess="none") -> GenerateResult:
        """Both encoders' motions for a prompt, rendered. ``sampler``: "ddpm" or "ddim"; None = the app's
        rule for its one steps slider, DDPM at all training steps and DDIM (eta 0) below. ``postprocess``: an
        optional clean-up (``adamotion.motion.postprocess``), "none" = the raw model."""
        prompt = validate_prompt(prompt)
        frames = parse_seconds(seconds, self.skeleton)
        seed = parse_seed(seed)
        guidance_scale = parse_float(guidance_scale, "Guidance scale", 0.0, 10.0)
        train_steps = self.adapted.scheduler.num_train_timesteps
        steps = parse_int(steps, "Sampling steps", 1, train_steps)
        if sampler is None:
            sampler = "ddpm" if steps == train_steps else "ddim"
        if sampler not in ("ddpm", "ddim"):
            raise UserInputError(f"Sampler must be 'ddpm' or 'ddim', got {sampler!r}.")
        if sampler == "ddpm" and steps != train_steps:
            raise UserInputError(f"The DDPM sampler runs all {train_steps} steps; choose DDIM for {steps} steps.")
        num_samples = parse_int(num_samples, "Number of samples", 1, MAX_SAMPLES)
        if style not in ("skeleton", "mesh"):
            raise UserInputError(f"Render style must be 'skeleton' or 'mesh', got {style!r}.")
        if postprocess not in POSTPROCESS_OPTIONS:
            raise UserInputError(f"Clean-up must be one of {', '.join(POSTPROCESS_OPTIONS)}, got {postprocess!r}.")
        check_work(num_samples, frames, self.skeleton)
        coverage = self.check_coverage(prompt)
        out_dir = self.workspaces.new("generate")

        def report(fraction, desc):
            if progress is not None:
                progress(fraction, desc=desc)

        common = dict(lengths=frames, seed=seed, guidance_scale=guidance_scale, steps=steps, sampler=sampler,
                      num_samples=num_samples, postprocess=postprocess)
        done_steps = {"ada": 0, "vanilla": 0}

        def step_done(key, i, n):
            done_steps[key] = i
            report(0.9 * (done_steps["ada"] + done_steps["vanilla"]) / (2 * n), "generating with both encoders")

        report(0.0, "generating with both encoders")
        # The two samplers run at once: batch-1 denoiser steps leave most of a 2-core CPU idle, so two threads
        # finish both in ~0.55x the sequential time (`python -m app.bench app`). The shared text encoder is locked.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="generate") as pool:
            ada_job = pool.submit(self.adapted, [prompt], encoder="ada", **common,
                                  progress=lambda i, n: step_done("ada", i, n))
            van_job = pool.submit(self.vanilla, [prompt], encoder="vanilla", **common,
                                  progress=lambda i, n: step_done("vanilla", i, n))
            ada, van = ada_job.result(), van_job.result()
        report(0.9, "rendering videos")
        ada_label, van_label = self.labels
        adapted = self._encoder_result(prompt, ada, ada_label, out_dir / "adapted.mp4")
        vanilla = self._encoder_result(prompt, van, van_label, out_dir / "vanilla.mp4")
        side = self._render_videos(prompt, adapted, vanilla, out_dir / "side_by_side.mp4", style)
        downloads = self._write_downloads(prompt, seed, guidance_scale, steps, ada, van, out_dir)
        report(1.0, "done")
        return GenerateResult(prompt=prompt, seed=seed, lengths=list(ada.lengths), side_by_side=side,
                              adapted=adapted, vanilla=vanilla, downloads=[side, adapted.video, vanilla.video, *downloads],
                              coverage=coverage)

    def _encoder_result(self, prompt: str, output, label: str, video: Path) -> EncoderResult:
        sims, ranks = self.score(prompt, output.features)
        return EncoderResult(label=label, video=video, joints=list(output.joints), features=list(output.features),
                             similarity=sims, rprecision_rank=ranks,
                             physical=[self.physical_text(joints) for joints in output.joints])

    def _render_videos(self, prompt: str, adapted: EncoderResult, vanilla: EncoderResult, path: Path, style: str) -> Path:
        """The side-by-side video of every sample, and the first sample of each encoder as its own video.

        Skeleton style draws each scene once for all three files (``panel_paths``); mesh style renders the two
        single videos with the body renderer and keeps the side-by-side a skeleton view.
        """
        from renderers.skeleton import render_side_by_side

        joints, labels, own_paths = [], [], []
        for i, (a, v) in enumerate(zip(adapted.joints, vanilla.joints)):
            suffix = f" #{i + 1}" if len(adapted.joints) > 1 else ""
            joints += [a, v]
            labels += [adapted.label + suffix, vanilla.label + suffix]
            own_paths += [adapted.video, vanilla.video] if i == 0 else [None, None]
        if style == "mesh":
            from renderers.mesh import render_mesh_video

            for result in (adapted, vanilla):
                render_mesh_video(result.joints[0], result.video, fps=self.skeleton.fps, size=self.config.video_size,
                                  title=f"{result.label}\n{prompt}", smpl_dir=self.config.smpl_dir,
                                  skeleton=self.skeleton)
            own_paths = None
        return Path(render_side_by_side(joints, labels, path, fps=self.skeleton.fps, title=prompt,
                                        size=self.config.video_size, panel_paths=own_paths, skeleton=self.skeleton))

    def _write_downloads(self, prompt, seed, guidance_scale, steps, ada, van, out_dir: Path) -> list[Path]:
        from adamotion.io.bvh import write_bvh
        from adamotion.io.export import save_bundle, save_features_npy, save_joints_npy

        files = []
        for tag, output in (("adapted", ada), ("vanilla", van)):
            for i, (joints, feats) in enumerate(zip(output.joints, output.features)):
                stem = out_dir / f"{tag}_sample{i + 1}"
                files.append(save_joints_npy(stem.with_name(stem.name + "_joints.npy"), joints, skeleton=self.skeleton))
                files.append(save_features_npy(stem.with_name(stem.name + "_features.npy"), feats, skeleton=self.skeleton))
                bvh = stem.with_suffix(".bvh")
                write_bvh(bvh, joints=joints, skeleton=self.skeleton)
                files.append(bvh)
            bundle = out_dir / f"{tag}_bundle.npz"
            save_bundle(bundle, prompt=prompt, seed=seed, encoder=output.encoder, checkpoint_id=self.checkpoint_id,
                        lengths=list(output.lengths), features=output.features, joints=output.joints,
                        guidance_scale=guidance_scale, steps=steps, skeleton=self.skeleton,
                        extra={"sampler": output.sampler, "postprocess": output.postprocess})
            files.append(bundle)
        return [f for f in files if f.exists()]

    # -- physical readings
    def physical_text(self, joints: np.ndarray) -> str:
        """One line of physical readings of a clip next to real motion's, e.g. "jitter 4.1 m/s² · real motion 4.8"."""
        from adamotion.eval.evaluate import format_physical_readings
        from adamotion.eval.metrics import physical_metrics

        return format_physical_readings(physical_metrics(joints, self.skeleton), self.real_motion)

    def _judge_text(self) -> str:
        if self.evaluator is None:
            return "No evaluator in this checkpoint: scores are hidden."
        return (
            f"The scores under each video come from the project's **independent evaluator** "
            f"(`evaluator/`, T2M architecture, weights sha256 `{self.evaluator.fingerprint[:12]}`): the cosine between "
            "the prompt and the motion in its embedding space, and the prompt's rank among 32 captions (1 = the "
            "motion matches its own prompt best). It was trained on its own, with its own seed, and no generator was "
            "ever trained against it. The AdaQF generator and its LoRA adapters were trained against a different "
            "network, the quality-feedback extractors (`extractors/`); the vanilla side's generator was trained "
            "without that feedback. Under the scores, each clip's physical readings (jitter, bone-length "
            "variation, feet below the floor, floating, foot skating) are measured on its joints, next to the same "
            "readings of real motion from the training corpus.")

    # -- evaluator scores
    def score(self, prompt: str, features: list[np.ndarray]) -> tuple[list[float], list[int]]:
        """Evaluator cosine(text, motion) and the prompt's rank among 32 captions (itself + 31 gallery captions)."""
        if self.evaluator is None:
            return [float("nan")] * len(features), [0] * len(features)
        import torch

        from adamotion.eval.metrics import retrieval_rank

        with torch.inference_mode():
            pool = [prompt] + (self.gallery.distractor_captions(31, exclude=prompt) if self.gallery else [])
            text_emb = self.evaluator.encode_text(pool).float()  # (P, D)
            sims, ranks = [], []
            for feats in features:
                motion = torch.as_tensor(feats, dtype=torch.float32)[None]  # (1, T, F)
                mask = torch.ones(motion.shape[:2], dtype=torch.bool)
                motion_emb = self.evaluator.encode_motion(motion, mask).float()  # (1, D)
                dist = torch.cdist(motion_emb, text_emb)[0]  # (P,)
                cos = torch.nn.functional.cosine_similarity(motion_emb, text_emb[:1]).item()
                sims.append(round(cos, 4))
                ranks.append(int(retrieval_rank(dist.numpy(), dist[0].numpy())))  # ties count against the prompt
        return sims, ranks

    # -- retrieval
    def retrieve(self, query, k=5, test_only=True):
        if self.gallery is None:
            raise UserInputError("Retrieval is not available: this checkpoint has no gallery.")
        query = validate_prompt(query)
        k = parse_int(k, "Top-k", 1, 20)
        return self.gallery.text_to_motion(query, k=k, split="test" if test_only else None)

    def motion_to_text(self, motion_id: str | None = None, features: np.ndarray | None = None, k=5):
        if self.gallery is None:
            raise UserInputError("Retrieval is not available: this checkpoint has no gallery.")
        k = parse_int(k, "Top-k", 1, 20)
        if features is None:
            if not motion_id:
                raise UserInputError("Pick a gallery motion or generate one first.")
            features = self.gallery.features_of(motion_id)
        return self.gallery.motion_to_text(features, k=k)

    def thumbnail(self, motion_id: str) -> Path:
        """A looping skeleton clip of a gallery motion, rendered once and cached.

        No caption is burned in: at thumbnail size a long caption would cover a third of the picture; the
        caption is in the ranking table and the video's label instead.
        """
        cache = self.workspaces.root / "thumbnails"
        cache.mkdir(exist_ok=True)
        path = cache / f"{motion_id}.mp4"
        if not path.exists():
            from renderers.skeleton import render_video

            with self._render_lock:
                if not path.exists():
                    render_video(self.gallery.joints_of(motion_id), path, fps=self.skeleton.fps, size=(320, 240),
                                 skeleton=self.skeleton)
        return path
