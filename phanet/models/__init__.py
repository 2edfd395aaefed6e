"""Model registry and the PhaNet family."""

from phanet.models.phanet import PhaNet, PhaNetConfig, PhaNetOutput
from phanet.models.registry import check_model_options, create_model, list_models, register_model

__all__ = [
    "PhaNet", "PhaNetConfig", "PhaNetOutput", "check_model_options", "create_model", "list_models", "register_model",
]
