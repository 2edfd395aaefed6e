"""`phanet train`: train one model on one fold of a dataset (data-parallel under torchrun)."""

from __future__ import annotations

from phanet.commands.common import (
    add_init_from_flag,
    add_run_flags,
    apply_threads,
    build_config,
    default_out,
    interrupted_message,
    show_progress,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="train a model on one fold/split of a dataset",
        description="Train a model on one fold (subject-independent k-fold) or the official split of a "
        "dataset, evaluate the best checkpoint on the held-out part, and write a report folder. "
        "Multi-GPU/multi-node: `torchrun --nproc_per_node=N -m phanet train ...`.",
        epilog="example: phanet train --dataset kdef --root ~/data/KDEF --fold 0 --epochs 30",
    )
    add_run_flags(parser)
    add_init_from_flag(parser)
    parser.add_argument("--fold", type=int, help="which fold to hold out (default 0)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its resume.pt (after Ctrl-C/SIGTERM)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import logging
    from pathlib import Path

    from phanet.engine import TrainingInterrupted, fit, init_distributed
    from phanet.report import summary_table

    apply_threads(args)
    if args.resume:
        if not args.out:
            raise ValueError("--resume needs --out DIR (the run folder to continue)")
        demo = Path(args.out).parent
        if (demo / "demo_state.json").is_file():  # a model folder of `phanet demo`: its data is the demo's
            raise ValueError(f"{args.out} is a model of the demo in {demo}; continue the demo with "
                             f"`phanet demo --resume --out {demo}`")
        from phanet.runfolder import prepare_run_folder

        prepare_run_folder(args.out, resume=True, overwrite=args.overwrite)  # a typo in --out is an error
        if not args.config:
            args.config = str(Path(args.out) / "config.yaml")
    config = build_config(args)
    out = Path(args.out) if args.out else default_out(config, "train")
    try:
        results = fit(config, out, resume=args.resume, progress=show_progress(args), overwrite=args.overwrite)
    except TrainingInterrupted as stop:
        logging.getLogger("phanet").warning("%s", interrupted_message(stop))
        return 130
    if init_distributed(config.train.device).is_main:
        print(summary_table(results))
        print(f"\nrun folder: {out}")
    return 0
