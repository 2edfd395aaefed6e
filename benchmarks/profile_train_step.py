"""Where a CPU training step and the input pipeline spend their time, and what each optimisation buys.

Run by hand:  python benchmarks/profile_train_step.py [--size 112] [--batch 32] [--sections all]

Sections (``--sections``; each prints one table):

``threads``   OpenMP wait policy and thread count: wall time of a ``baseline_r18`` step in fresh
              subprocesses (the policy is read when OpenMP loads), 1 thread vs 2 threads spinning
              (``OMP_WAIT_POLICY=ACTIVE``) vs 2 threads sleeping (``PASSIVE``), interleaved. The load
              average is printed: the spinning pathology shows only when other processes compete.
``step``      ``baseline_r18`` vs ``phanet_r18`` training steps (engine ``train_one_epoch``) eager,
              channels-last, bf16 autocast (CPU AMX) and ``torch.compile`` (compile time reported
              apart), at 1 thread, ranked by CPU time per step (stable on a shared machine).
``ops``       ``torch.profiler`` top operators of one PhaNet training step, and the share of time in
              PhaNet's own modules (attention, pose branch, gate, heads) vs the backbone.
``transform`` per-sample cost of ``FaceDataset[i]`` with the current :class:`FaceTransform` vs the
              pre-optimisation reference kept below (same random draws), and their largest output
              difference.
``loader``    images/s of the engine's loader (``make_loader``) over in-memory 64px faces, 0 vs 2
              workers, and the start-up cost of a worker pool per epoch.

All comparisons are interleaved round by round within one run; the fastest round of each is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# Same as the other benchmarks (see train_speed.py); the ``threads`` section overrides it per subprocess.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torchvision.transforms.v2.functional as TF  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_speed import StepTimer, interleaved_step_times  # noqa: E402

from phanet.data.base import SEVEN_EXPRESSIONS, FaceDataset, LabelSpace, PoseBin, Sample  # noqa: E402
from phanet.data.transforms import AUGMENT_PRESETS, FaceTransform, _uniform  # noqa: E402

SECTIONS = ("threads", "step", "ops", "transform", "loader")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def load_average() -> str:
    return open("/proc/loadavg").read().split()[0] if Path("/proc/loadavg").exists() else "?"


def markdown(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


# ----------------------------------------------------------------------------- threads / wait policy

THREAD_SETTINGS = (("1 thread", 1, "PASSIVE"), ("2 threads, spinning (ACTIVE)", 2, "ACTIVE"),
                   ("2 threads, sleeping (PASSIVE)", 2, "PASSIVE"))


def _subprocess_step_ms(threads: int, policy: str, size: int, batch: int, steps: int) -> float:
    code = (f"import sys, torch; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r}); "
            f"torch.set_num_threads({threads}); from train_speed import StepTimer; "
            f"t = StepTimer('baseline_r18', {size}, {batch}); t.run(1); "
            f"print(min(t.run({steps})[0] for _ in range(2)) / {steps} * 1e3)")
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def threads_section(size: int, batch: int, steps: int, rounds: int) -> tuple[str, dict]:
    times: dict[str, list[float]] = {label: [] for label, _, _ in THREAD_SETTINGS}
    loads = []
    for _ in range(rounds):
        for label, threads, policy in THREAD_SETTINGS:
            times[label].append(_subprocess_step_ms(threads, policy, size, batch, steps))
        loads.append(load_average())
    reference = min(times[THREAD_SETTINGS[0][0]])
    rows = [[label, f"{min(v):.0f}", f"{max(v):.0f}", f"{reference / min(v):.2f}"] for label, v in times.items()]
    text = (f"baseline_r18 training step, {size}px, batch {batch}, fresh process per measurement, {rounds} "
            f"interleaved rounds (load average during the rounds: {', '.join(loads)})\n\n"
            + markdown(rows, ["setting", "best ms/step", "worst ms/step", "speed vs 1 thread (best)"]))
    return text, {"times_ms": times, "load": loads}


# ----------------------------------------------------------------------------- training step variants

STEP_VARIANTS = (("eager", {}), ("channels-last", {"channels_last": True}), ("bf16 autocast", {"cpu_bf16": True}),
                 ("torch.compile", {"compile": True}))


def step_section(size: int, batch: int, steps: int, rounds: int, variants: tuple = STEP_VARIANTS,
                 models: tuple = ("baseline_r18", "phanet_r18")) -> tuple[str, dict]:
    import tempfile

    torch.set_num_threads(1)
    # A fresh inductor cache, so that "build + first step" of torch.compile is the cold compile a user pays.
    cache = tempfile.mkdtemp(prefix="phanet_inductor_")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    timers, labels, warm = [], [], {}
    for model in models:
        for label, options in variants:
            start = time.perf_counter()
            timer = StepTimer(model, size, batch, "cpu", **options)
            timer.run(1)  # compiles on the first step
            warm[(model, label)] = time.perf_counter() - start
            timers.append(timer)
            labels.append((model, label))
    measured = dict(zip(labels, interleaved_step_times(timers, steps, rounds, warmup=1)))
    shutil.rmtree(cache, ignore_errors=True)
    rows, data = [], {}
    for model in models:
        eager = measured[(model, "eager")]
        for label, _ in variants:
            t = measured[(model, label)]
            plain = measured[(models[0], label)]
            rows.append([model, label, f"{t['cpu'] * 1e3:.0f}", f"{eager['cpu'] / t['cpu']:.2f}",
                         f"{t['cpu'] / plain['cpu']:.2f}", f"{t['wall'] * 1e3:.0f}", f"{warm[(model, label)]:.0f}"])
            data[f"{model}/{label}"] = {**t, "first_step_s": warm[(model, label)]}
    text = (f"Training step at {size}px, batch {batch}, 1 thread, fastest of {rounds} interleaved rounds of {steps} "
            f"steps\n\n" + markdown(rows, ["model", "variant", "CPU ms/step", "speed-up vs eager",
                                           f"vs {models[0]} same variant", "wall ms/step",
                                           "build + first step s"]))
    return text, data


# ----------------------------------------------------------------------------- operator profile


def ops_section(size: int, batch: int, top: int = 12) -> tuple[str, dict]:
    from torch.profiler import ProfilerActivity, profile

    torch.set_num_threads(1)
    timer = StepTimer("phanet_r18", size, batch, "cpu")
    timer.run(2)
    model = timer.model
    owned = {"attention": model.attention, "scale_classifiers": model.scale_classifiers,
             "pose_embed": model.pose_embed, "pose_classifier": model.pose_classifier, "gate": model.gate,
             "classifier": model.classifier}
    seconds = {name: 0.0 for name in ["backbone", *owned]}
    started: dict[int, float] = {}
    handles = []
    for name, group in [("backbone", model.backbone), *owned.items()]:
        # A ModuleList is iterated, never called: time each of its members.
        for module in (group if isinstance(group, torch.nn.ModuleList) else [group]):
            handles.append(module.register_forward_pre_hook(
                lambda m, args: started.__setitem__(id(m), time.process_time())))
            handles.append(module.register_forward_hook(
                lambda m, args, out, n=name: seconds.__setitem__(n, seconds[n] + time.process_time() - started[id(m)])))
    start = time.process_time()
    timer.run(3)
    total = time.process_time() - start
    for handle in handles:
        handle.remove()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        timer.run(1)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=top, max_name_column_width=40)
    forward = dict(seconds)
    heads = sum(v for k, v in forward.items() if k != "backbone")
    rows = [[k, f"{v / 3 * 1e3:.1f}", f"{100 * v / total:.1f}"] for k, v in forward.items()]
    rows.append(["PhaNet's own modules, forward", f"{heads / 3 * 1e3:.1f}", f"{100 * heads / total:.1f}"])
    text = (f"Forward CPU time per module of a phanet_r18 training step ({size}px, batch {batch}, 1 thread; "
            f"share of the whole step incl. backward and AdamW, {total / 3 * 1e3:.0f} ms)\n\n"
            + markdown(rows, ["module", "forward ms/step", "% of step"])
            + f"\n\nTop operators by self CPU time (torch.profiler, one step):\n\n```\n{table}```")
    return text, {"forward_s_per_step": {k: v / 3 for k, v in forward.items()}, "step_s": total / 3}


# ----------------------------------------------------------------------------- transform


class ReferenceFaceTransform(FaceTransform):
    """:class:`FaceTransform` as it was before profiling (uint8 augmentation, per-call normalise).

    Kept verbatim as the baseline of the ``transform`` section and to check that the optimised
    transform gives the same images (up to uint8 rounding) from the same random draws.
    """

    def __call__(self, image: np.ndarray, sample=None, generator: torch.Generator | None = None):
        image = np.ascontiguousarray(image)
        if not image.flags.writeable:
            image = image.copy()
        tensor = torch.from_numpy(image).permute(2, 0, 1)
        tensor = TF.resize(tensor, [self.size, self.size], antialias=True)
        flipped = False
        flip_p, rotation, translate, scale, jitter, gray_p, erase_p = AUGMENT_PRESETS[self.augment]
        if self.augment != "none":
            generator = generator or torch.Generator().manual_seed(0)
            if flip_p and _uniform(generator, 0, 1) < flip_p:
                tensor = TF.horizontal_flip(tensor)
                flipped = True
            shift = [round(_uniform(generator, -translate, translate) * self.size) for _ in range(2)]
            tensor = TF.affine(
                tensor, angle=_uniform(generator, -rotation, rotation), translate=shift,
                scale=_uniform(generator, *scale), shear=[0.0, 0.0],
            )
            if jitter:
                tensor = TF.adjust_brightness(tensor, _uniform(generator, 1 - jitter, 1 + jitter))
                tensor = TF.adjust_contrast(tensor, _uniform(generator, 1 - jitter, 1 + jitter))
                tensor = TF.adjust_saturation(tensor, _uniform(generator, 1 - jitter, 1 + jitter))
            if gray_p and _uniform(generator, 0, 1) < gray_p:
                tensor = TF.rgb_to_grayscale(tensor, num_output_channels=3)
        tensor = TF.normalize(tensor.float().div_(255.0), list(self.mean), list(self.std))
        if erase_p and _uniform(generator, 0, 1) < erase_p:
            side = int(self.size * _uniform(generator, 0.15, 0.35))
            top, left = (int(_uniform(generator, 0, self.size - side)) for _ in range(2))
            tensor[:, top:top + side, left:left + side] = 0.0
        return tensor, flipped


def _faces(count: int, side: int, seed: int = 0) -> list[Sample]:
    """Smooth random pictures (face-like statistics are irrelevant to the cost of a transform)."""
    rng = np.random.default_rng(seed)
    samples = []
    for i in range(count):
        coarse = torch.from_numpy(rng.integers(0, 255, (3, 8, 8), dtype=np.uint8))
        image = TF.resize(coarse, [side, side], antialias=True).permute(1, 2, 0).numpy().copy()
        samples.append(Sample(image, i % 7, i % 5, subject=f"s{i}"))
    return samples


def transform_section(size: int, rounds: int, count: int = 256) -> tuple[str, dict]:
    torch.set_num_threads(1)
    space = LabelSpace(SEVEN_EXPRESSIONS, tuple(PoseBin(f"p{y}", float(y), 0.0) for y in (-90, -45, 0, 45, 90)))
    rows, data = [], {}
    for source in (size, 2 * size):
        samples = _faces(count, source)
        for augment in ("none", "light", "standard", "strong"):
            pair = [FaceDataset(samples, space, cls(size, MEAN, STD, augment))
                    for cls in (ReferenceFaceTransform, FaceTransform)]
            best = [float("inf"), float("inf")]
            for _ in range(rounds):
                for k, dataset in enumerate(pair):
                    start = time.process_time()
                    for i in range(count):
                        dataset[i]
                    best[k] = min(best[k], (time.process_time() - start) / count)
            checked = range(min(32, count))
            diff = max(float((pair[0][i]["image"] - pair[1][i]["image"]).abs().max()) for i in checked)
            diff_pixels = diff * max(STD) * 255  # back to uint8 grey levels
            same_flip = all(pair[0][i]["pose"] == pair[1][i]["pose"] for i in checked)
            rows.append([f"{source}→{size}", augment, f"{best[0] * 1e6:.0f}", f"{best[1] * 1e6:.0f}",
                         f"{best[0] / best[1]:.2f}", f"{diff_pixels:.2f}", "yes" if same_flip else "NO"])
            data[f"{source}->{size}/{augment}"] = {"reference_us": best[0] * 1e6, "current_us": best[1] * 1e6,
                                                   "max_diff_grey_levels": diff_pixels, "same_flips": same_flip}
    text = (f"FaceDataset[i] per sample (decode-free: in-memory uint8 arrays), 1 thread, CPU µs, fastest of "
            f"{rounds} interleaved rounds over {count} samples\n\n"
            + markdown(rows, ["image", "augment", "before µs", "after µs", "speed-up",
                              "max abs diff (grey levels)", "same flips/labels"]))
    return text, data


# ----------------------------------------------------------------------------- loader


def loader_section(size: int, rounds: int, count: int = 1024, batch: int = 32) -> tuple[str, dict]:
    from phanet.engine import DistInfo, EpochSampler, make_loader

    space = LabelSpace(SEVEN_EXPRESSIONS, tuple(PoseBin(f"p{y}", float(y), 0.0) for y in (-90, -45, 0, 45, 90)))
    dataset = FaceDataset(_faces(count, size), space, FaceTransform(size, MEAN, STD, "light"))
    sampler = EpochSampler(count, 0, DistInfo())

    def epoch_seconds(workers: int, limit: int | None = None) -> float:
        start = time.perf_counter()
        for step, _ in enumerate(make_loader(dataset, batch, sampler, workers, torch.device("cpu"), True)):
            if limit is not None and step + 1 >= limit:
                break
        return time.perf_counter() - start

    results: dict[str, list[float]] = {"0 workers": [], "2 workers": [], "2 workers, first batch": []}
    for _ in range(rounds):
        results["0 workers"].append(epoch_seconds(0))
        results["2 workers"].append(epoch_seconds(2))
        results["2 workers, first batch"].append(epoch_seconds(2, limit=1))
    images = (count // batch) * batch
    rows = [[k, f"{min(v):.2f}", f"{images / min(v):.0f}" if "first" not in k else "—"] for k, v in results.items()]
    text = (f"Engine loader over {count} in-memory {size}px images, augment light, batch {batch}, fastest of {rounds} "
            f"interleaved rounds (load average {load_average()})\n\n"
            + markdown(rows, ["loader", "seconds", "images/s"]))
    return text, {k: min(v) for k, v in results.items()}


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", nargs="+", default=["all"], choices=("all", *SECTIONS))
    parser.add_argument("--size", type=int, default=112, help="training image side for the step sections")
    parser.add_argument("--data-size", type=int, default=64, help="image side for the transform/loader sections")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write the measurements as JSON")
    args = parser.parse_args(argv)
    sections = SECTIONS if "all" in args.sections else tuple(args.sections)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {load_average()}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}\n", flush=True)
    results = {}
    runners = {
        "threads": lambda: threads_section(args.size, args.batch, args.steps, args.rounds),
        "step": lambda: step_section(args.size, args.batch, args.steps, args.rounds),
        "ops": lambda: ops_section(args.size, args.batch),
        "transform": lambda: transform_section(args.data_size, args.rounds),
        "loader": lambda: loader_section(args.data_size, args.rounds),
    }
    for name in sections:
        text, results[name] = runners[name]()
        print(f"## {name}\n\n{text}\n", flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
