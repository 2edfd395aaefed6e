"""Training, evaluation and cross-validation, in the shape of torchvision's reference scripts.

``train_one_epoch`` and ``evaluate`` are the building blocks; ``fit`` runs one fold end to end (data,
model, AdamW with warm-up + cosine, early stopping on a validation split, best/last checkpoints,
report); ``cross_validate`` runs every fold and aggregates them.

Scale-out: launched by ``torchrun`` (``RANK``/``WORLD_SIZE`` in the environment) the same code runs
data-parallel with DistributedDataParallel (NCCL on GPU, gloo on CPU); rank 0 alone writes files.

Reproducibility and resume: the order of samples comes from :class:`EpochSampler` (seeded by run
seed and epoch) and augmentation from a generator seeded per (seed, epoch, sample), so an
interrupted run (Ctrl-C or SIGTERM saves ``resume.pt`` at the current step) continues to the same
result as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
from tqdm import tqdm

from phanet.checkpoint import save_checkpoint
from phanet.config import Config, save_config
from phanet.data.base import FaceDataset, LabelSpace
from phanet.data.registry import DatasetIndex
from phanet.data.transforms import FaceTransform
from phanet.diagnostics import attention_entropy, head_gradient_norms, scale_report
from phanet.distributed import (
    DistInfo,
    EpochSampler,
    all_gather_objects,
    any_rank,
    init_distributed,
    make_loader,
    resolve_device,
    seed_everything,
)
from phanet.intensity_targets import intensity_targets_for
from phanet.losses import FixedTaskWeights, LearnedTaskWeights, phanet_loss
from phanet.metrics import classification_report
from phanet.models import check_model_options, create_model
from phanet.resume import (
    RESUME_FILE,
    load_resume_point,
    save_resume_point,
    set_rng_state,
    stop_on_signals,
)

log = logging.getLogger(__name__)

# What each epoch's history record keeps of the validation report (see phanet.diagnostics).
VAL_DIAGNOSTICS = ("pose_accuracy", "scale_accuracy", "attention_entropy", "gate_entropy", "gate_entropy_per_pose",
                   "mean_scale_weights_per_pose")


class TrainingInterrupted(Exception):
    """Raised after a stop signal, once the resume point has been written (``saved``).

    ``where`` says when training stopped (``"stopped at epoch 2, step 5"``), ``out_dir`` is the run folder
    whose ``resume.pt`` continues the run (``fit(..., resume=True)``); ``saved`` is False when the signal
    came outside a training step, so that no resume point was written for it. The commands (phanet.commands)
    turn these into the command line that continues the run.
    """

    def __init__(self, where: str, out_dir: str | Path | None = None, saved: bool = True):
        self.where, self.saved = where, saved
        self.out_dir = Path(out_dir) if out_dir is not None else None
        message = where
        if self.out_dir is not None and saved:
            message = f"{where}; the resume point is {self.out_dir / RESUME_FILE}"
        elif self.out_dir is not None:
            message = f"{where}; no resume point was written ({self.out_dir / RESUME_FILE}, if any, is an older one)"
        super().__init__(message)


# ----------------------------------------------------------------------------- model / optimisation


def build_model(config: Config, label_space: LabelSpace, crop: dict | None = None) -> nn.Module:
    """The configured model for ``label_space``, built with its data config (``crop``: the
    face-crop contract of the training images, recorded in its checkpoints)."""
    check_model_options(config.model.name, config.model.options)
    try:
        # A dataset without pose bins still gets a 1-bin pose head (all labels unknown), so the
        # architecture does not change with the dataset (create_model).
        return create_model(config.model.name, label_space=label_space, input_size=config.model.input_size,
                            crop=crop, pretrained=config.model.pretrained, **config.model.options)
    except (TypeError, KeyError) as err:
        message = err.args[0] if err.args else str(err)
        raise ValueError(f"model {config.model.name!r} with model.options={config.model.options}: {message}") from None


def build_task_weighting(model: nn.Module, config: Config) -> nn.Module:
    names = model.task_names
    if config.train.loss_weighting == "learned":
        return LearnedTaskWeights(names)
    if config.train.loss_weighting == "fixed":
        return FixedTaskWeights(names, config.train.fixed_weights)
    raise ValueError(f"train.loss_weighting={config.train.loss_weighting!r}; expected learned or fixed")


def build_optimizer(model: nn.Module, weighting: nn.Module, config: Config) -> torch.optim.Optimizer:
    """AdamW; no weight decay on norms, biases, gains and the learned task log-variances.

    The backbone runs at ``lr``; the heads (attention, pose branch, gate, classifiers, task weights)
    at ``lr * train.head_lr_mult``: freshly initialised heads on a pretrained backbone can move
    faster than the features they read without wrecking them. Each group's ``lr_mult`` is kept so the
    schedule scales every group alike.
    """
    train = config.train
    groups = model.parameter_groups(train.head_lr_mult)
    # the task log-variances join the heads' group without decay (created if the model has none)
    no_decay = next((g for g in groups if g["part"] == "head" and not g["decay"]), None)
    if no_decay is None:
        no_decay = {"params": [], "part": "head", "decay": False, "lr_mult": train.head_lr_mult}
        groups.append(no_decay)
    no_decay["params"] = [*no_decay["params"], *weighting.parameters()]
    return torch.optim.AdamW([{"params": g["params"], "weight_decay": train.weight_decay if g["decay"] else 0.0,
                               "lr": train.lr * g["lr_mult"], "lr_mult": g["lr_mult"]}
                              for g in groups if g["params"]], lr=train.lr)


def build_scheduler(optimizer, config: Config, steps_per_epoch: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up then cosine decay to zero, stepped per batch."""
    total = max(1, config.train.epochs * steps_per_epoch)
    warmup = min(total - 1, int(round(config.train.warmup_epochs * steps_per_epoch)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX), where bf16 autocast pays."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def autocast_for(device: torch.device, amp: bool, cpu_bf16: bool = False):
    """bf16 autocast on GPUs that support it, fp16 otherwise; on CPU bf16 only when ``cpu_bf16``."""
    if device.type == "cpu" and cpu_bf16:
        return torch.autocast(device_type="cpu", dtype=torch.bfloat16)
    if device.type != "cuda" or not amp:
        return nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


# ----------------------------------------------------------------------------- train / evaluate


@dataclass
class StepContext:
    """What ``train_one_epoch`` needs besides model and data; grouped to keep signatures short."""

    weighting: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    device: torch.device
    amp: bool = True
    label_smoothing: float = 0.0
    gate_balance: float = 0.0  # train.gate_balance (phanet.losses.gate_balance_penalty)
    channels_last: bool = False
    dist_info: DistInfo = field(default_factory=DistInfo)
    should_stop: Callable[[], bool] = lambda: False
    on_step: Callable[[int, int], None] | None = None  # (epoch, step) after each optimiser step
    progress: bool = True
    diagnostics: bool = True  # mean gradient norm per head in each epoch's record (phanet.diagnostics)
    cpu_bf16: bool = False  # bf16 autocast of training steps on CPU (train.cpu_amp)
    # train.intensity_labels: (expression [B], dataset index [B]) -> target probabilities [B, E]; None: one-hot
    graded_targets: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None


def train_one_epoch(model: nn.Module, loader, ctx: StepContext, epoch: int, start_step: int = 0) -> dict:
    """One pass over ``loader``; returns mean loss, accuracy, skipped count and ``stopped_at`` step.

    ``stopped_at`` is the number of steps done in this epoch when a stop was requested (None when
    the epoch completed): the caller writes the resume point.
    """
    model.train()
    totals = {"loss": 0.0, "correct": 0, "seen": 0, "skipped": 0}
    components: dict[str, float] = {}
    grad_norms: dict[str, torch.Tensor] = {}  # summed on the device, read back once at the end
    grad_steps = 0
    step = start_step
    bar = tqdm(loader, desc=f"epoch {epoch + 1} train", leave=False, disable=not ctx.progress,
               initial=start_step, total=start_step + len(loader))
    for batch in bar:
        totals["skipped"] += batch["skipped"]
        if "image" in batch:
            images = batch["image"].to(ctx.device, non_blocking=True)
            if ctx.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            expression = batch["expression"].to(ctx.device, non_blocking=True)
            pose = batch["pose"].to(ctx.device, non_blocking=True)
            with autocast_for(ctx.device, ctx.amp, ctx.cpu_bf16):
                output = model(images)
            output = type(output)(*(o.float() if torch.is_tensor(o) else o for o in output))
            target = expression if ctx.graded_targets is None else ctx.graded_targets(expression, batch["index"])
            loss = phanet_loss(output, target, pose, ctx.weighting, ctx.label_smoothing, ctx.gate_balance)
            ctx.optimizer.zero_grad(set_to_none=True)
            ctx.scaler.scale(loss.total).backward()
            if ctx.diagnostics:
                scale = ctx.scaler.get_scale() if ctx.scaler.is_enabled() else 1.0  # fp16 loss scaling
                for head, norm in head_gradient_norms(model).items():
                    grad_norms[head] = grad_norms.get(head, 0.0) + norm / scale
                grad_steps += 1
            ctx.scaler.step(ctx.optimizer)
            ctx.scaler.update()
            totals["loss"] += float(loss.total.detach()) * len(expression)
            totals["correct"] += int((output.expression_logits.argmax(1) == expression).sum())
            totals["seen"] += len(expression)
            for name, value in loss.components.items():
                components[name] = components.get(name, 0.0) + float(value.detach()) * len(expression)
            bar.set_postfix(loss=f"{totals['loss'] / totals['seen']:.3f}")
        # Step the schedule even for an all-corrupt batch, so the schedule is a function of the step.
        ctx.scheduler.step()
        step += 1
        if ctx.on_step is not None:
            ctx.on_step(epoch, step)
        if any_rank(ctx.should_stop(), ctx.dist_info):
            bar.close()
            return {**_epoch_summary(totals, components, grad_norms, grad_steps), "stopped_at": step}
    return {**_epoch_summary(totals, components, grad_norms, grad_steps), "stopped_at": None}


def _epoch_summary(totals: dict, components: dict, grad_norms: dict, grad_steps: int) -> dict:
    seen = max(1, totals["seen"])
    return {
        "grad_norm_sums": {head: float(total) for head, total in grad_norms.items()},
        "grad_steps": grad_steps,
        "loss": totals["loss"] / seen,
        "accuracy": totals["correct"] / seen,
        "skipped": totals["skipped"],
        "components": {k: v / seen for k, v in components.items()},
    }


@torch.no_grad()
def predict(model: nn.Module, loader, device: torch.device, amp: bool = True, progress: bool = False,
            dist_info: DistInfo | None = None) -> dict[str, np.ndarray]:
    """Run the model over ``loader``; predictions, labels and scale weights keyed by dataset index.

    Under DDP each rank predicts its shard and the shards are gathered, so every rank returns the
    full, de-duplicated, index-sorted arrays.
    """
    dist_info = dist_info or DistInfo()
    model.eval()
    rows: dict[str, list] = {k: [] for k in ("index", "expression", "pose", "pred", "probs", "pose_pred",
                                              "scale_weights", "scale_pred", "attention_entropy")}
    skipped = 0
    for batch in tqdm(loader, desc="evaluate", leave=False, disable=not progress):
        skipped += batch["skipped"]
        if "image" not in batch:
            continue
        with autocast_for(device, amp):
            output = model(batch["image"].to(device, non_blocking=True), return_attention=True)
        probs = output.expression_logits.float().softmax(-1).cpu()
        rows["index"].append(batch["index"])
        rows["expression"].append(batch["expression"])
        rows["pose"].append(batch["pose"])
        rows["probs"].append(probs)
        rows["pred"].append(probs.argmax(-1))
        if output.pose_logits is not None:
            rows["pose_pred"].append(output.pose_logits.float().argmax(-1).cpu())
        if output.scale_weights is not None:
            rows["scale_weights"].append(output.scale_weights.float().cpu())
        if output.scale_logits is not None:
            rows["scale_pred"].append(output.scale_logits.float().argmax(-1).cpu())
        if output.attention_maps is not None:
            entropies = [attention_entropy(m) for m in output.attention_maps]
            rows["attention_entropy"].append(torch.stack(entropies, dim=1).cpu())
    local = {k: torch.cat(v).numpy() for k, v in rows.items() if v}
    local["skipped"] = skipped
    shards = all_gather_objects(local, dist_info)
    merged = {k: np.concatenate([s[k] for s in shards if k in s]) for k in local if k != "skipped"}
    merged["skipped"] = sum(s["skipped"] for s in shards)
    if "index" in merged:
        _, first = np.unique(merged["index"], return_index=True)  # padding duplicates
        for key in list(merged):
            if key != "skipped":
                merged[key] = merged[key][first]
    return merged


def evaluate(model: nn.Module, loader, device: torch.device, label_space: LabelSpace, amp: bool = True,
             progress: bool = False, dist_info: DistInfo | None = None) -> dict:
    """Accuracy overall / per expression / per pose, macro-F1, confusion matrix, pose accuracy, scale
    weights per pose, as a JSON-able dict."""
    return _evaluate(model, loader, device, label_space, amp, progress, dist_info)[0]


def _evaluate(model: nn.Module, loader, device: torch.device, label_space: LabelSpace, amp: bool = True,
              progress: bool = False, dist_info: DistInfo | None = None) -> tuple[dict, dict[str, np.ndarray]]:
    """:func:`evaluate`, and the arrays of :func:`predict` the metrics come from (for the report)."""
    arrays = predict(model, loader, device, amp, progress, dist_info)
    if "index" not in arrays:
        return {"num_samples": 0, "accuracy": float("nan"), "skipped": arrays["skipped"]}, arrays
    pose_names = [p.name for p in label_space.poses]
    report = classification_report(arrays["expression"], arrays["pred"], list(label_space.expressions),
                                   arrays["pose"], pose_names)
    report["skipped"] = int(arrays["skipped"])
    known = arrays["pose"] >= 0
    if "pose_pred" in arrays and known.any():
        report["pose_accuracy"] = float((arrays["pose_pred"][known] == arrays["pose"][known]).mean())
    if "scale_weights" in arrays:
        weights = arrays["scale_weights"]
        report["mean_scale_weights"] = weights.mean(0).tolist()
        report["mean_scale_weights_per_pose"] = {
            name: weights[arrays["pose"] == i].mean(0).tolist()
            for i, name in enumerate(pose_names) if (arrays["pose"] == i).any()
        }
    report.update(scale_report(arrays, pose_names))
    return report, arrays


# ----------------------------------------------------------------------------- fit / cross-validate


@dataclass
class PreparedData:
    index: DatasetIndex
    split: dict[str, list[int]]


def prepare_data(config: Config, out_dir: Path, dist_info: DistInfo) -> PreparedData:
    """Index the dataset, apply the cache, and compute this fold's split (fold file under the run)."""
    from phanet.data.protocols import make_split
    from phanet.data.registry import load_dataset

    data = config.data
    index = load_dataset(data.dataset, data.root, **data.options)
    if not index.samples:
        raise ValueError(f"dataset {data.dataset!r} at {data.root} has no usable samples")
    for problem in index.problems[:20]:
        log.warning("%s: %s", data.dataset, problem)
    if len(index.problems) > 20:
        log.warning("%s: ... and %d more problems (see `phanet data check`)", data.dataset, len(index.problems) - 20)
    raw_index = index  # duplicates/leaks are checked on the original files, not on the cache
    if data.align_faces and not data.cache_dir:
        raise ValueError("data.align_faces=true needs a cache folder (--cache-dir / data.cache_dir): aligned face "
                         "crops are made once, by `phanet data prepare --align` or at the start of training")
    if data.cache_dir:
        from phanet.crop import DEFAULT_PADDING
        from phanet.data.cache import build_cache, load_cached

        if dist_info.is_main:  # aligned: face-crop contract crops (index.crop, recorded in checkpoints)
            build_cache(index, config.model.input_size, data.cache_dir, align=data.align_faces)
        if dist_info.enabled:
            dist.barrier()
        index = load_cached(index, data.cache_dir, config.model.input_size, align=data.align_faces,
                            padding=DEFAULT_PADDING)
    fold_file = Path(data.fold_file) if data.fold_file else out_dir / "folds.json"
    protocol = data.protocol or index.default_protocol
    if dist_info.is_main:
        split = make_split(index, protocol, fold=data.fold, k=data.folds, seed=data.seed,
                           val_fraction=data.val_fraction, fold_file=fold_file)
    if dist_info.enabled:
        dist.barrier()
    if not dist_info.is_main:  # read the fold file rank 0 wrote, so every rank has the same split
        split = make_split(index, protocol, fold=data.fold, k=data.folds, seed=data.seed,
                           val_fraction=data.val_fraction, fold_file=fold_file)
    from phanet.data.check import refuse_leaks

    refuse_leaks(raw_index, split, data.allow_leaks)
    return PreparedData(index, split)


def fit(
    config: Config,
    out_dir: str | Path,
    data: PreparedData | None = None,
    resume: bool = False,
    progress: bool = True,
    on_step: Callable[[int, int], None] | None = None,
    write_report: bool = True,
    overwrite: bool = False,
) -> dict:
    """Train one model on one split and evaluate it; returns the test metrics (JSON-able dict).

    The run folder is owned by this process while it runs (:class:`phanet.runfolder.RunLock`, rank 0
    only): a second writer gets an error naming the holder. An existing run is continued only with
    ``resume=True`` (an error when the folder holds no resumable run) and replaced only with
    ``overwrite=True`` (its files are removed first); otherwise it is an error.

    ``data`` lets a caller (the demo, cross-validation) pass an already indexed dataset and split;
    otherwise it comes from ``config.data``. With ``resume=True`` and ``out_dir/resume.pt`` present,
    training continues where it stopped. Writes (rank 0 only) under ``out_dir``: ``config.yaml``,
    ``best``/``last`` checkpoints, ``resume.pt``, ``history.json``, ``metrics.json`` and the report;
    ``resume.pt`` is deleted once the run completes unless ``train.keep_resume``.
    """
    from phanet.config import validate_config
    from phanet.runfolder import RunFolderError, RunLock, prepare_run_folder

    validate_config(config)
    check_model_options(config.model.name, config.model.options)  # before any data is read
    out_dir = Path(out_dir)
    dist_info = init_distributed(config.train.device)
    lock = RunLock(out_dir, enabled=dist_info.is_main)
    failed = None
    if dist_info.is_main:
        try:
            lock.acquire()
            keep = (Path(config.data.fold_file),) if config.data.fold_file else ()
            prepare_run_folder(out_dir, resume=resume, overwrite=overwrite, keep=keep)
        except RunFolderError as err:
            lock.release()
            failed = err
    if any_rank(failed is not None, dist_info):
        raise failed or RunFolderError(f"{out_dir}: rank 0 cannot use this run folder (see its error)")
    try:
        with terminate_raises(out_dir):
            return _fit_in_owned_folder(config, out_dir, dist_info, data, resume, progress, on_step, write_report)
    finally:
        lock.release()


@contextmanager
def terminate_raises(out_dir: Path):
    """SIGTERM outside a training step (loading data, evaluating) raises :class:`TrainingInterrupted`, so
    the run folder's lock is released; inside the training loop it stops gracefully (``stop_on_signals``)."""
    import signal
    import threading

    def handler(signum, frame):
        raise TrainingInterrupted(f"terminated by {signal.Signals(signum).name} outside a training step", out_dir,
                                  saved=False)

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def merge_epoch_stats(partial: dict | None, stats: dict, batched: int) -> dict:
    """Sums over the steps of one epoch so far (``partial``) plus those of ``stats`` (``batched`` samples
    drawn, of which ``stats["skipped"]`` failed to load): what a resumed epoch's record is made from."""
    seen = batched - stats["skipped"]
    partial = partial or {"loss": 0.0, "correct": 0.0, "seen": 0, "skipped": 0, "components": {}}
    components = dict(partial["components"])
    for name, value in stats["components"].items():
        components[name] = components.get(name, 0.0) + value * seen
    grad_sums = dict(partial.get("grad_norm_sums", {}))
    for head, value in stats.get("grad_norm_sums", {}).items():
        grad_sums[head] = grad_sums.get(head, 0.0) + value
    return {"loss": partial["loss"] + stats["loss"] * seen, "correct": partial["correct"] + stats["accuracy"] * seen,
            "seen": partial["seen"] + seen, "skipped": partial["skipped"] + stats["skipped"], "components": components,
            "grad_norm_sums": grad_sums, "grad_steps": partial.get("grad_steps", 0) + stats.get("grad_steps", 0)}


def epoch_stats_from(partial: dict) -> dict:
    seen = max(1, partial["seen"])
    out = {"loss": partial["loss"] / seen, "accuracy": partial["correct"] / seen, "skipped": partial["skipped"],
           "components": {k: v / seen for k, v in partial["components"].items()}}
    if partial.get("grad_steps"):  # mean gradient norm per head over every step of the epoch (phanet.diagnostics)
        out["grad_norms"] = {k: v / partial["grad_steps"] for k, v in partial["grad_norm_sums"].items()}
    return out


# Training one fold, in the order it happens: _set_up -> _restore_resume_point -> _run_epochs (per epoch:
# _train_epoch, then _end_epoch: validate, record, checkpoints) -> _finish (test the best checkpoint).


@dataclass
class TrainState:
    """How far training has got: what ``resume.pt`` saves (as a plain dict, :meth:`to_dict`) and restores."""

    epoch: int = 0  # epochs completed
    step: int = 0  # steps done in epoch ``epoch`` (non-zero only in a resume point written in mid-epoch)
    best_accuracy: float = -1.0  # score of the best checkpoint (validation accuracy; train accuracy without one)
    best_epoch: int = -1  # 1-based epoch of the best checkpoint
    history: list[dict] = field(default_factory=list)  # one record per completed epoch (history.json)
    partial: dict | None = None  # sums over the steps of epoch ``epoch`` run so far (merge_epoch_stats)

    @property
    def epochs_without_improvement(self) -> int:
        """Completed epochs since the best one: what early stopping counts, across a resume too."""
        return self.epoch - self.best_epoch if self.best_epoch > 0 else self.epoch

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, saved: dict) -> TrainState:
        """From :meth:`to_dict` (a resume point; ``partial`` may be missing from older ones)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in saved.items() if key in names})


@dataclass
class _Run:
    """One fold's training as :func:`_set_up` builds it: data, model, optimisation, and where files go."""

    config: Config
    out_dir: Path
    dist_info: DistInfo
    device: torch.device
    index: DatasetIndex
    split: dict[str, list[int]]
    model: nn.Module
    weighting: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    train_set: FaceDataset
    val_set: FaceDataset
    test_set: FaceDataset
    train_sampler: EpochSampler
    batch_size: int
    steps_per_epoch: int
    meta: dict  # the "training" entry of each checkpoint
    progress: bool
    train_model: nn.Module | None = None  # the model, wrapped by DistributedDataParallel under torchrun

    def eval_loader(self, dataset: FaceDataset) -> torch.utils.data.DataLoader:
        sampler = EpochSampler(len(dataset), 0, self.dist_info, shuffle=False)
        return make_loader(dataset, self.config.train.eval_batch_size, sampler, self.config.train.workers,
                           self.device, drop_last=False)

    def save_model(self, name: str, extra: dict) -> None:
        """The ``best`` or ``last`` checkpoint (rank 0)."""
        if self.dist_info.is_main:
            save_checkpoint(self.out_dir / name, self.model, self.config.to_dict(),
                            extra={"training": {**self.meta, **extra}})

    def write_resume_point(self, state: TrainState) -> None:
        """``resume.pt`` (rank 0): the training objects, the random generators and ``state``."""
        if self.dist_info.is_main:
            save_resume_point(self.out_dir / RESUME_FILE, self.model, self.weighting, self.optimizer,
                              self.scheduler, self.scaler, state.to_dict())


def _fit_in_owned_folder(config: Config, out_dir: Path, dist_info: DistInfo, data: PreparedData | None,
                         resume: bool, progress: bool, on_step: Callable[[int, int], None] | None,
                         write_report: bool) -> dict:
    """:func:`fit` once the run folder is this process's (lock held, existing run checked)."""
    run = _set_up(config, out_dir, dist_info, data, progress, resume)
    state = _restore_resume_point(run) if resume else TrainState()
    run.train_model = run.model
    if dist_info.enabled:
        run.train_model = nn.parallel.DistributedDataParallel(
            run.model, device_ids=[run.device.index] if run.device.type == "cuda" else None)
    started = time.perf_counter()
    _run_epochs(run, state, on_step)
    return _finish(run, state, time.perf_counter() - started, write_report)


def _set_up(config: Config, out_dir: Path, dist_info: DistInfo, data: PreparedData | None,
            progress: bool, resume: bool = False) -> _Run:
    """Write config.yaml, seed, get the data and split, build the model, task weighting and optimiser."""
    train_cfg = config.train
    device = resolve_device(train_cfg.device, dist_info)
    if dist_info.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(config, out_dir / "config.yaml")
    seed_everything(train_cfg.seed)
    recorded_start = recorded_fine_tune_start(out_dir) if resume else None
    if train_cfg.init_from is not None and recorded_start is None:
        from phanet.finetune import resolve_init_source

        resolve_init_source(train_cfg.init_from)  # a missing checkpoint fails now, not after the data is prepared
    if data is not None:
        from phanet.data.check import refuse_leaks

        refuse_leaks(data.index, data.split, config.data.allow_leaks)
    data = data or prepare_data(config, out_dir, dist_info)
    index, split = data.index, data.split
    model = initial_model(config, index)
    fine_tuned_from = recorded_start or fine_tune_start(model, config, out_dir, dist_info.is_main)
    model = model.to(device)
    if train_cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    weighting = build_task_weighting(model, config).to(device)
    train_set, val_set, test_set = (face_dataset(config, data, part, model, augment)
                                    for part, augment in (("train", train_cfg.augment), ("val", "none"),
                                                          ("test", "none")))
    if len(train_set) < 2:
        raise ValueError(f"the training split has {len(train_set)} samples; need at least 2")
    batch_size = min(train_cfg.batch_size, len(train_set) // dist_info.world_size)
    labels = np.array([s.expression for s in train_set.samples]) if train_cfg.balance_classes else None
    train_sampler = EpochSampler(len(train_set), train_cfg.seed, dist_info, shuffle=True, labels=labels)
    steps_per_epoch = train_sampler.per_rank // batch_size
    optimizer = build_optimizer(model, weighting, config)
    scheduler = build_scheduler(optimizer, config, steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda" and train_cfg.amp)
    from phanet.provenance import training_provenance

    meta = {"model": config.model.name, "dataset": index.name, "fold": config.data.fold,
            "provenance": training_provenance(index, split)}
    if fine_tuned_from is not None:
        meta["init_from"] = fine_tuned_from

    return _Run(config=config, out_dir=out_dir, dist_info=dist_info, device=device, index=index, split=split,
                model=model, weighting=weighting, optimizer=optimizer, scheduler=scheduler, scaler=scaler,
                train_set=train_set, val_set=val_set, test_set=test_set, train_sampler=train_sampler,
                batch_size=batch_size, steps_per_epoch=steps_per_epoch, meta=meta, progress=progress)


def initial_model(config: Config, index: DatasetIndex) -> nn.Module:
    """The model at its initial weights: drawn from ``train.init_seed`` when it is set, on a forked
    generator so that the rest of the run (dropout, ...) still follows ``train.seed`` alone."""
    init_seed = config.train.init_seed
    if init_seed is None:
        return build_model(config, index.label_space, index.crop)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        return build_model(config, index.label_space, index.crop)


INIT_FROM_FILE = "init_from.json"  # a fine-tuning run's record of its start, kept in the run folder


def recorded_fine_tune_start(out_dir: Path) -> dict | None:
    """The record :func:`fine_tune_start` left in a run folder (None when there is none). A resumed run takes
    its weights from ``resume.pt`` and reads this instead of loading the source again, which may be gone."""
    path = out_dir / INIT_FROM_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def fine_tune_start(model: nn.Module, config: Config, out_dir: Path, is_main: bool) -> dict | None:
    """With ``train.init_from``, overwrite ``model``'s initial weights by that checkpoint's where they fit
    (:mod:`phanet.finetune`) and return its record of what was copied, also written to the run folder;
    None without."""
    if config.train.init_from is None:
        return None
    from phanet.finetune import init_from_checkpoint

    record = init_from_checkpoint(model, config.train.init_from)
    if is_main:
        (out_dir / INIT_FROM_FILE).write_text(json.dumps(record, indent=2))
    return record


def face_dataset(config: Config, data: PreparedData, part: str, model: nn.Module, augment: str) -> FaceDataset:
    """The samples of one part of the split, transformed for ``model`` (its input size, mean and std)."""
    samples = [data.index.samples[i] for i in data.split.get(part, [])]
    transform = FaceTransform.for_model(model.data_config, augment)
    dataset = FaceDataset(samples, data.index.label_space, transform, strict=config.train.strict)
    dataset.seed = config.train.seed
    return dataset


def _restore_resume_point(run: _Run) -> TrainState:
    """Load ``resume.pt`` into the training objects and the random generators; returns the saved state."""
    path = run.out_dir / RESUME_FILE
    if not path.exists():
        raise ValueError(f"cannot resume: {path} not found")
    saved = load_resume_point(path)
    run.model.load_state_dict(saved["model"])
    run.weighting.load_state_dict(saved["weighting"])
    run.optimizer.load_state_dict(saved["optimizer"])
    run.scheduler.load_state_dict(saved["scheduler"])
    run.scaler.load_state_dict(saved["scaler"])
    set_rng_state(saved["rng"])
    state = TrainState.from_dict(saved["progress"])
    log.info("resuming %s at epoch %d, step %d", path.parent, state.epoch + 1, state.step)
    return state


def _run_epochs(run: _Run, state: TrainState, on_step: Callable[[int, int], None] | None) -> None:
    """Train from ``state`` to ``train.epochs``, or until early stopping (``train.patience`` epochs without a
    better validation accuracy). A stop signal ends the current step, writes the resume point and raises
    :class:`TrainingInterrupted`."""
    train_cfg = run.config.train
    with stop_on_signals() as should_stop:
        ctx = StepContext(weighting=run.weighting, optimizer=run.optimizer, scheduler=run.scheduler,
                          scaler=run.scaler, device=run.device, amp=train_cfg.amp,
                          label_smoothing=train_cfg.label_smoothing, gate_balance=train_cfg.gate_balance,
                          channels_last=train_cfg.channels_last,
                          dist_info=run.dist_info, should_stop=should_stop, on_step=on_step,
                          progress=run.progress and run.dist_info.is_main, cpu_bf16=train_cfg.cpu_amp,
                          graded_targets=intensity_targets_for(run.train_set, run.index.label_space,
                                                               train_cfg.intensity_labels))
        while state.epoch < train_cfg.epochs:
            epoch = state.epoch
            stats = _train_epoch(run, ctx, state)
            stopped_at = stats["stopped_at"]
            if stopped_at is not None and stopped_at < run.steps_per_epoch:  # in mid-epoch: no record yet
                state.step = stopped_at
                run.write_resume_point(state)
                raise TrainingInterrupted(f"stopped at epoch {epoch + 1}, step {stopped_at}", run.out_dir)
            _end_epoch(run, state, stats)
            if stopped_at is not None:
                raise TrainingInterrupted(f"stopped after epoch {epoch + 1}", run.out_dir)
            if train_cfg.patience and state.epochs_without_improvement >= train_cfg.patience:
                log.info("early stopping: no validation improvement for %d epochs", train_cfg.patience)
                break


def _train_epoch(run: _Run, ctx: StepContext, state: TrainState) -> dict:
    """Train epoch ``state.epoch`` from step ``state.step``; returns the epoch's statistics, which include
    the steps run before an interruption (``state.partial``), as in an uninterrupted run."""
    epoch, start_step = state.epoch, state.step
    run.train_set.epoch = epoch
    run.train_sampler.set_epoch(epoch, start=start_step * run.batch_size)
    loader = make_loader(run.train_set, run.batch_size, run.train_sampler, run.config.train.workers, run.device,
                         drop_last=True)
    stats = train_one_epoch(run.train_model, loader, ctx, epoch, start_step=start_step)
    done = (stats["stopped_at"] if stats["stopped_at"] is not None else run.steps_per_epoch) - start_step
    state.partial = merge_epoch_stats(state.partial, stats, done * run.batch_size)
    return {**stats, **epoch_stats_from(state.partial)}


def _end_epoch(run: _Run, state: TrainState, stats: dict) -> None:
    """After a completed epoch: validate, append its record, keep the best checkpoint; then (rank 0) the
    last checkpoint, the resume point and history.json."""
    epoch, train_cfg = state.epoch, run.config.train
    record = _epoch_record(epoch, stats, run.scheduler, run.weighting)
    if len(run.val_set):
        val = evaluate(run.model, run.eval_loader(run.val_set), run.device, run.index.label_space, train_cfg.amp,
                       dist_info=run.dist_info)
        record["val_accuracy"] = val["accuracy"]
        record.update({f"val_{key}": val[key] for key in VAL_DIAGNOSTICS if key in val})
        score = val["accuracy"]
        improved = score > state.best_accuracy
    else:  # no validation split: keep the last epoch as "best"
        score = stats["accuracy"]
        improved = score >= state.best_accuracy
    state.history.append(record)
    if improved:
        state.best_accuracy, state.best_epoch = score, epoch + 1
        run.save_model("best", {"epoch": epoch + 1, "val_accuracy": record.get("val_accuracy")})
    state.epoch, state.step, state.partial = epoch + 1, 0, None
    if run.dist_info.is_main:
        run.save_model("last", {"epoch": epoch + 1})
        run.write_resume_point(state)
        (run.out_dir / "history.json").write_text(json.dumps(state.history, indent=2))
        log.info("epoch %d/%d  loss %.4f  train acc %.3f%s", epoch + 1, train_cfg.epochs, stats["loss"],
                 stats["accuracy"], f"  val acc {record['val_accuracy']:.3f}" if "val_accuracy" in record else "")


def _epoch_record(epoch: int, stats: dict, scheduler, weighting: nn.Module) -> dict:
    """The training part of one epoch's ``history.json`` record (validation is added by the caller)."""
    record = {"epoch": epoch + 1, "train_loss": stats["loss"], "train_accuracy": stats["accuracy"],
              "skipped": stats["skipped"], "lr": scheduler.get_last_lr()[0],
              **{f"loss_{k}": v for k, v in stats["components"].items()}}
    if _learns_task_weights(weighting):
        record["task_weights"] = weighting.weights()
    if "grad_norms" in stats:
        record["grad_norms"] = stats["grad_norms"]
    return record


def _learns_task_weights(weighting: nn.Module) -> bool:
    """Whether the task weights (``weighting.weights()``) are learned, so worth recording; fixed ones are
    constants from the config."""
    return any(p.requires_grad for p in weighting.parameters())


def _finish(run: _Run, state: TrainState, train_seconds: float, write_report: bool) -> dict:
    """Test the best checkpoint (on the test part; on the validation part when there is none), write
    metrics.json and the report (rank 0), drop the resume point unless ``train.keep_resume``."""
    config, dist_info = run.config, run.dist_info
    test_part = run.test_set if len(run.test_set) else run.val_set
    results, best_model, arrays = _test_best_checkpoint(config, run.out_dir, dist_info, run.device, test_part,
                                                        run.eval_loader(test_part), run.progress)
    results.update({
        "model": config.model.name, "dataset": run.index.name, "fold": config.data.fold,
        "split_sizes": {k: len(v) for k, v in run.split.items()},
        "evaluated_on": "test" if len(run.test_set) else "val",
        "best_epoch": state.best_epoch, "epochs_run": len(state.history), "train_seconds": train_seconds,
        "world_size": dist_info.world_size, "device": str(run.device),
    })
    if _learns_task_weights(run.weighting):
        results["task_weights"] = run.weighting.weights()
    if dist_info.is_main:
        (run.out_dir / "metrics.json").write_text(json.dumps(results, indent=2))
        if write_report:
            from phanet.report import write_run_report

            write_run_report(run.out_dir, results, best_model, test_part, arrays, run.device)
        if not config.train.keep_resume:  # the run is complete: the (large) resume point is not needed any more
            (run.out_dir / RESUME_FILE).unlink(missing_ok=True)
    return results


def _test_best_checkpoint(config: Config, out_dir: Path, dist_info: DistInfo, device: torch.device,
                          test_part: FaceDataset, loader, progress: bool) -> tuple[dict, nn.Module, dict]:
    """Evaluate the ``best`` checkpoint on ``test_part``: (metrics, the model, its prediction arrays)."""
    from phanet.checkpoint import load_checkpoint

    if dist_info.enabled:
        dist.barrier()
    best_model, _ = load_checkpoint(out_dir / "best", device)
    results, arrays = _evaluate(best_model, loader, device, test_part.label_space, config.train.amp,
                                progress=progress and dist_info.is_main, dist_info=dist_info)
    return results, best_model, arrays


def cross_validate(config: Config, out_dir: str | Path, folds: list[int] | None = None,
                   progress: bool = True, overwrite: bool = False) -> dict:
    """Run ``fit`` on each fold (``out_dir/fold<k>``), sharing one fold file; aggregate mean ± std.

    An existing cross-validation in ``out_dir`` is an error unless ``overwrite`` (then its files, the
    shared fold file included unless ``data.fold_file`` names another, are removed first).
    """
    import copy

    from phanet.runfolder import RunFolderError, RunLock, run_files

    out_dir = Path(out_dir)
    if (out_dir / "cv_metrics.json").exists() and not overwrite:
        raise RunFolderError(f"{out_dir} already holds a cross-validation (cv_metrics.json); pass --overwrite "
                             "to replace it, or choose another --out")
    if overwrite and init_distributed(config.train.device).is_main:
        with RunLock(out_dir):
            keep = {Path(config.data.fold_file).resolve()} if config.data.fold_file else set()
            # the old folds too, also those not run again (--only-folds): they belong to the old fold file
            old_folds = [sub for sub in sorted(out_dir.glob("fold*")) if sub.is_dir() and sub.name[4:].isdigit()]
            for path in [*run_files(out_dir), *(p for sub in old_folds for p in run_files(sub))]:
                if path.resolve() not in keep:
                    path.unlink()
            log.warning("--overwrite: removed the previous cross-validation's files in %s", out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    folds = folds if folds is not None else list(range(config.data.folds))
    fold_file = config.data.fold_file or str(out_dir / "folds.json")
    per_fold = []
    for k in folds:
        fold_config = copy.deepcopy(config)
        fold_config.data.fold = k
        fold_config.data.fold_file = fold_file
        log.info("fold %d/%d", k + 1, len(folds))
        per_fold.append(fit(fold_config, out_dir / f"fold{k}", progress=progress, overwrite=overwrite))
    summary = aggregate_folds(per_fold)
    if init_distributed(config.train.device).is_main:
        (out_dir / "cv_metrics.json").write_text(json.dumps(summary, indent=2))
    return summary


def aggregate_folds(per_fold: list[dict]) -> dict:
    """Mean ± std over folds of overall accuracy, macro-F1, and per-expression/per-pose accuracy."""

    def stats(values: list) -> dict:
        values = [v for v in values if v is not None]
        return {"mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values)} if values else None

    summary = {
        "folds": [r.get("fold") for r in per_fold],
        "accuracy": stats([r["accuracy"] for r in per_fold]),
        "macro_f1": stats([r.get("macro_f1") for r in per_fold]),
    }
    for key in ("per_expression_accuracy", "per_pose_accuracy"):
        names = per_fold[0].get(key, {}) if per_fold else {}
        summary[key] = {name: stats([r[key].get(name) for r in per_fold]) for name in names}
    return summary


def crop_mismatch(trained: dict | None, evaluated: dict | None) -> str | None:
    """Why the evaluated images are not cropped like the training images (None when they are)."""
    from phanet.crop import fit_of as fit

    if trained == evaluated or (trained is not None and evaluated is not None
                                and trained.get("padding") == evaluated.get("padding")
                                and trained.get("template") == evaluated.get("template")
                                and fit(trained) == fit(evaluated)):
        return None
    if trained is None:
        return ("the model was trained on images as their dataset ships them, but these are aligned face crops "
                "(phanet.crop); accuracy may suffer")
    if evaluated is None:
        return ("the model was trained on aligned face crops (phanet.crop) but these images are not aligned; align "
                "them with `phanet data prepare --align` and --cache-dir, or expect lower accuracy")
    return (f"the model was trained on crops with padding {trained.get('padding')} and fit {fit(trained)} but "
            f"these have padding {evaluated.get('padding')} and fit {fit(evaluated)}")


def _adapt_to(model: nn.Module, dataset: FaceDataset, prior: float, max_images: int | None, depth: float,
              device: torch.device) -> dict:
    """Test-time batch-norm adaptation of ``model`` on up to ``max_images`` evenly spaced images of
    ``dataset`` (their labels unused)."""
    from phanet.inference.adapt_bn import DEFAULT_MAX_IMAGES, adapt_batch_norm
    from phanet.inference.sources import evenly_spaced

    picks = evenly_spaced(len(dataset), max_images or DEFAULT_MAX_IMAGES)
    items = [dataset[i] for i in picks]
    images = [item["image"] for item in items if item is not None]  # an unreadable image is skipped, as in evaluation
    if not images:
        raise ValueError(f"batch-norm adaptation: none of the {len(picks)} images picked could be read")
    return adapt_batch_norm(model, torch.stack(images).to(device), prior, depth)


def evaluate_checkpoint(
    checkpoint: str | Path,
    index: DatasetIndex,
    indices: list[int] | None = None,
    out_dir: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 128,
    workers: int = 2,
    progress: bool = True,
    root: str | Path | None = None,
    tta: str | None = None,
    adapt_bn: float | None = None,
    adapt_images: int | None = None,
    adapt_depth: float = 1.0,
    class_prior: str | None = None,
) -> dict:
    """Evaluate a saved model on (part of) a dataset, mapping classes by name across datasets.

    Target classes the model does not know are dropped and listed under ``dropped_classes``; pose
    accuracy is reported only when the dataset's pose bins are the model's. When the evaluated people
    overlap those the checkpoint was trained/validated on, a warning is logged and stored under
    ``seen_in_training`` (``root``: the dataset folder, where a ``phanet synth`` folder names its seed).
    ``tta``: test-time augmentation, ``"none"`` or ``"flip"`` (:mod:`phanet.inference.tta`).
    ``adapt_bn``: when given, the prior of test-time batch-norm adaptation on the evaluated images
    (unlabelled; up to ``adapt_images`` of them, evenly spaced; the first ``adapt_depth`` of the layers;
    :mod:`phanet.inference.adapt_bn`).
    ``class_prior``: a deployment class prior the expression answers are reweighted by
    (:mod:`phanet.inference.prior`); None: the model's own answers.
    """
    from phanet.checkpoint import load_checkpoint
    from phanet.data.protocols import cross_dataset_index
    from phanet.inference.prior import with_class_prior
    from phanet.inference.tta import with_tta

    device = resolve_device(device)
    model, meta = load_checkpoint(checkpoint, device)
    model = with_class_prior(with_tta(model, tta), class_prior)
    if indices is not None:
        index = DatasetIndex([index.samples[i] for i in indices], index.label_space, index.problems,
                             index.default_protocol, index.name, index.crop)
    from phanet.provenance import seen_overlap

    overlap = seen_overlap(meta, index, root)
    if overlap:
        log.warning("%s: %s", checkpoint, overlap)
    mismatch = crop_mismatch(meta.get("crop"), index.crop)
    if mismatch:
        log.warning("%s: %s", checkpoint, mismatch)
    mapped, dropped = cross_dataset_index(index, model.label_space)
    if not mapped.samples:
        known = ", ".join(model.label_space.expressions)
        raise ValueError(f"no sample of {index.name} has a class the model knows ({known})")
    transform = FaceTransform.for_model(model.data_config, "none")
    dataset = FaceDataset(mapped.samples, mapped.label_space, transform)
    adaptation = None
    if adapt_bn is not None:
        adaptation = _adapt_to(model, dataset, adapt_bn, adapt_images, adapt_depth, device)
    sampler = EpochSampler(len(dataset), 0, DistInfo(), shuffle=False)
    loader = make_loader(dataset, batch_size, sampler, workers, device, drop_last=False)
    results, arrays = _evaluate(model, loader, device, mapped.label_space, progress=progress)
    if mapped.label_space.poses != model.label_space.poses:
        results.pop("pose_accuracy", None)
    results.update({"model": meta["model"]["name"], "checkpoint": str(checkpoint), "dataset": index.name,
                    "dropped_classes": dropped, "evaluated_on": "evaluate", "seen_in_training": overlap,
                    "crop_mismatch": mismatch, "tta": tta or "none", "batch_norm_adaptation": adaptation,
                    "class_prior": class_prior})
    if out_dir is not None:
        from phanet.report import write_run_report

        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "metrics.json").write_text(json.dumps(results, indent=2))
        write_run_report(out_dir, results, model, dataset, arrays, device)
    return results
