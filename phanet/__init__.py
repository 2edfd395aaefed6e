"""phanet: pose-robust facial expression recognition with PhaNet.

PhaNet is the pose-adaptive hierarchical attention network of Liu, Peng, Zeng & Shan,
arXiv:1905.10059 (2019). See :mod:`phanet.models.phanet` for our reading of its architecture.

The names below are loaded on first use (PEP 562), so that ``import phanet`` -- and with it
``phanet --help`` -- does not pay for importing torch and timm.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "PhaNetOutput": "phanet.models",
    "create_model": "phanet.models",
    "list_models": "phanet.models",
    "load_checkpoint": "phanet.checkpoint",
    "load_model": "phanet.checkpoint",
    "save_checkpoint": "phanet.checkpoint",
}

__all__ = ["PhaNetOutput", "create_model", "list_models", "load_checkpoint", "load_model", "save_checkpoint"]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time the names come from __getattr__
    from phanet.checkpoint import load_checkpoint, load_model, save_checkpoint
    from phanet.models import PhaNetOutput, create_model, list_models


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'phanet' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
