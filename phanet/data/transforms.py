"""Image preprocessing and augmentation presets, with a horizontal flip that reports itself.

The flip changes the label: it mirrors yaw, so :class:`~phanet.data.base.FaceDataset` maps the pose
label to the mirrored bin when a transform says it flipped. Random parameters come from the
``torch.Generator`` the dataset passes in (seeded per sample and epoch), not from global RNG, so the
augmentation of a run is reproducible and independent of the number of DataLoader workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

# (flip prob, max rotation deg, max translate fraction, scale range, colour jitter, grayscale p, erase p)
AUGMENT_PRESETS = {
    "none": (0.0, 0.0, 0.0, (1.0, 1.0), 0.0, 0.0, 0.0),
    "light": (0.5, 5.0, 0.03, (0.95, 1.05), 0.1, 0.0, 0.0),
    "standard": (0.5, 10.0, 0.05, (0.9, 1.1), 0.2, 0.0, 0.0),
    "strong": (0.5, 15.0, 0.1, (0.8, 1.2), 0.4, 0.1, 0.25),
}


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return float(low + (high - low) * torch.rand((), generator=generator))


@dataclass
class FaceTransform:
    """``(image [H,W,3] uint8, sample, generator) -> (tensor [3,size,size] float normalised, flipped)``."""

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str = "none"

    def __post_init__(self):
        if self.augment not in AUGMENT_PRESETS:
            raise ValueError(f"augment={self.augment!r}; expected one of {sorted(AUGMENT_PRESETS)}")
        # Normalisation as one fused multiply-add on [0, 1] floats: x * (1/std) - mean/std.
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        self._inv_std = 1.0 / std
        self._shift = -torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1) / std

    def __call__(self, image: np.ndarray, sample=None, generator: torch.Generator | None = None):
        image = np.ascontiguousarray(image)
        if not image.flags.writeable:  # PIL-backed arrays are read-only; torch wants to own writable memory
            image = image.copy()
        tensor = torch.from_numpy(image).permute(2, 0, 1)  # [3, H, W] uint8
        tensor = TF.resize(tensor, [self.size, self.size], antialias=True)
        flipped = False
        flip_p, rotation, translate, scale, jitter, gray_p, erase_p = AUGMENT_PRESETS[self.augment]
        if self.augment != "none":
            generator = generator or torch.Generator().manual_seed(0)
            if flip_p and _uniform(generator, 0, 1) < flip_p:
                tensor = TF.horizontal_flip(tensor)
                flipped = True
            # The geometric and colour steps run on [0, 1] floats: 1.5-3x cheaper per op than on uint8
            # (where each colour op converts to float and back), and no rounding between steps.
            tensor = tensor.float().div_(255.0)
            shift = [round(_uniform(generator, -translate, translate) * self.size) for _ in range(2)]
            tensor = TF.affine(
                tensor, angle=_uniform(generator, -rotation, rotation), translate=shift,
                scale=_uniform(generator, *scale), shear=[0.0, 0.0],
            )
            if jitter:
                tensor = TF.adjust_brightness(tensor, _uniform(generator, 1 - jitter, 1 + jitter))
                tensor = TF.adjust_contrast(tensor, _uniform(generator, 1 - jitter, 1 + jitter))
                tensor = TF.adjust_saturation(tensor, _uniform(generator, 1 - jitter, 1 + jitter))
            if gray_p and _uniform(generator, 0, 1) < gray_p:
                tensor = TF.rgb_to_grayscale(tensor, num_output_channels=3)
        else:
            tensor = tensor.float().div_(255.0)
        tensor = torch.addcmul(self._shift, tensor, self._inv_std)  # out of place: grayscale may be a view
        if erase_p and _uniform(generator, 0, 1) < erase_p:
            side = int(self.size * _uniform(generator, 0.15, 0.35))
            top, left = (int(_uniform(generator, 0, self.size - side)) for _ in range(2))
            tensor[:, top:top + side, left:left + side] = 0.0
        return tensor, flipped


def denormalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """Invert the normalisation of ``[B, 3, H, W]`` (for showing model inputs) -> values in [0, 1]."""
    mean = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    return (images * std + mean).clamp(0, 1)
