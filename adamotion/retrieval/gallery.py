"""Text ↔ motion retrieval with the vanilla and the adapted text encoder, side by side.

A *gallery* folder holds the motions to search (un-normalised features, ids, splits, captions)::

    gallery/gallery.json            ids, split per id, captions per id, dataset name
    gallery/features.safetensors    "features" (sum T_i, F) float16, "offsets" (N + 1,) int64

Each text encoder setting (``vanilla``: adapters off, ``ada``: adapters on) has its own retrieval motion
encoder trained into that encoder's pooled space (the bundle's ``retrieval_vanilla`` and ``retrieval_ada``).
Gallery embeddings are cached on disk keyed by checksums of the motion encoder, the text adapters and the
gallery, and rebuilt only when one of them changes.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from adamotion.motion.skeleton import Skeleton
from adamotion.retrieval.index import EmbeddingIndex, build_or_load_index, checksum_paths
from adamotion.utils.files import atomic_folder, read_json
from adamotion.utils.serialization import CheckpointError, read_numpy_tensors

log = logging.getLogger(__name__)

ENCODER_KEYS = ("vanilla", "ada")


@dataclass(frozen=True)
class RetrievalHit:
    motion_id: str
    score: float  # cosine similarity in the encoder's space
    caption: str  # the motion's first caption (text → motion) or the retrieved caption (motion → text)
    split: str
    source: str = "procedural"  # "motion capture" for real takes (e.g. Bandai Namco), shown next to the caption


# ----------------------------------------------------------------------------- gallery data
def write_gallery(dataset_root: str | Path, out_dir: str | Path, splits=("train", "test"), max_per_split: int | None = None,
                  seed: int = 0, include_mirrored: bool = False) -> Path:
    """Copy motions of ``splits`` of a HumanML3D-layout dataset into a compact gallery folder (atomic).

    Each motion is labelled with its source (``"procedural"`` or, from the dataset's ``corpus.json``, e.g.
    ``"motion capture"``). When a split mixes sources and is capped by ``max_per_split``, every source gets an
    equal share of the cap (as far as it has motions), so real takes are not drowned by procedural ones.
    """
    from safetensors.numpy import save_file

    from adamotion.data.humanml3d import load_split_ids, read_captions
    from adamotion.data.meta import DatasetMeta
    from adamotion.data.mixed import PROCEDURAL_KIND, motion_source_kinds

    root = Path(dataset_root)
    skeleton = DatasetMeta.from_dataset_root(root).skeleton
    rng = np.random.default_rng(seed)
    kinds = motion_source_kinds(root)
    ids, split_of, captions, clips, sources = [], {}, {}, [], {}
    for split in splits:
        split_ids = list(dict.fromkeys(i for i in load_split_ids(root, split) if include_mirrored or not i.startswith("M")))
        if max_per_split is not None and len(split_ids) > max_per_split:
            by_kind: dict[str, list[str]] = {}
            for motion_id in split_ids:
                by_kind.setdefault(kinds.get(motion_id, PROCEDURAL_KIND), []).append(motion_id)
            chosen, budget = [], max_per_split
            for position, (kind, members) in enumerate(sorted(by_kind.items(), key=lambda kv: len(kv[1]))):
                share = min(len(members), budget // (len(by_kind) - position))
                chosen += rng.choice(members, size=share, replace=False).tolist()
                budget -= share
            split_ids = sorted(chosen)
        for motion_id in split_ids:
            sources[motion_id] = kinds.get(motion_id, PROCEDURAL_KIND)
            feats = np.load(root / "new_joint_vecs" / f"{motion_id}.npy").astype(np.float32)
            texts = [c["caption"] if isinstance(c, dict) else c for c in read_captions(root / "texts" / f"{motion_id}.txt")]
            ids.append(motion_id)
            split_of[motion_id] = split
            captions[motion_id] = texts
            clips.append(feats)
    if not ids:
        raise ValueError(f"{root}: no motions in splits {splits}")
    offsets = np.concatenate([[0], np.cumsum([c.shape[0] for c in clips])]).astype(np.int64)
    out_dir = Path(out_dir)
    with atomic_folder(out_dir) as tmp:
        save_file({"features": np.concatenate(clips).astype(np.float16), "offsets": offsets}, str(tmp / "features.safetensors"))
        meta = {"component": "retrieval_gallery", "dataset": root.name, "skeleton": skeleton.name, "ids": ids,
                "splits": split_of, "captions": captions, "sources": sources}
        (tmp / "gallery.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return out_dir


LEGACY_GALLERY_SKELETON = "humanml3d"


class GalleryData:
    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        meta_path, tensor_path = self.folder / "gallery.json", self.folder / "features.safetensors"
        rebuild = "rebuild the gallery with `adamotion train all` or write_gallery()"
        meta = read_json(meta_path, what="gallery description", error=CheckpointError, fix=rebuild)
        if not isinstance(meta, dict) or meta.get("component") != "retrieval_gallery":
            raise CheckpointError(f"{meta_path}: not a retrieval gallery; {rebuild}")
        tensors = read_numpy_tensors(tensor_path, fix=rebuild, required=("features", "offsets"))
        self.ids: list[str] = meta["ids"]
        self.splits: dict[str, str] = meta["splits"]
        self.captions: dict[str, list[str]] = meta["captions"]
        self.sources: dict[str, str] = meta.get("sources", {})  # galleries written before sources: all procedural
        # the feature format of the clips; galleries written before the field existed hold HumanML3D clips
        self.skeleton = Skeleton.from_name(meta.get("skeleton", LEGACY_GALLERY_SKELETON))
        self._features = tensors["features"]  # (sum T, F) float16
        self._offsets = tensors["offsets"]  # (N + 1,)
        self._row = {motion_id: i for i, motion_id in enumerate(self.ids)}

    def features(self, motion_id: str) -> np.ndarray:
        if motion_id not in self._row:
            raise KeyError(f"unknown gallery motion {motion_id!r}")
        i = self._row[motion_id]
        return self._features[self._offsets[i]:self._offsets[i + 1]].astype(np.float32)  # (T, F)

    def source(self, motion_id: str) -> str:
        """Where a gallery motion comes from: ``"procedural"`` or e.g. ``"motion capture"``."""
        return self.sources.get(motion_id, "procedural")

    def checksum(self) -> str:
        return checksum_paths([self.folder / "gallery.json", self.folder / "features.safetensors"])


# ----------------------------------------------------------------------------- the two-encoder gallery
class RetrievalGallery:
    def __init__(self, *, text_encoder, motion_encoders: dict, data: GalleryData, cache_dir: str | Path,
                 checkpoint_sums: dict[str, str], batch_size: int = 64):
        self.text_encoder = text_encoder
        self.motion_encoders = motion_encoders  # "vanilla"/"ada" -> RetrievalMotionEncoder
        self.data = data
        self.batch_size = batch_size
        self.indexes: dict[str, EmbeddingIndex] = {}
        data_sum = data.checksum()
        for key, encoder in motion_encoders.items():
            parts = {"motion_encoder": checkpoint_sums[key], "data": data_sum, "encoder": key}
            self.indexes[key] = build_or_load_index(cache_dir, parts, lambda key=key: self._build_index(key))

    @classmethod
    def from_folders(cls, motion_encoder_dirs: dict[str, Path], gallery_dir: str | Path, *, text_encoder,
                     cache_dir: str | Path, adapter_dir: str | Path | None = None) -> "RetrievalGallery":
        """Load the retrieval motion encoders (one folder per key of :data:`ENCODER_KEYS`) and the gallery.

        ``adapter_dir`` (the adapted text encoder's folder) joins the "ada" index key: the adapted text side
        changes when the adapters change. The bundle (:mod:`adamotion.bundle`) knows where these folders are.
        """
        from adamotion.models.motion_encoder import RetrievalMotionEncoder

        encoders, sums = {}, {}
        for key in ENCODER_KEYS:
            folder = Path(motion_encoder_dirs[key])
            encoders[key] = RetrievalMotionEncoder.from_pretrained(folder).eval()
            paths = [folder] + ([Path(adapter_dir)] if key == "ada" and adapter_dir is not None else [])
            sums[key] = checksum_paths(paths)
        return cls(text_encoder=text_encoder, motion_encoders=encoders, data=GalleryData(gallery_dir),
                   cache_dir=cache_dir, checkpoint_sums=sums)

    # -- embedding
    def _text_embeddings(self, texts: list[str], key: str) -> torch.Tensor:
        out = []
        for start in range(0, len(texts), 256):
            pooled = self.text_encoder.encode_cached(texts[start:start + 256], adapters=(key == "ada")).pooled
            out.append(F.normalize(pooled.float(), dim=-1))
        return torch.cat(out)  # (N, D)

    @torch.inference_mode()
    def _motion_embeddings(self, clips: list[np.ndarray], key: str) -> torch.Tensor:
        encoder = self.motion_encoders[key]
        max_frames = encoder.config.max_frames
        out = []
        for start in range(0, len(clips), self.batch_size):
            chunk = [c[:max_frames] for c in clips[start:start + self.batch_size]]
            t_max = max(c.shape[0] for c in chunk)
            feats = torch.zeros(len(chunk), t_max, chunk[0].shape[1])  # (B, T, F)
            mask = torch.zeros(len(chunk), t_max, dtype=torch.bool)  # (B, T)
            for i, c in enumerate(chunk):
                feats[i, : c.shape[0]] = torch.from_numpy(c)
                mask[i, : c.shape[0]] = True
            out.append(encoder.encode_raw(feats, mask).float())
        return torch.cat(out)

    def _build_index(self, key: str) -> EmbeddingIndex:
        log.info("embedding %d gallery motions for the %s encoder", len(self.data.ids), key)
        motion_emb = self._motion_embeddings([self.data.features(i) for i in self.data.ids], key)
        caption_texts, caption_ids = [], []
        for motion_id in self.data.ids:
            for caption in self.data.captions[motion_id]:
                caption_texts.append(caption)
                caption_ids.append(motion_id)
        caption_emb = self._text_embeddings(caption_texts, key)
        return EmbeddingIndex(embeddings=motion_emb.numpy(), ids=self.data.ids,
                              captions=[self.data.captions[i][0] if self.data.captions[i] else "" for i in self.data.ids],
                              metadata={"encoder": key}, caption_embeddings=caption_emb.numpy(),
                              caption_texts=caption_texts, caption_ids=caption_ids)

    # -- queries
    def text_to_motion(self, query: str, k: int = 5, split: str | None = None) -> dict[str, list[RetrievalHit]]:
        """Top-k gallery motions for a text query, with each encoder; ``split`` restricts the gallery."""
        results = {}
        for key in ENCODER_KEYS:
            query_emb = self._text_embeddings([query], key)[0].numpy()
            hits = self.indexes[key].search_text(query_emb, k=len(self.data.ids))
            chosen = [h for h in hits if split is None or self.data.splits[h[0]] == split][:k]
            results[key] = [RetrievalHit(motion_id=i, score=float(s), caption=c, split=self.data.splits[i],
                                         source=self.data.source(i)) for i, s, c in chosen]
        return results

    def motion_to_text(self, features: np.ndarray, k: int = 5) -> dict[str, list[RetrievalHit]]:
        """Top-k gallery captions for a motion (un-normalised features (T, F)), with each encoder."""
        results = {}
        for key in ENCODER_KEYS:
            motion_emb = self._motion_embeddings([np.asarray(features, np.float32)], key)[0].numpy()
            hits = self.indexes[key].search_motion(motion_emb, k=k)
            results[key] = [RetrievalHit(motion_id=i, score=float(s), caption=c, split=self.data.splits[i],
                                         source=self.data.source(i)) for i, s, c in hits]
        return results

    # -- gallery access for the UI
    def motion_ids(self, split: str | None = None) -> list[str]:
        return [i for i in self.data.ids if split is None or self.data.splits[i] == split]

    def features_of(self, motion_id: str) -> np.ndarray:
        return self.data.features(motion_id)

    def joints_of(self, motion_id: str) -> np.ndarray:
        from adamotion.motion.features import joints_from_features

        return joints_from_features(self.data.features(motion_id), self.data.skeleton)

    def caption_of(self, motion_id: str) -> str:
        captions = self.data.captions.get(motion_id) or [""]
        return captions[0]

    def distractor_captions(self, n: int, exclude: str = "", seed: int = 0) -> list[str]:
        """``n`` gallery captions (one per motion, deterministic) for R-precision pools."""
        rng = np.random.default_rng(seed)
        pool = [c for i in self.data.ids for c in self.data.captions[i][:1] if c != exclude]
        return [pool[j] for j in rng.choice(len(pool), size=min(n, len(pool)), replace=False)]

    def label(self, key: str) -> str:
        base = self.text_encoder.backbone_name  # fixed per encoder: safe while another thread toggles adapters
        return f"{base} + LoRA (AdaQF)" if key == "ada" else f"{base} (vanilla)"
