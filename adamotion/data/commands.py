"""``adamotion data ...`` subcommands (thin: parse, call the library, print)."""
from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="build, import and inspect motion-language datasets")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    synth = dsub.add_parser("synth", help="write the procedural motion-language corpus in the HumanML3D layout")
    synth.add_argument("--out", required=True, help="output dataset folder")
    synth.add_argument("--size", choices=["tiny", "small", "default"], default="default",
                       help="tiny: seconds, for tests; default: ~4,000 motions (+ mirrors)")
    synth.add_argument("--num-motions", type=int, default=None, help="override the number of base motions")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    synth.set_defaults(func=_synth)

    stats = dsub.add_parser("stats", help="print statistics of a dataset folder")
    stats.add_argument("root")
    stats.set_defaults(func=_stats)

    imp = dsub.add_parser("import-bvh", help="build a HumanML3D-layout dataset from BVH files")
    imp.add_argument("files", nargs="+", help="BVH files")
    imp.add_argument("--out", required=True)
    imp.add_argument("--captions", default=None, help="TSV: file stem <TAB> caption (one or more lines per file)")
    imp.add_argument("--name-map", default=None, help="JSON {bvh joint name: SMPL-22 joint name} for non-CMU rigs")
    imp.add_argument("--scale", type=float, default=None, help="units to metres (default: guessed from height)")
    imp.set_defaults(func=_import_bvh)


def _synth(args) -> int:
    from adamotion.data.synthetic import build_corpus

    report = build_corpus(args.out, size=args.size, num_motions=args.num_motions, seed=args.seed, workers=args.workers)
    print(report.format())
    return 0


def _stats(args) -> int:
    from adamotion.data.synthetic import corpus_statistics

    print(corpus_statistics(args.root).format())
    return 0


def _import_bvh(args) -> int:
    from adamotion.data.bvh_import import import_bvh_dataset

    out = import_bvh_dataset(args.files, args.out, captions_tsv=args.captions, name_map=args.name_map, scale=args.scale)
    print(f"wrote dataset to {out}")
    return 0
