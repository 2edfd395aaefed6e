"""`phanet demo`: synthetic multi-view faces -> train PhaNet and the baseline -> per-pose comparison."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run the whole pipeline on built-in synthetic faces (no dataset needed)",
        description="Render a multi-view set of synthetic 3D faces with FACS-style expressions, train "
        "phanet_r18 and baseline_r18 on the same training subjects with the same budget, evaluate both "
        "on unseen subjects, print their per-pose accuracy side by side and write a report folder. "
        "About 5-10 minutes on a 2-core CPU; --quick takes under 2.",
    )
    parser.add_argument("--quick", action="store_true", help="a small run (CI-sized, under 2 minutes on CPU)")
    parser.add_argument("--out", metavar="DIR", help="report folder (default: a new folder under runs/)")
    parser.add_argument("--poses", help="pose preset: kdef5 (default), bu3dfe35, multipie7, multipie13")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--size", type=int, help="image side in pixels (default 64)")
    parser.add_argument("--train-subjects", type=int)
    parser.add_argument("--test-subjects", type=int)
    parser.add_argument("--models", nargs="+", help="registered models to compare (default phanet_r18 baseline_r18)")
    parser.add_argument("--device", help="auto (default), cpu or cuda")
    parser.add_argument("--workers", type=int, help="DataLoader workers (default 0: images are in memory)")
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=run)


def run(args) -> int:
    import time
    from pathlib import Path

    from phanet.demo import DemoSettings, run_demo

    settings = DemoSettings.quick() if args.quick else DemoSettings()
    overrides = {"poses": args.poses, "epochs": args.epochs, "size": args.size, "device": args.device,
                 "train_subjects": args.train_subjects, "test_subjects": args.test_subjects,
                 "workers": args.workers, "seed": args.seed, "models": tuple(args.models) if args.models else None}
    for key, value in overrides.items():
        if value is not None:
            setattr(settings, key, value)
    out = Path(args.out) if args.out else Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-demo"
    run_demo(out, settings, progress=not args.no_progress)
    return 0
