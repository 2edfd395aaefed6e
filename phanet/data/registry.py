"""Dataset registry: each dataset module registers a function that indexes a root folder.

``load_dataset(name, root, **options)`` returns a :class:`DatasetIndex`: the samples, the label space,
the problems found while scanning (each naming the file or field), and the default protocol.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from phanet.data.base import LabelSpace, Sample


class DatasetLayoutError(ValueError):
    """The root folder does not have the dataset's distributed layout; the message names the file."""


@dataclass
class DatasetIndex:
    samples: list[Sample]
    label_space: LabelSpace
    problems: list[str] = field(default_factory=list)
    default_protocol: str = "subject_kfold"
    name: str = ""
    # the face-crop contract its images follow (phanet.crop.crop_spec), when they are aligned crops;
    # recorded in checkpoints so that inference repeats it. None: images as the dataset ships them.
    crop: dict | None = None


_DATASETS: dict[str, Callable[..., DatasetIndex]] = {}

# Modules imported lazily on first lookup, so `import phanet` stays cheap.
_DATASET_MODULES = (
    "phanet.data.datasets.generic",
    "phanet.data.datasets.synthetic",
    "phanet.data.datasets.kdef",
    "phanet.data.datasets.multipie",
    "phanet.data.datasets.bu3dfe",
    "phanet.data.datasets.affectnet",
    "phanet.data.datasets.sfew",
    "phanet.data.datasets.rafdb",
    "phanet.data.datasets.fer2013",
)


def register_dataset(name: str):
    def decorator(fn: Callable[..., DatasetIndex]):
        if name in _DATASETS:
            raise ValueError(f"dataset {name!r} is already registered")
        _DATASETS[name] = fn
        return fn

    return decorator


def _import_all() -> None:
    # Every listed module must exist: a missing or misspelt one is an error, never a skipped dataset.
    for module in _DATASET_MODULES:
        importlib.import_module(module)


def list_datasets() -> list[str]:
    _import_all()
    return sorted(_DATASETS)


def get_dataset_loader(name: str) -> Callable[..., DatasetIndex]:
    """The registered indexing function of ``name`` (its keyword arguments are the dataset's options)."""
    _import_all()
    if name not in _DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(sorted(_DATASETS))}")
    return _DATASETS[name]


def load_dataset(name: str, root: str | Path | None, **options) -> DatasetIndex:
    import inspect

    loader = get_dataset_loader(name)
    parameters = inspect.signature(loader).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        accepted = list(parameters)[1:]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise ValueError(f"dataset {name!r} has no option {', '.join(unknown)} (data.options); "
                             f"its options: {', '.join(accepted) or '(none)'}")
    index = loader(root, **options)
    index.name = index.name or name
    return index
