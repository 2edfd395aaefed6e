"""phanet: pose-robust facial expression recognition with PhaNet.

PhaNet is the pose-adaptive hierarchical attention network of Liu, Peng, Zeng & Shan,
arXiv:1905.10059 (2019). See :mod:`phanet.models.phanet` for our reading of its architecture.
"""

from phanet.checkpoint import load_checkpoint, load_model, save_checkpoint
from phanet.models import PhaNetOutput, create_model, list_models

__version__ = "0.1.0"

__all__ = ["PhaNetOutput", "create_model", "list_models", "load_checkpoint", "load_model", "save_checkpoint"]
