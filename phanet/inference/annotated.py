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
        picture = annotate(result.item.image, result.faces)
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
