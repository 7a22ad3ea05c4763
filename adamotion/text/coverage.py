"""Coverage: how close a prompt is to what the generator was trained on, and whether it is English.

The generator only knows the actions of its training corpus. A *coverage* folder, written next to the
checkpoint's components, holds example training captions per known action and their embeddings in the
pretrained text backbone's sentence space (adapters off: the general-purpose semantic space, not the
motion-tuned one)::

    coverage/config.json             dataset, backbone, known actions, threshold and its calibration
    coverage/embeddings.safetensors  "embeddings" (N, D) float16 unit vectors, "action" (N,) int64

The known actions come from the corpus itself: per-motion action labels in ``corpus.json`` when the corpus
has them (the procedural corpus), otherwise every training caption is its own entry (HumanML3D layout).
A prompt's *coverage* is its best cosine to any stored caption; below the calibrated threshold the app warns
that the prompt is outside what the model was trained on. :func:`calibrate_threshold` sets the threshold from
held-out test captions (should pass) against clearly out-of-domain prompts (should be flagged).
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from adamotion.utils.files import atomic_folder, read_json
from adamotion.utils.serialization import CheckpointError, read_numpy_tensors

COVERAGE_FOLDER = "coverage"
FORMAT_VERSION = 1
# English function words: a prompt of three or more Latin-script words with none of these is probably not English.
_ENGLISH_FUNCTION_WORDS = frozenset(
    "a an the and or then while after before with without to of in on at by from for up down into onto over under "
    "his her their its he she they it is are was be been as one two three times once twice back forward left right "
    "someone somebody person man woman people does do".split())
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
# Subjects, articles and framing ("in this clip a figure ...") say nothing about the action; removed before
# embedding so that the similarity is about what is done (measured: +33 points of out-of-domain prompts
# flagged at the same 5% false-warning rate, README "Coverage").
_FILLER = re.compile(r"\b(?:here|in this clip|the|a|an|person|someone|somebody|man|woman|figure|subject|individual|"
                     r"human|people|they|he|she|their|his|her)\b", re.IGNORECASE)
_SUFFIX = re.compile(r"(?:ing|es|ed|s)$")


def action_text(text: str) -> str:
    """``text`` without subject and framing words: what is compared (both prompts and training captions)."""
    return " ".join(_FILLER.sub(" ", text).split()) or text.strip()


def _stem(word: str) -> str:
    word = word.lower()
    return _SUFFIX.sub("", word) if len(word) > 4 else word


@dataclass(frozen=True)
class CoverageReport:
    prompt: str
    nearest: list[tuple[str, float]]  # (known action, cosine) best first
    best: float  # best cosine to any stored training caption
    threshold: float
    language_warning: str | None
    unseen_words: list[str]  # content words of the prompt that no training caption uses

    @property
    def in_domain(self) -> bool:
        return self.best >= self.threshold


def language_warning(prompt: str) -> str | None:
    """A one-line warning when ``prompt`` is not English (non-Latin script, or Latin without English words)."""
    letters = [ch for ch in prompt if ch.isalpha()]
    if not letters:
        return None
    non_latin = [ch for ch in letters if not unicodedata.name(ch, "").startswith("LATIN")]
    if len(non_latin) > 0.3 * len(letters):
        scripts = sorted({unicodedata.name(ch, "?").split()[0].title() for ch in non_latin})
        return (f"Prompts should be in English: this one is written in {', '.join(scripts[:3])} script. The text "
                "encoder and every training caption are English, so the motion is unlikely to match.")
    words = [w.lower() for w in _WORD.findall(prompt)]
    if len(words) >= 3 and not any(w in _ENGLISH_FUNCTION_WORDS for w in words):
        return ("Prompts should be in English: this one does not look like English. The training captions are "
                "English, so the motion is unlikely to match.")
    return None


# ----------------------------------------------------------------------------- building
def action_name(family: str) -> str:
    return family.replace("_", " ")


def known_action_captions(dataset_root: str | Path, split: str = "train", per_action: int = 40,
                          seed: int = 0) -> dict[str, list[str]]:
    """Known action → example captions of ``split``, read from the corpus (no hard-coded action list).

    With per-motion action labels (``corpus.json``), each action gets captions of motions made of that
    action alone. Without them, each sampled caption is its own entry.
    """
    from adamotion.data.humanml3d import load_split_ids, read_captions

    root = Path(dataset_root)
    ids = [i for i in load_split_ids(root, split) if not i.startswith("M")]  # mirrored copies add no words
    rng = np.random.default_rng(seed)
    corpus_path = root / "corpus.json"
    groups: dict[str, list[str]] = {}
    if corpus_path.is_file():
        motions = json.loads(corpus_path.read_text(encoding="utf-8")).get("motions", {})
        for motion_id in ids:
            families = {a["family"] for a in motions.get(motion_id, {}).get("actions", [])}
            if len(families) == 1:
                captions = [c["caption"] for c in read_captions(root / "texts" / f"{motion_id}.txt")]
                groups.setdefault(action_name(families.pop()), []).extend(captions)
        for name, captions in groups.items():
            unique = sorted(set(captions))
            keep = rng.choice(len(unique), size=min(per_action, len(unique)), replace=False)
            groups[name] = [unique[i] for i in sorted(keep)]
    if not groups:  # no action labels: sampled captions stand for themselves
        chosen = rng.choice(len(ids), size=min(len(ids), 50 * per_action), replace=False)
        for i in sorted(chosen):
            caption = read_captions(root / "texts" / f"{ids[i]}.txt")[0]["caption"]
            groups.setdefault(caption, [caption])
    return dict(sorted(groups.items()))


def training_captions(dataset_root: str | Path, split: str = "train") -> list[str]:
    from adamotion.data.humanml3d import load_split_ids, read_captions

    root = Path(dataset_root)
    return [c["caption"] for i in load_split_ids(root, split) if not i.startswith("M")
            for c in read_captions(root / "texts" / f"{i}.txt")]


def embed(text_encoder, texts: list[str]) -> torch.Tensor:
    """Unit sentence vectors of the pretrained backbone (adapters off): (N, D) float32."""
    out = []
    for start in range(0, len(texts), 256):
        pooled = text_encoder.encode_cached(texts[start:start + 256], adapters=False).pooled  # (B, D)
        out.append(F.normalize(pooled.float(), dim=-1))
    return torch.cat(out) if out else torch.zeros(0, text_encoder.hidden_size)


class Coverage:
    """Known actions and their caption embeddings; :meth:`check` scores a prompt against them."""

    def __init__(self, config: dict, embeddings: np.ndarray, action_of_row: np.ndarray):
        self.config = config
        self.actions: list[str] = [a["name"] for a in config["actions"]]
        self.threshold: float = float(config["threshold"])
        self.embeddings = torch.from_numpy(embeddings.astype(np.float32))  # (N, D)
        self.action_of_row = torch.from_numpy(action_of_row.astype(np.int64))  # (N,)
        self.vocabulary = frozenset(config.get("vocabulary", ()))

    @classmethod
    def build(cls, dataset_root: str | Path, text_encoder, *, split: str = "train", per_action: int = 40,
              seed: int = 0, threshold: float = 0.5) -> "Coverage":
        groups = known_action_captions(dataset_root, split=split, per_action=per_action, seed=seed)
        captions = [c for examples in groups.values() for c in examples]
        action_of_row = np.asarray([i for i, examples in enumerate(groups.values()) for _ in examples], np.int64)
        embeddings = embed(text_encoder, [action_text(c) for c in captions]).numpy()
        vocabulary = sorted({_stem(w) for c in training_captions(dataset_root, split) for w in _WORD.findall(c)})
        config = {"component": "coverage", "format_version": FORMAT_VERSION, "dataset": Path(dataset_root).name,
                  "split": split, "backbone": text_encoder.backbone_name, "threshold": float(threshold),
                  "actions": [{"name": name, "examples": len(ex)} for name, ex in groups.items()],
                  "captions": captions, "vocabulary": vocabulary, "calibration": None}
        return cls(config, embeddings, action_of_row)

    def save(self, out_dir: str | Path) -> Path:
        from safetensors.numpy import save_file

        out_dir = Path(out_dir)
        with atomic_folder(out_dir) as tmp:
            save_file({"embeddings": self.embeddings.numpy().astype(np.float16),
                       "action": self.action_of_row.numpy()}, str(tmp / "embeddings.safetensors"))
            (tmp / "config.json").write_text(json.dumps(self.config, indent=1) + "\n", encoding="utf-8")
        return out_dir

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "Coverage":
        folder = Path(folder)
        config_path = folder / "config.json"
        rebuild = "rebuild it with `adamotion coverage build`"
        config = read_json(config_path, what="coverage description", error=CheckpointError, fix=rebuild)
        if not isinstance(config, dict) or config.get("component") != "coverage":
            raise CheckpointError(f"{config_path}: not a coverage description; {rebuild}")
        tensors = read_numpy_tensors(folder / "embeddings.safetensors", fix=rebuild, required=("embeddings", "action"))
        return cls(config, tensors["embeddings"], tensors["action"])

    def scores(self, text_encoder, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(P,) best cosine to any caption and (P, A) best cosine per known action."""
        with torch.inference_mode():
            sims = embed(text_encoder, [action_text(p) for p in prompts]) @ self.embeddings.T  # (P, N)
            per_action = torch.full((len(prompts), len(self.actions)), -1.0)
            per_action.scatter_reduce_(1, self.action_of_row.expand(len(prompts), -1), sims, reduce="amax")
        return sims.max(dim=1).values, per_action

    def check(self, text_encoder, prompt: str, k: int = 3) -> CoverageReport:
        best, per_action = self.scores(text_encoder, [prompt])
        values, order = per_action[0].topk(min(k, len(self.actions)))
        nearest = [(self.actions[int(i)], round(float(v), 3)) for v, i in zip(values, order)]
        unseen = []
        if self.vocabulary:
            for word in _WORD.findall(prompt):
                if (len(word) > 2 and word.lower() not in _ENGLISH_FUNCTION_WORDS and _stem(word) not in self.vocabulary
                        and word.lower() not in unseen and unicodedata.name(word[0], "").startswith("LATIN")):
                    unseen.append(word.lower())
        return CoverageReport(prompt=prompt, nearest=nearest, best=round(float(best[0]), 3),
                              threshold=self.threshold, language_warning=language_warning(prompt),
                              unseen_words=unseen)


# ----------------------------------------------------------------------------- calibration
def calibrate_threshold(coverage: Coverage, text_encoder, in_domain: list[str], out_of_domain: list[str],
                        max_false_warnings: float = 0.05) -> dict:
    """Set ``coverage.threshold`` from held-out in-domain captions and out-of-domain prompts.

    The threshold is the highest value that still lets at least ``1 - max_false_warnings`` of the held-out
    in-domain captions pass (so a real prompt is rarely warned about); the returned record says how many
    out-of-domain prompts it flags.
    """
    inside = coverage.scores(text_encoder, in_domain)[0].numpy()
    outside = coverage.scores(text_encoder, out_of_domain)[0].numpy()
    threshold = round(float(np.quantile(inside, max_false_warnings)), 4)
    record = {
        "rule": f"{max_false_warnings:.0%} quantile of held-out in-domain caption scores",
        "threshold": threshold,
        "in_domain_n": len(inside), "out_of_domain_n": len(outside),
        "in_domain_passed": round(float((inside >= threshold).mean()), 4),
        "out_of_domain_flagged": round(float((outside < threshold).mean()), 4),
        "in_domain_median": round(float(np.median(inside)), 4),
        "out_of_domain_median": round(float(np.median(outside)), 4),
        "out_of_domain_max": round(float(outside.max()), 4) if len(outside) else None,
    }
    coverage.threshold = threshold
    coverage.config["threshold"] = threshold
    coverage.config["calibration"] = record
    return record


def read_prompt_lines(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: prompts file not found (one prompt per line, # comments)")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def held_out_captions(dataset_root: str | Path, split: str = "test", limit: int = 600, seed: int = 0) -> list[str]:
    """Up to ``limit`` captions of ``split`` (held out from training), one random caption per motion."""
    from adamotion.data.humanml3d import load_split_ids, read_captions

    root = Path(dataset_root)
    ids = [i for i in load_split_ids(root, split) if not i.startswith("M")]
    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(ids), size=min(limit, len(ids)), replace=False))
    out = []
    for i in chosen:
        captions = read_captions(root / "texts" / f"{ids[i]}.txt")
        out.append(captions[int(rng.integers(len(captions)))]["caption"])
    return out


def write_coverage(dataset_root: str | Path, checkpoint: str | Path, out_of_domain_file: str | Path, *,
                   out_dir: str | Path | None = None, per_action: int = 40, seed: int = 0,
                   max_false_warnings: float = 0.05) -> tuple[Path, dict]:
    """Build ``<checkpoint>/coverage`` from the training split, calibrated on the test split; (folder, record)."""
    from adamotion.text.encoder import TextEncoder

    checkpoint = Path(checkpoint)
    encoder_dir = checkpoint / "adaqf" / "text_encoder"
    if not encoder_dir.is_dir():
        raise FileNotFoundError(f"{encoder_dir}: no text encoder; pass a checkpoint folder made by `adamotion train all`")
    text_encoder = TextEncoder.from_pretrained(encoder_dir).eval()
    coverage = Coverage.build(dataset_root, text_encoder, per_action=per_action, seed=seed)
    record = calibrate_threshold(coverage, text_encoder, held_out_captions(dataset_root, seed=seed),
                                 read_prompt_lines(out_of_domain_file), max_false_warnings=max_false_warnings)
    record["out_of_domain_file"] = Path(out_of_domain_file).name
    folder = coverage.save(Path(out_dir) if out_dir else checkpoint / COVERAGE_FOLDER)
    return folder, record
