"""``--save-annotated``: write each input with boxes, labels and attention heat-maps drawn on it.

Images go to ``DIR/<folder argument name>/<path inside it>`` (or ``DIR/<file name>`` for files named
directly), keeping their format where PIL can write it and PNG otherwise; the input tree is
mirrored so that equal file names in different folders do not collide. A video becomes
``DIR/.../<stem>.annotated.mp4`` holding the processed frames (every ``--every``-th one) at the
matching frame rate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from phanet.inference.predictor import ItemResult
from phanet.visualize import annotate

WRITABLE_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# Annotated pictures are drawn on a copy of at most this many pixels: drawing the heat-map takes ~90 bytes
# per pixel (on a 108-megapixel photo at full size, 9 GB); 4 megapixels (~2300 x 1700) stay under 400 MB.
MAX_ANNOTATED_PIXELS = 4_000_000


def shrink(image: np.ndarray, factor: int, rows_per_chunk: int = 64) -> np.ndarray:
    """Average ``factor x factor`` blocks, a few rows at a time: no full-size temporary copy is made."""
    h, w = image.shape[0] // factor, image.shape[1] // factor
    out = np.empty((max(1, h), max(1, w), *image.shape[2:]), dtype=np.uint8)
    if h == 0 or w == 0:
        out[...] = image[:1, :1]
        return out
    for r in range(0, h, rows_per_chunk):
        rows = min(rows_per_chunk, h - r)
        block = image[r * factor:(r + rows) * factor, : w * factor]
        block = block.reshape(rows, factor, w, factor, *image.shape[2:])
        out[r:r + rows] = block.mean(axis=(1, 3)).round().astype(np.uint8)
    return out


def bounded_copy(image: np.ndarray, faces, max_pixels: int | None = None) -> tuple[np.ndarray, list]:
    """``(image, faces)`` scaled down to at most ``max_pixels`` pixels (unchanged when already small).

    The faces come back as mappings with their box and image-to-crop matrix in the copy's pixels.
    """
    import math

    max_pixels = max_pixels or MAX_ANNOTATED_PIXELS
    h, w = image.shape[:2]
    if h * w <= max_pixels:
        return image, list(faces)
    small = shrink(image, math.ceil(math.sqrt(h * w / max_pixels)))
    sx, sy = small.shape[1] / w, small.shape[0] / h
    scaled = []
    for face in faces:
        get = face.get if isinstance(face, dict) else lambda name, f=face: getattr(f, name, None)
        x0, y0, x1, y1 = (float(v) for v in get("box"))
        matrix = get("matrix")
        if matrix is not None:  # image -> crop: a pixel of the copy is (x / sx, y / sy) in the original
            matrix = np.asarray(matrix, dtype=np.float64) * np.array([[1 / sx, 1 / sy, 1.0]])
        scaled.append({"box": (x0 * sx, y0 * sy, x1 * sx, y1 * sy), "matrix": matrix, "attention": get("attention"),
                       "expression": get("expression"), "probabilities": get("probabilities"), "pose": get("pose")})
    return small, scaled


class AnnotatedWriter:
    """Writes annotated images and videos under ``out_dir``; call :meth:`close` at the end."""

    def __init__(self, out_dir: str | Path, every: int = 1):
        self.out_dir = Path(out_dir)
        self.every = every
        self._video_file: str | None = None  # the video being written (inputs come file by file)
        self._video_writer = None  # its cv2.VideoWriter
        self.written: list[Path] = []

    def target(self, result: ItemResult, suffix: str | None = None) -> Path:
        """Where the annotated version of ``result``'s input goes."""
        path = Path(result.item.file)
        root = result.item.root
        if root is None:
            relative = Path(path.name)
        else:
            relative = Path(root.resolve().name or "root") / path.relative_to(root)
        out = self.out_dir / relative
        if suffix is not None:
            out = out.with_name(out.stem + suffix)
        elif out.suffix.lower() not in WRITABLE_IMAGE_SUFFIXES:
            out = out.with_name(out.name + ".png")
        return out

    def write(self, result: ItemResult) -> None:
        if result.item.image is None:
            return  # nothing to draw on (decoding failed)
        picture = annotate(*bounded_copy(result.item.image, result.faces))
        if result.item.frame is None:
            self.close()  # inputs come file by file: a video before this image is complete
            out = self.target(result)
            out.parent.mkdir(parents=True, exist_ok=True)
            options = {"quality": 92} if out.suffix.lower() in (".jpg", ".jpeg") else {}
            Image.fromarray(picture).save(out, **options)
            self.written.append(out)
        else:
            self._write_frame(result, picture)

    def _write_frame(self, result: ItemResult, picture: np.ndarray) -> None:
        import cv2

        if self._video_file != result.item.file:
            self.close()
            out = self.target(result, suffix=".annotated.mp4")
            out.parent.mkdir(parents=True, exist_ok=True)
            fps = (result.item.fps or 25.0) / self.every
            h, w = picture.shape[:2]
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), max(fps, 1.0), (w, h))
            if not writer.isOpened():
                raise OSError(f"cannot write annotated video {out} (no mp4v encoder in this OpenCV build)")
            self._video_file, self._video_writer = result.item.file, writer
            self.written.append(out)
        self._video_writer.write(cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        """Finish the video being written, if any."""
        if self._video_writer is not None:
            self._video_writer.release()
        self._video_file, self._video_writer = None, None
