"""Does bf16 autocast speed up CPU training of a model? Full training steps, fp32 vs bf16, side by side.

For each model: forward, cross-entropy, backward and AdamW on one random batch, ``--steps`` steps per
round, fp32 and bf16 (the engine's ``autocast_for(..., cpu_bf16=True)``, as ``train.cpu_amp`` uses it)
interleaved round by round so machine noise hits both alike; the fastest round of each is kept (the
first round warms up and is dropped). Read the ratio, not the absolute times.

    python benchmarks/cpu_bf16.py --models phanet_effl0 baseline_effl0 phanet_r18
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (benchmarks/README.md)

import torch  # noqa: E402


def step_seconds(model_name: str, size: int, batch: int, steps: int, rounds: int) -> dict[bool, float]:
    import phanet
    from phanet.engine import autocast_for

    torch.manual_seed(0)
    model = phanet.create_model(model_name, num_expressions=7, num_poses=5)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images, labels = torch.randn(batch, 3, size, size), torch.randint(0, 7, (batch,))
    best = {False: float("inf"), True: float("inf")}
    for round_ in range(rounds + 1):
        for bf16 in (False, True):
            start = time.perf_counter()
            for _ in range(steps):
                with autocast_for(torch.device("cpu"), amp=False, cpu_bf16=bf16):
                    logits = model(images).expression_logits
                loss = torch.nn.functional.cross_entropy(logits.float(), labels)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if round_:  # round 0 warms up
                best[bf16] = min(best[bf16], (time.perf_counter() - start) / steps)
    return best


def main() -> None:
    from phanet.engine import cpu_has_native_bf16

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["phanet_effl0", "baseline_effl0", "phanet_r18"])
    parser.add_argument("--size", type=int, default=64, help="input side (default: 64, the demo's)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4, help="training steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (the fastest is kept)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"native bf16 on this CPU: {cpu_has_native_bf16()}; torch threads {torch.get_num_threads()}; "
          f"{args.size}x{args.size}, batch {args.batch}")
    for name in args.models:
        best = step_seconds(name, args.size, args.batch, args.steps, args.rounds)
        print(f"{name:<16} fp32 {1000 * best[False]:6.0f} ms/step  bf16 {1000 * best[True]:6.0f} ms/step  "
              f"bf16 speed-up {best[False] / best[True]:.2f}x")


if __name__ == "__main__":
    main()
