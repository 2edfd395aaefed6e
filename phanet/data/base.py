"""The shared vocabulary of every dataset: label spaces, samples, and the torch Dataset over them.

Every dataset module (KDEF, Multi-PIE, the synthetic faces, the generic CSV layout, ...) turns its
own files into a list of :class:`Sample` plus a :class:`LabelSpace`; everything downstream (training,
protocols, reports) only sees these two types.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)

# Canonical expression names. Datasets with other classes (Multi-PIE's squint, scream)
# keep their own names; cross-dataset evaluation maps classes by these names.
CANONICAL_EXPRESSIONS = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
SEVEN_EXPRESSIONS = CANONICAL_EXPRESSIONS[:7]

UNKNOWN_POSE = -1


@dataclass(frozen=True)
class PoseBin:
    """One discrete head-pose class; nominal yaw/pitch in degrees where the dataset states them.

    Yaw is positive when the subject turns to *their* left, so the nose points to the image's right
    (the synthetic renderer's convention; datasets state their own). What the training code relies on
    is only that a horizontal flip maps yaw to -yaw.
    """

    name: str
    yaw: float | None = None
    pitch: float | None = None


@dataclass(frozen=True)
class LabelSpace:
    """The expression classes and pose bins of one dataset, in label-index order."""

    expressions: tuple[str, ...]
    poses: tuple[PoseBin, ...] = ()

    @property
    def num_expressions(self) -> int:
        return len(self.expressions)

    @property
    def num_poses(self) -> int:
        return len(self.poses)

    def mirror_pose_index(self) -> list[int]:
        """For each pose index, the index of the pose a horizontal flip turns it into.

        A flip maps (yaw, pitch) to (-yaw, pitch). Bins without a nominal yaw, or whose mirror is not
        a bin of this dataset, map to themselves only when they are frontal; otherwise to -1 (unknown),
        so that a flip never silently gives a wrong pose label.
        """
        mirror = []
        for i, pose in enumerate(self.poses):
            if pose.yaw is None:
                mirror.append(UNKNOWN_POSE)
                continue
            match = [
                j for j, other in enumerate(self.poses)
                if other.yaw is not None and abs(other.yaw + pose.yaw) < 1e-6
                and (other.pitch or 0.0) == (pose.pitch or 0.0)
            ]
            mirror.append(match[0] if match else (i if abs(pose.yaw) < 1e-6 else UNKNOWN_POSE))
        return mirror

    def to_json(self) -> dict:
        return {
            "expressions": list(self.expressions),
            "poses": [{"name": p.name, "yaw": p.yaw, "pitch": p.pitch} for p in self.poses],
        }

    @classmethod
    def from_json(cls, data: dict) -> LabelSpace:
        return cls(
            expressions=tuple(data["expressions"]),
            poses=tuple(PoseBin(p["name"], p.get("yaw"), p.get("pitch")) for p in data.get("poses", [])),
        )


@dataclass
class Sample:
    """One labelled face image.

    ``image`` is a path (decoded lazily), an ``[H, W, 3]`` uint8 RGB array, or a picklable
    zero-argument callable returning such an array (e.g. the synthetic renderer, so images are made
    on the fly in DataLoader workers). ``pose`` is an index
    into the dataset's :class:`LabelSpace.poses`, or -1 when unknown (the pose loss ignores it).
    ``box`` optionally gives a face box ``(x0, y0, x1, y1)`` in pixels to crop before resizing.
    """

    image: str | Path | np.ndarray
    expression: int
    pose: int = UNKNOWN_POSE
    subject: str = ""
    item_id: str = ""
    yaw: float | None = None
    pitch: float | None = None
    box: tuple[float, float, float, float] | None = None
    split: str | None = None
    extra: dict = field(default_factory=dict)


def load_rgb(path: str | Path) -> np.ndarray:
    """Decode an image file as ``[H, W, 3]`` uint8 RGB, honouring EXIF rotation.

    Grayscale, palette, RGBA and 16-bit images are converted. Raises ``OSError`` (or PIL's
    ``UnidentifiedImageError``, a subclass) on files that are not decodable images.
    """
    from PIL import ImageOps

    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            # 16/32-bit grayscale: PIL's convert("RGB") clips instead of rescaling.
            arr = np.asarray(im, dtype=np.float64)
            hi = arr.max() if arr.max() > 0 else 1.0
            arr = (arr / hi * 255.0).round().astype(np.uint8)
            return np.repeat(arr[..., None], 3, axis=2)
        return np.asarray(im.convert("RGB"))


class FaceDataset(torch.utils.data.Dataset):
    """A torch Dataset over :class:`Sample` s.

    ``transform(image: np.ndarray [H, W, 3] uint8, sample, generator) -> (tensor [3, H, W], flipped)``
    is applied to each decoded image; when it reports a horizontal flip, the pose label is mirrored
   . ``generator`` is a ``torch.Generator`` seeded from
    ``(seed, epoch, index)``: augmentation is then a pure function of the sample and the epoch, the
    same whatever the number of DataLoader workers, which is what makes resumed runs exact. The
    engine sets ``epoch`` before each epoch (workers must not be persistent for it to reach them).

    A corrupt or unreadable image yields ``None`` (with a warning) unless ``strict``; the collate
    function :func:`collate_skipping_none` drops it and counts it, so one bad file never stops a run.
    """

    def __init__(
        self,
        samples: Sequence[Sample],
        label_space: LabelSpace,
        transform: Callable | None = None,
        strict: bool = False,
    ):
        self.samples = list(samples)
        self.label_space = label_space
        self.transform = transform
        self.strict = strict
        self._mirror = label_space.mirror_pose_index()
        self.seed = 0
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.samples)

    def read_image(self, sample: Sample) -> np.ndarray:
        if isinstance(sample.image, np.ndarray):
            image = sample.image
        elif callable(sample.image):
            image = sample.image()
        else:
            image = load_rgb(sample.image)
        if sample.box is not None:
            image = crop_box(image, sample.box)
        return image

    def __getitem__(self, index: int) -> dict | None:
        sample = self.samples[index]
        try:
            image = self.read_image(sample)
        except (OSError, UnidentifiedImageError, ValueError) as err:
            if self.strict:
                raise OSError(f"cannot read image {sample.image!r}: {err}") from err
            warnings.warn(f"skipping unreadable image {sample.image!r}: {err}", stacklevel=2)
            return None
        flipped = False
        if self.transform is not None:
            generator = torch.Generator().manual_seed(hash((self.seed, self.epoch, index)) & 0x7FFF_FFFF_FFFF)
            image, flipped = self.transform(image, sample, generator)
        else:
            image = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1).div_(255)
        pose = sample.pose
        if flipped and pose >= 0:
            pose = self._mirror[pose]
        return {
            "image": image,
            "expression": torch.tensor(sample.expression, dtype=torch.long),
            "pose": torch.tensor(pose, dtype=torch.long),
            "index": torch.tensor(index, dtype=torch.long),
        }


def crop_box(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """Crop ``[H, W, C]`` to ``box = (x0, y0, x1, y1)``, clipped to the image; raises on an empty crop."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"face box {tuple(box)} lies outside the {w}x{h} image")
    return image[y0:y1, x0:x1]


def collate_skipping_none(batch: list[dict | None]) -> dict:
    """Stack a batch, dropping samples that failed to load; ``batch["skipped"]`` counts them."""
    kept = [item for item in batch if item is not None]
    skipped = len(batch) - len(kept)
    if not kept:
        return {"skipped": skipped}
    out = torch.utils.data.default_collate(kept)
    out["skipped"] = skipped
    return out
