"""Checkpoints that never unpickle: weights in safetensors, everything else in JSON.

A checkpoint is the pair ``NAME.safetensors`` + ``NAME.json``. The JSON holds the architecture (the
registered model name and its config), the label space (class names, pose bins), the input size and
normalisation, and the run's resolved config, so :func:`load_model` can rebuild a ready model from
the two files alone. Resume state (optimizer, scheduler, epoch, RNG) is a separate file written by
the engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from phanet.data.base import LabelSpace

FORMAT = "phanet-checkpoint"
VERSION = 1


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights.safetensors, meta.json)`` for a checkpoint given as either file or the shared stem."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    label_space: LabelSpace,
    input_size: int,
    config: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """Write ``model``'s weights and metadata; returns the weights path.

    Files are written to a temporary name and renamed, so an interruption never leaves a half-written
    checkpoint under the final name.
    """
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    weights_path, meta_path = checkpoint_paths(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"name": model.model_name, "architecture": model.architecture()},
        "label_space": label_space.to_json(),
        "input_size": int(input_size),
        "mean": list(model.mean),
        "std": list(model.std),
        "config": config or {},
        **(extra or {}),
    }
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp_weights = weights_path.with_name(weights_path.name + ".tmp")
    tmp_meta = meta_path.with_name(meta_path.name + ".tmp")
    save_file(state, str(tmp_weights), metadata={"format": FORMAT})
    tmp_meta.write_text(json.dumps(meta, indent=2))
    tmp_weights.replace(weights_path)
    tmp_meta.replace(meta_path)
    return weights_path


def read_meta(path: str | Path) -> dict:
    _, meta_path = checkpoint_paths(path)
    if not meta_path.exists():
        raise FileNotFoundError(f"checkpoint metadata {meta_path} not found (expected next to the .safetensors)")
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{meta_path} is not a phanet checkpoint (format={meta.get('format')!r})")
    return meta


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model of a checkpoint, load its weights, put it in eval mode: ``(model, meta)``."""
    from phanet.models import create_model

    weights_path, _ = checkpoint_paths(path)
    meta = read_meta(path)
    if not weights_path.exists():
        raise FileNotFoundError(f"checkpoint weights {weights_path} not found")
    arch = dict(meta["model"]["architecture"])
    arch["pretrained"] = False  # the checkpoint's own weights replace any pretrained init
    arch.pop("backbone", None)  # implied by the registered name
    num_expressions = arch.pop("num_expressions")
    num_poses = arch.pop("num_poses")
    model = create_model(meta["model"]["name"], num_expressions=num_expressions, num_poses=num_poses, **arch)
    model.load_state_dict(load_file(str(weights_path), device="cpu"), strict=True)
    model.checkpoint_meta = meta
    model.label_space = LabelSpace.from_json(meta["label_space"])
    return model.to(device).eval(), meta


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """A ready-to-use model from a checkpoint; its metadata is on ``model.checkpoint_meta``."""
    return load_checkpoint(path, device)[0]
