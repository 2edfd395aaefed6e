"""Checkpoints that never unpickle: weights in safetensors, everything else in JSON.

A checkpoint is the pair ``NAME.safetensors`` + ``NAME.json``. The JSON holds the architecture (the
registered model name and its config), the label space (class names, pose bins), the input size and
normalisation, and the run's resolved config, so :func:`load_model` can rebuild a ready model from
the two files alone. Resume state (optimizer, scheduler, epoch, RNG) is a separate file written by
the engine.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from phanet.data.base import LabelSpace
from phanet.models.contract import ModelDataConfig

FORMAT = "phanet-checkpoint"
VERSION = 1
# The general model that ships inside the package (see configs/synthetic_general.yaml for its recipe).
BUNDLED_NAME = "phanet_synthetic"


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights.safetensors, meta.json)`` for a checkpoint given as either file or the shared stem."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _replace(tmp: Path, final: Path) -> None:
    tmp.replace(final)


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    config: dict | None = None,
    extra: dict | None = None,
) -> Path:
    """Write ``model``'s weights and metadata; returns the weights path.

    The metadata comes from the model itself: its registered name, architecture, label space and
    data config (input size, mean/std, crop contract; :mod:`phanet.models.contract`). A model without
    a label space (built from class counts only) cannot be saved: the error says how to give it one.

    Both files are written to a temporary name and renamed, weights first and metadata last; the
    metadata records the weights' sha256, so an interruption between the two renames leaves a pair
    that :func:`load_checkpoint` refuses (naming both files) instead of one that silently disagrees.
    """
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    if getattr(model, "label_space", None) is None:
        raise ValueError(f"cannot save {getattr(model, 'model_name', type(model).__name__)} to {path}: the model "
                         "has no label space; build it with create_model(name, label_space=...)")
    weights_path, meta_path = checkpoint_paths(path)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"name": model.model_name, "architecture": model.architecture()},
        "label_space": model.label_space.to_json(),
        **model.data_config.to_meta(),
        "config": config or {},
        **(extra or {}),
    }
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp_weights = weights_path.with_name(weights_path.name + ".tmp")
    tmp_meta = meta_path.with_name(meta_path.name + ".tmp")
    save_file(state, str(tmp_weights), metadata={"format": FORMAT})
    meta["weights_sha256"] = file_sha256(tmp_weights)
    tmp_meta.write_text(json.dumps(meta, indent=2))
    _replace(tmp_weights, weights_path)
    _replace(tmp_meta, meta_path)
    return weights_path


def bundled_checkpoint() -> Path:
    """The checkpoint that ships inside the package (``phanet/weights/``), used when none is given.

    A PhaNet trained on synthetic faces only (recipe: ``configs/synthetic_general.yaml``; what it is
    and is not good for: README, "The bundled model"). Raises ``FileNotFoundError`` naming the file
    when an install lacks it (e.g. a source tree without the weights).
    """
    stem = Path(__file__).resolve().parent / "weights" / BUNDLED_NAME
    weights, meta = checkpoint_paths(stem)
    missing = [str(p) for p in (weights, meta) if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"the bundled model is missing from this install ({', '.join(missing)}); "
                                "pass a checkpoint explicitly (--checkpoint)")
    return stem


def save_half_precision(source: str | Path, dest: str | Path, extra: dict | None = None) -> Path:
    """Copy a checkpoint with its floating-point tensors in fp16 (half the size, for shipping).

    The metadata is the source's plus ``extra`` and ``"dtype": "float16"``; :func:`load_checkpoint`
    reads such a file into the model's fp32 parameters (values rounded to fp16 once). Returns the
    weights path.
    """
    model, meta = load_checkpoint(source)
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    weights_path, meta_path = checkpoint_paths(dest)
    weights_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_weights = weights_path.with_name(weights_path.name + ".tmp")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp_weights), metadata={"format": FORMAT})
    meta = {**meta, **(extra or {}), "dtype": "float16", "weights_sha256": file_sha256(tmp_weights)}
    tmp_meta = meta_path.with_name(meta_path.name + ".tmp")
    tmp_meta.write_text(json.dumps(meta, indent=2))
    _replace(tmp_weights, weights_path)
    _replace(tmp_meta, meta_path)
    return weights_path


def is_checkpoint_meta(path: str | Path) -> bool:
    """Whether ``path`` is an existing checkpoint's JSON metadata: a report written there would silently
    destroy the checkpoint (scripts with a ``--json`` output check this first)."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def read_meta(path: str | Path) -> dict:
    """The checkpoint's JSON metadata, checked for shape; errors name the file."""
    _, meta_path = checkpoint_paths(path)
    if not meta_path.exists():
        raise FileNotFoundError(f"checkpoint metadata {meta_path} not found (expected next to the .safetensors)")
    if not meta_path.is_file():
        raise ValueError(f"checkpoint metadata {meta_path} is a directory, not a file")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{meta_path}: not a phanet checkpoint (not valid JSON: {err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{meta_path} is not a phanet checkpoint (format={found!r})")
    try:
        name, arch = meta["model"]["name"], meta["model"]["architecture"]
        space = LabelSpace.from_json(meta["label_space"])
        int(meta["input_size"])
        if not isinstance(name, str) or not isinstance(arch, dict):
            raise TypeError("model.name must be a string and model.architecture a mapping")
        int(arch["num_expressions"]), int(arch["num_poses"])
    except (KeyError, TypeError, ValueError) as err:
        what = f"missing {err}" if isinstance(err, KeyError) else str(err)
        raise ValueError(f"{meta_path}: malformed phanet checkpoint metadata ({what})") from None
    if len(space.expressions) != int(arch["num_expressions"]):
        raise ValueError(f"{meta_path}: label_space names {len(space.expressions)} expressions but the "
                         f"architecture has {arch['num_expressions']} (the metadata does not match the model)")
    if space.poses and len(space.poses) != int(arch["num_poses"]):
        raise ValueError(f"{meta_path}: label_space names {len(space.poses)} pose bins but the architecture "
                         f"has {arch['num_poses']}")
    return meta


def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file; a file that is not one is a one-line error naming it."""
    weights_path = Path(path)
    if not weights_path.exists():
        raise FileNotFoundError(f"checkpoint weights {weights_path} not found")
    if not weights_path.is_file():
        raise ValueError(f"checkpoint weights {weights_path} is a directory, not a .safetensors file")
    try:
        return load_file(str(weights_path), device="cpu")
    except Exception as err:  # safetensors raises its own error types (and OSError) for damaged files
        raise ValueError(f"{weights_path}: not a readable safetensors file, truncated or in another format "
                         f"({type(err).__name__}: {err})") from None


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Rebuild the model of a checkpoint, load its weights, put it in eval mode: ``(model, meta)``.

    The metadata must describe these very weights: its recorded sha256 must match the file, and the
    architecture (name, class and pose counts, options) must build a model whose tensors are exactly the
    file's. Any mismatch is a ``ValueError`` naming the files.
    """
    from phanet.models import create_model
    from phanet.models.registry import builder_options

    weights_path, meta_path = checkpoint_paths(path)
    meta = read_meta(path)
    if not weights_path.exists():
        raise FileNotFoundError(f"checkpoint weights {weights_path} not found")
    expected = meta.get("weights_sha256")
    if expected is not None and weights_path.is_file() and file_sha256(weights_path) != expected:
        raise ValueError(f"{meta_path} does not describe {weights_path} (sha256 differs): the two files come "
                         "from different saves, e.g. an interrupted one")
    state = read_weights(weights_path)
    arch = dict(meta["model"]["architecture"])
    arch["pretrained"] = False  # the checkpoint's own weights replace any pretrained init
    if "backbone" not in builder_options(meta["model"]["name"]):
        arch.pop("backbone", None)  # implied by the registered name
    num_expressions = arch.pop("num_expressions")
    num_poses = arch.pop("num_poses")
    data = ModelDataConfig.from_meta(meta)
    try:
        model = create_model(meta["model"]["name"], num_expressions=num_expressions, num_poses=num_poses,
                             label_space=LabelSpace.from_json(meta["label_space"]), input_size=data.input_size,
                             crop=data.crop, **arch)
    except (TypeError, KeyError, ValueError) as err:
        message = err.args[0] if err.args else str(err)
        raise ValueError(f"{meta_path}: cannot build its architecture {meta['model']['name']!r} ({message})") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = " ".join(line.strip() for line in first[1:3]) or first[0]
        raise ValueError(f"{meta_path}: its architecture does not match the tensors in {weights_path} "
                         f"({detail[:300]})") from None
    if (model.data_config.mean, model.data_config.std) != (data.mean, data.std):
        raise ValueError(f"{meta_path}: records mean/std {data.mean}/{data.std} but {meta['model']['name']!r} "
                         f"expects {model.data_config.mean}/{model.data_config.std}")
    model.checkpoint_meta = meta
    return model.to(device).eval(), meta


def load_model(path: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """A ready-to-use model from a checkpoint; its metadata is on ``model.checkpoint_meta``."""
    return load_checkpoint(path, device)[0]
