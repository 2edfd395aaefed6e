"""Fine-tuning: a training that starts from a checkpoint's weights (``train.init_from``).

Users fine-tune the bundled synthetic-face model on the dataset they own, or continue one of their
own runs under another recipe. The new model is built from the config as usual (its dataset's label
space, its options) and then takes every tensor of the checkpoint whose name and shape it shares.
The output layers are matched by label *name*, not position: a classifier row moves to wherever its
expression sits in the new label space (a dataset that orders the seven classes differently keeps its
meaning), and a class the checkpoint never learned (e.g. ``contempt``) keeps its fresh row. The
pose-dependent tensors are copied only when the pose bins are the same, by name and order: a pose row
of the bundled model means nothing for a dataset with other bins. Nothing is unpickled: checkpoints
are safetensors + JSON (:mod:`phanet.checkpoint`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from phanet.data.base import LabelSpace

log = logging.getLogger(__name__)

BUNDLED = "bundled"  # train.init_from value naming the model inside the package (phanet/weights/)


def resolve_init_source(source: str | Path) -> Path:
    """The checkpoint stem that ``train.init_from`` names (``bundled``: the packaged model); a
    ``FileNotFoundError`` naming the missing file otherwise."""
    from phanet.checkpoint import bundled_checkpoint, checkpoint_paths

    if str(source) == BUNDLED:
        return bundled_checkpoint()
    weights, meta = checkpoint_paths(source)
    for path in (weights, meta):
        if not path.is_file():
            raise FileNotFoundError(f"train.init_from: checkpoint file {path} not found (give a checkpoint "
                                    f"stem, its .safetensors or .json, or {BUNDLED!r} for the packaged model)")
    return weights.with_suffix("")


def init_from_checkpoint(model: nn.Module, source: str | Path) -> dict:
    """Copy the weights of checkpoint ``source`` into ``model`` (see the module docstring).

    Returns what the run records in its checkpoints: the source, its sha256 and model name, and how
    many tensors were copied, reordered by class name or left at their initial values. A checkpoint
    that shares no backbone tensor with ``model`` (another backbone) is a ``ValueError`` naming both.
    """
    from phanet.checkpoint import load_checkpoint

    path = resolve_init_source(source)
    source_model, meta = load_checkpoint(path)
    source_space = LabelSpace.from_json(meta["label_space"])
    source_state = source_model.state_dict()
    target_space: LabelSpace | None = model.label_space
    if target_space is None:
        raise ValueError("init_from_checkpoint needs a model that knows its label space")
    label_tensors = model.label_indexed_tensors()
    rows = _row_sources(source_space.expressions, target_space.expressions)
    same_poses = [p.name for p in source_space.poses] == [p.name for p in target_space.poses]

    same_classes = list(source_space.expressions) == list(target_space.expressions)
    initial_state = model.state_dict()
    merged, copied, reordered, fresh = {}, [], [], []
    for name, initial in initial_state.items():
        value = source_state.get(name)
        if value is None or value.shape[1:] != initial.shape[1:]:
            fresh.append(name)
        elif name in label_tensors["expression"] and not same_classes:
            if all(row is None for row in rows):  # no class in common: nothing to carry over
                fresh.append(name)
            else:
                merged[name] = _take_rows(initial, value, rows)
                reordered.append(name)
        elif value.shape != initial.shape or (name in label_tensors["pose"] and not same_poses):
            fresh.append(name)
        else:
            merged[name] = value
            copied.append(name)
    # The heads of every backbone have the same shapes; the backbone is what fine-tuning carries over
    # (0-d counters such as num_batches_tracked fit every backbone, so they do not count).
    if not any(name.startswith("backbone.") and initial_state[name].ndim > 0 for name in copied):
        raise ValueError(f"{path}: its model {meta['model']['name']!r} shares no backbone tensor of matching name and "
                         f"shape with {model.model_name!r}; fine-tune from a checkpoint of the same backbone")
    model.load_state_dict(merged, strict=False)
    _log_outcome(path, source_space, target_space, rows, same_poses, fresh)
    # the packaged model is named as the config names it: its install path says nothing on another machine,
    # and the sha256 pins which weights they were
    named = BUNDLED if str(source) == BUNDLED else str(path)
    return {"checkpoint": named, "weights_sha256": meta.get("weights_sha256"), "model": meta["model"]["name"],
            "copied": len(copied), "reordered": len(reordered), "fresh": fresh}


def _row_sources(source: tuple[str, ...], target: tuple[str, ...]) -> list[int | None]:
    """For each class of ``target``, its row in the checkpoint (None for a class it never learned)."""
    where = {name: i for i, name in enumerate(source)}
    return [where.get(name) for name in target]


def _take_rows(initial: torch.Tensor, value: torch.Tensor, rows: list[int | None]) -> torch.Tensor:
    """``initial`` with each row ``i`` replaced by the checkpoint's row ``rows[i]`` (when there is one)."""
    out = initial.clone()
    for i, j in enumerate(rows):
        if j is not None:
            out[i] = value[j]
    return out


def _log_outcome(path: Path, source: LabelSpace, target: LabelSpace, rows: list[int | None], same_poses: bool,
                 fresh: list[str]) -> None:
    log.info("fine-tuning from %s", path)
    unknown = [name for name, row in zip(target.expressions, rows) if row is None]
    if unknown:
        log.warning("init_from: the checkpoint never learned %s; their classifier rows start fresh", ", ".join(unknown))
    if not same_poses:
        log.warning("init_from: the checkpoint's %d pose bins are not this dataset's %d; the pose classifier and "
                    "the pose-conditioned gate start fresh", source.num_poses, target.num_poses)
    if any(name.startswith("backbone.") for name in fresh):
        log.warning("init_from: some backbone tensors of the checkpoint do not fit this model; they start fresh")
    if fresh:
        shown = ", ".join(fresh[:6]) + (f" and {len(fresh) - 6} more" if len(fresh) > 6 else "")
        log.info("init_from: %d tensors keep their initial values: %s", len(fresh), shown)
