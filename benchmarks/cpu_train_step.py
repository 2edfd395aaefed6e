"""Which CPU training-step variant is fastest for a model? fp32, channels-last, bf16 autocast, side by side.

For each model: full training steps of the engine (``train_speed.StepTimer``: ``train_one_epoch`` with
the PhaNet loss, backward, AdamW and schedule) on one random batch, ``--steps`` steps per round, every
variant interleaved round by round so machine noise hits all alike; the fastest round of each is kept
(``train_speed.interleaved_step_times``). Each variant trains its own copy of the model, built from the
same seed. ``channels_last`` is the engine's ``train.channels_last`` (model and batches in NHWC),
``bf16`` CPU bf16 autocast around the forward (what ``train.cpu_amp`` does). Read the ratios, not the
absolute times.

    python benchmarks/cpu_train_step.py --models phanet_effl0 baseline_effl0 phanet_r18
    python benchmarks/cpu_train_step.py --variants fp32 bf16          # the bf16 question alone
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP (benchmarks/README.md)

import torch  # noqa: E402
from train_speed import StepTimer, interleaved_step_times  # noqa: E402

# name -> (channels_last, bf16 autocast)
VARIANTS = {"fp32": (False, False), "channels_last": (True, False), "bf16": (False, True),
            "channels_last+bf16": (True, True)}


def variant_timer(model_name: str, variant: str, size: int, batch: int) -> StepTimer:
    """The engine's training step of ``model_name`` in one variant's memory format and precision."""
    channels_last, bf16 = VARIANTS[variant]
    return StepTimer(model_name, size, batch, "cpu", channels_last=channels_last, cpu_bf16=bf16)


def step_seconds(model_name: str, variants: list[str], size: int, batch: int, steps: int,
                 rounds: int) -> dict[str, float]:
    """Fastest wall seconds per step of each variant, rounds interleaved."""
    timers = [variant_timer(model_name, variant, size, batch) for variant in variants]
    times = interleaved_step_times(timers, steps, rounds, warmup=1)
    return {variant: t["wall"] for variant, t in zip(variants, times)}


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
