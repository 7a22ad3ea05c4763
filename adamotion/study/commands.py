"""``adamotion study build|export``."""
from __future__ import annotations


def register(sub) -> None:
    study = sub.add_parser("study", help="build user studies and export their results")
    ssub = study.add_subparsers(dest="study_command", metavar="ACTION", required=True)
    build = ssub.add_parser("build", help="render prompts x methods into a study folder")
    build.add_argument("--prompts", required=True, help="text file, one prompt per line")
    build.add_argument("--methods", required=True,
                       help="comma-separated checkpoint folders, each [name=]DIR[:ada|:vanilla]")
    build.add_argument("--out", required=True)
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--seconds", type=float, default=None, help="fixed length (default: each model's estimate)")
    build.add_argument("--steps", type=int, default=50, help="sampling steps (fewer than 50 need --sampler ddim)")
    build.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddpm",
                       help="ddpm: ancestral sampling over all training steps; ddim: any --steps")
    build.add_argument("--title", default="Motion study")
    build.set_defaults(func=_build)
    export = ssub.add_parser("export", help="write responses CSV/JSON, mean ranks with 95%% CI and a plot")
    export.add_argument("study")
    export.add_argument("--out", default=None, help="default: <study>/results")
    export.set_defaults(func=_export)


def _build(args) -> int:
    from adamotion.study.build import build_study, read_prompts

    out = build_study(read_prompts(args.prompts), [m for m in args.methods.split(",") if m], args.out,
                      seed=args.seed, seconds=args.seconds, steps=args.steps, sampler=args.sampler, title=args.title)
    print(f"study written to {out}; serve it with: python -m app --study {out} --admin-token YOUR_TOKEN")
    return 0


def _export(args) -> int:
    from pathlib import Path

    from adamotion.study.export import export_results, summarize, summary_markdown
    from adamotion.study.store import StudyStore

    store = StudyStore.open(args.study)
    paths = export_results(store, args.out or Path(args.study) / "results")
    print(summary_markdown(summarize(store)))
    for kind, path in paths.items():
        print(f"{kind}: {path}")
    return 0
