"""Face detectors behind one small interface, so that inference does not care which backend runs.

A detector takes an ``[H, W, 3]`` uint8 RGB image and returns :class:`DetectedFace` s: a box, a
confidence and, where the backend gives them, five landmarks (eye, eye, nose, mouth corner, mouth
corner, in image left-to-right order) that :mod:`phanet.inference.align` maps onto the model's crop.

The base class owns what every backend needs: detection runs on a copy downscaled to at most
``max_side`` pixels (a 6000-pixel photo costs no more than a 1280-pixel one, and MTCNN's image
pyramid on huge inputs is slow and memory hungry), results are mapped back to full-resolution
coordinates, and faces under ``min_score`` are dropped. A backend implements only
:meth:`FaceDetector.detect_scaled`, and :meth:`FaceDetector.detect_scaled_again` where it has a second, more
permissive pass for the images in which the first found no face (MTCNN does: it misses many turned faces).

Backends register by name (``register_detector``) and are built with :func:`create_detector`. The
default, ``mtcnn``, is facenet-pytorch's MTCNN (Zhang et al., 2016) whose weights ship inside the
PyPI package ``facenet-pytorch==2.5.3``, so detection works offline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch


@dataclass(frozen=True)
class DetectedFace:
    """One face found in an image, in that image's pixel coordinates.

    box: ``[4]`` float ``(x0, y0, x1, y1)``, clipped to the image.
    score: detector confidence in [0, 1].
    landmarks: ``[5, 2]`` float ``(x, y)`` of left eye, right eye, nose, left and right mouth corner
        (left/right as seen in the image), or None for backends without landmarks.
    retried: found by the backend's second, more permissive pass (:meth:`FaceDetector.detect_scaled_again`),
        on an image where the first pass found no face; its score was judged against ``retry_min_score``.
    """

    box: np.ndarray
    score: float
    landmarks: np.ndarray | None = None
    retried: bool = False

    def scaled(self, factor: float) -> DetectedFace:
        """The same face with coordinates multiplied by ``factor``."""
        landmarks = None if self.landmarks is None else self.landmarks * factor
        return replace(self, box=self.box * factor, landmarks=landmarks)

    def narrowed(self, factor: float) -> DetectedFace:
        """The face found on a copy stretched ``factor`` times horizontally, in the original's coordinates."""
        across = np.array([1.0 / factor, 1.0])
        landmarks = None if self.landmarks is None else self.landmarks * across
        return replace(self, box=self.box * np.tile(across, 2), landmarks=landmarks)


def check_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Raise a clear error unless ``image`` is ``[H, W, 3]`` uint8; returns it C-contiguous."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"expected an [H, W, 3] uint8 RGB image, got {desc}")
    return np.ascontiguousarray(image)


def resize_by(image: np.ndarray, factor: float) -> tuple[np.ndarray, float]:
    """``(image scaled by factor, factor)`` for ``factor < 1``; the image itself and 1.0 otherwise."""
    h, w = image.shape[:2]
    if factor >= 1.0:
        return image, 1.0
    from PIL import Image

    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    small = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
    return small, factor


class FaceDetector(ABC):
    """Finds faces in RGB images; subclasses implement :meth:`detect_scaled` only.

    max_side: detection runs on a copy whose longest side is at most this many pixels.
    min_score: faces with a lower confidence are dropped.
    retry_min_score: faces of the second pass (:meth:`detect_scaled_again`, run on the images in which the
        first kept no face) with a lower confidence are dropped; None: no second pass.
    """

    def __init__(self, max_side: int = 1280, min_score: float = 0.9, retry_min_score: float | None = None):
        if max_side < 32:
            raise ValueError(f"max_side={max_side} is too small to find faces (use at least 32)")
        for name, value in (("min_score", min_score), ("retry_min_score", retry_min_score)):
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}={value}: expected a detector confidence in [0, 1]")
        self.max_side = int(max_side)
        self.min_score = float(min_score)
        self.retry_min_score = None if retry_min_score is None else float(retry_min_score)

    def detection_factor(self, shape: tuple[int, ...]) -> float:
        """Scale (at most 1) of the copy of an image of ``shape`` that detection runs on."""
        return min(1.0, self.max_side / max(shape[:2]))

    @abstractmethod
    def detect_scaled(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        """Faces in each of ``images`` (``[H, W, 3]`` uint8, already downscaled), unfiltered."""

    def detect_scaled_again(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]] | None:
        """A second, more permissive pass over images in which the first kept no face, unfiltered;
        None (the default) where the backend has none."""
        return None

    def detect(self, image: np.ndarray) -> list[DetectedFace]:
        """Faces in one ``[H, W, 3]`` uint8 RGB image, most confident first."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        """Faces in each image; images may differ in size."""
        if not images:
            return []
        images = [check_rgb_uint8(image) for image in images]
        small, factors = zip(*(resize_by(image, self.detection_factor(image.shape)) for image in images))
        results = [self._kept(image, faces, factor, self.min_score)
                   for image, faces, factor in zip(images, self.detect_scaled(list(small)), factors)]
        missed = [i for i, faces in enumerate(results) if not faces]
        if missed and self.retry_min_score is not None:
            again = self.detect_scaled_again([small[i] for i in missed])
            for i, faces in zip(missed, again or ()):
                kept = self._kept(images[i], faces, factors[i], self.retry_min_score)
                results[i] = [replace(face, retried=True) for face in kept]
        return results

    @staticmethod
    def _kept(image: np.ndarray, faces: list[DetectedFace], factor: float, min_score: float) -> list[DetectedFace]:
        """The faces from ``min_score`` up, mapped back to ``image``'s pixels, clipped to it, most confident first."""
        h, w = image.shape[:2]
        kept = []
        for face in faces:
            if face.score < min_score:
                continue
            face = face.scaled(1.0 / factor) if factor != 1.0 else face
            box = np.clip(face.box, 0, [w, h, w, h]).astype(np.float64)
            if box[2] - box[0] < 1 or box[3] - box[1] < 1:
                continue
            kept.append(replace(face, box=box))
        return sorted(kept, key=lambda f: -f.score)


_DETECTORS: dict[str, Callable[..., FaceDetector]] = {}


def register_detector(name: str) -> Callable[[Callable[..., FaceDetector]], Callable[..., FaceDetector]]:
    """Class decorator: make a detector available to :func:`create_detector` under ``name``.

    The builder is called with ``device=`` (by :class:`~phanet.inference.Predictor`) and any of
    :class:`FaceDetector`'s options (``max_side``, ``min_score``) plus its own.
    """

    def add(builder: Callable[..., FaceDetector]) -> Callable[..., FaceDetector]:
        if name in _DETECTORS:
            raise ValueError(f"detector {name!r} is already registered")
        _DETECTORS[name] = builder
        builder.registered_name = name  # instances of a registered class know which detector they are
        return builder

    return add


def create_detector(name: str = "mtcnn", **kwargs) -> FaceDetector:
    """Build a registered detector, e.g. ``create_detector("mtcnn", device="cpu", min_score=0.95)``."""
    if name not in _DETECTORS:
        raise KeyError(f"unknown face detector {name!r}; registered: {', '.join(list_detectors())}")
    return _DETECTORS[name](**kwargs)


def list_detectors() -> list[str]:
    return sorted(_DETECTORS)


# Without an explicit min_face_size, faces smaller than this share of an image's shorter side are not
# searched for, and detection runs on a copy in which that share is MIN_FACE_PX pixels (MTCNN's usual
# smallest face): a copy whose shorter side is 240 pixels. Expression recognition needs faces of some
# size anyway (a 53-pixel face in a 640-pixel photo is already upscaled twice to a 112-pixel input), and
# MTCNN's image pyramid on a small copy costs a fraction of one on the full image; the faces' boxes and
# landmarks are mapped back and the crops are cut from the full image. Measured for speed and for the
# faces found on real photos: benchmarks/predict_speed.py (README, "Inference").
MIN_FACE_FRACTION = 1 / 12
MIN_FACE_PX = 20

# MTCNN misses many turned faces: of the bundled recipe's unseen test identities rendered 60 / 75 / 90 degrees
# from the side it finds 81 / 62 / 32%. Where its first pass keeps no face, a second one with these P-, R- and
# O-net thresholds, keeping faces from RETRY_MIN_SCORE, finds 90 / 76 / 50%; on 272 real photos without a face it
# reports one more than the first pass (benchmarks/results/face_free_photos.txt). Images with a face found never
# pay for it. Chosen on training identities, judged on the test ones:
# benchmarks/results/photo_path_retry.txt (benchmarks/photo_path.py).
RETRY_THRESHOLDS = (0.4, 0.5, 0.5)
RETRY_MIN_SCORE = 0.7
# A face seen from the side is narrower than the faces MTCNN learnt from: where the second pass finds none either,
# it can run once more on a copy stretched this much horizontally, its faces mapped back: 95 / 86 / 63% found at
# 60 / 75 / 90 degrees (benchmarks/results/photo_path_stretch.txt). Off by default (retry_stretch=None; phanet
# predict --search-profiles): on real photos without a face it reports faces in textures (grass, coins) about ten
# times as often as the two passes do (benchmarks/results/face_free_photos.txt), and a face-free image costs ~3x.
RETRY_STRETCH = 1.3


@register_detector("mtcnn")
class MTCNNDetector(FaceDetector):
    """facenet-pytorch's MTCNN: boxes, scores and five landmarks.

    device: where MTCNN runs (default: CUDA when available).
    min_face_size: smallest face searched for, in pixels of the copy downscaled to ``max_side``. None
        (default) derives it from each image: faces from :data:`MIN_FACE_FRACTION` of its shorter side
        up, searched on a copy in which that size is MTCNN's usual :data:`MIN_FACE_PX` pixels.
    thresholds: MTCNN's three stage thresholds (P-, R-, O-net).
    retry_thresholds: the thresholds of the second pass on images in which the first kept no face; None: no
        second pass. Its faces are kept from ``retry_min_score`` (:class:`FaceDetector`).
    retry_stretch: where the second pass keeps no face either, it runs again on a copy of the image stretched
        this much horizontally (profiles are narrow), its faces mapped back; None (default): not. Finds more
        profiles, and more false faces in textures (:data:`RETRY_STRETCH`).
    """

    def __init__(
        self,
        device: str | torch.device | None = None,
        max_side: int = 1280,
        min_score: float = 0.9,
        min_face_size: int | None = None,
        thresholds: Sequence[float] = (0.6, 0.7, 0.7),
        retry_thresholds: Sequence[float] | None = RETRY_THRESHOLDS,
        retry_min_score: float = RETRY_MIN_SCORE,
        retry_stretch: float | None = None,
    ):
        super().__init__(max_side=max_side, min_score=min_score,
                         retry_min_score=None if retry_thresholds is None else retry_min_score)
        try:
            from facenet_pytorch import MTCNN
        except ImportError as err:
            raise ImportError(
                "face detection needs facenet-pytorch==2.5.3: pip install 'phanet[detect]'"
            ) from err
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if min_face_size is not None and min_face_size < 12:
            raise ValueError(f"min_face_size={min_face_size}: MTCNN needs at least 12 pixels")
        self.min_face_size = None if min_face_size is None else int(min_face_size)
        for name, values in (("thresholds", thresholds), ("retry_thresholds", retry_thresholds)):
            if values is not None and (len(values) != 3 or not all(0.0 <= v <= 1.0 for v in values)):
                raise ValueError(f"{name}={tuple(values)}: expected three stage thresholds in [0, 1] (P-, R-, O-net)")
        if retry_stretch is not None and not 1.0 < retry_stretch <= 3.0:
            raise ValueError(f"retry_stretch={retry_stretch}: expected a horizontal stretch in (1, 3], or None")
        self.retry_stretch = None if retry_stretch is None else float(retry_stretch)
        self.thresholds = [float(v) for v in thresholds]
        self.retry_thresholds = None if retry_thresholds is None else [float(v) for v in retry_thresholds]
        self.mtcnn = MTCNN(
            keep_all=True, device=device, min_face_size=self.min_face_size or MIN_FACE_PX, thresholds=self.thresholds
        )
        # NHWC weights: oneDNN's channels-last max-pooling and convolutions made MTCNN 1.3-1.5x faster on CPU
        # (max_pool2d led the NCHW profile), same faces and landmarks (benchmarks/predict_speed.py
        # --detector-layouts nchw channels_last).
        for net in (self.mtcnn.pnet, self.mtcnn.rnet, self.mtcnn.onet):
            net.to(memory_format=torch.channels_last)

    def detection_factor(self, shape: tuple[int, ...]) -> float:
        factor = super().detection_factor(shape)
        if self.min_face_size is None:  # the smallest face searched for becomes MIN_FACE_PX in the copy
            factor = min(factor, MIN_FACE_PX / (MIN_FACE_FRACTION * min(shape[:2])))
        return factor

    def smallest_face(self, shape: tuple[int, ...]) -> int:
        """Smallest face searched for in a detection copy of ``shape``, in pixels of the copy."""
        if self.min_face_size is not None:
            return self.min_face_size
        return max(MIN_FACE_PX, round(min(shape[:2]) * MIN_FACE_FRACTION))

    def detect_scaled(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]]:
        return self._detect(images, self.thresholds)

    def detect_scaled_again(self, images: Sequence[np.ndarray]) -> list[list[DetectedFace]] | None:
        if self.retry_thresholds is None:
            return None
        found = self._detect(images, self.retry_thresholds)
        if self.retry_stretch is None:
            return found
        missed = [i for i, faces in enumerate(found) if not any(f.score >= self.retry_min_score for f in faces)]
        if missed:
            stretched = self._detect([stretch_width(images[i], self.retry_stretch) for i in missed],
                                     self.retry_thresholds)
            for i, faces in zip(missed, stretched):
                found[i] = [face.narrowed(self.retry_stretch) for face in faces]
        return found

    def _detect(self, images: Sequence[np.ndarray], thresholds: list[float]) -> list[list[DetectedFace]]:
        # MTCNN batches images of equal size in one pass (video frames); others go one by one.
        # Images smaller than the smallest face have no pyramid level (MTCNN itself would raise).
        results: list[list[DetectedFace]] = [[] for _ in images]
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, image in enumerate(images):
            if min(image.shape[:2]) >= self.smallest_face(image.shape):
                by_shape.setdefault(image.shape, []).append(i)
        self.mtcnn.thresholds = thresholds  # facenet-pytorch reads them at each call
        for shape, indices in by_shape.items():
            batch = np.stack([images[i] for i in indices])
            # MTCNN's image pyramid starts at 12 / min_face_size: a larger smallest face means
            # fewer and smaller levels for the P-net, which is most of the detector's time.
            self.mtcnn.min_face_size = self.smallest_face(shape)
            boxes, scores, landmarks = self.mtcnn.detect(batch, landmarks=True)
            for i, b, s, lm in zip(indices, boxes, scores, landmarks):
                results[i] = _mtcnn_faces(b, s, lm)
        return results


def stretch_width(image: np.ndarray, factor: float) -> np.ndarray:
    """``image`` resized to ``factor`` times its width, same height."""
    import cv2

    h, w = image.shape[:2]
    return cv2.resize(image, (max(1, round(w * factor)), h), interpolation=cv2.INTER_LINEAR)


def _mtcnn_faces(boxes, scores, landmarks) -> list[DetectedFace]:
    """facenet-pytorch returns None (no face) or object arrays; turn them into DetectedFace s."""
    if boxes is None or len(boxes) == 0:
        return []
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    landmarks = np.asarray(landmarks, dtype=np.float64).reshape(-1, 5, 2)
    return [DetectedFace(b, float(s), lm) for b, s, lm in zip(boxes, scores, landmarks)]
