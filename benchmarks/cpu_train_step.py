"""Which CPU training-step variant is fastest for a model? fp32, channels-last, bf16 autocast, side by side.

For each model: forward, cross-entropy, backward and AdamW on one random batch, ``--steps`` steps per
round, every variant interleaved round by round so machine noise hits all alike; the fastest round of
each is kept (round 0 warms up and is dropped). Each variant trains its own copy of the model, built
from the same seed, so the memory format of one does not leak into another. The variants are the
engine's own switches: ``channels_last`` is ``train.channels_last`` (model and batches in NHWC), ``bf16``
is ``train.cpu_amp`` (the engine's ``autocast_for(..., cpu_bf16=True)``). Read the ratios, not the
absolute times.

    python benchmarks/cpu_train_step.py --models phanet_effl0 baseline_effl0 phanet_r18
    python benchmarks/cpu_train_step.py --variants fp32 bf16          # the bf16 question alone
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (benchmarks/README.md)

import torch  # noqa: E402

# name -> (channels_last, bf16 autocast)
VARIANTS = {"fp32": (False, False), "channels_last": (True, False), "bf16": (False, True),
            "channels_last+bf16": (True, True)}


class VariantStep:
    """One model copy trained in one variant's memory format and precision."""

    def __init__(self, model_name: str, variant: str, size: int, batch: int):
        import phanet

        self.channels_last, self.bf16 = VARIANTS[variant]
        torch.manual_seed(0)
        self.model = phanet.create_model(model_name, num_expressions=7, num_poses=5)
        self.images = torch.randn(batch, 3, size, size)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
            self.images = self.images.contiguous(memory_format=torch.channels_last)
        self.labels = torch.randint(0, 7, (batch,))
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-3)

    def run(self, steps: int) -> float:
        """Mean seconds per training step over ``steps`` steps."""
        from phanet.engine import autocast_for

        start = time.perf_counter()
        for _ in range(steps):
            with autocast_for(torch.device("cpu"), amp=False, cpu_bf16=self.bf16):
                logits = self.model(self.images).expression_logits
            loss = torch.nn.functional.cross_entropy(logits.float(), self.labels)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
        return (time.perf_counter() - start) / steps


def step_seconds(model_name: str, variants: list[str], size: int, batch: int, steps: int,
                 rounds: int) -> dict[str, float]:
    """Fastest seconds per step of each variant, rounds interleaved."""
    runners = {variant: VariantStep(model_name, variant, size, batch) for variant in variants}
    best = dict.fromkeys(variants, float("inf"))
    for round_ in range(rounds + 1):
        for variant, runner in runners.items():
            seconds = runner.run(steps)
            if round_:  # round 0 warms up
                best[variant] = min(best[variant], seconds)
    return best


def main() -> None:
    from phanet.engine import cpu_has_native_bf16

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["phanet_effl0", "baseline_effl0", "phanet_r18"])
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="the first is the reference of the speed-up column (default: all, fp32 first)")
    parser.add_argument("--size", type=int, default=64, help="input side (default: 64, the demo's)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4, help="training steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (the fastest is kept)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"native bf16 on this CPU: {cpu_has_native_bf16()}; torch threads {torch.get_num_threads()}; "
          f"{args.size}x{args.size}, batch {args.batch}; load average {os.getloadavg()[0]:.2f}")
    reference = args.variants[0]
    for name in args.models:
        best = step_seconds(name, args.variants, args.size, args.batch, args.steps, args.rounds)
        cells = [f"{variant} {1000 * best[variant]:5.0f} ms ({best[reference] / best[variant]:.2f}x)"
                 for variant in args.variants]
        print(f"{name:<16} " + "  ".join(cells))


if __name__ == "__main__":
    main()
