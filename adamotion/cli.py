"""The ``adamotion`` command: a thin dispatcher over subcommands registered by the library modules.

Each module in ``COMMAND_MODULES`` exposes ``register(subparsers)`` which adds its subcommands and
sets ``func`` (called with the parsed namespace, returns an exit code or None).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

COMMAND_MODULES = [
    "adamotion.data.commands",
    "adamotion.train.commands",
    "adamotion.generate_commands",
    "adamotion.bench",
    "adamotion.study.commands",
    "adamotion.eval.commands",
    "adamotion.retrieval_commands",
    "adamotion.gpu_recipe",
    "adamotion.text.commands",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adamotion", description="AdaMotion Studio toolkit")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError, KeyError, RuntimeError) as exc:
        # User-facing errors carry the path and the fix; no stack trace unless --verbose.
        if args.verbose:
            raise
        print(f"adamotion {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
