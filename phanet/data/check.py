"""What ``phanet data check`` reports: counts per class, pose, split and subject, and every problem.

Indexing (the dataset modules) never decodes images, so damaged files surface only here or, one by
one, as warnings during training. :func:`inspect_images` opens every image once (JPEGs at a reduced
DCT scale, which still reads the whole file and so still catches truncation) and reports files that
do not decode, face boxes outside the picture, pictures that are almost black, and pictures whose
size differs from the dataset's usual one (a sign of a mis-cropped or replaced file, e.g. in KDEF).
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from phanet.data.base import crop_box
from phanet.data.registry import DatasetIndex

DARK_MEAN = 10.0  # mean grey level below which a picture is reported as nearly black


@dataclass
class ImageInfo:
    size: tuple[int, int] | None = None  # (width, height) of the stored picture
    mean: float | None = None
    error: str = ""


def summarize(index: DatasetIndex) -> dict[str, Counter]:
    """Counts of samples per class name, pose name (``unknown`` for -1), split and subject."""
    space = index.label_space
    poses = [p.name for p in space.poses]
    return {
        "class": Counter(space.expressions[s.expression] for s in index.samples),
        "pose": Counter(poses[s.pose] if s.pose >= 0 else "unknown" for s in index.samples),
        "split": Counter(s.split or "none" for s in index.samples),
        "subject": Counter(s.subject for s in index.samples if s.subject),
    }


def unusual_subjects(per_subject: Counter) -> tuple[int, list[tuple[str, int]]]:
    """The most common number of images per subject, and the subjects that have another number."""
    if not per_subject:
        return 0, []
    usual = Counter(per_subject.values()).most_common(1)[0][0]
    return usual, sorted((s, n) for s, n in per_subject.items() if n != usual)


def inspect_image(sample) -> ImageInfo:
    try:
        if isinstance(sample.image, (str, os.PathLike)):
            with Image.open(sample.image) as im:
                size = im.size
                if im.format == "JPEG":
                    im.draft("L", (max(1, size[0] // 8), max(1, size[1] // 8)))
                grey = np.asarray(im.convert("L"))
            scale = (grey.shape[1] / size[0], grey.shape[0] / size[1])
        else:
            image = sample.image if isinstance(sample.image, np.ndarray) else sample.image()
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                return ImageInfo(error=f"in-memory image is {image.dtype} {image.shape}, expected uint8 [H, W, 3]")
            size, grey, scale = (image.shape[1], image.shape[0]), image.mean(axis=2), (1.0, 1.0)
        if sample.box is not None:
            x0, y0, x1, y1 = sample.box
            crop_box(grey[..., None], (x0 * scale[0], y0 * scale[1], x1 * scale[0], y1 * scale[1]))
        return ImageInfo(size=size, mean=float(grey.mean()))
    except (OSError, UnidentifiedImageError, ValueError) as err:
        return ImageInfo(error=f"{type(err).__name__}: {err}")


def inspect_images(index: DatasetIndex, workers: int | None = None, progress: bool = True) -> list[str]:
    """Open every image; one problem line per unreadable, nearly black or oddly sized picture."""
    from tqdm import tqdm

    samples = index.samples
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        infos = list(tqdm(pool.map(inspect_image, samples), total=len(samples), desc="opening images",
                          unit="img", disable=not progress))
    problems = []
    sizes = Counter(info.size for info in infos if info.size)
    usual_size = sizes.most_common(1)[0][0] if sizes and _sizes_are_fixed(sizes) else None
    for sample, info in zip(samples, infos):
        name = str(sample.image) if isinstance(sample.image, (str, os.PathLike)) else sample.item_id
        if info.error:
            problems.append(f"{name}: unreadable ({info.error})")
        elif info.mean is not None and info.mean < DARK_MEAN:
            problems.append(f"{name}: nearly black (mean grey level {info.mean:.1f})")
        if info.size and usual_size and info.size != usual_size:
            problems.append(f"{name}: {info.size[0]}x{info.size[1]} pixels, most are {usual_size[0]}x{usual_size[1]}")
    return problems


def _sizes_are_fixed(sizes: Counter) -> bool:
    """True when one size dominates (a lab dataset); in-the-wild sets have all sizes and are not flagged."""
    total = sum(sizes.values())
    return sizes.most_common(1)[0][1] >= 0.9 * total


def subject_stats(per_subject: Counter) -> tuple[int, float, int]:
    counts = list(per_subject.values())
    return min(counts), statistics.median(counts), max(counts)


# ----------------------------------------------------------------------------- duplicates and leaks

IN_MEMORY_HASH_LIMIT = 1 << 30  # bytes of in-memory images hashed for content duplicates; above: skipped


def _image_name(sample) -> str:
    return str(sample.image) if isinstance(sample.image, (str, os.PathLike)) else (sample.item_id or "<in memory>")


def _content_key(sample) -> tuple | None:
    """A cheap first key (file size / array shape) for samples whose content can be compared."""
    if isinstance(sample.image, (str, os.PathLike)):
        try:
            return ("file", os.stat(sample.image).st_size)
        except OSError:
            return None
    if isinstance(sample.image, np.ndarray):
        return ("array", sample.image.shape, str(sample.image.dtype))
    return None  # rendered or cached on demand: not compared


PREFIX_BYTES = 1 << 16  # files of equal size are first compared by a hash of their first 64 KiB


def _content_hash(sample, prefix: bool = False) -> str | None:
    import hashlib

    digest = hashlib.sha256()
    try:
        if isinstance(sample.image, np.ndarray):
            digest.update(np.ascontiguousarray(sample.image).tobytes())
        else:
            with open(sample.image, "rb") as handle:
                if prefix:
                    digest.update(handle.read(PREFIX_BYTES))
                else:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def find_leaks(index: DatasetIndex, parts: dict[str, list[int]] | None = None, content: bool = True,
               across_parts_only: bool = False) -> list[str]:
    """Problems that make a test score lie: the same file listed twice, the same file (or the same image
    content under another name) in two parts, e.g. train and test. ``parts`` maps part name -> sample
    indices (a training split); by default each sample's own ``split`` is its part.

    Content is compared by sha256, only among samples whose file size (array shape) collides, and for
    files first by a hash of their first 64 KiB. ``across_parts_only``: compare content only between
    different parts (what training needs; far fewer files to read on a large dataset).
    """
    samples = index.samples
    if parts is None:
        part_of = {i: (s.split or "") for i, s in enumerate(samples)}
    else:
        part_of = {i: part for part, indices in parts.items() for i in indices}
    chosen = sorted(part_of)
    problems, listed_twice = _same_path(samples, chosen, part_of)
    if content:
        candidates = [i for i in chosen if i not in listed_twice]
        problems += _same_content(samples, candidates, part_of, across_parts_only)
    return problems


def _where(part: str) -> str:
    return f" ({part})" if part else ""


def _same_path(samples: list, chosen: list[int], part_of: dict[int, str]) -> tuple[list[str], set[int]]:
    """Files listed more than once (as leaks when in two parts); and the rows that repeat an earlier one."""
    by_path: dict[str, list[int]] = {}
    for i in chosen:
        if isinstance(samples[i].image, (str, os.PathLike)):
            by_path.setdefault(os.path.normpath(str(samples[i].image)), []).append(i)
    problems, listed_twice = [], set()
    for path, rows in by_path.items():
        if len(rows) < 2:
            continue
        listed_twice.update(rows[1:])
        names = sorted({part_of[i] for i in rows})
        if len(names) > 1:
            problems.append(f"{path}: leak, the same file is in {' and '.join(n or 'no split' for n in names)}")
        else:
            problems.append(f"{path}: duplicate, listed {len(rows)} times{_where(names[0])}")
    return problems, listed_twice


def _same_content(samples: list, candidates: list[int], part_of: dict[int, str],
                  across_parts_only: bool) -> list[str]:
    """Images with the same content (sha256) under other names: a leak between parts, else a duplicate."""
    by_hash: dict[str, list[int]] = {}
    for rows in _content_groups(samples, candidates, part_of, across_parts_only):
        for i in rows:
            digest = _content_hash(samples[i])
            if digest is not None:
                by_hash.setdefault(digest, []).append(i)
    problems = []
    for rows in by_hash.values():
        if len(rows) < 2:
            continue
        first = rows[0]
        for other in rows[1:]:
            a, b = samples[first], samples[other]
            kind = "leak" if part_of[first] != part_of[other] else "duplicate"
            if across_parts_only and kind == "duplicate":
                continue
            problems.append(f"{_image_name(b)}{_where(part_of[other])}: {kind}, the same image as "
                            f"{_image_name(a)}{_where(part_of[first])}")
    return problems


def _content_groups(samples: list, candidates: list[int], part_of: dict[int, str],
                    across_parts_only: bool) -> list[list[int]]:
    """Groups of samples that may share their content, to be hashed in full: same file size (array shape)
    and, for files, the same first 64 KiB. In-memory images are left out above ``IN_MEMORY_HASH_LIMIT``."""
    groups: dict[tuple, list[int]] = {}
    in_memory = 0
    for i in candidates:
        key = _content_key(samples[i])
        if key is None:
            continue
        if key[0] == "array":
            in_memory += samples[i].image.nbytes
        groups.setdefault(key, []).append(i)
    if in_memory > IN_MEMORY_HASH_LIMIT:
        groups = {k: v for k, v in groups.items() if k[0] != "array"}

    def spans(rows: list[int]) -> bool:
        return len(rows) > 1 and (not across_parts_only or len({part_of[i] for i in rows}) > 1)

    if any(key[0] == "file" for key in groups):  # cheap first pass over files: their first 64 KiB
        narrowed: dict[tuple, list[int]] = {}
        for key, rows in groups.items():
            if not spans(rows):
                continue
            for i in rows:
                head = _content_hash(samples[i], prefix=True) if key[0] == "file" else ""
                narrowed.setdefault((*key, head), []).append(i)
        groups = narrowed
    return [rows for rows in groups.values() if spans(rows)]


def refuse_leaks(index: DatasetIndex, parts: dict[str, list[int]], allow: bool) -> list[str]:
    """Raise ``ValueError`` when the training split has duplicates or leaks, unless ``allow`` (then warn)."""
    import logging

    problems = find_leaks(index, parts, across_parts_only=True)
    if problems and not allow:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ValueError(f"{index.name}: {problems[0]}{more}; `phanet data check` lists them all; fix the data "
                         "or pass --allow-leaks (data.allow_leaks=true) to train anyway")
    for line in problems[:20]:
        logging.getLogger(__name__).warning("%s (allowed by data.allow_leaks)", line)
    return problems
