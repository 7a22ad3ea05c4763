"""``adamotion retrieval-bench``: retrieval metrics of the vanilla vs the adapted encoder on a dataset split."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from adamotion.retrieval.gallery import ENCODER_KEYS, GalleryData, RetrievalGallery, write_gallery
from adamotion.utils.numeric import mean_ci95
from adamotion.retrieval.metrics import retrieval_metrics
from adamotion.utils.paths import index_cache_dir

log = logging.getLogger(__name__)


def retrieval_benchmark(gallery: RetrievalGallery, protocols=("normal", "threshold", "guo"), seed: int = 0,
                        split: str | None = "test", repeats: int = 20, subset: float = 0.8,
                        ) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    """``{protocol: {encoder label: {metric: (mean, ci95)}}}`` over ``repeats`` random subsets of the pairs.

    Pairs are (first caption, motion) of every gallery motion in ``split``. Each repeat scores a random
    ``subset`` fraction of them (different seed per repeat; both encoders see the same subsets), so the
    interval reflects which test motions happen to be in the gallery, as the 20 repeats of the generation
    protocol do.
    """
    ids = gallery.motion_ids(split=split)
    if len(ids) < 32:
        raise ValueError(f"the gallery has {len(ids)} motions in split {split!r}; retrieval metrics need at least 32")
    captions = [gallery.caption_of(i) for i in ids]
    size = max(32, int(round(subset * len(ids))))
    rng = np.random.default_rng(seed)
    subsets = [np.sort(rng.choice(len(ids), size=size, replace=False)) for _ in range(repeats)]
    # Caption-caption similarity for the "threshold" protocol comes from the *vanilla* encoder for both
    # columns, so that both are judged against the same notion of "near-identical caption".
    vanilla_text = gallery._text_embeddings(captions, "vanilla")  # (N, D)
    text_sim = (vanilla_text @ vanilla_text.T).numpy()  # (N, N)
    results: dict[str, dict[str, dict[str, tuple[float, float]]]] = {p: {} for p in protocols}
    for key in ENCODER_KEYS:
        text_emb = gallery._text_embeddings(captions, key)  # (N, D)
        motion_emb = gallery._motion_embeddings([gallery.features_of(i) for i in ids], key)  # (N, D)
        sim = (text_emb @ motion_emb.T).numpy()  # (N_text, N_motion), true pairs on the diagonal
        for protocol in protocols:
            per_repeat = []
            for r, chosen in enumerate(subsets):
                sub_text_sim = text_sim[np.ix_(chosen, chosen)] if protocol == "threshold" else None
                per_repeat.append(retrieval_metrics(sim[np.ix_(chosen, chosen)], protocol=protocol,
                                                    text_sim=sub_text_sim, rng=seed + r))
            results[protocol][gallery.label(key)] = {
                metric: mean_ci95([m[metric] for m in per_repeat]) for metric in per_repeat[0]}
    return results


def open_gallery(checkpoint: str | Path, data: str | Path | None, cache_dir: str | Path | None = None,
                 device: str = "cpu") -> RetrievalGallery:
    """The checkpoint's gallery, or one written from ``data`` (its test split) into the cache folder."""
    from adamotion.text.encoder import TextEncoder

    checkpoint = Path(checkpoint)
    cache_dir = Path(cache_dir) if cache_dir else index_cache_dir(checkpoint)
    text_encoder = TextEncoder.from_pretrained(checkpoint / "adaqf" / "text_encoder").to(device).eval()
    if data is not None:
        gallery_dir = cache_dir / f"gallery-{Path(data).resolve().name}"
        if not gallery_dir.exists():
            write_gallery(data, gallery_dir, splits=("test",))
        from adamotion.models.motion_encoder import RetrievalMotionEncoder
        from adamotion.retrieval.index import checksum_paths

        encoders = {k: RetrievalMotionEncoder.from_pretrained(checkpoint / f"retrieval_{k}").eval() for k in ENCODER_KEYS}
        sums = {k: checksum_paths([checkpoint / f"retrieval_{k}", checkpoint / "adaqf" / "text_encoder"]) for k in ENCODER_KEYS}
        return RetrievalGallery(text_encoder=text_encoder, motion_encoders=encoders, data=GalleryData(gallery_dir),
                                cache_dir=cache_dir, checkpoint_sums=sums)
    return RetrievalGallery.from_checkpoint(checkpoint, text_encoder=text_encoder, cache_dir=cache_dir)


def register(sub) -> None:
    bench = sub.add_parser("retrieval-bench", help="text<->motion retrieval: vanilla vs adapted, side by side")
    bench.add_argument("--checkpoint", default="checkpoints/default")
    bench.add_argument("--data", default=None, help="dataset root (default: the checkpoint's gallery)")
    bench.add_argument("--protocols", default="normal,threshold,guo")
    bench.add_argument("--repeats", type=int, default=20, help="random 80%% subsets the mean and 95%% CI are taken over")
    bench.add_argument("--split", default="test", help="gallery split scored (\"all\" for every motion)")
    bench.add_argument("--json", default=None, help="also write the results here")
    bench.add_argument("--markdown", default=None, help="also write the tables here")
    bench.set_defaults(func=_bench)

    ret = sub.add_parser("retrieve", help="text -> top-k motions with both encoders")
    ret.add_argument("query")
    ret.add_argument("--checkpoint", default="checkpoints/default")
    ret.add_argument("--top-k", type=int, default=5)
    ret.add_argument("--all-splits", action="store_true", help="search the whole gallery, not only the test split")
    ret.set_defaults(func=_retrieve)


def _bench(args) -> int:
    from adamotion.retrieval.report import format_retrieval_table
    from adamotion.utils.serialization import atomic_write_json, atomic_write_text

    gallery = open_gallery(args.checkpoint, args.data)
    results = retrieval_benchmark(gallery, protocols=tuple(p for p in args.protocols.split(",") if p),
                                  split=None if args.split == "all" else args.split, repeats=args.repeats)
    sections = [f"Retrieval on {len(gallery.motion_ids(None if args.split == 'all' else args.split))} gallery motions "
                f"(split {args.split}): mean ± 95% CI over {args.repeats} random 80% subsets. "
                "t2m = text → motion, m2t = motion → text; recalls in %."]
    for protocol, table in results.items():
        sections.append(f"### protocol: {protocol}\n\n{format_retrieval_table(table)}")
    text = "\n\n".join(sections)
    print(text)
    if args.json:
        atomic_write_json(args.json, results)
    if args.markdown:
        atomic_write_text(args.markdown, text + "\n")
    return 0


def _retrieve(args) -> int:
    if not args.query.strip():
        raise ValueError("the query is empty; e.g. adamotion retrieve \"a person waves with the left hand\"")
    gallery = open_gallery(args.checkpoint, None)
    both = gallery.text_to_motion(args.query, k=args.top_k, split=None if args.all_splits else "test")
    for key, hits in both.items():
        print(f"\n{gallery.label(key)}")
        for rank, hit in enumerate(hits, start=1):
            print(f"  {rank}. {hit.score:+.3f}  {hit.motion_id:<12} {hit.caption}")
    return 0
