"""Weight averaging ("model soup", Wortsman et al. 2022): one model from several trained ones.

Runs of one recipe that start from the same initial weights (``train.init_seed``) and differ only in
what the training seed draws (sample order, augmentation, dropout) tend to end in one basin, where the
average of their weights is a model of the size and speed of one that smooths the run-to-run luck a
single seed carries. Runs started from different initial weights (here: heads drawn from different
seeds on one pretrained backbone) do not have their hidden units aligned, and their average is worse
than either member (measured: docs/bundled_model_study.md, "Three seeds from one starting point"), so the
members' recorded starting points are compared and a mismatch is refused unless asked for. A run
fine-tuned from a checkpoint (``train.init_from``) starts from that checkpoint's weights whatever its
seeds, so fine-tunes of one checkpoint share a starting point (as in Wortsman et al.'s soups), and that
checkpoint itself may join them: a weighted average of a model and its fine-tunes interpolates between them in
weight space (WiSE-FT, Wortsman et al. 2022, "Robust fine-tuning of zero-shot models").
"""

from __future__ import annotations

import logging
import tempfile
from itertools import islice
from pathlib import Path

import torch
import torch.nn as nn

from phanet.checkpoint import checkpoint_paths, file_sha256, load_checkpoint, save_checkpoint
from phanet.config import Config

log = logging.getLogger(__name__)

# Metadata that must agree for the members' tensors to mean the same thing.
_MUST_AGREE = ("model", "label_space", "input_size", "mean", "std", "crop")


def initial_seed(meta: dict) -> int | None:
    """The seed a checkpoint's initial weights were drawn from (``train.init_seed``, else ``train.seed``);
    None when its metadata records no training config."""
    train = (meta.get("config") or {}).get("train") or {}
    if train.get("init_seed") is not None:
        return int(train["init_seed"])
    return int(train["seed"]) if train.get("seed") is not None else None


def starting_point(meta: dict) -> str | None:
    """Where a checkpoint's training started: the weights it was fine-tuned from (their sha256, plus the
    initial seed when some layers were drawn fresh) or, trained from its own initial weights, the seed they
    were drawn from; None when its metadata records neither."""
    seed = initial_seed(meta)
    init = (meta.get("training") or {}).get("init_from")
    if init and init.get("weights_sha256"):
        start = _weights_start(init["weights_sha256"])
        return f"{start} + fresh layers from seed {seed}" if init.get("fresh") else start
    return None if seed is None else f"seed {seed}"


def average_checkpoints(paths: list[str | Path], out: str | Path, weights: list[float] | None = None,
                        allow_different_init: bool = False, batch_norm_config: Config | None = None,
                        batch_norm_batches: int = 100) -> Path:
    """Write the (weighted) average of the checkpoints at ``paths`` to ``out``; returns the weights path.

    Floating-point tensors (parameters and batch-norm running statistics) are averaged in float64;
    integer ones (batch-norm step counters) are taken from the first member. The members must have one
    architecture, label space and data config (an error names the first member that differs and the
    field). Members whose recorded starting points differ (:func:`starting_point`) are refused unless
    ``allow_different_init``.
    The result is a full-precision checkpoint whose metadata is the first member's config plus
    ``averaged_from`` (each member's weights file, sha256, initial seed, starting point and weight). With
    ``batch_norm_config`` the averaged batch-norm statistics are replaced by ones measured on that
    config's training images (:func:`reestimate_batch_norm`), recorded as ``batch_norm``.
    """
    if len(paths) < 2:
        raise ValueError(f"averaging needs at least 2 checkpoints, got {len(paths)}")
    weights = [1.0] * len(paths) if weights is None else [float(w) for w in weights]
    if len(weights) != len(paths):
        raise ValueError(f"{len(weights)} weights given for {len(paths)} checkpoints")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {weights}")
    total = sum(weights)
    first_model, first_meta = load_checkpoint(paths[0])
    sums = {k: v.double() * weights[0] for k, v in first_model.state_dict().items() if v.is_floating_point()}
    members = [_member(paths[0], first_meta, weights[0] / total)]
    for path, weight in zip(paths[1:], weights[1:]):
        model, meta = load_checkpoint(path)
        _check_agree(paths[0], first_meta, path, meta)
        for key, value in model.state_dict().items():
            if key in sums:
                sums[key] += value.double() * weight
        members.append(_member(path, meta, weight / total))
    starts = _shared_starts(members)
    if len(starts) > 1:
        message = (f"the checkpoints started from different initial weights ("
                   f"{', '.join(str(m['start']) for m in members)}); their average is usually worse "
                   "than either. Train the members with one train.init_seed (or train.init_from)")
        if not allow_different_init:
            raise ValueError(message + " (or pass --allow-different-init to average them anyway)")
        log.warning(message)
    state = first_model.state_dict()
    averaged = {k: (sums[k] / total).to(v.dtype) if k in sums else v for k, v in state.items()}
    first_model.load_state_dict(averaged)
    extra: dict = {"averaged_from": members}
    if batch_norm_config is not None:
        extra["batch_norm"] = reestimate_batch_norm(first_model, batch_norm_config, batch_norm_batches)
    return save_checkpoint(out, first_model, config=first_meta.get("config"), extra=extra)


def _shared_starts(members: list[dict]) -> set:
    """The members' starting points, where a member that *is* the others' start (its weights file's sha256 is
    the one they were fine-tuned from) counts as starting there too; marks such a member ``"role": "start"``."""
    fine_tuned_from = {m["start"] for m in members}
    for m in members:
        if _weights_start(m["weights_sha256"]) in fine_tuned_from:
            m["role"] = "start"
    return {_weights_start(m["weights_sha256"]) if m.get("role") else m["start"] for m in members}


def _weights_start(sha256: str) -> str:
    """The starting point of a run fine-tuned from the weights file with this sha256."""
    return f"weights {sha256[:12]}"


def _member(path: str | Path, meta: dict, weight: float) -> dict:
    weights_path = checkpoint_paths(path)[0]
    return {"checkpoint": str(weights_path), "weights_sha256": file_sha256(weights_path),
            "initial_seed": initial_seed(meta), "start": starting_point(meta), "weight": round(weight, 6)}


def _check_agree(first: str | Path, first_meta: dict, other: str | Path, meta: dict) -> None:
    for key in _MUST_AGREE:
        if first_meta.get(key) != meta.get(key):
            raise ValueError(f"cannot average {checkpoint_paths(other)[1]} with {checkpoint_paths(first)[1]}: "
                             f"their {key!r} differs ({meta.get(key)!r} vs {first_meta.get(key)!r})")


def reestimate_batch_norm(model: nn.Module, config: Config, batches: int = 100, progress: bool = True) -> dict:
    """Measure ``model``'s batch-norm running statistics afresh on ``batches`` batches of ``config``'s
    training images (its split, ``train.augment``, ``train.batch_size`` and ``train.seed``), as SWA does
    after averaging: averaged statistics need not describe the averaged weights' activations. Uses
    ``torch.optim.swa_utils.update_bn`` (a cumulative mean over the batches); returns what was used.
    """
    from torch.optim.swa_utils import update_bn
    from tqdm import tqdm

    from phanet.distributed import DistInfo, EpochSampler, make_loader
    from phanet.engine import face_dataset, prepare_data

    if batches < 1:
        raise ValueError(f"batch-norm re-estimation needs at least 1 batch, got {batches}")
    train = config.train
    with tempfile.TemporaryDirectory() as folder:  # the fold file of a split computed here, not kept
        data = prepare_data(config, Path(folder), DistInfo())
    dataset = face_dataset(config, data, "train", model, train.augment)
    if len(dataset) < 2:
        raise ValueError(f"the training split of {config.data.dataset!r} has {len(dataset)} images; need at least 2")
    batch_size = min(train.batch_size, len(dataset))
    sampler = EpochSampler(len(dataset), train.seed, DistInfo(), shuffle=True)
    loader = make_loader(dataset, batch_size, sampler, train.workers, torch.device("cpu"), drop_last=True)
    batches = min(batches, len(loader))
    images = (batch["image"] for batch in islice(loader, batches))
    # update_bn resets every batch norm, but frozen early stages (model.options.frozen_stages) stay in eval
    # mode and would keep the reset statistics: they keep their pretrained ones instead
    frozen = getattr(model, "frozen_norms", [])
    kept = [{name: buffer.clone() for name, buffer in norm.named_buffers(recurse=False)} for norm in frozen]
    update_bn(tqdm(images, total=batches, desc="batch-norm statistics", disable=not progress), model)
    for norm, buffers in zip(frozen, kept):
        for name, buffer in buffers.items():
            getattr(norm, name).copy_(buffer)
    model.eval()
    return {"dataset": config.data.dataset, "split": "train", "augment": train.augment, "batches": batches,
            "batch_size": batch_size, "seed": train.seed}

