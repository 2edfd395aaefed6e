"""`phanet evaluate`: a checkpoint on any dataset, with cross-dataset class mapping by name."""

from __future__ import annotations

from phanet.commands.common import (
    add_adapt_bn_flags,
    add_class_prior_flag,
    add_threads_flag,
    add_tta_flag,
    apply_threads,
    check_adapt_bn_flags,
)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="evaluate a checkpoint on a dataset (also cross-dataset)",
        description="Evaluate a trained checkpoint on a dataset. Classes are matched by name, so a model "
        "trained on one dataset can be evaluated on another; classes the model does not know are "
        "dropped and reported.",
        epilog="example: phanet evaluate --checkpoint runs/x/best.safetensors --dataset multipie --root DIR",
    )
    parser.add_argument("--checkpoint", required=True, help="NAME.safetensors (with NAME.json beside it)")
    parser.add_argument("--dataset", required=True, help="dataset name (see `phanet data list`)")
    parser.add_argument("--root", help="the dataset's root folder")
    parser.add_argument("--split", default="all", choices=["all", "train", "val", "test"],
                        help="which part to evaluate (default all; a part needs --protocol/--fold)")
    parser.add_argument("--protocol", choices=["subject_kfold", "official"])
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--fold-file", metavar="FILE", help="fold JSON written by training (to evaluate its test part)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="dataset loader option, e.g. --option poses=7")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=128)
    add_tta_flag(parser, "image")
    add_class_prior_flag(parser)
    add_adapt_bn_flags(parser, "images evaluated")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", metavar="DIR", help="write metrics.json and plots here")
    add_threads_flag(parser)
    parser.set_defaults(func=run)


def run(args) -> int:
    from phanet.config import parse_key_values
    from phanet.data.protocols import make_split
    from phanet.data.registry import load_dataset
    from phanet.engine import evaluate_checkpoint
    from phanet.report import summary_table

    apply_threads(args)
    check_adapt_bn_flags(args)
    index = load_dataset(args.dataset, args.root, **parse_key_values(args.option, "--option"))
    indices = None
    if args.split != "all":
        split = make_split(index, args.protocol, fold=args.fold, k=args.folds, fold_file=args.fold_file)
        indices = split[args.split]
    results = evaluate_checkpoint(args.checkpoint, index, indices, args.out, args.device, args.batch_size,
                                  args.workers, root=args.root, tta=args.tta, adapt_bn=args.adapt_bn,
                                  adapt_images=args.adapt_images, adapt_depth=args.adapt_depth,
                                  class_prior=args.class_prior)
    if results.get("seen_in_training"):
        import sys

        print(f"WARNING: {results['seen_in_training']}", file=sys.stderr)
    if results["dropped_classes"]:
        print(f"classes without a counterpart in the model (dropped): {', '.join(results['dropped_classes'])}")
    print(summary_table(results))
    return 0
