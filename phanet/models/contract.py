"""What a model expects of its input, carried by the model itself (in the spirit of timm's
``pretrained_cfg`` / ``resolve_data_config``).

A model is built with its :class:`ModelDataConfig` (input size, the mean/std its backbone's weights
expect, the face-crop contract of its training images), its registered name and its label space.
Checkpoints store all of them (:mod:`phanet.checkpoint`); the training transform, ``Predictor`` and
the ONNX export read them from there, and all of them normalise with :func:`normalise`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_INPUT_SIZE = 112


@dataclass(frozen=True)
class ModelDataConfig:
    """The images a model takes: ``input_size`` square pixels, RGB scaled to [0, 1] then normalised
    with ``mean``/``std`` (:func:`normalise`); ``crop`` is the face-crop contract the training images
    followed (:func:`phanet.crop.crop_spec`), or None for images as the dataset ships them."""

    input_size: int = DEFAULT_INPUT_SIZE
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    crop: dict | None = None

    def __post_init__(self):
        if int(self.input_size) < 8:
            raise ValueError(f"input_size must be at least 8 pixels, got {self.input_size}")
        for name in ("mean", "std"):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) != 3:
                raise ValueError(f"{name} must have 3 values (R, G, B), got {values}")
            object.__setattr__(self, name, values)
        if min(self.std) <= 0:
            raise ValueError(f"std must be positive, got {self.std}")
        object.__setattr__(self, "input_size", int(self.input_size))

    def to_meta(self) -> dict:
        """The checkpoint JSON's fields for it (``input_size``, ``mean``, ``std`` and, if any, ``crop``)."""
        meta = {"input_size": self.input_size, "mean": list(self.mean), "std": list(self.std)}
        if self.crop is not None:
            meta["crop"] = self.crop
        return meta

    @classmethod
    def from_meta(cls, meta: dict) -> ModelDataConfig:
        """Read back from a checkpoint's JSON (checkpoints before ``crop`` was recorded have none)."""
        return cls(int(meta["input_size"]), tuple(meta["mean"]), tuple(meta["std"]), meta.get("crop"))


@lru_cache(maxsize=16)
def _affine(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
    return -torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1) / std_t, 1.0 / std_t


def normalise(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``(images - mean) / std`` for RGB floats in [0, 1], ``[3, H, W]`` or ``[B, 3, H, W]``.

    One fused multiply-add (``images * (1/std) - mean/std``), out of place; the one normalisation of
    the package: training transforms, ``Predictor`` and export checks all use it.
    """
    shift, inv_std = _affine(tuple(mean), tuple(std))
    if shift.device != images.device:
        shift, inv_std = shift.to(images.device), inv_std.to(images.device)
    return torch.addcmul(shift, images, inv_std)
