"""CPU forward latency/throughput of every registered variant, side by side with its plain backbone.

Run by hand (never in tests):  python benchmarks/model_speed.py [--threads 2] [--repeats 20]

With ``--option KEY=VALUE`` (repeatable; model.options, e.g. ``instance_norm=0.5``) the counterpart is the
same variant without those options instead, so the ratio is the options' cost:

    python benchmarks/model_speed.py --models phanet_effl0 --size 96 --option instance_norm=0.5

For each variant it times ``model(x)`` at 112x112 for batch 1 (latency) and batch 64 (throughput),
interleaving the variant and its plain baseline (same backbone + global pooling + classifier) in the
same loop, so machine noise hits both alike; the ratio is what to read.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from phanet.config import parse_key_values
from phanet.models import create_model, list_models

PLAIN = {"resnet18": "baseline_r18"}


def plain_counterpart(name: str, backbone: str) -> torch.nn.Module:
    """The plain backbone + GAP + classifier for ``backbone`` (registered baseline, or built)."""
    if backbone in PLAIN:
        return create_model(PLAIN[backbone], num_expressions=7, num_poses=5)
    return create_model(name, num_expressions=7, num_poses=5, use_attention=False, use_pose=False, scale_fusion="mean")


def median_seconds(model, x, repeats: int) -> float:
    times = []
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def compare(model, plain, batch: int, size: int, repeats: int) -> tuple[float, float]:
    x = torch.randn(batch, 3, size, size)
    for m in (model, plain):  # warm-up
        median_seconds(m, x, 2)
    a, b = [], []
    for _ in range(3):  # interleave rounds so drift affects both
        a.append(median_seconds(model, x, repeats))
        b.append(median_seconds(plain, x, repeats))
    return statistics.median(a), statistics.median(b)


def params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--models", nargs="*", default=None, help="variants (default: all non-baseline ones)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="build each variant with this model option and compare it with the variant without")
    args = parser.parse_args()
    try:
        options = parse_key_values(args.option, "--option", "KEY=VALUE, e.g. instance_norm=0.5")
    except ValueError as err:
        parser.error(str(err))
    torch.set_num_threads(args.threads)
    names = args.models or [n for n in list_models() if not n.startswith("baseline")]
    print(f"torch {torch.__version__}, {args.threads} threads, input {args.size}x{args.size}, median of "
          f"{args.repeats} runs x 3 interleaved rounds" + (f"; options {options} vs none" if options else ""))
    header = (f"{'model':<16}{'plain':>14}{'params M':>10}{'x params':>9}"
              f"{'b1 ms':>9}{'plain':>8}{'ratio':>7}{'b64 img/s':>11}{'plain':>9}{'ratio':>7}")
    print(header)
    print("-" * len(header))
    for name in names:
        torch.manual_seed(0)
        model = create_model(name, num_expressions=7, num_poses=5, **options).eval()
        if options:
            plain = create_model(name, num_expressions=7, num_poses=5).eval()
        else:
            plain = plain_counterpart(name, model.config.backbone).eval()
        t1, p1 = compare(model, plain, 1, args.size, args.repeats)
        t64, p64 = compare(model, plain, 64, args.size, max(2, args.repeats // 4))
        plain_label = "no options" if options else PLAIN.get(model.config.backbone, model.config.backbone + "+gap")
        print(f"{name:<16}{plain_label:>14}{params(model) / 1e6:>10.2f}{params(model) / params(plain):>9.3f}"
              f"{t1 * 1e3:>9.1f}{p1 * 1e3:>8.1f}{t1 / p1:>7.2f}{64 / t64:>11.0f}{64 / p64:>9.0f}{t64 / p64:>7.2f}")


if __name__ == "__main__":
    main()
