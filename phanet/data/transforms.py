"""Image preprocessing and augmentation presets, with a horizontal flip that reports itself.

The flip changes the label: it mirrors yaw, so :class:`~phanet.data.base.FaceDataset` maps the pose
label to the mirrored bin when a transform says it flipped. Random parameters come from the
``torch.Generator`` the dataset passes in (seeded per sample and epoch), not from global RNG, so the
augmentation of a run is reproducible and independent of the number of DataLoader workers.

The ``photo`` preset adds what a camera does to a picture and a renderer does not (colour cast,
gamma, defocus, low resolution, sensor noise, JPEG), so that models trained on synthetic renders
transfer to real photos: colour on every image, then grayscale, blur, low resolution, noise, JPEG
and an occluder, each on its own coin flip, in the order a camera applies them.

The ``photo_randconv`` preset adds random convolutions (RandConv, Xu et al., ICLR 2021,
arXiv:2007.13003) to ``photo``: half of the images pass through a 3x3-channel convolution with random
weights (kernel 1, 3, 5 or 7) blended with the original, which scrambles local texture and colour but
keeps shapes, so that the network leans on the shape of the face (where the mouth corners and brows
are) rather than on how the renderer shades skin, the cue that does not carry over to photos. (On our
check photos it did not help, as a fine-tune or trained from the start: docs/bundled_model_study.md, candidates 21-23.)

The ``photo_parts`` preset adds face-part blurring to ``photo``: on half of the images one band of the
aligned crop (brows and forehead, eyes, nose or mouth: :data:`phanet.crop.FACE_BANDS`, at the rows the
model's crop contract puts them) is blurred before the geometric steps, so the label must also be read
from the other parts. A model trained on renders alone reads happiness, fear and disgust from the
mouth only (with it blurred, the bundled model's synthetic smiles are called neutral), while on real
photos the mouth and the nose are what misleads it (``benchmarks/occlusion_cues.py``). (On the bundled
recipe it cost 1-2 points on the renders with the detail switches, trained 5 or 7 epochs:
docs/bundled_model_study.md, candidates 31-32 and 34-36.)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF

from phanet.models.contract import normalise


@dataclass(frozen=True)
class AugmentPreset:
    """One augmentation preset. A step whose probability or strength is 0 is skipped and draws nothing
    from the generator, so the presets without camera steps draw exactly what they always drew."""

    # geometry
    flip_p: float = 0.0  # horizontal flip (mirrors the pose label)
    rotation: float = 0.0  # max degrees either way
    translate: float = 0.0  # max shift, fraction of the side
    scale: tuple[float, float] = (1.0, 1.0)
    # colour, applied to every image
    jitter: float = 0.0  # brightness, contrast and saturation factors in 1 ± jitter
    hue: float = 0.0  # hue rotation about the grey axis, max turns either way
    white_balance: float = 0.0  # per-channel gains in 1 ± white_balance (colour temperature / cast)
    gamma: tuple[float, float] = (1.0, 1.0)  # exponent range, drawn log-uniformly
    gray_p: float = 0.0
    # camera: lens, sensor, encoder
    blur_p: float = 0.0
    blur_sigma: tuple[float, float] = (0.3, 1.2)  # Gaussian sigma, pixels at the output size
    lowres_p: float = 0.0
    lowres_factor: tuple[float, float] = (0.5, 0.9)  # downscale by this factor, then back up
    noise_p: float = 0.0
    noise_std: tuple[float, float] = (0.005, 0.04)  # Gaussian sensor noise on [0, 1] values
    jpeg_p: float = 0.0
    jpeg_quality: tuple[int, int] = (30, 90)  # inclusive
    # texture: random convolutions (RandConv), after colour, before the camera steps
    randconv_p: float = 0.0
    randconv_kernels: tuple[int, ...] = (1, 3, 5, 7)  # odd sizes, one drawn per image
    # occluder
    erase_p: float = 0.0  # a grey square of 15-35 % of the side, after normalisation
    # face parts: one band of the aligned crop blurred (needs the model's crop contract), before the geometry
    part_blur_p: float = 0.0
    part_blur_sigma: float = 3.0  # Gaussian sigma, pixels at 96 px (scaled with the size)

    def __iter__(self):
        """The 7-tuple a preset used to be: ``flip_p, rotation, translate, scale, jitter, gray_p, erase_p``."""
        return iter((self.flip_p, self.rotation, self.translate, self.scale, self.jitter, self.gray_p,
                     self.erase_p))


_STANDARD_GEOMETRY = dict(flip_p=0.5, rotation=10.0, translate=0.05, scale=(0.9, 1.1))

AUGMENT_PRESETS: dict[str, AugmentPreset] = {
    "none": AugmentPreset(),
    "light": AugmentPreset(flip_p=0.5, rotation=5.0, translate=0.03, scale=(0.95, 1.05), jitter=0.1),
    "standard": AugmentPreset(**_STANDARD_GEOMETRY, jitter=0.2),
    "strong": AugmentPreset(flip_p=0.5, rotation=15.0, translate=0.1, scale=(0.8, 1.2), jitter=0.4, gray_p=0.1,
                            erase_p=0.25),
    # synthetic renders -> camera photos: standard geometry, then colour, grayscale, blur / low
    # resolution, sensor noise, JPEG and an occluder, each with its own probability
    "photo": AugmentPreset(**_STANDARD_GEOMETRY, jitter=0.3, hue=0.03, white_balance=0.08, gamma=(0.8, 1.25),
                           gray_p=0.1, blur_p=0.3, blur_sigma=(0.3, 1.2), lowres_p=0.2, lowres_factor=(0.5, 0.9),
                           noise_p=0.4, noise_std=(0.005, 0.04), jpeg_p=0.4, jpeg_quality=(30, 90), erase_p=0.1),
}
# photo + random convolutions on half of the images (RandConv's mixing variant, as its paper trains it)
AUGMENT_PRESETS["photo_randconv"] = dataclasses.replace(AUGMENT_PRESETS["photo"], randconv_p=0.5)
# photo + one face part (brows, eyes, nose or mouth) blurred on half of the images
AUGMENT_PRESETS["photo_parts"] = dataclasses.replace(AUGMENT_PRESETS["photo"], part_blur_p=0.5)
# the same on a quarter of the images: at 0.5 the renders' finer cues were learnt less well (candidates 31, 34)
AUGMENT_PRESETS["photo_parts_light"] = dataclasses.replace(AUGMENT_PRESETS["photo"], part_blur_p=0.25)


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    """``low + (high - low) * u``, u one ``torch.rand`` draw, in float32 arithmetic.

    The same value as ``float(low + (high - low) * torch.rand(()))`` (float32 tensor ops) with numpy
    scalars instead of three 0-d tensor ops: ~3x cheaper, and the photo preset draws ~20 per image.
    """
    u = np.float32(torch.rand((), generator=generator).item())
    return float(np.float32(high - low) * u + np.float32(low))


def _happens(generator: torch.Generator, p: float) -> bool:
    """A coin flip with probability ``p``; draws nothing when ``p`` is 0."""
    return bool(p) and _uniform(generator, 0, 1) < p


def colour_matrix(hue: float, gains: tuple[float, float, float]) -> torch.Tensor:
    """``diag(gains) @ R``, R the rotation by ``hue`` turns about the grey axis of the RGB cube.

    A linear stand-in for an HSV hue shift (which costs ~40x more): it keeps greys grey, and for the
    small angles used here it moves hues like HSV does.
    """
    angle = 2 * math.pi * hue
    cos, sin, third = math.cos(angle), math.sin(angle), 1.0 / 3.0
    a, b = cos + (1 - cos) * third, (1 - cos) * third
    c = math.sqrt(third) * sin
    rotation = ((a, b - c, b + c), (b + c, a, b - c), (b - c, b + c, a))
    return torch.tensor([[gain * v for v in row] for gain, row in zip(gains, rotation)], dtype=torch.float32)


def apply_colour_matrix(tensor: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``[3,H,W]`` float in [0, 1] -> the same with each pixel multiplied by ``matrix``, clipped."""
    return (matrix @ tensor.reshape(3, -1)).reshape(tensor.shape).clamp_(0.0, 1.0)


def _blur_matrix(length: int, sigma: float) -> torch.Tensor:
    """``[length, length]`` matrix of a 1-D Gaussian blur (radius ``ceil(3 sigma)``, reflected edges)."""
    radius = min(max(1, math.ceil(3 * sigma)), length - 1)
    offsets = torch.arange(-radius, radius + 1)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    weights /= weights.sum()
    rows = torch.arange(length).view(-1, 1).expand(-1, offsets.numel())
    cols = (rows + offsets).abs()
    cols = torch.where(cols > length - 1, 2 * (length - 1) - cols, cols)
    return torch.zeros(length, length).index_put_((rows, cols), weights.expand_as(cols), accumulate=True)


def gaussian_blur(tensor: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``[C,H,W]`` floats, radius ``ceil(3 sigma)``, reflected edges.

    The same result as ``TF.gaussian_blur`` with that kernel, as two matrix products (blur rows, blur
    columns): ~3x faster on a 112 px face than torchvision's 2-D convolution.
    """
    height, width = tensor.shape[-2:]
    rows = _blur_matrix(height, sigma)
    cols = rows if width == height else _blur_matrix(width, sigma)
    return rows @ tensor @ cols.T


def low_resolution(tensor: torch.Tensor, factor: float) -> torch.Tensor:
    """Downscale by ``factor`` (antialiased, as a small sensor integrates light) and upscale back."""
    height, width = tensor.shape[-2:]
    small = TF.resize(tensor, [max(1, round(height * factor)), max(1, round(width * factor))], antialias=True)
    return TF.resize(small, [height, width], antialias=False).clamp_(0.0, 1.0)


def sensor_noise(tensor: torch.Tensor, std: float, generator: torch.Generator, monochrome: bool = False):
    """Add Gaussian noise of ``std`` (on [0, 1] values); ``monochrome`` keeps a grey image grey."""
    shape = (1, *tensor.shape[-2:]) if monochrome else tensor.shape
    return torch.randn(shape, generator=generator).mul_(std).add(tensor).clamp_(0.0, 1.0)


def random_convolution(tensor: torch.Tensor, generator: torch.Generator, kernels=(1, 3, 5, 7)) -> torch.Tensor:
    """RandConv's mixing variant on ``[3,H,W]`` floats in [0, 1]: the same shape and range.

    A kernel size is drawn from ``kernels``, the 3 -> 3 channel weights from N(0, 1 / (3 k^2)) (He
    initialisation, as the paper does), the image convolved with reflected edges; the result is
    rescaled to the input's mean and standard deviation (the network sees photo-like brightness and
    contrast, only texture and colour change) and blended with the input by a weight drawn from U(0, 1).
    """
    size = int(kernels[int(torch.randint(len(kernels), (), generator=generator))])
    if size % 2 != 1 or size < 1:
        raise ValueError(f"random_convolution kernel sizes must be odd and positive; got {size}")
    weight = torch.randn(3, 3, size, size, generator=generator).mul_(1.0 / math.sqrt(3 * size * size))
    pad = size // 2
    padded = F.pad(tensor[None], (pad,) * 4, mode="reflect") if pad else tensor[None]
    out = F.conv2d(padded, weight)[0]
    out = (out - out.mean()) / (out.std() + 1e-6) * tensor.std() + tensor.mean()
    mix = _uniform(generator, 0.0, 1.0)
    return (tensor * mix + out * (1.0 - mix)).clamp_(0.0, 1.0)


def jpeg(tensor: torch.Tensor, quality: int) -> torch.Tensor:
    """Round-trip ``[3,H,W]`` floats in [0, 1] through 8-bit JPEG at ``quality`` (1-100)."""
    encoded = tensor.mul(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)
    return TF.jpeg(encoded, int(quality)).float().div_(255.0)


@dataclass
class FaceTransform:
    """``(image [H,W,3] uint8, sample, generator) -> (tensor [3,size,size] float normalised, flipped)``."""

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    augment: str = "none"
    crop_padding: float | None = None  # the crop contract's padding: where the face parts are (None: not aligned)

    def __post_init__(self):
        if self.augment not in AUGMENT_PRESETS:
            raise ValueError(f"augment={self.augment!r}; expected one of {sorted(AUGMENT_PRESETS)}")
        self.mean, self.std = tuple(self.mean), tuple(self.std)
        self.part_rows = None
        if AUGMENT_PRESETS[self.augment].part_blur_p:
            if self.crop_padding is None:
                raise ValueError(f"augment={self.augment!r} blurs face parts at the rows of the face-crop contract, "
                                 "but the model records no crop contract (its images are not aligned crops); "
                                 "use 'photo'")
            from phanet.crop import face_band_rows

            self.part_rows = list(face_band_rows(self.size, self.crop_padding).values())

    @classmethod
    def for_model(cls, data_config, augment: str = "none") -> FaceTransform:
        """The transform of a model's :class:`~phanet.models.contract.ModelDataConfig` (``model.data_config``)."""
        padding = data_config.crop.get("padding") if data_config.crop else None
        return cls(data_config.input_size, data_config.mean, data_config.std, augment, padding)

    def __call__(self, image: np.ndarray, sample=None, generator: torch.Generator | None = None):
        image = np.ascontiguousarray(image)
        if not image.flags.writeable:  # PIL-backed arrays are read-only; torch wants to own writable memory
            image = image.copy()
        tensor = torch.from_numpy(image).permute(2, 0, 1)  # [3, H, W] uint8
        tensor = TF.resize(tensor, [self.size, self.size], antialias=True)
        flipped = False
        preset = AUGMENT_PRESETS[self.augment]
        if self.augment != "none":
            generator = generator or torch.Generator().manual_seed(0)
            if preset.flip_p and _uniform(generator, 0, 1) < preset.flip_p:
                tensor = TF.horizontal_flip(tensor)
                flipped = True
            # The geometric and colour steps run on [0, 1] floats: 1.5-3x cheaper per op than on uint8
            # (where each colour op converts to float and back), and no rounding between steps.
            tensor = tensor.float().div_(255.0)
            if _happens(generator, preset.part_blur_p):  # before the geometry: the rows are the contract's
                tensor = self._blur_part(tensor, preset, generator)
            translate = preset.translate
            shift = [round(_uniform(generator, -translate, translate) * self.size) for _ in range(2)]
            tensor = TF.affine(
                tensor, angle=_uniform(generator, -preset.rotation, preset.rotation), translate=shift,
                scale=_uniform(generator, *preset.scale), shear=[0.0, 0.0],
            )
            tensor = self._colour(tensor, preset, generator)
            gray = _happens(generator, preset.gray_p)
            if gray:
                tensor = TF.rgb_to_grayscale(tensor, num_output_channels=3)
            if _happens(generator, preset.randconv_p):
                tensor = random_convolution(tensor, generator, preset.randconv_kernels)
                if gray:  # a grey image stays grey: the camera steps after this expect it
                    tensor = TF.rgb_to_grayscale(tensor, num_output_channels=3)
            tensor = self._camera(tensor, preset, generator, gray)
        else:
            tensor = tensor.float().div_(255.0)
        tensor = normalise(tensor, self.mean, self.std)  # out of place: grayscale may be a view
        if _happens(generator, preset.erase_p):
            side = int(self.size * _uniform(generator, 0.15, 0.35))
            top, left = (int(_uniform(generator, 0, self.size - side)) for _ in range(2))
            tensor[:, top:top + side, left:left + side] = 0.0
        return tensor, flipped

    def _blur_part(self, tensor: torch.Tensor, preset: AugmentPreset, generator: torch.Generator) -> torch.Tensor:
        """One of the face bands, drawn uniformly, blurred across the crop's width."""
        first, last = self.part_rows[min(int(_uniform(generator, 0, len(self.part_rows))), len(self.part_rows) - 1)]
        blurred = gaussian_blur(tensor, preset.part_blur_sigma * self.size / 96.0)
        tensor[:, first:last] = blurred[:, first:last]
        return tensor

    @staticmethod
    def _colour(tensor: torch.Tensor, preset: AugmentPreset, generator: torch.Generator) -> torch.Tensor:
        """Brightness, contrast, saturation, then hue + white balance (one 3x3 matrix), then gamma."""
        jitter = preset.jitter
        if jitter:
            tensor = TF.adjust_brightness(tensor, _uniform(generator, 1 - jitter, 1 + jitter))
            tensor = TF.adjust_contrast(tensor, _uniform(generator, 1 - jitter, 1 + jitter))
            tensor = TF.adjust_saturation(tensor, _uniform(generator, 1 - jitter, 1 + jitter))
        if preset.hue or preset.white_balance:
            hue = _uniform(generator, -preset.hue, preset.hue) if preset.hue else 0.0
            balance = preset.white_balance
            gains = tuple(_uniform(generator, 1 - balance, 1 + balance) for _ in range(3)) if balance else (1.0,) * 3
            tensor = apply_colour_matrix(tensor, colour_matrix(hue, gains))
        low, high = preset.gamma
        if (low, high) != (1.0, 1.0):
            tensor = tensor.pow(math.exp(_uniform(generator, math.log(low), math.log(high))))
        return tensor

    @staticmethod
    def _camera(tensor: torch.Tensor, preset: AugmentPreset, generator: torch.Generator, gray: bool):
        """Lens blur, low resolution, sensor noise and JPEG, each on its own coin flip (``[3,H,W]`` in [0, 1])."""
        if _happens(generator, preset.blur_p):
            tensor = gaussian_blur(tensor, _uniform(generator, *preset.blur_sigma))
        if _happens(generator, preset.lowres_p):
            tensor = low_resolution(tensor, _uniform(generator, *preset.lowres_factor))
        if _happens(generator, preset.noise_p):
            tensor = sensor_noise(tensor, _uniform(generator, *preset.noise_std), generator, monochrome=gray)
        if _happens(generator, preset.jpeg_p):
            low, high = preset.jpeg_quality
            tensor = jpeg(tensor, int(torch.randint(low, high + 1, (), generator=generator)))
        return tensor


def denormalize(images: torch.Tensor, mean, std) -> torch.Tensor:
    """Invert the normalisation of ``[B, 3, H, W]`` (for showing model inputs) -> values in [0, 1]."""
    mean = torch.tensor(mean, device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(std, device=images.device).view(1, -1, 1, 1)
    return (images * std + mean).clamp(0, 1)
