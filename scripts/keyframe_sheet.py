"""Keyframe contact sheets: look at what a generator does before claiming anything about it.

Usage::

    python scripts/keyframe_sheet.py checkpoints/default --out sheets/ [--prompts FILE] [--seed 0]

For every prompt it writes one PNG: for each model (the bundle's adapted AdaQF and vanilla baseline, or the
pipelines named with ``--model NAME=DIR[:ada|:vanilla]``) a strip of evenly spaced keyframes over the whole clip
and a strip of ten *consecutive* frames from the middle (0.5 s at 20 fps), where frame-to-frame popping shows.
Raw model output unless ``--postprocess`` says otherwise; the title says which. ``--prompts`` takes one prompt per
line (``#`` lines skipped), optionally ``seconds<TAB>prompt``.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script from the project folder
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_PROMPTS = (
    (7.0, "a person sits down on a chair and then stands back up"),
    (4.0, "a person kicks with the right leg"),
    (6.0, "a person walks forward"),
    (4.0, "a person raises the left hand"),
    (4.0, "a person jumps up twice"),
    (5.0, "a person turns around to the left"),
)


def read_prompts(path: Path) -> list[tuple[float, str]]:
    prompts = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        seconds, _, text = line.partition("\t")
        if text:
            try:
                prompts.append((float(seconds), text.strip()))
            except ValueError:
                raise ValueError(f"{path}:{number}: '{seconds}' is not a number of seconds") from None
        else:
            prompts.append((5.0, line.strip()))
    if not prompts:
        raise ValueError(f"{path}: no prompts")
    return prompts


def stack_vertically(images, path: Path) -> None:
    from PIL import Image

    width = max(im.width for im in images)
    sheet = Image.new("RGB", (width, sum(im.height for im in images)), "white")
    y = 0
    for im in images:
        sheet.paste(im, (0, y))
        y += im.height
    sheet.save(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, nargs="?", default=None, help="a bundle folder (adaqf + baseline)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=DIR[:ada|:vanilla]",
                        help="a pipeline to show (repeatable); default: the bundle's adaqf (ada) and baseline (vanilla)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--prompts", type=Path, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None,
                        help="sampling steps (default: all, DDPM; fewer steps sample with DDIM, eta 0)")
    parser.add_argument("--postprocess", default="none")
    args = parser.parse_args(argv)
    try:
        prompts = read_prompts(args.prompts) if args.prompts else list(DEFAULT_PROMPTS)
        specs = list(args.model)
        if not specs:
            if args.checkpoint is None:
                raise ValueError("give a bundle folder or at least one --model NAME=DIR")
            specs = [f"AdaQF (adapted)={args.checkpoint / 'adaqf'}:ada",
                     f"baseline (vanilla)={args.checkpoint / 'baseline'}:vanilla"]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from PIL import Image

    from adamotion.eval.evaluate import parse_checkpoint_spec
    from adamotion.pipeline import MotionPipeline
    from renderers.skeleton import render_keyframe_strip

    args.out.mkdir(parents=True, exist_ok=True)
    raw = "raw model output" if args.postprocess == "none" else f"post-processed: {args.postprocess}"
    results = []
    for spec in specs:
        name, path, encoder = parse_checkpoint_spec(spec)
        pipe = MotionPipeline.from_pretrained(path)
        lengths = [min(max(int(round(s * pipe.skeleton.fps)), pipe.skeleton.min_frames), pipe.skeleton.max_frames)
                   for s, _ in prompts]
        out = pipe([p for _, p in prompts], lengths=lengths, seed=args.seed, steps=args.steps, encoder=encoder,
                   sampler="ddim" if args.steps else "ddpm", postprocess=args.postprocess)
        results.append((name, pipe.skeleton, out.joints))
    written = []
    for i, (_, prompt) in enumerate(prompts):
        stem = re.sub(r"[^a-z0-9]+", "_", prompt.lower()).strip("_")[:60]
        parts = []
        for name, skeleton, joints in results:
            clip = joints[i]
            strip = args.out / f".{stem}_strip.png"
            render_keyframe_strip(clip, strip, n=8, skeleton=skeleton, title=f"{name}: “{prompt}” ({raw}, seed "
                                                                             f"{args.seed}), whole clip")
            mid = max(0, len(clip) // 2 - 5)
            burst = args.out / f".{stem}_burst.png"
            render_keyframe_strip(clip[mid:mid + 10], burst, n=10, panel_size=(160, 240), skeleton=skeleton,
                                  title=f"{name}: ten consecutive frames from {mid / skeleton.fps:.1f} s")
            parts += [Image.open(strip).copy(), Image.open(burst).copy()]
            strip.unlink()
            burst.unlink()
        path = args.out / f"{stem}.png"
        stack_vertically(parts, path)
        written.append(path)
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
