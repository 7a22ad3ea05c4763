"""``adamotion generate``: one prompt -> joint positions (.npy), through :class:`adamotion.pipeline.MotionPipeline`."""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np

from adamotion.motion.postprocess import POSTPROCESS_OPTIONS

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT = "default"  # the AdaQF pipeline of the bundle checkpoints/default


def resolve_checkpoint(spec: str | os.PathLike) -> Path:
    """A pipeline folder (one with ``pipeline.json``), else a bundle (a name under ``checkpoints/`` or a bundle
    folder) whose AdaQF pipeline is meant; a spec that is neither comes back as a path, for the caller's error."""
    from adamotion.bundle import load
    from adamotion.pipeline import PIPELINE_FILE
    from adamotion.utils.serialization import CheckpointError

    path = Path(spec).expanduser()
    if (path / PIPELINE_FILE).is_file():
        return path
    try:
        return load(spec).path("adaqf")
    except CheckpointError:
        return path


def register(sub: argparse._SubParsersAction) -> None:
    gen = sub.add_parser("generate", help="generate a motion from a text prompt (writes joint positions as .npy)",
                         description="Generate motion from text. Writes joints (T, J, 3) in metres for one sample, "
                                     "(N, T, J, 3) for --num-samples N > 1.")
    gen.add_argument("prompt", help='what the person does, e.g. "a person jumps forward"')
    gen.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT,
                     help=f"pipeline folder, or a bundle (its AdaQF pipeline; default: {DEFAULT_CHECKPOINT!r}, built by "
                          "`make default-checkpoints`)")
    length = gen.add_mutually_exclusive_group()
    length.add_argument("--length", type=int, metavar="FRAMES", help="motion length in frames (default: predicted from the text)")
    length.add_argument("--seconds", type=float, help="motion length in seconds (converted at the skeleton's fps)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--sampler", choices=("ddpm", "ddim"), default="ddpm",
                     help="ddpm: ancestral sampling over all training steps (default); ddim: any --steps")
    gen.add_argument("--steps", type=int, default=None,
                     help="sampling steps (default: the scheduler's training steps, 50; fewer need --sampler ddim)")
    gen.add_argument("--eta", type=float, default=0.0, help="DDIM noise scale in [0, 1] (0 = deterministic)")
    gen.add_argument("--guidance", type=float, default=2.5, help="classifier-free guidance scale (1 = off)")
    gen.add_argument("--encoder", choices=["ada", "vanilla"], default="ada",
                     help="ada: the adapted text encoder; vanilla: the same encoder with its LoRA adapters disabled")
    gen.add_argument("--num-samples", type=int, default=1)
    gen.add_argument("--postprocess", choices=POSTPROCESS_OPTIONS, default="none",
                     help="optional clean-up of the raw model output: smooth (temporal filter), rigid (joints from "
                          "the rotations with fixed bone lengths), smooth+rigid; default none = the raw model")
    gen.add_argument("--device", default="cpu", help="torch device (cpu, cuda, ...)")
    gen.add_argument("--out", default="motion.npy", help="joint positions .npy (default: motion.npy)")
    gen.add_argument("--features-out", default=None, help="also write the un-normalised features (T, F) .npy here")
    gen.set_defaults(func=_generate)


def _generate(args) -> int:
    from tqdm import tqdm

    from adamotion.io.export import save_features_npy, save_joints_npy
    from adamotion.pipeline import MotionPipeline, seconds_to_frames

    pipe = MotionPipeline.from_pretrained(resolve_checkpoint(args.checkpoint), device=args.device)
    frames = args.length
    if args.seconds is not None:
        frames = seconds_to_frames(args.seconds, pipe.skeleton)
    with tqdm(total=args.steps or pipe.scheduler.num_train_timesteps, desc="denoising", unit="step", leave=False) as bar:
        def progress(step: int, total: int) -> None:
            bar.total = total
            bar.update(step - bar.n)

        output = pipe(args.prompt, lengths=frames, seed=args.seed, guidance_scale=args.guidance, steps=args.steps,
                      sampler=args.sampler, eta=args.eta, encoder=args.encoder, num_samples=args.num_samples, progress=progress,
                      postprocess=args.postprocess)
    joints = output.joints[0] if len(output) == 1 else np.stack(output.joints)
    save_joints_npy(args.out, joints, skeleton=pipe.skeleton)
    cleaned = "" if args.postprocess == "none" else f", post-processed: {args.postprocess}"
    print(f"{output.encoder}{cleaned}: {len(output)} sample(s) of {output.lengths[0]} frames "
          f"({output.lengths[0] / pipe.skeleton.fps:.1f} s, seed {output.seeds[0]}) in {output.timings['total']:.1f} s")
    print(f"wrote joints {tuple(joints.shape)} to {args.out}")
    if args.features_out:
        feats = output.features[0] if len(output) == 1 else np.stack(output.features)
        save_features_npy(args.features_out, feats, skeleton=pipe.skeleton)
        print(f"wrote features {tuple(feats.shape)} to {args.features_out}")
    return 0
