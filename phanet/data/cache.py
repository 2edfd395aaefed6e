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

**Aligned mode** (``align=True``, ``phanet data prepare --align``): instead of squashing the box or the
whole image, each image is cropped by the face-crop contract of :mod:`phanet.crop` -- the same crop
``phanet predict`` makes. A face detector (MTCNN by default) finds the faces; the most confident one
(or, when the sample has a box, the one overlapping it most) has its five landmarks mapped onto the
template. Where detection fails (profiles often do), the image is aligned with the median landmark
positions -- normalised by the image size -- of the detected images of the same pose bin (in studio
sets the head sits in the same place per pose); a pose bin without any detection (or an unknown pose)
gets a square crop: side ``min(w, h)`` around the image centre, or the box crop of
:func:`phanet.inference.align.box_similarity` when the sample has a box -- never a stretched image.
The index records per item how it was aligned (``aligned_by``: ``detected``, ``pose_median`` or
``centre_square``), the counts (``align_counts``) and the crop spec (``crop``), which
:func:`load_cached` puts into the returned index so checkpoints record it. Aligned caches live in
their own folder (``<dataset>-<size>px-aligned-p<padding>-<hash>``). Detection runs once, chunk by
chunk; images whose detection failed are decoded a second time after all detections are known.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from phanet.crop import DEFAULT_PADDING, crop_spec, template_points
from phanet.data.base import UNKNOWN_POSE, Sample, load_rgb
from phanet.data.registry import DatasetIndex

log = logging.getLogger(__name__)

CACHE_FORMAT = "phanet-cache-1"
INDEX_FILE = "index.json"
IMAGES_FILE = "images.npy"
CHUNK = 256  # images decoded per batch of thread-pool work (bounds memory on large datasets)
ALIGN_CHUNK = 32  # aligned mode: full-size images decoded and detected together (bounds memory)
ALIGN_METHODS = ("detected", "pose_median", "centre_square")
_EXIF_ORIENTATION = 0x0112


# ----------------------------------------------------------------------------- naming

def items_key(index: DatasetIndex) -> str:
    """A short hash of what the cache depends on: each sample's id, image path and box, in order."""
    digest = hashlib.sha256()
    for sample in index.samples:
        source = str(sample.image) if isinstance(sample.image, (str, os.PathLike)) else "<in-memory>"
        digest.update(f"{sample.item_id}\0{source}\0{sample.box}\n".encode())
    return digest.hexdigest()[:16]


def cache_path(
    index: DatasetIndex, size: int, cache_dir: str | Path, align: bool = False, padding: float = DEFAULT_PADDING
) -> Path:
    """The cache folder: ``<dataset>-<size>px-<hash>``, aligned ``<dataset>-<size>px-aligned-p<padding>-<hash>``."""
    mode = f"-aligned-p{float(padding):g}" if align else ""
    return Path(cache_dir) / f"{index.name or 'dataset'}-{size}px{mode}-{items_key(index)}"


# ----------------------------------------------------------------------------- building

def build_cache(
    index: DatasetIndex,
    size: int,
    cache_dir: str | Path,
    workers: int | None = None,
    progress: bool = True,
    align: bool = False,
    padding: float = DEFAULT_PADDING,
    detector=None,
) -> Path:
    """Decode, crop and resize every sample once into ``cache_dir``; returns the cache folder.

    An existing complete cache for the same samples, size and mode is reused as is. ``workers``
    threads decode in parallel (PIL releases the GIL while decoding); default: the CPU count.

    align: crop by the face-crop contract (see the module docstring) instead of resizing the box or
        the whole image; ``padding`` as in :func:`phanet.crop.template_points`. ``detector``: any
        object with ``detect_batch(images) -> [[DetectedFace, ...], ...]``; default: MTCNN on the CPU,
        created only when the cache has to be built. The counts per method are logged and stored in
        the index (:func:`alignment_counts`).
    """
    if size < 1:
        raise ValueError(f"cache size must be positive, got {size}")
    if align:
        template_points(size, padding)  # refuses an impossible padding before any work
    path = cache_path(index, size, cache_dir, align, padding)
    if (path / INDEX_FILE).is_file():
        return path
    if align:
        try:
            import cv2  # noqa: F401  (warp_to_crop needs it; fail before decoding anything)
        except ImportError as err:
            raise ImportError("aligned face crops need OpenCV: pip install 'phanet[detect]'") from err
    path.mkdir(parents=True, exist_ok=True)
    count = len(index.samples)
    images = np.lib.format.open_memmap(
        path / IMAGES_FILE, mode="w+", dtype=np.uint8, shape=(count, size, size, 3)
    )
    failed: dict[str, str] = {}
    extra: dict = {}
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        if align:
            aligned_by = _fill_aligned(index, images, size, padding, detector, pool, progress, failed)
            counts = {method: aligned_by.count(method) for method in ALIGN_METHODS}
            extra = {"crop": crop_spec(padding), "aligned_by": aligned_by, "align_counts": counts}
            log.info("%s: %s", index.name or "dataset", describe_counts(counts, len(failed)))
        else:
            _fill_resized(index, images, size, pool, progress, failed)
    images.flush()
    del images
    meta = {
        "format": CACHE_FORMAT, "dataset": index.name, "size": size, "count": count, "key": items_key(index),
        "item_ids": [s.item_id for s in index.samples], "failed": failed, **extra,
    }
    tmp = path / (INDEX_FILE + ".tmp")
    tmp.write_text(json.dumps(meta))
    tmp.replace(path / INDEX_FILE)  # written last: its presence means the cache is complete
    return path


def _fill_resized(index: DatasetIndex, images: np.ndarray, size: int, pool, progress: bool, failed: dict) -> None:
    """Unaligned mode: each sample's box (or whole image) resized to ``size x size`` into ``images``."""
    count = len(index.samples)
    decode = functools.partial(decode_crop, size=size)
    with _progress(count, progress) as bar:
        for start in range(0, count, CHUNK):
            chunk = index.samples[start : start + CHUNK]
            for offset, result in enumerate(pool.map(decode, chunk)):
                if isinstance(result, str):
                    failed[chunk[offset].item_id or str(start + offset)] = result
                else:
                    images[start + offset] = result
            bar.update(len(chunk))


def _fill_aligned(
    index: DatasetIndex, images: np.ndarray, size: int, padding: float, detector, pool, progress: bool, failed: dict
) -> list[str | None]:
    """Aligned mode: fill ``images``; returns how each row was aligned (None: it failed to decode).

    Pass 1 decodes ``ALIGN_CHUNK`` images at a time, detects their faces and warps those with
    landmarks; pass 2 decodes the others again and aligns them with their pose bin's median
    landmarks, or a centred square where the bin has no detection.
    """
    from phanet.inference.align import align_face, warp_to_crop

    samples = index.samples
    count = len(samples)
    methods: list[str | None] = [None] * count
    normalised: dict[int, list[np.ndarray]] = {}  # pose bin -> detected landmarks / (width, height)
    undetected: list[int] = []
    with _progress(count, progress, "aligning face crops") as bar:
        for start in range(0, count, ALIGN_CHUNK):
            rows = list(range(start, min(count, start + ALIGN_CHUNK)))
            decoded = []
            for row, result in zip(rows, pool.map(decode_image, (samples[r] for r in rows))):
                if isinstance(result, str):
                    failed[samples[row].item_id or str(row)] = result
                else:
                    decoded.append((row, result))
            if decoded:
                if detector is None:
                    detector = _default_detector()
                found = detector.detect_batch([image for _, image in decoded])
                for (row, image), faces in zip(decoded, found):
                    landmarks = pick_landmarks(faces, samples[row].box)
                    crop = None
                    if landmarks is not None:
                        try:
                            crop = align_face(image, size, landmarks, padding=padding)[0]
                        except ValueError:  # degenerate landmarks
                            crop = None
                    if crop is None:
                        undetected.append(row)
                        continue
                    images[row], methods[row] = crop, "detected"
                    if samples[row].pose != UNKNOWN_POSE:
                        height, width = image.shape[:2]
                        normalised.setdefault(samples[row].pose, []).append(landmarks / (width, height))
            bar.update(len(rows))
    medians = {pose: np.median(np.stack(points), axis=0) for pose, points in normalised.items()}

    def fallback(row: int) -> tuple[np.ndarray, str] | str:
        image = decode_image(samples[row])
        if isinstance(image, str):
            return image
        height, width = image.shape[:2]
        median = medians.get(samples[row].pose) if samples[row].pose != UNKNOWN_POSE else None
        if median is not None:
            try:
                return align_face(image, size, median * (width, height), padding=padding)[0], "pose_median"
            except ValueError:
                pass
        if samples[row].box is not None:
            return align_face(image, size, box=np.asarray(samples[row].box, dtype=np.float64))[0], "centre_square"
        return warp_to_crop(image, centre_square(width, height, size), size), "centre_square"

    with _progress(len(undetected), progress and bool(undetected), "fallback face crops") as bar:
        for start in range(0, len(undetected), ALIGN_CHUNK):
            rows = undetected[start : start + ALIGN_CHUNK]
            for row, result in zip(rows, pool.map(fallback, rows)):
                if isinstance(result, str):  # decoded once, failed the second time
                    failed[samples[row].item_id or str(row)] = result
                else:
                    images[row], methods[row] = result
            bar.update(len(rows))
    return methods


def _default_detector():
    from phanet.inference.detect import create_detector

    # MTCNN's first pass only: where it finds no face, the pose-median fallback places studio profiles from the
    # landmarks of the same pose's detected faces, which the looser later passes of `phanet predict` (judged on
    # the photo path only, benchmarks/results/photo_path_retry.txt) were not measured against.
    return create_detector("mtcnn", device="cpu", retry_thresholds=None)


def pick_landmarks(faces, box=None) -> np.ndarray | None:
    """``[5, 2]`` landmarks of the face to align: the most confident, or the one whose box overlaps
    ``box`` most (IoU); None when no face has landmarks, or none overlaps ``box``."""
    faces = sorted((f for f in faces if f.landmarks is not None and np.shape(f.landmarks) == (5, 2)),
                   key=lambda f: -float(f.score))
    if not faces:
        return None
    if box is None:
        return np.asarray(faces[0].landmarks, dtype=np.float64)
    overlaps = [_iou(face.box, box) for face in faces]
    best = int(np.argmax(overlaps))  # first of equals: the most confident
    return np.asarray(faces[best].landmarks, dtype=np.float64) if overlaps[best] > 0 else None


def _iou(a, b) -> float:
    ax0, ay0, ax1, ay1 = (float(v) for v in a)
    bx0, by0, bx1, by1 = (float(v) for v in b)
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0


def centre_square(width: int, height: int, size: int) -> np.ndarray:
    """``[2, 3]`` matrix mapping the centred square of side ``min(width, height)`` onto the crop."""
    factor = size / min(width, height)
    return np.array([[factor, 0.0, size / 2 - factor * width / 2], [0.0, factor, size / 2 - factor * height / 2]])


def describe_counts(counts: dict, unreadable: int = 0) -> str:
    """``aligned 4,612 by detection, 270 by the pose median, 18 by a centred square``."""
    text = (f"aligned {counts.get('detected', 0):,} by detection, {counts.get('pose_median', 0):,} by the pose "
            f"median, {counts.get('centre_square', 0):,} by a centred square")
    return text + (f"; {unreadable:,} unreadable" if unreadable else "")


def alignment_counts(path: str | Path) -> dict | None:
    """The per-method counts of an aligned cache folder (None for an unaligned one)."""
    return json.loads((Path(path) / INDEX_FILE).read_text()).get("align_counts")


def _progress(total: int, enabled: bool, desc: str = "caching face crops"):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", disable=not enabled)


def decode_image(sample: Sample) -> np.ndarray | str:
    """The sample's whole image as ``[H, W, 3]`` uint8, or the reason it could not be read."""
    try:
        if isinstance(sample.image, (str, os.PathLike)):
            return load_rgb(sample.image)
        image = np.asarray(sample.image if isinstance(sample.image, np.ndarray) else sample.image())
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
            raise ValueError(f"expected an [H, W, 3] uint8 image, got {image.dtype} {image.shape}")
        return np.ascontiguousarray(image)
    except (OSError, UnidentifiedImageError, ValueError) as err:
        return f"{type(err).__name__}: {err}"


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


def find_cache(
    index: DatasetIndex,
    cache_dir: str | Path,
    size: int | None = None,
    align: bool | None = None,
    padding: float | None = None,
) -> Path:
    """The cache folder for ``index``: ``cache_dir`` itself, or the one inside it for these samples.

    ``size``, ``align`` (True: aligned crops only, False: unaligned only) and ``padding`` (of aligned
    crops) narrow the choice; None accepts any.
    """
    cache_dir = Path(cache_dir)
    if (cache_dir / INDEX_FILE).is_file():
        return cache_dir
    key = items_key(index)
    found = []
    for file in sorted(cache_dir.glob(f"*-{key}/{INDEX_FILE}")):
        meta = json.loads(file.read_text())
        crop = meta.get("crop")
        if size is not None and meta.get("size") != size:
            continue
        if align is not None and bool(crop) != align:
            continue
        if padding is not None and crop and not math.isclose(float(crop.get("padding", -1)), padding):
            continue
        found.append(file.parent)
    if len(found) == 1:
        return found[0]
    if not found:
        what = "" if align is None else ("aligned " if align else "unaligned ")
        if align and padding is not None:
            what += f"(padding {padding:g}) "
        command = "phanet data prepare --align" if align else "phanet data prepare"
        raise FileNotFoundError(
            f"no {what}cache of these {len(index.samples)} {index.name or 'dataset'} samples in {cache_dir}; "
            f"build one with `{command}` (or build_cache)"
        )
    raise ValueError(f"several caches of these samples in {cache_dir} ({', '.join(p.name for p in found)}); "
                     "give size, align and padding")


def load_cached(
    index: DatasetIndex,
    cache_dir: str | Path,
    size: int | None = None,
    align: bool | None = None,
    padding: float | None = None,
) -> DatasetIndex:
    """``index`` with each sample's image read from its cache (built by :func:`build_cache`).

    An aligned cache sets the returned index's ``crop`` to its crop spec; an unaligned one leaves
    ``crop`` as it was. ``size``/``align``/``padding`` choose among caches as in :func:`find_cache`,
    and a cache folder given directly must match ``align`` and ``padding`` when they are given.
    """
    path = find_cache(index, cache_dir, size, align, padding)
    meta = json.loads((path / INDEX_FILE).read_text())
    if meta.get("format") != CACHE_FORMAT or meta.get("item_ids") != [s.item_id for s in index.samples]:
        raise ValueError(f"cache {path} was built for other samples than these {len(index.samples)}; rebuild it")
    crop = meta.get("crop")
    if align is not None and bool(crop) != align:
        raise ValueError(f"cache {path} holds {'aligned' if crop else 'unaligned'} crops, but "
                         f"{'aligned' if align else 'unaligned'} ones were asked for")
    if align and padding is not None and not math.isclose(float(crop.get("padding", -1)), padding):
        raise ValueError(f"cache {path} holds crops with padding {crop.get('padding')}, not {padding:g}")
    file = str(path / IMAGES_FILE)
    failed = meta["failed"]
    samples = []
    for row, sample in enumerate(index.samples):
        reason = failed.get(sample.item_id or str(row))
        image = FailedImage(sample.item_id, reason) if reason is not None else CachedImage(file, row)
        samples.append(replace(sample, image=image, box=None))
    return replace(index, samples=samples, crop=crop) if crop else replace(index, samples=samples)


def prepare_cached(
    index: DatasetIndex,
    size: int,
    cache_dir: str | Path,
    workers: int | None = None,
    progress: bool = True,
    align: bool = False,
    padding: float = DEFAULT_PADDING,
    detector=None,
) -> DatasetIndex:
    """Build the cache if needed and return ``index`` reading from it."""
    path = build_cache(index, size, cache_dir, workers, progress, align=align, padding=padding, detector=detector)
    return load_cached(index, path, size, align=align, padding=padding)
