"""Face alignment: a similarity transform from detected landmarks onto the model's square crop.

The five landmarks of :class:`~phanet.inference.detect.DetectedFace` (eyes, nose, mouth corners) are
mapped by a similarity transform (rotation, uniform scale, translation: no reflection, no shear, so
the face keeps its shape; fitted as :func:`phanet.crop.alignment_matrix` says) onto the canonical template of
:mod:`phanet.crop` -- the same template the synthetic renderer aligns its camera to -- scaled to the
checkpoint's ``input_size`` with the checkpoint's ``padding``.

Faces from a backend without landmarks are cropped from their box instead (a square around the box
centre). Warping with a strong reduction (a face in a huge photo) first shrinks the face's region
with area averaging, so the crop does not alias.
"""

from __future__ import annotations

import numpy as np

from phanet.crop import DEFAULT_FIT, DEFAULT_PADDING, alignment_matrix, estimate_similarity, template_points

__all__ = ["DEFAULT_PADDING", "align_face", "box_similarity", "estimate_similarity", "invert_similarity",
           "template_points", "warp_to_crop"]

BOX_CROP_SCALE = 1.25  # crop side / box side when aligning from a box only


def box_similarity(box: np.ndarray, size: int, scale: float = BOX_CROP_SCALE) -> np.ndarray:
    """``[2, 3]`` matrix mapping a square of side ``scale * max(box side)`` around the box centre to the crop."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0, 1.0) * scale
    factor = size / side
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return np.array([[factor, 0.0, size / 2 - factor * cx], [0.0, factor, size / 2 - factor * cy]])


def invert_similarity(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a ``[2, 3]`` affine matrix, also ``[2, 3]``."""
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def warp_to_crop(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Apply ``matrix`` (image -> crop) to ``image [H, W, 3]`` uint8, giving ``[size, size, 3]`` uint8."""
    import cv2

    matrix = np.asarray(matrix, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.5:
        image, matrix = _shrink_region(image, matrix, size, scale)
    return cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def _shrink_region(image: np.ndarray, matrix: np.ndarray, size: int, scale: float):
    """Area-average the image region that lands in the crop down to ~crop resolution; adjust ``matrix``."""
    import cv2

    h, w = image.shape[:2]
    corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], dtype=np.float64)
    source = corners @ invert_similarity(matrix).T  # [4, 2] in image coordinates
    x0, y0 = np.floor(source.min(axis=0)).astype(int) - 2
    x1, y1 = np.ceil(source.max(axis=0)).astype(int) + 2
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image, matrix  # the crop lies outside the image; border replication fills it
    region = image[y0:y1, x0:x1]
    new_w, new_h = max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale))
    small = cv2.resize(region, (new_w, new_h), interpolation=cv2.INTER_AREA)
    fx, fy = new_w / (x1 - x0), new_h / (y1 - y0)
    # small (u, v) = ((x - x0) * fx, (y - y0) * fy)  =>  x = u / fx + x0
    adjusted = np.empty((2, 3))
    adjusted[:, 0] = matrix[:, 0] / fx
    adjusted[:, 1] = matrix[:, 1] / fy
    adjusted[:, 2] = matrix[:, :2] @ np.array([x0, y0], dtype=np.float64) + matrix[:, 2]
    return small, adjusted


def align_face(
    image: np.ndarray,
    size: int,
    landmarks: np.ndarray | None = None,
    box: np.ndarray | None = None,
    padding: float = DEFAULT_PADDING,
    fit: str = DEFAULT_FIT,
) -> tuple[np.ndarray, np.ndarray]:
    """The model's crop of one face: ``(crop [size, size, 3] uint8, matrix [2, 3] image -> crop)``.

    Uses ``landmarks [5, 2]`` when given (similarity onto :func:`template_points`, fitted as ``fit``
    says: :data:`phanet.crop.FITS`), else a square of :data:`BOX_CROP_SCALE` times the ``box`` side
    (``padding`` and ``fit`` apply to landmark alignment only).
    """
    if landmarks is not None:
        matrix = alignment_matrix(landmarks, size, padding, fit)
    elif box is not None:
        matrix = box_similarity(box, size)
    else:
        raise ValueError("align_face needs landmarks or a box")
    return warp_to_crop(image, matrix, size), matrix
