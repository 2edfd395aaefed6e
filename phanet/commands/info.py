"""`phanet info`: registered models with parameter counts, datasets, and the runtime environment."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "info", help="list registered models (with parameter counts) and datasets",
        description="List the registered models with their parameter counts, the registered datasets, "
        "and the torch/CUDA versions in use.",
    )
    parser.add_argument("--num-expressions", type=int, default=7, help="classes used to size the heads (default 7)")
    parser.add_argument("--num-poses", type=int, default=5, help="pose bins used to size the pose head (default 5)")
    parser.set_defaults(func=run)


def run(args) -> int:
    import torch

    from phanet.data import list_datasets
    from phanet.models import create_model, list_models

    print(f"phanet — torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
    print(f"\n{'model':<16} {'parameters':>12}")
    for name in list_models():
        model = create_model(name, num_expressions=args.num_expressions, num_poses=args.num_poses)
        count = sum(p.numel() for p in model.parameters())
        print(f"{name:<16} {count / 1e6:>11.2f}M")
    print("\ndatasets: " + ", ".join(list_datasets()))
    return 0
