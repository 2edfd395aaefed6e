"""`phanet average`: one checkpoint whose weights are the average of several runs' ("model soup")."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Average the weights of several checkpoints of one model into one checkpoint of the same size and
speed. Meant for runs of one recipe that share their initial weights (train.init_seed) and differ in
train.seed: the average smooths the run-to-run luck of a single training seed; or for fine-tunes of one
checkpoint (train.init_from), which share its weights as their start whatever their seeds; that checkpoint
may be a member too, so --weights interpolates between a model and its fine-tunes (WiSE-FT). The members
must have one architecture, label space and input contract; members trained from different initial
weights are refused (their average is usually worse than either) unless --allow-different-init. Batch-norm
statistics are averaged with the weights, or, with --bn-config, measured afresh on that training
config's images (as SWA does after averaging). The JSON records each member's file, sha256 and weight.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "average", help="average the weights of several runs into one checkpoint (model soup)",
        description=DESCRIPTION,
        epilog="examples (three seeds of one recipe, then the fp16 copy that ships; a model and two of its\n"
               "fine-tunes: a quarter of the way from the model towards the fine-tunes' mean):\n"
               "  phanet average runs/s0/best runs/s1/best runs/s2/best --out runs/soup --bn-config CONFIG\n"
               "  phanet export fp16 --checkpoint runs/soup --out phanet/weights/phanet_synthetic\n"
               "  phanet average runs/s0/best runs/ft1/best runs/ft2/best --weights 0.75,0.125,0.125 --out runs/wise",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("checkpoints", nargs="+", metavar="CKPT",
                        help="two or more checkpoints (NAME, NAME.safetensors or NAME.json)")
    parser.add_argument("--out", required=True, metavar="NAME", help="output checkpoint (NAME.safetensors + NAME.json)")
    parser.add_argument("--weights", metavar="W,W,...",
                        help="comma-separated weight per checkpoint, in order (default: equal)")
    parser.add_argument("--allow-different-init", action="store_true",
                        help="average members whose recorded starting points differ (warns instead of refusing)")
    parser.add_argument("--bn-config", metavar="YAML",
                        help="re-estimate the batch-norm statistics on this training config's images (its split, "
                             "train.augment, train.batch_size, train.seed), e.g. the members' recipe")
    parser.add_argument("--bn-batches", type=int, default=100, metavar="N",
                        help="training batches for --bn-config (default: 100)")
    parser.add_argument("--threads", type=int, metavar="N", help="torch CPU threads (default: torch's)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from phanet.averaging import average_checkpoints

    weights = None
    if args.weights:
        try:
            weights = [float(w) for w in args.weights.split(",")]
        except ValueError:
            raise ValueError(f"--weights {args.weights!r}: expected comma-separated numbers, e.g. 1,1,2") from None
    batch_norm_config = None
    if args.bn_config:
        from phanet.config import load_config

        batch_norm_config = load_config(args.bn_config)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    path = average_checkpoints(args.checkpoints, args.out, weights, allow_different_init=args.allow_different_init,
                               batch_norm_config=batch_norm_config, batch_norm_batches=args.bn_batches)
    print(json.dumps({"weights": str(path), "members": len(args.checkpoints)}))
    return 0
