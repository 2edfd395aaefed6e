"""Model registry: a name -> builder dict, so every ablation is one flag."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register a builder under its function name; duplicate names are a bug, so they raise."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} is already registered")
    _MODELS[fn.__name__] = fn
    return fn


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model, e.g. ``create_model("phanet_r18", num_expressions=7, num_poses=5)``."""
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    model = _MODELS[name](**kwargs)
    model.model_name = name
    return model


# Set by the dataset and the model name, never through model.options.
RESERVED_OPTIONS = ("num_expressions", "num_poses", "pretrained", "backbone")


def check_model_options(name: str, options: dict) -> None:
    """Raise ``ValueError`` naming the problem if ``options`` are not valid keyword options of ``name``.

    Runs before any weights are built or downloaded: builders that define ``check_options(**options)``
    (the PhaNet family: it builds the architecture config) are checked fully, others by name only.
    """
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    reserved = sorted(set(RESERVED_OPTIONS) & set(options))
    if reserved:
        raise ValueError(f"model.options: {', '.join(reserved)} cannot be set there (set by the model name, "
                         "the dataset or model.pretrained)")
    check = getattr(_MODELS[name], "check_options", None)
    if check is None:
        return
    try:
        check(**options)
    except (TypeError, ValueError) as err:
        raise ValueError(f"model {name!r} with model.options={options}: {err}") from None


def list_models() -> list[str]:
    return sorted(_MODELS)
