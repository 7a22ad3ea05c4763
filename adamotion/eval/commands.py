"""``adamotion evaluate`` (generation metrics) — thin over :mod:`adamotion.eval.evaluate`."""
from __future__ import annotations

from adamotion.motion.postprocess import POSTPROCESS_OPTIONS


def register(sub) -> None:
    ev = sub.add_parser("evaluate", help="evaluate generator checkpoints (FID, R-precision, ... with 95%% CI)")
    ev.add_argument("checkpoints", nargs="+", help="pipeline folders, each [name=]DIR[:ada|:vanilla]")
    ev.add_argument("--data", required=True, nargs="+", metavar="ROOT[:SPLIT]",
                    help="dataset root(s) (HumanML3D layout), each with an optional :split; several roots/splits give "
                         "one table each, in <out>/<root name>-<split>/")
    ev.add_argument("--evaluator", default=None,
                    help="the independent evaluator folder (`adamotion train evaluator`, shipped as "
                         "checkpoints/default/evaluator); refused if a generator was trained against it")
    ev.add_argument("--t2m-evaluator", default=None,
                    help="folder of the official T2M evaluator (text_mot_match/model/finest.tar, glove/, meta/)")
    ev.add_argument("--out", required=True, help="report folder")
    ev.add_argument("--split", default="test", help="split of every --data root given without :split")
    ev.add_argument("--repeats", type=int, default=None, help="default 20 (3 with --quick)")
    ev.add_argument("--num-pairs", type=int, default=None, help="captions generated per repeat")
    ev.add_argument("--steps", type=int, default=None, help="sampling steps (default 50; 10 with --quick)")
    ev.add_argument("--sampler", choices=("ddpm", "ddim"), default=None,
                    help="ddpm (all training steps; the default) or ddim (any --steps; the --quick default)")
    ev.add_argument("--mm-captions", type=int, default=None, help="captions used for MultiModality (default 32)")
    ev.add_argument("--mm-samples", type=int, default=None, help="generations per MultiModality caption (default 10)")
    ev.add_argument("--quick", action="store_true", help="small subset: a smoke run in a minute")
    ev.add_argument("--cache", default=None, metavar="DIR",
                    help="keep the generated motions in DIR and reuse them (e.g. to re-score with another evaluator)")
    ev.add_argument("--device", default="cpu")
    ev.add_argument("--title", default="Text-to-motion evaluation")
    ev.set_defaults(func=_evaluate)

    cl = sub.add_parser("checklist", help="prompts carried out: physical readings (raised hand, kick, turn, travel, "
                                          "sit and stand, jump) on held-out phrasings, pass/fail and the pass rate")
    cl.add_argument("checkpoint", help="pipeline folder, [name=]DIR[:ada|:vanilla]")
    cl.add_argument("--seed", type=int, default=0)
    cl.add_argument("--steps", type=int, default=None, help="sampling steps (default: all, DDPM)")
    cl.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddpm", help="ddim for fewer --steps")
    cl.add_argument("--postprocess", choices=POSTPROCESS_OPTIONS, default="none",
                    help="optional clean-up; the default judges the raw model")
    cl.add_argument("--prompts", default=None, metavar="FILE",
                    help="your own prompts: JSON Lines, one {\"prompt\": ..., \"seconds\": 4, \"raised_hand\": "
                         "\"left\"} per line (checks: raised_hand, kicking_foot, turn, forward_min_m, "
                         "backward_min_m, sit_and_stand, jump); default: the 17 built-in held-out phrasings")
    cl.add_argument("--out", default=None, help="also write checklist.md and checklist.json into this folder")
    cl.set_defaults(func=_checklist)

    merge = sub.add_parser("evaluate-merge", help="one table from several `adamotion evaluate` reports of the same "
                                                  "protocol (e.g. an ablation evaluated later)")
    merge.add_argument("reports", nargs="+", help="report folders (each with report.json)")
    merge.add_argument("--out", required=True, help="folder for the merged report.json, report.md, metrics.png")
    merge.add_argument("--title", default="Text-to-motion evaluation")
    merge.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                       help="relabel a method row (OLD=>NEW when the names contain '=')")
    merge.add_argument("--drop", action="append", default=[], metavar="NAME", help="leave a method out")
    merge.set_defaults(func=_merge)


def _evaluate(args) -> int:
    from dataclasses import replace

    from adamotion.eval.evaluate import EvalConfig, run_evaluation

    config = EvalConfig.quick() if args.quick else EvalConfig()
    overrides = {"split": args.split}
    for field, value in (("repeats", args.repeats), ("num_pairs", args.num_pairs), ("steps", args.steps),
                         ("sampler", args.sampler), ("mm_captions", args.mm_captions),
                         ("mm_samples", args.mm_samples), ("cache_dir", args.cache)):
        if value is not None:
            overrides[field] = value
    config = replace(config, **overrides)
    paths = run_evaluation(args.checkpoints, list(args.data), args.out, evaluator_dir=args.evaluator,
                           t2m_dir=args.t2m_evaluator, config=config, device=args.device, title=args.title)
    print(paths["md"].read_text())
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0


def _checklist(args) -> int:
    from adamotion.eval.checklist import CHECKLIST, format_checklist, load_prompts, run_checklist, write_checklist
    from adamotion.eval.evaluate import parse_checkpoint_spec
    from adamotion.pipeline import MotionPipeline

    prompts = load_prompts(args.prompts) if args.prompts else CHECKLIST  # before loading the model: fail fast
    name, path, encoder = parse_checkpoint_spec(args.checkpoint)
    pipeline = MotionPipeline.from_pretrained(path)
    rows = run_checklist(pipeline, prompts, seed=args.seed, steps=args.steps, encoder=encoder, sampler=args.sampler,
                         postprocess=args.postprocess)
    cleaned = "raw model output" if args.postprocess == "none" else f"post-processed: {args.postprocess}"
    title = f"Prompts carried out: {name} ({pipeline.display_name(encoder)}), seed {args.seed}, {cleaned}"
    print(format_checklist(rows, title))
    if args.out:
        for kind, written in write_checklist(rows, args.out, title).items():
            print(f"{kind}: {written}")
    return 0


def _merge(args) -> int:
    from adamotion.eval.report import merge_reports

    bad = [r for r in args.rename if "=" not in r]
    if bad:
        raise ValueError(f"--rename takes OLD=NEW, got {bad}")
    rename = dict(r.split("=>", 1) if "=>" in r else r.split("=", 1) for r in args.rename)
    paths = merge_reports(args.reports, args.out, title=args.title, rename=rename, drop=args.drop)
    print(paths["md"].read_text())
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0
