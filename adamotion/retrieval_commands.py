"""``adamotion retrieval-bench`` and ``adamotion retrieve`` (thin: open the bundle's gallery, call the library)."""
from __future__ import annotations

import logging
from pathlib import Path

from adamotion.retrieval.bench import retrieval_benchmark
from adamotion.retrieval.gallery import RetrievalGallery, write_gallery
from adamotion.utils.paths import index_cache_dir

log = logging.getLogger(__name__)


def open_gallery(checkpoint: str | Path, data: str | Path | None, cache_dir: str | Path | None = None,
                 device: str = "cpu") -> RetrievalGallery:
    """The bundle's gallery, or one written from ``data`` (its test split) into the cache folder."""
    from adamotion.bundle import load
    from adamotion.text.encoder import TextEncoder

    bundle = load(checkpoint)
    cache_dir = Path(cache_dir) if cache_dir else index_cache_dir(bundle.root)
    text_encoder = TextEncoder.from_pretrained(bundle.path("adaqf") / "text_encoder").to(device).eval()
    gallery_dir = None
    if data is not None:
        gallery_dir = cache_dir / f"gallery-{Path(data).resolve().name}"
        if not gallery_dir.exists():
            write_gallery(data, gallery_dir, splits=("test",))
    return bundle.retrieval_gallery(text_encoder=text_encoder, cache_dir=cache_dir, gallery_dir=gallery_dir)


def register(sub) -> None:
    bench = sub.add_parser("retrieval-bench", help="text<->motion retrieval: vanilla vs adapted, side by side")
    bench.add_argument("--checkpoint", default="default", help="bundle name under checkpoints/, or a bundle folder")
    bench.add_argument("--data", default=None, help="dataset root (default: the checkpoint's gallery)")
    bench.add_argument("--protocols", default="normal,threshold,guo")
    bench.add_argument("--repeats", type=int, default=20, help="random 80%% subsets the mean and 95%% CI are taken over")
    bench.add_argument("--split", default="test", help="gallery split scored (\"all\" for every motion)")
    bench.add_argument("--json", default=None, help="also write the results here")
    bench.add_argument("--markdown", default=None, help="also write the tables here")
    bench.set_defaults(func=_bench)

    ret = sub.add_parser("retrieve", help="text -> top-k motions with both encoders")
    ret.add_argument("query")
    ret.add_argument("--checkpoint", default="default", help="bundle name under checkpoints/, or a bundle folder")
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
