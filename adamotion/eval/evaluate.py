"""``adamotion evaluate``: the text-to-motion protocol (Guo et al. 2022) over one or more generator checkpoints.

For each repeat (different seed), a subset of the split's (caption, motion) pairs is generated at the real
lengths; an evaluator the generators never trained against (the project's independent evaluator,
``adamotion train evaluator``, or the official T2M evaluator) embeds real and generated motions and the captions; FID, R-precision top-1/2/3, MM-Dist, Diversity, MultiModality and the
physical-quality metrics (:func:`adamotion.eval.metrics.physical_metrics`: jitter, jerk, bone-length variation,
foot penetration, floating, skating ratio — on the recovered joints, at the skeleton's fps) are computed per
repeat and reported as mean ± 95% CI, ground truth of the same pairs included.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from adamotion.eval import metrics as M

log = logging.getLogger(__name__)


@dataclass
class EvalConfig:
    split: str = "test"  # dataset split evaluated
    repeats: int = 20  # independent evaluations (seeds); the paper uses 20
    num_pairs: int = 512  # (caption, motion) pairs generated per repeat; multiple of 32 for R-precision
    mm_captions: int = 32  # captions used for MultiModality (each generated mm_samples times)
    mm_samples: int = 10  # generations per caption for MultiModality
    batch_size: int = 64  # captions generated per pipeline call
    steps: int = 50  # sampling steps
    sampler: str = "ddpm"  # "ddpm" (all training steps) or "ddim" (any number of steps, eta 0)
    guidance_scale: float = 2.5  # classifier-free guidance weight
    seed: int = 0  # base seed; repeat r uses seed + r
    cache_dir: str | None = None  # keep generated motions here (keyed by weights, captions, seeds, settings) and reuse them

    @classmethod
    def quick(cls) -> "EvalConfig":
        """A small run for smoke tests and CI: few repeats, few pairs."""
        return cls(repeats=3, num_pairs=64, mm_captions=8, mm_samples=4, steps=10, sampler="ddim")


@dataclass
class EvalTarget:
    """One row of the table: a pipeline and which encoder setting to sample it with."""
    name: str
    pipeline: object  # adamotion.pipeline.MotionPipeline
    encoder: str = "ada"
    fingerprint: str | None = None  # sha256 of the pipeline folder's weights; needed for the generation cache


def _embed_motions(evaluator, features: list[np.ndarray], batch_size: int = 128) -> np.ndarray:
    """Evaluator embeddings of un-normalised feature clips of varying length → (N, D)."""
    out = []
    with torch.inference_mode():
        for start in range(0, len(features), batch_size):
            chunk = features[start:start + batch_size]
            t_max = max(f.shape[0] for f in chunk)
            padded = np.zeros((len(chunk), t_max, chunk[0].shape[1]), np.float32)  # (B, T, F)
            mask = np.zeros((len(chunk), t_max), bool)  # (B, T)
            for i, f in enumerate(chunk):
                padded[i, : f.shape[0]] = f
                mask[i, : f.shape[0]] = True
            emb = evaluator.encode_motion(torch.from_numpy(padded), torch.from_numpy(mask))
            out.append(emb.float().cpu().numpy())
    return np.concatenate(out)


def _embed_texts(evaluator, captions: list[str], tokens: list | None = None, batch_size: int = 256) -> np.ndarray:
    """Caption embeddings (N, D); T2M-architecture evaluators read the dataset's ``word/POS`` tokens as they are."""
    reads_tokens = tokens is not None and getattr(evaluator, "reads_tokens", False)
    with torch.inference_mode():
        return np.concatenate([
            (evaluator.encode_text(captions[i:i + batch_size], tokens=tokens[i:i + batch_size]) if reads_tokens
             else evaluator.encode_text(captions[i:i + batch_size])).float().cpu().numpy()
            for i in range(0, len(captions), batch_size)])


def _pad_joints(joints: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    t_max = max(j.shape[0] for j in joints)
    out = np.zeros((len(joints), t_max, *joints[0].shape[1:]), np.float32)  # (B, T, J, 3)
    for i, j in enumerate(joints):
        out[i, : j.shape[0]] = j
        out[i, j.shape[0]:] = j[-1]  # hold the last pose; masked out by lengths anyway
    return out, np.array([j.shape[0] for j in joints])


def load_eval_pairs(data_root: str | Path, split: str, meta) -> list[dict]:
    """(caption, its ``word/POS`` tokens, un-normalised features, length) for every caption of ``split`` of a
    dataset with ``meta``."""
    from adamotion.data.humanml3d import MotionTextDataset

    dataset = MotionTextDataset(data_root, split, skeleton=meta.skeleton, meta=meta, normalize=False, random_crop=False)
    pairs = []
    for i in range(len(dataset)):
        item = dataset[i]
        features = item["features"]
        features = features.numpy() if hasattr(features, "numpy") else np.asarray(features)
        pairs.append({"caption": item["caption"], "tokens": list(item["tokens"]), "features": features[: item["length"]],
                      "length": int(item["length"]), "motion_id": item["motion_id"]})
    if len(pairs) < M.R_PRECISION_POOL:
        raise ValueError(f"{data_root}: split {split!r} has {len(pairs)} captions; R-precision needs at least 32")
    return pairs


def _generate(target: EvalTarget, captions: list[str], lengths: list[int], seed: int, config: EvalConfig) -> tuple[list, list]:
    """Generate every caption at its length; returns (features, joints) in the order of ``captions``.

    Batches are formed from length-sorted captions: a batch is padded to its longest motion, so mixing a
    40-frame and a 196-frame caption would pay for 196 frames twice.
    """
    cache = _cache_path(target, captions, lengths, seed, config)
    if cache is not None and cache.is_file():
        with np.load(cache) as stored:
            count = len(captions)
            return ([stored[f"features_{i}"] for i in range(count)], [stored[f"joints_{i}"] for i in range(count)])
    order = sorted(range(len(captions)), key=lambda i: lengths[i])
    features, joints = [None] * len(captions), [None] * len(captions)
    for start in range(0, len(order), config.batch_size):
        chunk = order[start:start + config.batch_size]
        output = target.pipeline([captions[i] for i in chunk], lengths=[lengths[i] for i in chunk],
                                 seed=[seed + i for i in chunk], guidance_scale=config.guidance_scale, steps=config.steps,
                                 sampler=config.sampler, encoder=target.encoder)
        for i, feats, joint in zip(chunk, output.features, output.joints):
            features[i], joints[i] = feats, joint
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".tmp.npz")
        np.savez(partial, **{f"features_{i}": f for i, f in enumerate(features)},
                 **{f"joints_{i}": j for i, j in enumerate(joints)})
        partial.replace(cache)
    return features, joints


def _cache_path(target: EvalTarget, captions, lengths, seed: int, config: EvalConfig) -> Path | None:
    """Where ``_generate`` keeps this call's motions: one file per (weights, encoder, captions, lengths, seed,
    steps, sampler, guidance, batch size), so another evaluator can re-score the very same motions."""
    if not config.cache_dir or not target.fingerprint:
        return None
    import hashlib
    import json

    # "seed-per-caption": caption i uses seed + i (caches written under the older per-batch seeds never match)
    key = json.dumps(["seed-per-caption", target.fingerprint, target.encoder, list(captions),
                      [int(n) for n in lengths], int(seed), config.steps, config.sampler, config.guidance_scale,
                      config.batch_size])
    return Path(config.cache_dir) / f"{hashlib.sha256(key.encode()).hexdigest()[:32]}.npz"


METRIC_KEYS = ("fid", "r_precision", "mm_dist", "diversity", "multimodality") + M.PHYSICAL_METRICS


def evaluate(targets: list[EvalTarget], data_root: str | Path, evaluator, config: EvalConfig = EvalConfig(),
             include_ground_truth: bool = True) -> dict[str, dict[str, list]]:
    """Run the protocol; returns ``{row name: {metric: [value per repeat]}}`` (ground truth first)."""
    from adamotion.data.meta import DatasetMeta
    from adamotion.motion.features import joints_from_features

    meta = DatasetMeta.from_dataset_root(data_root)
    skeleton = meta.skeleton
    for target in targets:
        if target.pipeline.skeleton.name != skeleton.name:
            raise ValueError(f"{target.name}: generates {target.pipeline.skeleton.name} motion but {data_root} holds "
                             f"{skeleton.name}; evaluate a pipeline trained on this dataset")
    pairs = load_eval_pairs(data_root, config.split, meta)
    num_pairs = min(config.num_pairs, len(pairs)) // M.R_PRECISION_POOL * M.R_PRECISION_POOL
    if num_pairs == 0:
        raise ValueError(f"{min(config.num_pairs, len(pairs))} caption-motion pairs (num_pairs {config.num_pairs}, split "
                         f"{config.split!r} holds {len(pairs)}) do not fill one R-precision pool of "
                         f"{M.R_PRECISION_POOL}; evaluate at least {M.R_PRECISION_POOL} pairs")
    real_features = [p["features"] for p in pairs]
    log.info("embedding %d real motions with the evaluator", len(real_features))
    real_emb = _embed_motions(evaluator, real_features)  # (N, D)
    results: dict[str, dict[str, list]] = {}
    rows = (["ground truth"] if include_ground_truth else []) + [t.name for t in targets]
    for row in rows:
        results[row] = {k: [] for k in METRIC_KEYS}

    total = config.repeats * len(targets)
    started = time.time()
    with tqdm(total=total, desc="evaluating", unit="run") as bar:
        for repeat in range(config.repeats):
            rng = np.random.default_rng(config.seed + repeat)
            chosen = rng.choice(len(pairs), size=num_pairs, replace=False)
            captions = [pairs[i]["caption"] for i in chosen]
            lengths = [pairs[i]["length"] for i in chosen]
            text_emb = _embed_texts(evaluator, captions, [pairs[i]["tokens"] for i in chosen])  # (n, D)

            # Every row of a repeat draws the same R-precision pools and diversity pairs: a paired comparison,
            # and a model evaluated on its own gets the numbers a joint run gives (`adamotion evaluate-merge`).
            metric_seed = [config.seed, repeat, 1]

            if include_ground_truth:
                gt_emb = real_emb[chosen]
                gt_joints = [joints_from_features(pairs[i]["features"], skeleton) for i in chosen]
                _record(results["ground truth"], real_emb, gt_emb, text_emb, gt_joints, None,
                        np.random.default_rng(metric_seed), skeleton)
            mm_chosen = chosen[: config.mm_captions]
            for target in targets:
                seed = config.seed + 1000 * repeat
                gen_features, gen_joints = _generate(target, captions, lengths, seed, config)
                gen_emb = _embed_motions(evaluator, gen_features)
                mm_captions = [pairs[i]["caption"] for i in mm_chosen for _ in range(config.mm_samples)]
                mm_lengths = [pairs[i]["length"] for i in mm_chosen for _ in range(config.mm_samples)]
                mm_features, _ = _generate(target, mm_captions, mm_lengths, seed + 500, config)
                mm_emb = _embed_motions(evaluator, mm_features).reshape(len(mm_chosen), config.mm_samples, -1)
                _record(results[target.name], real_emb, gen_emb, text_emb, gen_joints, mm_emb,
                        np.random.default_rng(metric_seed), skeleton)
                bar.update()
                elapsed = time.time() - started
                bar.set_postfix(eta=f"{elapsed / bar.n * (total - bar.n):.0f}s")
    if include_ground_truth:
        results["ground truth"]["multimodality"] = []
    return results


def _record(row: dict, real_emb, gen_emb, text_emb, joints, mm_emb, rng, skeleton) -> None:
    row["fid"].append(M.frechet_distance(real_emb, gen_emb))
    row["r_precision"].append(M.r_precision(text_emb, gen_emb, top_k=3, rng=rng).tolist())
    row["mm_dist"].append(M.mm_distance(text_emb, gen_emb))
    row["diversity"].append(M.diversity(gen_emb, pairs=min(M.DIVERSITY_PAIRS, len(gen_emb) - 1), rng=rng))
    if mm_emb is not None:
        row["multimodality"].append(M.multimodality(mm_emb, pairs=min(M.MULTIMODALITY_PAIRS, mm_emb.shape[1] - 1), rng=rng))
    padded, lengths = _pad_joints(joints)
    for key, value in M.physical_metrics(padded, skeleton, lengths=lengths).items():
        row[key].append(float(value))


def parse_data_spec(spec: str, default_split: str) -> tuple[Path, str]:
    """``ROOT`` or ``ROOT:SPLIT`` → (root, split)."""
    root, sep, split = str(spec).rpartition(":")
    if sep and split and "/" not in split and not Path(spec).exists():
        return Path(root), split
    return Path(spec), default_split


def parse_checkpoint_spec(spec: str) -> tuple[str, Path, str]:
    """``[NAME=]DIR[:ada|:vanilla]`` → (name, folder, encoder mode); the name defaults to the folder's."""
    name, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
    encoder = "ada"
    if path.endswith((":ada", ":vanilla")):
        path, _, encoder = path.rpartition(":")
    return name or Path(path).name, Path(path), encoder


def run_evaluation(checkpoints: list[str], data_root: str | Path | list, out_dir: str | Path, *,
                   evaluator_dir: str | None = None, t2m_dir: str | None = None, config: EvalConfig = EvalConfig(),
                   device: str = "cpu", title: str = "Text-to-motion evaluation") -> dict[str, Path]:
    """Load checkpoints and the evaluator, evaluate, write report.json/report.md/metrics.png (+ curves).

    ``data_root`` is one dataset spec or a list of them, each ``ROOT`` or ``ROOT:SPLIT`` (default split:
    ``config.split``). With several, each gets its own table in ``out_dir/<root name>-<split>/`` (a real-mocap
    test split and a procedural one are never pooled) and the returned paths are those of the first.
    """
    from adamotion.eval.report import plot_training_curves, write_report
    from adamotion.pipeline import MotionPipeline
    from adamotion.utils.serialization import atomic_write_json, weights_fingerprint

    targets, folders = [], []
    for spec in checkpoints:
        name, path, encoder = parse_checkpoint_spec(spec)
        folders.append(path)
        pipe = MotionPipeline.from_pretrained(path, device=device)
        targets.append(EvalTarget(name=name, pipeline=pipe, encoder=encoder,
                                  fingerprint=weights_fingerprint(path) if config.cache_dir else None))
    skeletons = {t.pipeline.skeleton.name for t in targets}
    if len(skeletons) != 1:
        raise ValueError(f"the checkpoints use different skeletons {sorted(skeletons)}; evaluate each skeleton's "
                         "checkpoints separately")
    skeleton = targets[0].pipeline.skeleton
    evaluator = load_evaluator(evaluator_dir=evaluator_dir, t2m_dir=t2m_dir, skeleton=skeleton, device=device)
    check_independent(evaluator, folders)
    judge = describe_evaluator(evaluator, evaluator_dir or t2m_dir)

    specs = data_root if isinstance(data_root, (list, tuple)) else [data_root]
    datasets = [parse_data_spec(spec, config.split) for spec in specs]
    out_dir = Path(out_dir)
    first: dict[str, Path] | None = None
    for root, split in datasets:
        folder = out_dir if len(datasets) == 1 else out_dir / f"{root.name}-{split}"
        results = evaluate(targets, root, evaluator, replace(config, split=split))
        split_title = title if len(datasets) == 1 else f"{title} — {root.name}, {split} split"
        paths = write_report(results, folder, title=split_title, reference="ground truth", evaluator=judge)
        atomic_write_json(folder / "eval_config.json", {**asdict(replace(config, split=split)),
                                                        "checkpoints": checkpoints, "data": str(root),
                                                        "evaluator": evaluator_dir or t2m_dir, "judge": judge})
        logs = {t.name: f / "log.csv" for t, f in zip(targets, folders)}
        logs = {k: v for k, v in logs.items() if v.is_file()}
        if logs:
            paths["curves"] = plot_training_curves(logs, folder / "training_curves.png")
        first = first or paths
    return first


def feedback_fingerprint(pipeline_dir: str | Path) -> str | None:
    """sha256 of the feedback extractors a generator trained with, as recorded in its ``config.json``.

    Runs recorded before fingerprints existed name their extractors folder only: it is fingerprinted when it
    still exists. ``None`` when the generator trained without extractors or nothing can be found."""
    import json

    from adamotion.utils.serialization import weights_fingerprint

    path = Path(pipeline_dir) / "config.json"
    if not path.is_file():
        return None
    run = json.loads(path.read_text(encoding="utf-8"))
    if run.get("feedback_extractors_sha256"):
        return run["feedback_extractors_sha256"]
    folder = run.get("extractors")
    if folder and Path(folder).is_dir():
        return weights_fingerprint(folder)
    return None


def check_independent(evaluator, pipeline_dirs: list[Path]) -> None:
    """Refuse to grade a generator with the network it was trained against (one-line ``ValueError``)."""
    fingerprint = getattr(evaluator, "fingerprint", None)
    for folder in pipeline_dirs:
        trained_against = feedback_fingerprint(folder)
        if trained_against is None:
            log.warning("%s records no feedback-extractor fingerprint; cannot check the evaluator is independent", folder)
        elif fingerprint is not None and trained_against == fingerprint:
            raise ValueError(f"refusing to evaluate {folder}: the evaluator's weights (sha256 {fingerprint[:12]}) are the "
                             "feedback extractors this generator was trained against, so it would grade its own "
                             "judge; pass --evaluator checkpoints/default/evaluator (`adamotion train evaluator`)")


def describe_evaluator(evaluator, path: str | None) -> str:
    """One line naming the judge of a table: kind, folder and weight fingerprint."""
    name = getattr(evaluator, "judge_name", type(evaluator).__name__)
    fingerprint = getattr(evaluator, "fingerprint", None)
    return f"{name} ({path}" + (f", weights sha256 {fingerprint[:12]})" if fingerprint else ")")


def load_evaluator(*, evaluator_dir: str | None = None, t2m_dir: str | None = None, skeleton, device: str = "cpu"):
    """The evaluator of ``evaluator_dir`` (the project's independent evaluator, or an extractor pair for
    diagnostics), or the official T2M evaluator when ``t2m_dir`` is given. Each carries ``fingerprint``."""
    if t2m_dir:
        from adamotion.eval.t2m_evaluator import T2MEvaluator

        return T2MEvaluator.from_folder(t2m_dir, skeleton=skeleton, device=device)
    if not evaluator_dir:
        raise ValueError("pass --evaluator DIR (the project's evaluator, e.g. checkpoints/default/evaluator) or "
                         "--t2m-evaluator DIR (the official T2M release)")
    from adamotion.utils.serialization import load_config, weights_fingerprint

    component = load_config(evaluator_dir).get("component")
    if component == "extractor_pair":
        from adamotion.models.extractors import ExtractorPair

        evaluator = ExtractorPair.from_pretrained(evaluator_dir).to(device).eval()
        evaluator.fingerprint = weights_fingerprint(evaluator_dir)
        evaluator.judge_name = "feedback extractors (E_T/E_M)"
        return evaluator
    from adamotion.eval.t2m_evaluator import TextMotionEvaluator

    return TextMotionEvaluator.from_pretrained(evaluator_dir, map_location=device)


# ----------------------------------------------------------------------------- real-motion reference (the app)
REAL_MOTION_FILE = "real_motion.json"  # beside the evaluator: physical readings of the corpus's own motions
_READING_FORMATS = (  # key, label, unit scale, format, unit
    ("jitter", "jitter", 1.0, "{:.1f}", " m/s²"),
    ("bone_variation", "bone-length variation", 100.0, "{:.1f}", " %"),
    ("penetration_ratio", "feet below the floor", 100.0, "{:.0f}", " % of frames"),
    ("floating_ratio", "floating", 100.0, "{:.0f}", " % of frames"),
    ("skating_ratio", "foot skating", 100.0, "{:.0f}", " % of frames"),
)


def real_motion_reference(features: list[np.ndarray], skeleton, source: str) -> dict:
    """Mean physical readings (:func:`adamotion.eval.metrics.physical_metrics`) of real feature clips."""
    from adamotion.motion.features import joints_from_features

    joints = [joints_from_features(np.asarray(f), skeleton) for f in features]
    padded, lengths = _pad_joints(joints)
    values = M.physical_metrics(padded, skeleton, lengths=lengths)
    return {"source": source, "clips": len(joints), "skeleton": skeleton.name,
            "metrics": {key: float(value) for key, value in values.items()}}


def read_real_motion_reference(path: str | Path) -> dict:
    import json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no real-motion reference (written by `adamotion train evaluator`)")
    try:
        reference = json.loads(path.read_text(encoding="utf-8"))
        missing = [key for key in M.PHYSICAL_METRICS if key not in reference["metrics"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: unreadable real-motion reference ({exc}); retrain or delete it") from exc
    if missing:
        raise ValueError(f"{path}: real-motion reference lacks {missing}; retrain the evaluator")
    return reference


def format_physical_readings(readings: dict, reference: dict | None) -> str:
    """"jitter 24.3 m/s² · real motion 4.8 | bone-length variation 2.7 % · real motion 0.0 | ..." (one line)."""
    parts = []
    real = (reference or {}).get("metrics", {})
    for key, label, scale, fmt, unit in _READING_FORMATS:
        text = f"{label} {fmt.format(float(readings[key]) * scale)}{unit}"
        if key in real:
            text += f" · real motion {fmt.format(real[key] * scale)}"
        parts.append(text)
    return " | ".join(parts)
