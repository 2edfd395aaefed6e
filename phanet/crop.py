"""The face-crop contract: one canonical five-point template that every face crop is aligned to.

A model is only as good as the agreement between the crops it was trained on and the crops it sees
in use. So every path that makes a crop -- synthetic renders (:mod:`phanet.synth.render`,
aligned in the camera itself), ``phanet predict`` (:mod:`phanet.inference.align`, aligned from the
detector's landmarks), export and evaluation -- maps five landmarks (left eye, right eye, nose tip,
left and right mouth corner, left/right as seen in the image) onto the same template by a
similarity transform (rotation, uniform scale, translation: the face keeps its shape), and the
checkpoint records the template and padding (:func:`crop_spec`) so inference repeats them exactly.

The template is the widely used five-point template of the 112x112 ArcFace crop (InsightFace),
normalised to [0, 1]; ``padding`` widens the crop around it (a fraction of the template's side added
on each side), which keeps brows and chin, which carry expression, well inside the crop.

This module is pure numpy and imports nothing else from phanet, so the renderer and inference can
both depend on it. See docs/architecture.md ("Face crops").
"""

from __future__ import annotations

import numpy as np

TEMPLATE_NAME = "arcface5"
# ArcFace's 112x112 template (x, y): left eye, right eye, nose tip, left and right mouth corner.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ]
)
CANONICAL_LANDMARKS = ARCFACE_TEMPLATE_112 / 112.0  # [5, 2] in [0, 1] crop coordinates
DEFAULT_PADDING = 0.1
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")
# How the similarity is fitted to the five landmarks: "lsq5" least squares over all five (version 0.2's
# crops: turned faces shrink), "eye_mouth" from the eyes' and mouth's centres (turned faces keep
# their size). Checkpoints record theirs; one without a record was made with "lsq5".
FITS = ("eye_mouth", "lsq5")
DEFAULT_FIT = "eye_mouth"


def template_points(size: float, padding: float = DEFAULT_PADDING) -> np.ndarray:
    """``[5, 2]`` landmark positions in a ``size x size`` crop with ``padding`` added on each side."""
    if padding <= -0.5:
        raise ValueError(f"padding={padding} must be greater than -0.5")
    return (CANONICAL_LANDMARKS + padding) / (1.0 + 2.0 * padding) * size


# Horizontal bands of an aligned crop named as a person would: (anchor line, first, last) in units of the
# template's eye-to-mouth distance from the eye line or the mouth line. benchmarks/occlusion_cues.py hides
# them one at a time; the ``photo_parts`` augmentation blurs one in training.
FACE_BANDS: dict[str, tuple[str, float, float]] = {
    "brows+forehead": ("eyes", -10.0, -0.35),  # from the top of the crop down to just above the eyes
    "eyes": ("eyes", -0.35, 0.35),
    "nose": ("eyes", 0.35, 0.8),
    "mouth": ("mouth", -0.45, 0.45),
}


def face_band_rows(size: int, padding: float = DEFAULT_PADDING) -> dict[str, tuple[int, int]]:
    """Pixel rows ``[first, last)`` of each of :data:`FACE_BANDS` in a ``size`` crop with ``padding``."""
    points = template_points(size, padding)
    eye_y = float(points[:2, 1].mean())
    mouth_y = float(points[3:, 1].mean())
    span = mouth_y - eye_y
    rows = {}
    for name, (anchor, start, stop) in FACE_BANDS.items():
        origin = eye_y if anchor == "eyes" else mouth_y
        rows[name] = (max(0, round(origin + start * span)), min(size, round(origin + stop * span)))
    return rows


def estimate_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity ``[2, 3]`` matrix M with ``dst ~ M @ [src, 1]`` (Umeyama's method).

    src, dst: ``[N, 2]`` corresponding points, N >= 2.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"need two [N>=2, 2] point sets of equal shape, got {src.shape} and {dst.shape}")
    mean_src, mean_dst = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - mean_src, dst - mean_dst
    var_src = (src_c**2).sum() / len(src)
    if var_src < 1e-12:
        raise ValueError("landmarks coincide; cannot estimate an alignment")
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(s) @ d) / var_src
    matrix = np.empty((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mean_dst - matrix[:, :2] @ mean_src
    return matrix


def eye_mouth_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Similarity ``[2, 3]`` from five landmarks that keeps turned faces at full size (the ``eye_mouth`` fit).

    The least-squares fit (:func:`estimate_similarity`) shrinks a face as it turns: the eyes and mouth
    corners close up horizontally while the template's do not, so a profile ends up small in a corner
    of its crop. Here, as in the FFHQ crop (Karras et al., CVPR 2019), the face's size is the larger
    of its eye-to-eye and eye-to-mouth distances (each relative to the template's), which a turn in
    yaw or pitch shrinks only one of; its direction is eye-to-eye minus eye-to-mouth turned by 90
    degrees; and the midpoint between the eyes' and the mouth's centres lands on the template's.
    """
    src, dst = _five_points(src), _five_points(dst)
    (src_centre, src_size, src_angle), (dst_centre, dst_size, dst_angle) = _face_frame(src), _face_frame(dst)
    if src_size < 1e-9:
        raise ValueError("landmarks coincide; cannot estimate an alignment")
    scale = dst_size / src_size
    angle = dst_angle - src_angle
    linear = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = np.empty((2, 3))
    matrix[:, :2] = linear
    matrix[:, 2] = dst_centre - linear @ src_centre
    return matrix


def _five_points(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (5, 2):
        raise ValueError(f"expected five landmarks [5, 2] ({', '.join(LANDMARK_NAMES)}), got {points.shape}")
    return points


# The template's eye-to-eye and eye-to-mouth distances, the units of _face_frame's size.
_EYE_TO_EYE = float(np.hypot(*(CANONICAL_LANDMARKS[1] - CANONICAL_LANDMARKS[0])))
_EYE_TO_MOUTH = float(np.hypot(*(CANONICAL_LANDMARKS[3:].mean(0) - CANONICAL_LANDMARKS[:2].mean(0))))


def _face_frame(points: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(centre, size, angle) of a face from its five landmarks; see :func:`eye_mouth_similarity`."""
    eyes, mouth = points[:2].mean(axis=0), points[3:].mean(axis=0)
    eye_to_eye, eye_to_mouth = points[1] - points[0], mouth - eyes
    across = eye_to_eye + np.array([eye_to_mouth[1], -eye_to_mouth[0]])  # eye-to-mouth turned to the right
    size = max(np.hypot(*eye_to_eye) / _EYE_TO_EYE, np.hypot(*eye_to_mouth) / _EYE_TO_MOUTH)
    return (eyes + mouth) / 2, float(size), float(np.arctan2(across[1], across[0]))


def alignment_matrix(landmarks: np.ndarray, size: float, padding: float = DEFAULT_PADDING,
                     fit: str = DEFAULT_FIT) -> np.ndarray:
    """``[2, 3]`` matrix mapping an image onto the ``size x size`` crop of the contract, from 5 landmarks."""
    target = template_points(size, padding)
    if fit == "eye_mouth":
        return eye_mouth_similarity(landmarks, target)
    if fit == "lsq5":
        return estimate_similarity(landmarks, target)
    raise ValueError(f"unknown crop fit {fit!r}; known: {', '.join(FITS)}")


def apply_similarity(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points [N, 2]`` mapped by the ``[2, 3]`` matrix."""
    points = np.asarray(points)
    return points @ np.asarray(matrix)[:, :2].T + np.asarray(matrix)[:, 2]


def crop_spec(padding: float = DEFAULT_PADDING, fit: str = DEFAULT_FIT) -> dict:
    """What a checkpoint records about its crops (``meta["crop"]``), so inference repeats them."""
    template_points(1.0, padding)  # refuses an impossible padding
    if fit not in FITS:
        raise ValueError(f"unknown crop fit {fit!r}; known: {', '.join(FITS)}")
    return {
        "template": TEMPLATE_NAME,
        "landmarks": list(LANDMARK_NAMES),
        "points": CANONICAL_LANDMARKS.round(6).tolist(),
        "padding": float(padding),
        "fit": fit,
    }


def padding_from_meta(meta: dict) -> float:
    """The crop padding a checkpoint was trained with (older checkpoints: ``align_padding`` or 0.1)."""
    crop = meta.get("crop")
    if isinstance(crop, dict):
        if crop.get("template", TEMPLATE_NAME) != TEMPLATE_NAME:
            raise ValueError(f"checkpoint crop template {crop.get('template')!r} is not {TEMPLATE_NAME!r}, "
                             "the only one this version knows")
        return float(crop.get("padding", DEFAULT_PADDING))
    return float(meta.get("align_padding", DEFAULT_PADDING))


def fit_of(crop: dict | None) -> str:
    """How the crops of a crop spec were fitted; a spec that does not say (or none) means ``"lsq5"``."""
    fit = crop.get("fit", "lsq5") if isinstance(crop, dict) else "lsq5"
    if fit not in FITS:
        raise ValueError(f"crop fit {fit!r} is not one of {', '.join(FITS)}")
    return fit


def fit_from_meta(meta: dict) -> str:
    """How a checkpoint's crops were fitted; checkpoints that do not say were made with ``"lsq5"``."""
    return fit_of(meta.get("crop"))
