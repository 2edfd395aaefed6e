"""`phanet cv`: subject-independent k-fold cross-validation, aggregated as mean ± std."""

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
        "cv", help="k-fold cross-validation (mean ± std over folds)",
        description="Train and evaluate one model per fold of a subject-independent k-fold split "
        "(folds written once to a JSON file and reused), then aggregate accuracy, macro-F1, "
        "per-expression and per-pose accuracy over folds.",
        epilog="example: phanet cv --config configs/kdef_subject_kfold.yaml --root ~/data/KDEF",
    )
    add_run_flags(parser)
    add_init_from_flag(parser)
    parser.add_argument("--only-folds", type=int, nargs="+", metavar="K", help="run only these folds")
    parser.set_defaults(func=run)


def run(args) -> int:
    import logging
    from pathlib import Path

    from phanet.engine import TrainingInterrupted, cross_validate
    from phanet.report import format_table, pct

    apply_threads(args)
    config = build_config(args)
    out = Path(args.out) if args.out else default_out(config, "cv")
    try:
        summary = cross_validate(config, out, folds=args.only_folds, progress=show_progress(args),
                                 overwrite=args.overwrite)
    except TrainingInterrupted as stop:  # the interrupted fold continues as a `phanet train --resume` run
        logging.getLogger("phanet").warning("%s", interrupted_message(stop))
        return 130

    def cell(stats):
        return "—" if stats is None else f"{pct(stats['mean'])} ± {pct(stats['std'])}"

    rows = [["overall", cell(summary["accuracy"])], ["macro-F1", cell(summary["macro_f1"])]]
    rows += [[f"pose {k}", cell(v)] for k, v in summary["per_pose_accuracy"].items()]
    rows += [[f"expr {k}", cell(v)] for k, v in summary["per_expression_accuracy"].items()]
    print(format_table(rows, ["metric", f"acc % over {len(summary['folds'])} folds"]))
    print(f"\nrun folder: {out}")
    return 0
