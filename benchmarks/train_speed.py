"""Training throughput and peak memory of every PhaNet variant next to its plain backbone, and data-loading speed.

Run by hand (never in CI; tests run the core functions on a tiny setting):

    python benchmarks/train_speed.py                        # CPU, 112x112, batch 32, r18 family
    python benchmarks/train_speed.py --models all --device cuda --batch 128 --steps 20
    python benchmarks/train_speed.py --skip-data            # model part only
    python benchmarks/train_speed.py --skip-data --models phanet_effl0 --size 96 --option frozen_stages=3
                                                            # an option's cost: the variant with it vs without

Model part: for each variant it times full training steps - the engine's own ``train_one_epoch`` over
pre-collated batches of random images (forward, the PhaNet loss with learned task weights, backward,
AdamW, LR schedule) - interleaving the variant and its plain counterpart (same backbone + global
pooling + classifier: ``baseline_r18`` for ResNet-18) round by round, so that machine noise hits both
alike; the ratio is what to read. Peak memory is measured in a fresh subprocess per model: on CPU the
growth of the resident size (the larger of ``ru_maxrss`` and RSS polled while training) over what the
process held before the model was built; on CUDA ``torch.cuda.max_memory_allocated``.

Data part: images/s of the engine's real input pipeline (:class:`FaceDataset` + :class:`FaceTransform`
with ``standard`` augmentation + :func:`phanet.engine.make_loader`) over a dataset in the generic
layout (``labels.csv`` + JPEG files, decoded every epoch) and over the same samples read from the crop
cache (:mod:`phanet.data.cache`), with 0 and N DataLoader workers. The tree is written once under
``--workdir`` (default ``/tmp/phanet_train_speed``), never in the repo.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# Set before torch loads OpenMP: idle OpenMP threads then sleep instead of spinning. On a CPU shared with
# other processes, spinning threads make a 2-thread training step several times slower (see
# benchmarks/README.md); an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from phanet.config import Config, parse_key_values  # noqa: E402
from phanet.data.base import SEVEN_EXPRESSIONS, LabelSpace, PoseBin  # noqa: E402
from phanet.engine import (  # noqa: E402
    StepContext,
    build_model,
    build_optimizer,
    build_scheduler,
    build_task_weighting,
    resolve_device,
    train_one_epoch,
)
from phanet.models import create_model, list_models  # noqa: E402

R18_FAMILY = ("baseline_r18", "mtl_r18", "att_r18", "phanet_r18")
PLAIN = {"resnet18": "baseline_r18"}
POSES = tuple(PoseBin(f"yaw{yaw:+d}", float(yaw), 0.0) for yaw in (-90, -45, 0, 45, 90))
LABEL_SPACE = LabelSpace(SEVEN_EXPRESSIONS, POSES)


# ----------------------------------------------------------------------------- model part


def train_config(name: str, size: int, batch: int, device: str, channels_last: bool = False,
                 options: dict | None = None) -> Config:
    config = Config()
    config.model.name = name
    config.model.pretrained = False
    config.model.input_size = size
    config.model.options = dict(options or {})
    config.train.batch_size = batch
    config.train.device = device
    config.train.channels_last = channels_last
    return config


def plain_options(name: str) -> tuple[str, dict]:
    """The registered name and options of the plain counterpart of variant ``name`` (backbone + GAP)."""
    backbone = create_model(name, num_expressions=2, num_poses=1).config.backbone
    if backbone in PLAIN:
        return PLAIN[backbone], {}
    return name, {"use_attention": False, "use_pose": False, "scale_fusion": "mean"}


class CpuBf16Autocast(torch.nn.Module):
    """Runs the wrapped model's forward under ``torch.autocast("cpu", bfloat16)`` (AMX/AVX512-BF16 CPUs)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return self.model(images)


class StepTimer:
    """A model with its task weighting, AdamW and schedule, trained by the engine's ``train_one_epoch``.

    ``run(steps)`` performs ``steps`` real training steps on one fixed random batch and returns the
    seconds they took (synchronised on CUDA). ``compile=True`` wraps the model in ``torch.compile``;
    ``cpu_bf16=True`` runs its forward under CPU bf16 autocast (the engine's ``amp`` is CUDA-only).
    """

    def __init__(self, name: str, size: int = 112, batch: int = 32, device: str = "cpu",
                 channels_last: bool = False, compile: bool = False, amp: bool = True, options: dict | None = None,
                 seed: int = 0, cpu_bf16: bool = False):
        torch.manual_seed(seed)
        self.config = train_config(name, size, batch, device, channels_last, options)
        self.device = resolve_device(device)
        model = build_model(self.config, LABEL_SPACE).to(self.device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        weighting = build_task_weighting(model, self.config).to(self.device)
        optimizer = build_optimizer(model, weighting, self.config)
        scheduler = build_scheduler(optimizer, self.config, steps_per_epoch=10_000)
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.device.type == "cuda" and amp)
        self.model = torch.compile(model) if compile else model
        if cpu_bf16:
            self.model = CpuBf16Autocast(self.model)
        self.ctx = StepContext(weighting, optimizer, scheduler, scaler, self.device, amp=amp,
                               channels_last=channels_last, progress=False)
        generator = torch.Generator().manual_seed(seed)
        self.batch = {
            "image": torch.randn(batch, 3, size, size, generator=generator),
            "expression": torch.randint(0, LABEL_SPACE.num_expressions, (batch,), generator=generator),
            "pose": torch.randint(0, LABEL_SPACE.num_poses, (batch,), generator=generator),
            "index": torch.arange(batch),
            "skipped": 0,
        }
        if self.device.type == "cuda":
            self.batch = {k: v.pin_memory() if torch.is_tensor(v) else v for k, v in self.batch.items()}

    @property
    def batch_size(self) -> int:
        return len(self.batch["expression"])

    def run(self, steps: int) -> tuple[float, float]:
        """``steps`` training steps; returns (wall seconds, CPU seconds of this process)."""
        self._sync()
        wall, cpu = time.perf_counter(), time.process_time()
        train_one_epoch(self.model, [self.batch] * steps, self.ctx, epoch=0)
        self._sync()
        return time.perf_counter() - wall, time.process_time() - cpu

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def training_step_gflop(model: torch.nn.Module, size: int, batch: int) -> float:
    """GFLOP of one training step: 3x the forward pass (the backward pass costs about twice the forward:
    gradients for inputs and for weights), the forward counted by torch's FlopCounterMode (convolutions
    and matrix products; element-wise work is left out) on a copy of the model at the timed shape.

    The backward is not counted directly because FlopCounterMode's convolution-backward formula ignores
    ``groups`` (torch 2.14: a depthwise 3x3 convolution's backward counts 258x its forward, not 2x), which
    would inflate EfficientNet's count about 15-fold.
    """
    import copy

    from torch.utils.flop_counter import FlopCounterMode

    probe = copy.deepcopy(model).train()
    images = torch.randn(batch, 3, size, size, device=next(probe.parameters()).device)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        probe(images)
    return 3 * counter.get_total_flops() / 1e9


def sgemm_gflops(side: int = 2048, repeats: int = 5) -> float:
    """The machine's fp32 matrix-multiply rate at torch's current thread count: the best of ``repeats``
    square ``side`` x ``side`` products, in GFLOP/s (the ceiling a training step's convolutions aim at)."""
    a, b = torch.randn(side, side), torch.randn(side, side)
    a @ b  # warm-up: thread pool and BLAS kernels
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * side**3 / best / 1e9


def interleaved_step_times(timers: list[StepTimer], steps: int, rounds: int, warmup: int = 2) -> list[dict]:
    """Seconds per training step of each timer, from interleaved rounds of ``steps`` steps.

    Returns per timer ``{"wall": s, "cpu": s}``, each the minimum over rounds (the round least disturbed
    by other processes). On a shared CPU, the CPU-time ratios (at 1 thread) are the stable ones; wall
    time is what a user waits for on a free machine.
    """
    for timer in timers:
        timer.run(warmup)
    per_round: list[list[tuple[float, float]]] = [[] for _ in timers]
    for _ in range(rounds):
        for times, timer in zip(per_round, timers):
            wall, cpu = timer.run(steps)
            times.append((wall / steps, cpu / steps))
    return [{"wall": min(w for w, _ in times), "cpu": min(c for _, c in times)} for times in per_round]


def peak_memory_mb(name: str, size: int, batch: int, device: str, steps: int = 3, options: dict | None = None,
                   channels_last: bool = False) -> float:
    """Peak training memory of ``name`` in MB, measured in a fresh subprocess (see module docstring)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--probe-memory", name, "--size", str(size),
               "--batch", str(batch), "--device", device, "--steps", str(steps),
               "--options", json.dumps(options or {})]
    if channels_last:
        command.append("--channels-last")
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_mb"])


def _current_rss_kib() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize() // 1024


def _probe_memory(name: str, size: int, batch: int, device: str, steps: int, options: dict,
                  channels_last: bool) -> None:
    """In the subprocess: train ``steps`` steps and print the peak memory growth as JSON.

    On CPU the peak is the larger of ``ru_maxrss`` and the resident size polled every 2 ms while
    training (the poll catches a training peak that stays below a transient peak of the imports).
    """
    import threading

    before_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before = _current_rss_kib()
    polled = [before]
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.002):
            polled[0] = max(polled[0], _current_rss_kib())

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    timer = StepTimer(name, size, batch, device, channels_last=channels_last, options=options)
    if timer.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(timer.device)
    timer.run(steps)
    done.set()
    watcher.join()
    if timer.device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(timer.device) / 2**20
    else:  # ru_maxrss and statm-derived sizes in KiB (Linux)
        after_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = (max(polled[0], after_max if after_max > before_max else 0) - before) / 1024
    print(json.dumps({"model": name, "peak_mb": peak}))


def compare_models(names: list[str], size: int, batch: int, device: str, steps: int, rounds: int,
                   memory: bool = True, channels_last: bool = False, options: dict | None = None) -> list[dict]:
    """Per variant: img/s and peak memory next to its plain counterpart, timed in the same interleaved loop.

    With ``options`` (model.options) each variant is built with them and its counterpart is the same
    variant without them, so the ratio is the options' cost.
    """
    rows = []
    for name in names:
        plain_name, plain_opts = (name, {}) if options else plain_options(name)
        variant = StepTimer(name, size, batch, device, channels_last=channels_last, options=options)
        plain = StepTimer(plain_name, size, batch, device, channels_last=channels_last, options=plain_opts)
        variant_t, plain_t = interleaved_step_times([variant, plain], steps, rounds)
        plain_label = plain_name if not plain_opts else f"{variant.model.config.backbone}+gap"
        if options:
            plain_label = "no options"
        row = {
            "model": name + (f" {options}" if options else ""), "plain": plain_label,
            "params_m": sum(p.numel() for p in variant.model.parameters()) / 1e6,
            "step_ms": variant_t["wall"] * 1e3, "plain_step_ms": plain_t["wall"] * 1e3,
            "images_per_s": batch / variant_t["wall"], "plain_images_per_s": batch / plain_t["wall"],
            "step_ratio": variant_t["wall"] / plain_t["wall"],
            "cpu_step_ms": variant_t["cpu"] * 1e3, "plain_cpu_step_ms": plain_t["cpu"] * 1e3,
            "cpu_ratio": variant_t["cpu"] / plain_t["cpu"],
        }
        if not device.startswith("cuda"):
            row["gflop_per_step"] = training_step_gflop(variant.model, size, batch)
            row["plain_gflop_per_step"] = training_step_gflop(plain.model, size, batch)
            row["gflops"] = row["gflop_per_step"] / variant_t["wall"]
            row["plain_gflops"] = row["plain_gflop_per_step"] / plain_t["wall"]
        del variant, plain
        if memory:
            row["peak_mb"] = peak_memory_mb(name, size, batch, device, options=options, channels_last=channels_last)
            row["plain_peak_mb"] = peak_memory_mb(plain_name, size, batch, device, options=plain_opts,
                                                  channels_last=channels_last)
            row["memory_ratio"] = row["peak_mb"] / row["plain_peak_mb"]
        rows.append(row)
    return rows


def model_table(rows: list[dict], cuda: bool = False) -> str:
    memory = "peak_mb" in rows[0]
    header = ["model", "plain", "params M", "step ms", "plain ms", "img/s", "plain img/s", "wall ratio"]
    if not cuda:
        header += ["CPU-time ratio"]
    flops = "gflops" in rows[0]
    if flops:
        header += ["GFLOP/s", "plain GFLOP/s"]
    if memory:
        header += ["peak MB", "plain MB", "mem ratio"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        cells = [r["model"], r["plain"], f"{r['params_m']:.2f}", f"{r['step_ms']:.0f}", f"{r['plain_step_ms']:.0f}",
                 f"{r['images_per_s']:.1f}", f"{r['plain_images_per_s']:.1f}", f"{r['step_ratio']:.2f}"]
        if not cuda:
            cells.append(f"{r['cpu_ratio']:.2f}")
        if flops:
            cells += [f"{r['gflops']:.1f}", f"{r['plain_gflops']:.1f}"]
        if memory:
            cells += [f"{r['peak_mb']:.0f}", f"{r['plain_peak_mb']:.0f}", f"{r['memory_ratio']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- data part


def write_generic_tree(root: Path, subjects: int, image_size: int, seed: int = 0) -> int:
    """A generic-layout tree (``labels.csv`` + JPEGs) of ``subjects`` x 7 expressions x 5 poses.

    Pictures are smooth, face-like and ``image_size`` pixels square (JPEG quality 94), so decoding costs
    what a real portrait of that size costs. Written once; returns the number of images.
    """
    from PIL import Image

    labels = root / "labels.csv"
    rows = []
    for subject in range(subjects):
        for e, expression in enumerate(SEVEN_EXPRESSIONS):
            for p, pose in enumerate(POSES):
                rows.append((f"s{subject:03d}/{expression}_{pose.name}.jpg", expression, pose, subject,
                             (subject * 7 + e) * 5 + p))
    if labels.is_file() and len(labels.read_text().splitlines()) == len(rows) + 1:
        return len(rows)
    lines = ["image,expression,pose,subject,yaw,pitch,split"]
    for path, expression, pose, subject, k in rows:
        file = root / path
        file.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_face_like_picture(seed + k, image_size)).save(file, "JPEG", quality=94)
        lines.append(f"{path},{expression},{pose.name},s{subject:03d},{pose.yaw:g},0,")
    labels.write_text("\n".join(lines) + "\n")
    return len(rows)


def _face_like_picture(seed: int, size: int) -> np.ndarray:
    """Smooth random background with a bright ellipse and mild noise: JPEG-compresses like a portrait."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(40, 220, (8, 8, 3), dtype=np.uint8))
    image = np.asarray(coarse.resize((size, size), Image.BICUBIC)).astype(np.int16)
    yy, xx = np.mgrid[:size, :size]
    face = ((xx - size / 2) / (0.3 * size)) ** 2 + ((yy - 0.45 * size) / (0.38 * size)) ** 2 < 1
    image[face] = (image[face] + np.array([210, 170, 150])) // 2
    image += rng.integers(-6, 7, image.shape, dtype=np.int16)
    return np.clip(image, 0, 255).astype(np.uint8)


def loader_images_per_s(index, size: int, workers: int, batch: int = 64, augment: str = "standard",
                        epochs: int = 2) -> float:
    """Images/s of the engine's training input pipeline over ``index`` (worker start-up included)."""
    from phanet.data.base import FaceDataset
    from phanet.data.transforms import FaceTransform
    from phanet.engine import DistInfo, EpochSampler, make_loader

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    dataset = FaceDataset(index.samples, index.label_space, FaceTransform(size, mean, std, augment))
    sampler = EpochSampler(len(dataset), 0, DistInfo(), shuffle=True)
    seen = 0
    start = time.perf_counter()
    for epoch in range(epochs):
        dataset.epoch = epoch
        sampler.set_epoch(epoch)
        for out in make_loader(dataset, batch, sampler, workers, torch.device("cpu"), drop_last=False):
            seen += len(out["expression"])
    return seen / (time.perf_counter() - start)


def compare_data(workdir: Path, subjects: int, image_size: int, size: int, workers: list[int],
                 rounds: int = 2) -> list[dict]:
    """Images/s of generic JPEGs vs the crop cache, for each worker count, interleaved over ``rounds``."""
    from phanet.data.cache import build_cache, load_cached
    from phanet.data.registry import load_dataset

    tree = workdir / f"generic-{subjects}x{image_size}"
    count = write_generic_tree(tree, subjects, image_size)
    index = load_dataset("generic", tree)
    start = time.perf_counter()
    cache = build_cache(index, size, workdir / "cache", progress=False)
    build_seconds = time.perf_counter() - start
    cached = load_cached(index, cache, size)
    rows = []
    for n in workers:
        files, crops = [], []
        for _ in range(rounds):
            files.append(loader_images_per_s(index, size, n))
            crops.append(loader_images_per_s(cached, size, n))
        rows.append({"workers": n, "images": count, "image_size": image_size, "size": size,
                     "generic_images_per_s": max(files), "cache_images_per_s": max(crops),
                     "cache_build_s": build_seconds})
    return rows


def data_table(rows: list[dict]) -> str:
    lines = ["| loader workers | generic JPEG img/s | cached crops img/s | cache speed-up |",
             "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['workers']} | {r['generic_images_per_s']:.0f} | {r['cache_images_per_s']:.0f} | "
                     f"{r['cache_images_per_s'] / r['generic_images_per_s']:.2f} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line(device: str) -> str:
    device = str(resolve_device(device))
    where = torch.cuda.get_device_name() if device.startswith("cuda") else f"{cpu_name()}, {os.cpu_count()} CPUs"
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return (f"torch {torch.__version__}, {device} ({where}), {torch.get_num_threads()} threads{load}, "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, python {platform.python_version()}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="*", default=list(R18_FAMILY),
                        help="variants to time ('all': every registered model); default: the r18 ablation family")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3, help="training steps per timed round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the fastest is kept)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                        help="NHWC model and batches, the engine default (train.channels_last; default: on)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="build each variant with this model option and compare it with the variant without")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--skip-models", action="store_true")
    parser.add_argument("--skip-data", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/phanet_train_speed"))
    parser.add_argument("--data-subjects", type=int, default=40, help="subjects x 35 images in the data tree")
    parser.add_argument("--image-size", type=int, default=256, help="side of the JPEGs in the data tree")
    parser.add_argument("--workers", type=int, nargs="*", default=[0, 2], help="DataLoader worker counts")
    parser.add_argument("--out", type=Path, default=None, help="write all results as JSON")
    parser.add_argument("--probe-memory", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.probe_memory:
        _probe_memory(args.probe_memory, args.size, args.batch, args.device, args.steps, json.loads(args.options),
                      args.channels_last)
        return

    results = {"machine": machine_line(args.device), "args": {k: str(v) for k, v in vars(args).items()}}
    print(results["machine"])
    if not args.skip_models:
        names = list_models() if args.models == ["all"] else args.models
        print(f"\nTraining step at {args.size}x{args.size}, batch {args.batch}, {args.device}"
              f"{', channels-last' if args.channels_last else ''}: fastest of {args.rounds} interleaved rounds of "
              f"{args.steps} steps (engine train_one_epoch: forward, loss, backward, AdamW); peak memory in a fresh "
              f"process per model ({'max_memory_allocated' if args.device.startswith('cuda') else 'RSS growth'})\n")
        options = parse_key_values(args.option, "--option", "KEY=VALUE, e.g. frozen_stages=3")
        results["models"] = compare_models(names, args.size, args.batch, args.device, args.steps, args.rounds,
                                           memory=not args.no_memory, channels_last=args.channels_last, options=options)
        print(model_table(results["models"], cuda=args.device.startswith("cuda")))
        if not args.device.startswith("cuda"):
            results["sgemm_gflops"] = sgemm_gflops()
            print(f"\nThis CPU's fp32 matrix product (2048x2048, {torch.get_num_threads()} threads): "
                  f"{results['sgemm_gflops']:.0f} GFLOP/s. Share of it reached by the training steps (convolution "
                  f"and matmul FLOPs: 3x the forward's, torch FlopCounterMode, over the step's wall time):")
            for row in results["models"]:
                print(f"  {row['model']}: {100 * row['gflops'] / results['sgemm_gflops']:.1f}%  "
                      f"(plain {row['plain']}: {100 * row['plain_gflops'] / results['sgemm_gflops']:.1f}%; "
                      f"{row['gflop_per_step']:.2f} GFLOP per step)")
    if not args.skip_data:
        print(f"\nData loading to {args.size}x{args.size} tensors (FaceDataset + FaceTransform 'standard' + "
              f"engine make_loader, batch 64, 2 epochs incl. worker start-up): {args.data_subjects * 35} "
              f"{args.image_size}x{args.image_size} JPEGs in the generic layout vs the crop cache\n")
        results["data"] = compare_data(args.workdir, args.data_subjects, args.image_size, args.size, args.workers)
        print(data_table(results["data"]))
        print(f"\n(building the cache once took {results['data'][0]['cache_build_s']:.1f} s)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
