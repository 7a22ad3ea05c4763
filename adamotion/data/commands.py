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
    imp.add_argument("--name-map", "--rig", dest="name_map", default=None,
                     help="built-in rig (cmu_cgspeed_motionbuilder, cmu_cgspeed_3dsmax, bandai-namco) or a JSON "
                          "{bvh joint name: SMPL-22 joint name}; default: detected")
    imp.add_argument("--scale", type=float, default=None, help="units to metres (default: guessed from height)")
    imp.set_defaults(func=_import_bvh)

    bn = dsub.add_parser("import-bandai-namco",
                         help="import the Bandai Namco Research Motion dataset (CC BY-NC 4.0) in the HumanML3D layout")
    bn.add_argument("src", help="the dataset's dataset/ folder (both sub-datasets) or one "
                               "Bandai-Namco-Research-Motiondataset-N/ folder")
    bn.add_argument("--out", required=True, help="output dataset folder (keep it outside any repository)")
    bn.add_argument("--seed", type=int, default=0, help="split and caption seed")
    bn.add_argument("--workers", type=int, default=2, help="processes (1 or 2)")
    bn.add_argument("--limit", type=int, default=None, help="import only the first N takes (quick checks)")
    bn.set_defaults(func=_import_bandai_namco)

    mix = dsub.add_parser("mix", help="one dataset folder mixing the procedural corpus and imported motion capture")
    mix.add_argument("--procedural", required=True, help="procedural corpus folder (adamotion data synth)")
    mix.add_argument("--mocap", required=True, help="imported motion-capture folder (e.g. import-bandai-namco)")
    mix.add_argument("--out", required=True)
    mix.add_argument("--procedural-fraction", type=float, default=1.0,
                     help="share of the procedural train/val motions kept (test is always kept whole)")
    mix.add_argument("--mocap-repeat", type=int, default=1,
                     help="times each motion-capture training clip is listed in train.txt (oversampling)")
    mix.add_argument("--seed", type=int, default=0)
    mix.set_defaults(func=_mix)


def _synth(args) -> int:
    from adamotion.data.synthetic import build_corpus

    from adamotion.motion.skeleton import HUMANML3D

    # the procedural rig is the SMPL-22 body of HumanML3D
    report = build_corpus(args.out, size=args.size, num_motions=args.num_motions, seed=args.seed, workers=args.workers,
                          skeleton=HUMANML3D)
    print(report.format())
    return 0


def _stats(args) -> int:
    from adamotion.data.synthetic import corpus_statistics

    print(corpus_statistics(args.root).format())
    return 0


def _import_bvh(args) -> int:
    from adamotion.data.bvh_import import import_bvh_dataset

    from adamotion.motion.skeleton import HUMANML3D

    # BVH rigs are mapped onto the 22 SMPL joints of HumanML3D (see adamotion.io.bvh's name maps)
    out = import_bvh_dataset(args.files, args.out, captions_tsv=args.captions, name_map=args.name_map, scale=args.scale,
                             skeleton=HUMANML3D)
    print(f"wrote dataset to {out}")
    return 0


def _import_bandai_namco(args) -> int:
    from adamotion.data.bandai_namco import import_bandai_namco
    from adamotion.data.synthetic import corpus_statistics

    out = import_bandai_namco(args.src, args.out, seed=args.seed, workers=args.workers, limit=args.limit)
    print(corpus_statistics(out).format())
    print(f"wrote dataset to {out} (CC BY-NC 4.0: never commit it; models trained on it inherit the licence)")
    return 0


def _mix(args) -> int:
    from adamotion.data.mixed import mix_datasets

    out = mix_datasets(args.procedural, args.mocap, args.out, procedural_fraction=args.procedural_fraction,
                       mocap_repeat=args.mocap_repeat, seed=args.seed)
    print(f"wrote mixed dataset to {out}")
    return 0
