"""``adamotion evaluate``: the text-to-motion protocol (Guo et al. 2022) over one or more generator checkpoints.

For each repeat (different seed), a subset of the split's (caption, motion) pairs is generated at the real
lengths; an evaluator (the project's extractors by default, or the official T2M evaluator) embeds real and
generated motions and the captions; FID, R-precision top-1/2/3, MM-Dist, Diversity, MultiModality and the
skating ratio are computed per repeat and reported as mean ± 95% CI.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
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


def _embed_texts(evaluator, captions: list[str], batch_size: int = 256) -> np.ndarray:
    with torch.inference_mode():
        return np.concatenate([evaluator.encode_text(captions[i:i + batch_size]).float().cpu().numpy()
                               for i in range(0, len(captions), batch_size)])


def _pad_joints(joints: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    t_max = max(j.shape[0] for j in joints)
    out = np.zeros((len(joints), t_max, *joints[0].shape[1:]), np.float32)  # (B, T, J, 3)
    for i, j in enumerate(joints):
        out[i, : j.shape[0]] = j
        out[i, j.shape[0]:] = j[-1]  # hold the last pose; masked out by lengths anyway
    return out, np.array([j.shape[0] for j in joints])


def load_eval_pairs(data_root: str | Path, split: str, meta) -> list[dict]:
    """(caption, un-normalised features, length) for every caption of ``split`` of a dataset with ``meta``."""
    from adamotion.data.humanml3d import MotionTextDataset

    dataset = MotionTextDataset(data_root, split, skeleton=meta.skeleton, meta=meta, normalize=False, random_crop=False)
    pairs = []
    for i in range(len(dataset)):
        item = dataset[i]
        features = item["features"]
        features = features.numpy() if hasattr(features, "numpy") else np.asarray(features)
        pairs.append({"caption": item["caption"], "features": features[: item["length"]], "length": int(item["length"]),
                      "motion_id": item["motion_id"]})
    if len(pairs) < M.R_PRECISION_POOL:
        raise ValueError(f"{data_root}: split {split!r} has {len(pairs)} captions; R-precision needs at least 32")
    return pairs


def _generate(target: EvalTarget, captions: list[str], lengths: list[int], seed: int, config: EvalConfig) -> tuple[list, list]:
    """Generate every caption at its length; returns (features, joints) in the order of ``captions``.

    Batches are formed from length-sorted captions: a batch is padded to its longest motion, so mixing a
    40-frame and a 196-frame caption would pay for 196 frames twice.
    """
    order = sorted(range(len(captions)), key=lambda i: lengths[i])
    features, joints = [None] * len(captions), [None] * len(captions)
    for start in range(0, len(order), config.batch_size):
        chunk = order[start:start + config.batch_size]
        output = target.pipeline([captions[i] for i in chunk], lengths=[lengths[i] for i in chunk],
                                 seed=seed + start, guidance_scale=config.guidance_scale, steps=config.steps,
                                 sampler=config.sampler, encoder=target.encoder)
        for i, feats, joint in zip(chunk, output.features, output.joints):
            features[i], joints[i] = feats, joint
    return features, joints


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
    real_features = [p["features"] for p in pairs]
    log.info("embedding %d real motions with the evaluator", len(real_features))
    real_emb = _embed_motions(evaluator, real_features)  # (N, D)
    results: dict[str, dict[str, list]] = {}
    rows = (["ground truth"] if include_ground_truth else []) + [t.name for t in targets]
    for row in rows:
        results[row] = {k: [] for k in ("fid", "r_precision", "mm_dist", "diversity", "multimodality", "skating_ratio")}

    total = config.repeats * len(targets)
    started = time.time()
    with tqdm(total=total, desc="evaluating", unit="run") as bar:
        for repeat in range(config.repeats):
            rng = np.random.default_rng(config.seed + repeat)
            chosen = rng.choice(len(pairs), size=num_pairs, replace=False)
            captions = [pairs[i]["caption"] for i in chosen]
            lengths = [pairs[i]["length"] for i in chosen]
            text_emb = _embed_texts(evaluator, captions)  # (n, D)

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
    row["skating_ratio"].append(float(M.skating_ratio(padded, skeleton, lengths=lengths)))


def run_evaluation(checkpoints: list[str], data_root: str | Path, out_dir: str | Path, *, evaluator_dir: str | None = None,
                   t2m_dir: str | None = None, config: EvalConfig = EvalConfig(), device: str = "cpu",
                   title: str = "Text-to-motion evaluation") -> dict[str, Path]:
    """Load checkpoints and the evaluator, evaluate, write report.json/report.md/metrics.png (+ curves)."""
    from adamotion.eval.report import plot_training_curves, write_report
    from adamotion.pipeline import MotionPipeline

    targets = []
    for spec in checkpoints:
        name, _, path = spec.rpartition("=") if "=" in spec else ("", "", spec)
        encoder = "ada"
        if path.endswith((":ada", ":vanilla")):
            path, _, encoder = path.rpartition(":")
        pipe = MotionPipeline.from_pretrained(path, device=device)
        targets.append(EvalTarget(name=name or Path(path).name, pipeline=pipe, encoder=encoder))
    from adamotion.data.meta import DatasetMeta

    skeleton = DatasetMeta.from_dataset_root(data_root).skeleton
    evaluator = load_evaluator(evaluator_dir=evaluator_dir, t2m_dir=t2m_dir, skeleton=skeleton, device=device)
    results = evaluate(targets, data_root, evaluator, config)
    out_dir = Path(out_dir)
    paths = write_report(results, out_dir, title=title, reference="ground truth")
    from adamotion.utils.serialization import atomic_write_json

    atomic_write_json(out_dir / "eval_config.json", {**asdict(config), "checkpoints": checkpoints,
                                                     "data": str(data_root), "evaluator": evaluator_dir or t2m_dir})
    logs = {t.name: Path(spec.split("=")[-1].rsplit(":", 1)[0]) / "log.csv" for t, spec in zip(targets, checkpoints)}
    logs = {k: v for k, v in logs.items() if v.is_file()}
    if logs:
        paths["curves"] = plot_training_curves(logs, out_dir / "training_curves.png")
    return paths


def load_evaluator(*, evaluator_dir: str | None = None, t2m_dir: str | None = None, skeleton=None,
                   device: str = "cpu"):
    """The project's extractors (default) or the official T2M evaluator when its folder is given (then
    ``skeleton``, the evaluated dataset's format, is required)."""
    if t2m_dir:
        from adamotion.eval.t2m_evaluator import T2MEvaluator

        if skeleton is None:
            raise ValueError("the T2M evaluator needs the dataset's skeleton (load_evaluator(..., skeleton=meta.skeleton))")
        return T2MEvaluator.from_folder(t2m_dir, skeleton, device=device)
    if not evaluator_dir:
        raise ValueError("pass --evaluator DIR (the project's extractors) or --t2m-evaluator DIR (official)")
    from adamotion.models.extractors import ExtractorPair

    return ExtractorPair.from_pretrained(evaluator_dir).to(device).eval()
