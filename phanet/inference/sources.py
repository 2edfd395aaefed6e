"""Inputs for inference: image files, folders (recursively) and video files, decoded robustly.

:func:`iter_inputs` turns command-line paths into a stream of :class:`InputItem` s, one per image or
per video frame. Decoding never raises: a file that is not an image, a truncated JPEG, a missing
path or an unreadable video becomes an item with ``error`` set, so one bad file never stops a folder
run. Images go through :func:`phanet.data.base.load_rgb`, which honours EXIF rotation and converts
grayscale, palette, RGBA and 16-bit images to ``[H, W, 3]`` uint8 RGB.

Inside folders only files with a known image or video extension are taken (so a README next to the
photos is not an error); a file named explicitly is always tried.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from phanet.data.base import load_rgb

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
)
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"})


@dataclass
class InputItem:
    """One image to run on: a file, or one frame of a video.

    file: the path as found (a string, for records).
    frame: the frame index in the video, or None for image files.
    image: ``[H, W, 3]`` uint8 RGB, or None when decoding failed.
    error: why decoding failed, or None.
    root: the folder argument the file was found under (None for files named directly); lets
        annotated outputs mirror the input tree.
    fps: the video's frame rate (None for images).
    """

    file: str
    frame: int | None = None
    image: np.ndarray | None = None
    error: str | None = None
    root: Path | None = None
    fps: float | None = None


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def expand_paths(paths: Iterable[str | Path]) -> list[tuple[Path, Path | None]]:
    """``(file, folder argument or None)`` for every input: files as given, folders walked in sorted order.

    Paths that do not exist are kept (they become error items), so they are reported, not dropped.
    """
    found: list[tuple[Path, Path | None]] = []
    for path in map(Path, paths):
        if not path.is_dir():
            found.append((path, None))
            continue
        known = IMAGE_EXTENSIONS | VIDEO_EXTENSIONS
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        taken = [p for p in files if p.suffix.lower() in known]
        if len(taken) < len(files):
            log.info("%s: ignoring %d files that are neither images nor videos", path, len(files) - len(taken))
        found.extend((p, path) for p in taken)
    return found


def to_rgb_array(image) -> np.ndarray:
    """``[H, W, 3]`` uint8 RGB from a path, a PIL image or a numpy array.

    Arrays may be ``[H, W]`` gray, ``[H, W, 1|3|4]``; uint16 is rescaled by 257, floats are taken in
    [0, 1]. PIL images get EXIF rotation applied like files do.
    """
    if isinstance(image, (str, Path)):
        return load_rgb(image)
    from PIL import Image, ImageOps

    if isinstance(image, Image.Image):
        image = ImageOps.exif_transpose(image)
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            image = np.asarray(image, dtype=np.float64)
            image = image / (image.max() if image.max() > 0 else 1.0)
        else:
            return np.ascontiguousarray(np.asarray(image.convert("RGB")))
    image = np.asarray(image)
    if image.dtype == np.uint16:
        image = (image.astype(np.float64) / 257.0).round()
    elif np.issubdtype(image.dtype, np.floating):
        image = np.clip(image, 0.0, 1.0) * 255.0
    elif image.dtype == np.bool_:
        image = image.astype(np.float64) * 255.0
    image = np.clip(image, 0, 255).astype(np.uint8) if image.dtype != np.uint8 else image
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"cannot read an image from an array of shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def read_image_item(path: Path, root: Path | None = None) -> InputItem:
    """Decode one image file; any failure is recorded on the item instead of raised."""
    try:
        if not path.exists():
            raise FileNotFoundError("no such file")
        return InputItem(str(path), image=load_rgb(path), root=root)
    except Exception as err:  # one bad file must never stop a run: record whatever went wrong
        return InputItem(str(path), error=f"cannot read image: {_describe(err)}", root=root)


def iter_video_frames(path: Path, every: int = 1, root: Path | None = None) -> Iterator[InputItem]:
    """Every ``every``-th frame of a video as RGB items; one error item if it cannot be read at all."""
    try:
        import cv2
    except ImportError:
        yield InputItem(str(path), error="reading video needs opencv: pip install 'phanet[detect]'", root=root)
        return
    if not path.exists():
        yield InputItem(str(path), error="cannot read video: no such file", root=root)
        return
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            yield InputItem(str(path), error="cannot read video: not a video or unsupported codec", root=root)
            return
        fps = capture.get(cv2.CAP_PROP_FPS) or None
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every == 0:
                rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                yield InputItem(str(path), frame=index, image=rgb, root=root, fps=fps)
            index += 1
        if index == 0:
            yield InputItem(str(path), error="cannot read video: no frame could be decoded", root=root)
    finally:
        capture.release()


def iter_inputs(paths: Iterable[str | Path], every: int = 1) -> Iterator[InputItem]:
    """One :class:`InputItem` per image file and per ``every``-th video frame under ``paths``."""
    return iter_files(expand_paths(paths), every)


def iter_files(files: Iterable[tuple[Path, Path | None]], every: int = 1) -> Iterator[InputItem]:
    """:func:`iter_inputs` over the ``(file, folder argument)`` pairs of :func:`expand_paths`."""
    if every < 1:
        raise ValueError(f"every={every}; must be at least 1")
    for path, root in files:
        if is_video(path):
            yield from iter_video_frames(path, every, root)
        else:
            yield read_image_item(path, root)


def evenly_spaced(total: int, count: int) -> list[int]:
    """At most ``count`` distinct indices of ``range(total)``, evenly spaced, first and last included."""
    if total < 1 or count < 1:
        return []
    return np.unique(np.linspace(0, total - 1, min(count, total)).round().astype(int)).tolist()


def sample_inputs(files: Sequence[tuple[Path, Path | None]], every: int, total: int, count: int) -> Iterator[InputItem]:
    """At most ``count`` of the ``total`` items :func:`iter_files` yields, evenly spaced over them.

    Only the picked images are decoded (videos are read through, as frames come in order). Used to
    adapt a model to a run's inputs (``phanet predict --adapt-bn``) without holding them all.
    """
    picked = set(evenly_spaced(total, count))
    position = 0
    for path, root in files:
        if not is_video(path):
            if position in picked:
                yield read_image_item(path, root)
            position += 1
            continue
        for item in iter_video_frames(path, every, root):
            if position in picked:
                yield item
            position += 1


def count_inputs(files: Iterable[tuple[Path, Path | None]], every: int = 1) -> int:
    """How many items :func:`iter_files` will yield (videos from their frame count; for progress bars)."""
    total = 0
    for path, _ in files:
        if not is_video(path):
            total += 1
            continue
        try:
            import cv2

            capture = cv2.VideoCapture(str(path))
            frames = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
            capture.release()
        except ImportError:
            frames = 0
        total += max(1, -(-frames // every))
    return total


def _describe(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text if type(err).__name__ in text else f"{type(err).__name__}: {text}"
