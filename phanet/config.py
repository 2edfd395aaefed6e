"""Typed run configuration: dataclasses loaded from YAML, with ``section.key=value`` overrides on top.

A config has three sections (``model``, ``data``, ``train``). Unknown keys are errors that name the
key and the file, so a typo never silently falls back to a default. The resolved config is saved as
``config.yaml`` in every run folder.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class ModelConfig:
    name: str = "phanet_effl0"
    # A training run starts from ImageNet weights (offline for EfficientNet-Lite0). The library's
    # create_model(..., pretrained=False) default differs on purpose, as timm.create_model's does:
    # building a model in code never loads or downloads weights unless asked.
    pretrained: bool = True
    input_size: int = 112
    options: dict = field(default_factory=dict)  # extra model kwargs, e.g. {selection: hard, top_k: 2}


@dataclass
class DataConfig:
    dataset: str = "synthetic"
    root: str | None = None
    protocol: str | None = None  # None: the dataset's default protocol
    folds: int = 10
    fold: int = 0
    seed: int = 0
    val_fraction: float = 0.1
    fold_file: str | None = None  # None: <out>/folds.json
    cache_dir: str | None = None
    align_faces: bool = False  # aligned face crops (phanet.crop) in the cache; needs cache_dir
    options: dict = field(default_factory=dict)  # dataset loader kwargs
    allow_leaks: bool = False  # train despite duplicates / train-test leaks / paths outside the root


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    augment: str = "standard"  # none | light | standard | strong | photo | photo_randconv (phanet/data/transforms.py)
    balance_classes: bool = False
    patience: int = 10  # early stopping on validation accuracy; 0 disables
    amp: bool = True  # mixed precision, used on CUDA only
    workers: int = 4
    seed: int = 0
    # Seed of the model's initial weights (heads; a pretrained backbone starts from its file either way);
    # None: ``seed``. Runs that share it and differ in ``seed`` (sample order, augmentation, dropout) start
    # from one point, so their weights can be averaged into one model (``phanet average``).
    init_seed: int | None = None
    # Fine-tuning: start from this checkpoint's weights (a path, or "bundled" for the packaged model) where
    # names and shapes match, classifier rows matched by class name (phanet.finetune); None: ImageNet/fresh.
    init_from: str | None = None
    loss_weighting: str = "learned"  # learned | fixed
    fixed_weights: dict = field(default_factory=dict)  # with loss_weighting=fixed: {pose: 0.5, att0: 0.3, ...}
    label_smoothing: float = 0.0
    # Intensity-graded targets (phanet.intensity_targets): an expression image of intensity i
    # gives neutral this multiple of (1 - i) of its target, so weak expressions are taught as partly neutral.
    # Needs per-image intensities, which the synthetic dataset records; 0: one-hot targets.
    intensity_labels: float = 0.0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    strict: bool = False  # fail on an unreadable image instead of skipping it
    eval_batch_size: int = 128
    # NHWC model and batches: 1.3-1.5x faster EfficientNet-Lite0 training steps on CPU (depthwise convs;
    # benchmarks/cpu_train_step.py), ResNet-18 within noise; the usual choice on GPUs with mixed precision.
    channels_last: bool = True
    head_lr_mult: float = 1.0  # learning rate of everything but the backbone, as a multiple of lr
    # Weight of PhaNet's gate-balance penalty, 1 - H(batch-mean beta) / log S (phanet.losses): 0 leaves the
    # gate free, which on our synthetic data collapses onto the deepest scale at every pose.
    gate_balance: float = 0.0
    cpu_amp: bool = False  # bf16 autocast for training on CPU (pays on CPUs with AVX512-BF16/AMX)
    keep_resume: bool = False  # keep resume.pt once the run has completed (it is deleted otherwise)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}


def _check_keys(section: str, values: dict, source: str) -> None:
    known = {f.name for f in dataclasses.fields(SECTIONS[section])}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown} in section '{section}'; known: {sorted(known)}")


def config_from_dict(data: dict, source: str = "config") -> Config:
    data = data or {}
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise ValueError(f"{source}: unknown section(s) {unknown}; expected {sorted(SECTIONS)}")
    parts = {}
    for section, cls in SECTIONS.items():
        values = data.get(section) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{source}: section '{section}' must be a mapping, got {type(values).__name__}")
        _check_keys(section, values, source)
        coerced = {k: _coerce(cls, k, v, source) for k, v in values.items()}
        for key, value in coerced.items():
            check_value(section, key, value, source)
        parts[section] = cls(**coerced)
    return Config(**parts)


def load_config(path: str | Path | None) -> Config:
    """Read a YAML config (or the defaults when ``path`` is None)."""
    if path is None:
        return Config()
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"config file {path} not found")
    if not path.is_file():
        raise ValueError(f"config file {path} is a directory, not a YAML file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a UTF-8 text file ({err.reason} at byte {err.start})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(f"{path}{where}: not valid YAML ({problem})") from None
    if data is not None and not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections (model, data, train), got {type(data).__name__}")
    return config_from_dict(data, source=str(path))


def _field_type(cls, key: str) -> Any:
    return {f.name: f for f in dataclasses.fields(cls)}[key]


def _coerce(cls, key: str, value: Any, source: str) -> Any:
    """Check a value against its field's default type; YAML gives ints where floats are meant."""
    default = _default_of(_field_type(cls, key))
    if value is None or default is None:
        return value
    if isinstance(default, float) and isinstance(value, str):
        try:  # PyYAML reads "1e-3" (no dot) as a string
            value = float(value)
        except ValueError:
            pass
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    elif isinstance(default, int) and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif isinstance(default, (str, dict)) and isinstance(value, type(default)):
        return value
    raise ValueError(f"{source}: {key}={value!r} should be a {type(default).__name__}")


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory()  # type: ignore[misc]


def parse_key_values(items: list[str], what: str = "option", form: str = "key=value") -> dict[str, Any]:
    """``["a=1", "b.c=x"]`` -> ``{"a": 1, "b.c": "x"}`` with YAML-parsed values (numbers, lists, ...)."""
    pairs = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} {item!r} should look like {form}")
        pairs[key.strip()] = yaml.safe_load(raw)
    return pairs


def apply_overrides(config: Config, overrides: dict[str, Any] | list[str]) -> Config:
    """Set values by dotted key: ``{"train.epochs": 3}`` or ``["train.epochs=3"]`` (YAML-parsed values).

    ``section.options.name=value`` sets one entry of an options mapping (``model.options.top_k=2``).
    ``None`` values are skipped: they stand for CLI flags that were not given.
    """
    if isinstance(overrides, list):
        overrides = parse_key_values(overrides, "override", "section.key=value")
    for dotted, value in overrides.items():
        if value is None:
            continue  # a CLI flag that was not given
        section, _, key = dotted.partition(".")
        key, _, entry = key.partition(".")
        if section not in SECTIONS or not key or (entry == "" and dotted.endswith(".")):
            raise ValueError(f"override {dotted!r}: expected section.key with section in {sorted(SECTIONS)}")
        _check_keys(section, {key: value}, "override")
        if entry:
            target = getattr(getattr(config, section), key)
            if not isinstance(target, dict):
                raise ValueError(f"override {dotted!r}: {section}.{key} is not a mapping; "
                                 f"use {section}.{key}=value")
            target[entry] = value
            continue
        value = _coerce(SECTIONS[section], key, value, f"override {dotted}")
        check_value(section, key, value, f"override {dotted}")
        setattr(getattr(config, section), key, value)
    return config


# Allowed values: (minimum, maximum, maximum excluded) for numbers, a tuple of names for choices.
LIMITS: dict[tuple[str, str], tuple] = {
    ("model", "input_size"): (16, 4096, False),
    ("data", "folds"): (2, None, False),
    ("data", "fold"): (0, None, False),
    ("data", "seed"): (0, None, False),
    ("data", "val_fraction"): (0.0, 1.0, True),
    ("train", "epochs"): (1, None, False),
    ("train", "batch_size"): (1, None, False),
    ("train", "eval_batch_size"): (1, None, False),
    ("train", "lr"): (0.0, None, False),
    ("train", "weight_decay"): (0.0, None, False),
    ("train", "warmup_epochs"): (0.0, None, False),
    ("train", "patience"): (0, None, False),
    ("train", "workers"): (0, None, False),
    ("train", "seed"): (0, None, False),
    ("train", "init_seed"): (0, None, False),
    ("train", "label_smoothing"): (0.0, 1.0, True),
    ("train", "intensity_labels"): (0.0, 1.0, False),
    ("train", "head_lr_mult"): (0.0, None, False),
    ("train", "gate_balance"): (0.0, None, False),
}
CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("data", "protocol"): ("subject_kfold", "official"),
    ("train", "augment"): ("none", "light", "standard", "strong", "photo", "photo_randconv", "photo_parts",
                            "photo_parts_light"),
    ("train", "loss_weighting"): ("learned", "fixed"),
}


def check_value(section: str, key: str, value: Any, source: str) -> None:
    """Range/choice check of one value; raises ``ValueError`` naming the key, the value and the source."""
    name = f"{section}.{key}"
    if value is None:
        return
    if (section, key) in CHOICES and value not in CHOICES[section, key]:
        raise ValueError(f"{source}: {name}={value!r} is not one of {', '.join(CHOICES[section, key])}")
    if (section, key) in LIMITS:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"{source}: {name}={value!r} should be a number")
        low, high, open_high = LIMITS[section, key]
        if isinstance(value, float) and value != value:
            raise ValueError(f"{source}: {name} is NaN")
        if low is not None and (value < low or (key == "lr" and value <= low)):
            raise ValueError(f"{source}: {name}={value!r} must be {'>' if key == 'lr' else '>='} {low}")
        if high is not None and (value >= high if open_high else value > high):
            raise ValueError(f"{source}: {name}={value!r} must be {'<' if open_high else '<='} {high}")
    if (section, key) == ("train", "device"):
        check_device(value, source)
    if (section, key) == ("train", "init_from") and not (isinstance(value, str) and value):
        raise ValueError(f"{source}: {name}={value!r} should be a checkpoint path or 'bundled'")


def check_device(name: str, source: str = "train.device") -> None:
    """``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N``; anything else is an error naming it."""
    import re

    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", str(name)):
        raise ValueError(f"{source}: device {name!r} is not one of auto, cpu, cuda, cuda:N, mps")


def validate_config(config: Config, source: str = "config") -> Config:
    """Every value in range, and the checks that involve two values (fold < folds)."""
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            check_value(section, f.name, getattr(getattr(config, section), f.name), source)
    if config.data.protocol == "subject_kfold" and config.data.fold >= config.data.folds:
        raise ValueError(f"{source}: data.fold={config.data.fold} must be < data.folds={config.data.folds}")
    return config


def save_config(config: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
