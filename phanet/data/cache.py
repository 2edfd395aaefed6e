"""A prepared cache of face crops, so that an epoch on CPU does not decode full-size JPEG/BMP files.

KDEF's 4,900 portraits are 562x762 JPEGs and the model sees 112x112 crops: decoding the originals
every epoch is most of the cost of a CPU epoch. :func:`build_cache` decodes each image once, crops its
face box, resizes it to ``size x size`` (aspect not kept - the crop is what the model sees, and the
transforms resize to a square anyway) and stores all crops in one uint8 ``.npy`` memmap
``[N, size, size, 3]`` with a JSON index. :func:`load_cached` returns the same samples, in the same
order (so split indices stay valid), with ``image`` a picklable callable reading one row of the memmap
(opened lazily once per DataLoader worker) and no box.

JPEGs are decoded with libjpeg's DCT scaling (``Image.draft``) to the smallest size that still keeps
the crop at least ``size`` pixels wide and high - the main source of the speed-up when building.

The cache folder is named after the dataset, the size and a hash of the samples' ids, image paths and
boxes, so a changed dataset (files added or removed, other options) gets a new cache instead of stale
crops. Files edited in place under the same name are not detected: delete the cache folder then.
Images that fail to decode are listed in the index and raise ``OSError`` when read from the cache, so
:class:`FaceDataset` skips them with a warning exactly as it would the original file.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from phanet.data.base import Sample, load_rgb
from phanet.data.registry import DatasetIndex

CACHE_FORMAT = "phanet-cache-1"
INDEX_FILE = "index.json"
IMAGES_FILE = "images.npy"
CHUNK = 256  # images decoded per batch of thread-pool work (bounds memory on large datasets)
_EXIF_ORIENTATION = 0x0112


# ----------------------------------------------------------------------------- naming

def items_key(index: DatasetIndex) -> str:
    """A short hash of what the cache depends on: each sample's id, image path and box, in order."""
    digest = hashlib.sha256()
    for sample in index.samples:
        source = str(sample.image) if isinstance(sample.image, (str, os.PathLike)) else "<in-memory>"
        digest.update(f"{sample.item_id}\0{source}\0{sample.box}\n".encode())
    return digest.hexdigest()[:16]


def cache_path(index: DatasetIndex, size: int, cache_dir: str | Path) -> Path:
    return Path(cache_dir) / f"{index.name or 'dataset'}-{size}px-{items_key(index)}"


# ----------------------------------------------------------------------------- building

def build_cache(
    index: DatasetIndex, size: int, cache_dir: str | Path, workers: int | None = None, progress: bool = True
) -> Path:
    """Decode, crop and resize every sample once into ``cache_dir``; returns the cache folder.

    An existing complete cache for the same samples and size is reused as is. ``workers`` threads
    decode in parallel (PIL releases the GIL while decoding); default: the CPU count.
    """
    if size < 1:
        raise ValueError(f"cache size must be positive, got {size}")
    path = cache_path(index, size, cache_dir)
    if (path / INDEX_FILE).is_file():
        return path
    path.mkdir(parents=True, exist_ok=True)
    count = len(index.samples)
    images = np.lib.format.open_memmap(
        path / IMAGES_FILE, mode="w+", dtype=np.uint8, shape=(count, size, size, 3)
    )
    failed: dict[str, str] = {}
    decode = functools.partial(decode_crop, size=size)
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool, _progress(count, progress) as bar:
        for start in range(0, count, CHUNK):
            chunk = index.samples[start : start + CHUNK]
            for offset, result in enumerate(pool.map(decode, chunk)):
                if isinstance(result, str):
                    failed[chunk[offset].item_id or str(start + offset)] = result
                else:
                    images[start + offset] = result
            bar.update(len(chunk))
    images.flush()
    del images
    meta = {
        "format": CACHE_FORMAT, "dataset": index.name, "size": size, "count": count, "key": items_key(index),
        "item_ids": [s.item_id for s in index.samples], "failed": failed,
    }
    tmp = path / (INDEX_FILE + ".tmp")
    tmp.write_text(json.dumps(meta))
    tmp.replace(path / INDEX_FILE)  # written last: its presence means the cache is complete
    return path


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="caching face crops", unit="img", disable=not enabled)


def decode_crop(sample: Sample, size: int) -> np.ndarray | str:
    """The sample's face crop as ``[size, size, 3]`` uint8, or the reason it could not be read."""
    try:
        if isinstance(sample.image, (str, os.PathLike)):
            image, box = _decode_file(Path(sample.image), sample.box, size)
        else:
            image = sample.image if isinstance(sample.image, np.ndarray) else sample.image()
            box = sample.box
        return crop_resize(image, box, size)
    except (OSError, UnidentifiedImageError, ValueError) as err:
        return f"{type(err).__name__}: {err}"


def _decode_file(path: Path, box, size: int):
    """Decode ``path`` (JPEGs at a reduced DCT scale when that keeps the crop >= ``size``); returns the
    image and ``box`` in its pixel coordinates."""
    with Image.open(path) as im:
        if im.format != "JPEG" or im.getexif().get(_EXIF_ORIENTATION, 1) != 1:
            return load_rgb(path), box
        width, height = im.size
        x0, y0, x1, y1 = box if box is not None else (0, 0, width, height)
        scale = min(1.0, max(size / max(x1 - x0, 1), size / max(y1 - y0, 1)))
        im.draft(None, (math.ceil(width * scale), math.ceil(height * scale)))
        image = np.asarray(im.convert("RGB"))
    sx, sy = image.shape[1] / width, image.shape[0] / height
    return image, (x0 * sx, y0 * sy, x1 * sx, y1 * sy)


def crop_resize(image: np.ndarray, box, size: int) -> np.ndarray:
    """Crop ``box`` (sub-pixel, clipped to the image) and resize to ``[size, size, 3]`` in one resampling."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box if box is not None else (0, 0, width, height)
    clipped = (max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        raise ValueError(f"face box {tuple(box)} lies outside the {width}x{height} image")
    if clipped == (0, 0, width, height) and (height, width) == (size, size):
        return np.ascontiguousarray(image)
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR, box=clipped))


# ----------------------------------------------------------------------------- reading

@dataclass(frozen=True)
class CachedImage:
    """Picklable zero-argument callable: row ``row`` of the cache memmap ``file`` as ``[S, S, 3]`` uint8."""

    file: str
    row: int

    def __call__(self) -> np.ndarray:
        return np.array(_open_images(self.file)[self.row])


@dataclass(frozen=True)
class FailedImage:
    """Stands in for an image that failed when the cache was built; reading it raises ``OSError``."""

    item_id: str
    reason: str

    def __call__(self) -> np.ndarray:
        raise OSError(f"{self.item_id} could not be decoded when the cache was built ({self.reason})")


@functools.lru_cache(maxsize=8)
def _open_images(file: str) -> np.ndarray:
    return np.load(file, mmap_mode="r")


def find_cache(index: DatasetIndex, cache_dir: str | Path, size: int | None = None) -> Path:
    """The cache folder for ``index``: ``cache_dir`` itself, or the one inside it for these samples."""
    cache_dir = Path(cache_dir)
    if (cache_dir / INDEX_FILE).is_file():
        return cache_dir
    key = items_key(index)
    found = sorted(p.parent for p in cache_dir.glob(f"*-{key}/{INDEX_FILE}"))
    if size is not None:
        found = [p for p in found if p.name.endswith(f"-{size}px-{key}")]
    if len(found) == 1:
        return found[0]
    if not found:
        raise FileNotFoundError(
            f"no cache of these {len(index.samples)} {index.name or 'dataset'} samples in {cache_dir}; "
            "build one with `phanet data prepare` (or build_cache)"
        )
    raise ValueError(f"several caches of these samples in {cache_dir} ({', '.join(p.name for p in found)}); give size")


def load_cached(index: DatasetIndex, cache_dir: str | Path, size: int | None = None) -> DatasetIndex:
    """``index`` with each sample's image read from its cache (built by :func:`build_cache`)."""
    path = find_cache(index, cache_dir, size)
    meta = json.loads((path / INDEX_FILE).read_text())
    if meta.get("format") != CACHE_FORMAT or meta.get("item_ids") != [s.item_id for s in index.samples]:
        raise ValueError(f"cache {path} was built for other samples than these {len(index.samples)}; rebuild it")
    file = str(path / IMAGES_FILE)
    failed = meta["failed"]
    samples = []
    for row, sample in enumerate(index.samples):
        reason = failed.get(sample.item_id or str(row))
        image = FailedImage(sample.item_id, reason) if reason is not None else CachedImage(file, row)
        samples.append(replace(sample, image=image, box=None))
    return replace(index, samples=samples)


def prepare_cached(
    index: DatasetIndex, size: int, cache_dir: str | Path, workers: int | None = None, progress: bool = True
) -> DatasetIndex:
    """Build the cache if needed and return ``index`` reading from it."""
    return load_cached(index, build_cache(index, size, cache_dir, workers, progress), size)
