"""``adamotion train ...`` subcommands (thin: parse, build the config, call the library).

Every job reads its hyper-parameters from ``--config JSON`` (a file holding the job's section, or the whole
``train all`` config such as ``configs/default.json``, whose matching section is used), then applies the
command-line overrides; the resolved config is written into the run folder. Running a command again on
the same ``--out`` resumes from ``<out>/checkpoint`` (``--resume`` makes that a requirement).

Several GPUs: ``torchrun --nproc_per_node N -m adamotion train generator ...`` (or ``accelerate launch
--multi_gpu --num_processes N -m adamotion train ...``); see ``adamotion/train/loop.py``.
"""
from __future__ import annotations

import argparse

from adamotion.train import METHODS


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train extractors, generators, retrieval encoders and the evaluator")
    tsub = train.add_subparsers(dest="train_command", metavar="JOB", required=True)

    ext = tsub.add_parser("extractors", help="train the quality-feedback extractors E_T / E_M")
    ext.add_argument("--data", required=True, help="dataset folder (HumanML3D layout)")
    ext.add_argument("--out", required=True, help="run folder (the ExtractorPair is saved here)")
    _common(ext)
    ext.set_defaults(func=_extractors)

    ev = tsub.add_parser("evaluator", help="train the independent text-motion evaluator (T2M architecture) that "
                                           "judges every published number; no training job loads it")
    ev.add_argument("--data", required=True, help="dataset folder (HumanML3D layout)")
    ev.add_argument("--out", required=True, help="run folder (the evaluator is saved here)")
    _common(ev)
    ev.set_defaults(func=_evaluator)

    gen = tsub.add_parser("generator", help="train a text-to-motion generator (AdaQF or an ablation)")
    gen.add_argument("--data", required=True, help="dataset folder (HumanML3D layout)")
    gen.add_argument("--extractors", required=True, help="trained extractors folder (`adamotion train extractors`)")
    gen.add_argument("--method", required=True, choices=list(METHODS),
                     help="baseline ①, constraints ②, lora ③, adaqf ④ (AdaQF), full ⑤ (paper ablations)")
    gen.add_argument("--out", required=True, help="run folder (a complete MotionPipeline is saved here)")
    _common(gen)
    gen.add_argument("--lambda-m", type=float, default=None, help="weight of the motion consistency term (default 10)")
    gen.add_argument("--lambda-t", type=float, default=None, help="weight of the text consistency term (default 2)")
    gen.add_argument("--lora-rank", type=int, default=None, help="LoRA rank (default 16)")
    gen.add_argument("--lora-lr", type=float, default=None, help="peak lr of the LoRA weights (default: --lr)")
    gen.add_argument("--backbone", default=None, help="text backbone spec: minilm | clip:FOLDER | hf:FOLDER")
    gen.add_argument("--save-dtype", choices=["float32", "float16", "bfloat16"], default=None,
                     help="dtype of the saved denoiser weights")
    gen.set_defaults(func=_generator)

    ret = tsub.add_parser("retrieval", help="train a retrieval motion encoder for a frozen text encoder")
    ret.add_argument("--data", required=True, help="dataset folder (HumanML3D layout)")
    ret.add_argument("--text-encoder", required=True, choices=["vanilla", "ada"],
                     help="vanilla: adapters off; ada: the adapted encoder of --pipeline")
    ret.add_argument("--pipeline", default=None,
                     help="trained generator folder whose text encoder is used (required for ada)")
    ret.add_argument("--out", required=True, help="run folder (the motion encoder is saved here)")
    _common(ret)
    ret.add_argument("--backbone", default=None, help="text backbone for vanilla without --pipeline (default minilm)")
    ret.set_defaults(func=_retrieval)

    everything = tsub.add_parser("all", help="corpus -> extractors -> generators -> retrieval encoders")
    everything.add_argument("--config", default="configs/default.json", help="the run config (JSON)")
    everything.add_argument("--out", required=True, help="checkpoint folder, e.g. checkpoints/default")
    everything.add_argument("--data", default=None,
                            help="dataset folder (default: build the procedural corpus into the cache folder)")
    everything.add_argument("--force", action="store_true", help="retrain stages already completed with this config")
    everything.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    everything.set_defaults(func=_all)



def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="JSON config (a job section or the whole train-all config)")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--resume", action="store_true", help="require <out>/checkpoint and continue from it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _section(args, name: str) -> dict:
    from adamotion.train.loop import read_json_config
    from adamotion.utils.config import merge_dicts

    base = read_json_config(args.config, section=name) if args.config else {}
    loop = {key: value for key, value in (
        ("steps", args.steps), ("batch_size", args.batch_size), ("lr", args.lr), ("seed", args.seed),
        ("device", args.device)) if value is not None}
    if args.no_progress:
        loop["progress"] = False
    return merge_dicts(base, {"loop": loop}) if loop else base


def _extractors(args) -> int:
    from adamotion.train.extractors import train_extractors

    out = train_extractors(args.data, args.out, _section(args, "extractors"), resume=True if args.resume else None)
    print(f"extractors saved to {out}")
    return 0


def _evaluator(args) -> int:
    from adamotion.train.evaluator import train_evaluator

    out = train_evaluator(args.data, args.out, _section(args, "evaluator"), resume=True if args.resume else None)
    print(f"evaluator saved to {out}")
    return 0


def _generator(args) -> int:
    from adamotion.train.generator import train_generator
    from adamotion.utils.config import merge_dicts

    overrides: dict = {}
    for key, value in (("lambda_m", args.lambda_m), ("lambda_t", args.lambda_t), ("lora_lr", args.lora_lr),
                       ("backbone", args.backbone), ("save_dtype", args.save_dtype)):
        if value is not None:
            overrides[key] = value
    if args.lora_rank is not None:
        overrides["lora"] = {"rank": args.lora_rank}
    config = merge_dicts(_section(args, "generator"), overrides)
    out = train_generator(args.data, args.extractors, args.out, args.method, config,
                          resume=True if args.resume else None)
    print(f"{args.method} pipeline saved to {out}")
    return 0


def _retrieval(args) -> int:
    from adamotion.train.retrieval import train_retrieval

    config = _section(args, "retrieval")
    if args.backbone is not None:
        config = {**config, "backbone": args.backbone}
    out = train_retrieval(args.data, args.out, args.text_encoder, args.pipeline, config,
                          resume=True if args.resume else None)
    print(f"retrieval motion encoder ({args.text_encoder}) saved to {out}")
    return 0


def _all(args) -> int:
    from adamotion.train.all import train_all

    summary = train_all(args.config, args.out, data_root=args.data, force=args.force, device=args.device)
    print(f"trained {', '.join(summary['stages'])} into {args.out} in {summary['total_s'] / 60:.1f} min "
          f"({summary['size_mb']:.1f} MB); summary: {summary['path']}")
    return 0
