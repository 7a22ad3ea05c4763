"""``adamotion coverage build``: known actions and the out-of-domain threshold of a checkpoint."""
from __future__ import annotations

from pathlib import Path

DEFAULT_OUT_OF_DOMAIN = Path(__file__).resolve().parents[2] / "configs" / "coverage_out_of_domain.txt"


def register(sub) -> None:
    coverage = sub.add_parser("coverage", help="what prompts a checkpoint covers (known actions, warning threshold)")
    csub = coverage.add_subparsers(dest="coverage_command", metavar="ACTION", required=True)
    build = csub.add_parser("build", help="write <checkpoint>/coverage from the training captions, calibrated on "
                                          "the test captions against out-of-domain prompts")
    build.add_argument("--data", required=True, help="the corpus the checkpoint was trained on (HumanML3D layout)")
    build.add_argument("--checkpoint", required=True, help="checkpoint folder with adaqf/text_encoder")
    build.add_argument("--out-of-domain", default=str(DEFAULT_OUT_OF_DOMAIN),
                       help="prompts the corpus does not cover, one a line (default: %(default)s)")
    build.add_argument("--per-action", type=int, default=40, help="example captions kept per known action")
    build.add_argument("--max-false-warnings", type=float, default=0.05,
                       help="share of held-out test captions allowed below the threshold")
    build.set_defaults(func=_build)


def _build(args) -> int:
    from adamotion.text.coverage import write_coverage

    folder, record = write_coverage(args.data, args.checkpoint, args.out_of_domain, per_action=args.per_action,
                                    max_false_warnings=args.max_false_warnings)
    print(f"coverage written to {folder}")
    for key, value in record.items():
        print(f"  {key}: {value}")
    return 0
