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


def create_model(
    name: str,
    *,
    label_space=None,
    input_size: int | None = None,
    crop: dict | None = None,
    **kwargs,
) -> nn.Module:
    """Build a registered model, e.g. ``create_model("phanet_effl0", label_space=space, input_size=96)``.

    The model is built knowing its name, ``label_space`` (which sets ``num_expressions`` and
    ``num_poses``; a space without pose bins gets a 1-bin pose head, so the architecture does not
    change with the dataset) and its data config (``input_size``, ``crop``; mean/std come from the
    backbone): see :class:`phanet.models.PhaNet`. ``num_expressions=..., num_poses=...`` without a
    label space build a model whose label space is set later (or never: it cannot be saved).
    """
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    if label_space is not None:
        kwargs.setdefault("num_expressions", label_space.num_expressions)
        kwargs.setdefault("num_poses", max(1, label_space.num_poses))
        kwargs["label_space"] = label_space
    if input_size is not None:
        kwargs["input_size"] = int(input_size)
    if crop is not None:
        kwargs["crop"] = crop
    return _MODELS[name](model_name=name, **kwargs)


def builder_options(name: str) -> tuple[str, ...]:
    """Reserved option names that builder ``name`` takes anyway (the generic ``phanet``: ``backbone``)."""
    return tuple(getattr(_MODELS[name], "extra_options", ())) if name in _MODELS else ()


# Set by the dataset and the model name, never through model.options.
RESERVED_OPTIONS = ("num_expressions", "num_poses", "pretrained", "backbone")


def check_model_options(name: str, options: dict) -> None:
    """Raise ``ValueError`` naming the problem if ``options`` are not valid keyword options of ``name``.

    Runs before any weights are built or downloaded: builders that define ``check_options(**options)``
    (the PhaNet family: it builds the architecture config) are checked fully, others by name only.
    """
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; registered: {', '.join(list_models())}")
    reserved = sorted((set(RESERVED_OPTIONS) - set(builder_options(name))) & set(options))
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
