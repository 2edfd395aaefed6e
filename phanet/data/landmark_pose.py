"""Head yaw (and pitch) estimated from 2D facial landmarks, for datasets without a pose label.

In-the-wild sets (AffectNet, RAF-DB, SFEW, FER2013) give no head pose, yet PhaNet's pose branch needs
one. We estimate it the usual way: fit a generic rigid 3D face to the landmarks with
``cv2.solvePnP`` (SQPnP, globally optimal) and read the rotation.

* **3D model**: 14 landmarks of the iBUG 68-point scheme (brow corners, eye corners, nostrils, mouth
  corners, lower lip, chin; indices ``IBUG68_POINTS``) on the anthropometric face model of Martins &
  Batista (ISR Coimbra) in centimetres, as popularised by lincolnhard/head-pose-estimation. Jaw-line
  points are left out on purpose: under yaw they slide along the visible contour. For 5-point
  landmarks (eye centres, nose tip, mouth corners: MTCNN, RAF-DB's manual annotation) eye centres are
  the model's eye-corner midpoints and the nose tip is placed with the proportions of the 6-point
  model commonly used with solvePnP (tip 47% of the way from mouth to eye height, ~3 cm in front of
  the mouth corners).
* **Camera**: the image size is often unknown (AffectNet's CSV), so a near-orthographic camera is
  assumed: principal point at the landmarks' centre and focal length 5x their extent. A face's yaw then
  does not depend on where it sits in the photo.
* **Angles**: from the face's forward direction ``f = R @ (0, 0, -1)`` in camera coordinates (x right,
  y down): ``yaw = atan2(f_x, -f_z)`` is positive when the subject turns to *their* left (the nose moves
  to the image's right), ``pitch = atan2(-f_y, hypot(f_x, f_z))`` is positive looking up. A horizontal
  flip of the landmarks negates yaw, as :class:`phanet.data.base.PoseBin` requires.
* **Bins**: nearest of ``DEFAULT_YAW_CENTRES`` = -60, -30, 0, +30, +60 degrees (bin edges at +-15 and
  +-45); wider yaws go to the outer bins. In-the-wild faces are mostly within +-45 degrees.

OpenCV is an optional dependency (extra ``detect``); it is imported inside the functions that use it.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from phanet.data.base import PoseBin, Sample
from phanet.data.layout import nearest_bin, text_file, yaw_bins

DEFAULT_YAW_CENTRES = (-60.0, -30.0, 0.0, 30.0, 60.0)

IBUG68_POINTS = (17, 21, 22, 26, 36, 39, 42, 45, 31, 35, 48, 54, 57, 8)

# Anthropometric model coordinates (cm) for IBUG68_POINTS, in the source's axes (x to the image's left,
# y up, z towards the camera); converted below to OpenCV's object frame (x right, y down, z away).
_ANTHROPOMETRIC_14 = (
    (6.825897, 6.760612, 4.402142),  # 17 brow, outer end on the image's left
    (1.330353, 7.122144, 6.903745),  # 21 brow, inner end
    (-1.330353, 7.122144, 6.903745),  # 22 brow, inner end
    (-6.825897, 6.760612, 4.402142),  # 26 brow, outer end on the image's right
    (5.311432, 5.485328, 3.987654),  # 36 eye, outer corner (image left)
    (1.789930, 5.393625, 4.413414),  # 39 eye, inner corner
    (-1.789930, 5.393625, 4.413414),  # 42 eye, inner corner
    (-5.311432, 5.485328, 3.987654),  # 45 eye, outer corner (image right)
    (2.005628, 1.409845, 6.165652),  # 31 nostril (image left)
    (-2.005628, 1.409845, 6.165652),  # 35 nostril (image right)
    (2.774015, -2.080775, 5.048531),  # 48 mouth corner (image left)
    (-2.774015, -2.080775, 5.048531),  # 54 mouth corner (image right)
    (0.000000, -3.116408, 6.097667),  # 57 lower lip, centre
    (0.000000, -7.415691, 4.070434),  # 8 chin
)
MODEL_14 = -np.asarray(_ANTHROPOMETRIC_14, dtype=np.float64)


def _five_point_model() -> np.ndarray:
    left_eye = MODEL_14[[4, 5]].mean(axis=0)
    right_eye = MODEL_14[[6, 7]].mean(axis=0)
    mouth_left, mouth_right = MODEL_14[10], MODEL_14[11]
    eye_y, mouth_y = left_eye[1], mouth_left[1]
    nose_tip = np.array([0.0, mouth_y + 0.47 * (eye_y - mouth_y), mouth_left[2] - 2.95])
    return np.stack([left_eye, right_eye, nose_tip, mouth_left, mouth_right])


MODEL_5 = _five_point_model()

FOCAL_PER_EXTENT = 5.0


@dataclass(frozen=True)
class HeadPose:
    """Yaw and pitch in degrees (see the module docstring for the sign conventions)."""

    yaw: float
    pitch: float


def parse_landmarks(text: str) -> np.ndarray:
    """``"x1;y1;x2;y2;..."`` (AffectNet) or whitespace/comma separated numbers as ``[N, 2]`` floats."""
    values = [float(v) for v in text.replace(";", " ").replace(",", " ").split()]
    if not values or len(values) % 2:
        raise ValueError(f"expected an even number of coordinates, got {len(values)}")
    return np.asarray(values, dtype=np.float64).reshape(-1, 2)


def _model_and_image_points(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 2)
    if len(points) == 68:
        return MODEL_14, points[list(IBUG68_POINTS)]
    if len(points) == 5:
        eyes = points[:2][np.argsort(points[:2, 0])]
        mouth = points[3:5][np.argsort(points[3:5, 0])]
        return MODEL_5, np.concatenate([eyes, points[2:3], mouth])
    raise ValueError(f"expected 68 (iBUG) or 5 (eyes, nose, mouth corners) landmarks, got {len(points)}")


def require_opencv():
    try:
        import cv2
    except ImportError as err:
        raise ImportError(
            "estimating head pose from landmarks needs OpenCV: pip install 'phanet[detect]' "
            "(or opencv-python-headless), or turn pose estimation off for this dataset"
        ) from err
    return cv2


def estimate_head_pose(landmarks: np.ndarray) -> HeadPose:
    """Yaw/pitch of a face from ``[68, 2]`` or ``[5, 2]`` pixel landmarks; raises ValueError if unfit."""
    cv2 = require_opencv()
    model, image_points = _model_and_image_points(landmarks)
    if not np.all(np.isfinite(image_points)):
        raise ValueError("landmarks contain non-finite values")
    centre = image_points.mean(axis=0)
    extent = float(np.ptp(image_points, axis=0).max())
    if extent <= 0:
        raise ValueError("landmarks are all at one point")
    focal = FOCAL_PER_EXTENT * extent
    camera = np.array([[focal, 0.0, centre[0]], [0.0, focal, centre[1]], [0.0, 0.0, 1.0]])
    try:
        ok, rvec, _ = cv2.solvePnP(
            model.reshape(-1, 1, 3), image_points.reshape(-1, 1, 2), camera, None, flags=cv2.SOLVEPNP_SQPNP
        )
    except cv2.error as err:
        raise ValueError(f"solvePnP failed on these landmarks ({err.msg if hasattr(err, 'msg') else err})") from err
    if not ok:
        raise ValueError("solvePnP found no pose for these landmarks")
    rotation, _ = cv2.Rodrigues(rvec)
    forward = -rotation[:, 2]
    yaw = math.degrees(math.atan2(forward[0], -forward[2]))
    pitch = math.degrees(math.atan2(-forward[1], math.hypot(forward[0], forward[2])))
    return HeadPose(yaw=yaw, pitch=pitch)


def estimated_pose_bins(centres: tuple[float, ...] = DEFAULT_YAW_CENTRES) -> tuple[PoseBin, ...]:
    """The pose bins of landmark-estimated yaw: one per centre, named ``yaw-30`` etc."""
    return yaw_bins(centres)


def read_landmarks_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Landmarks from a CSV with columns ``image,landmarks`` (``landmarks`` = ``"x1;y1;x2;y2;..."``).

    This is how a detector's output is handed to datasets that ship without landmarks (SFEW, FER2013):
    ``image`` is the image path relative to the dataset root (FER2013: the row number). Raises
    ValueError naming the file and row on a malformed line.
    """
    path = Path(path)
    landmarks: dict[str, np.ndarray] = {}
    with text_file(path), path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"image", "landmarks"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}; expected image,landmarks")
        for row in reader:
            try:
                landmarks[row["image"].strip()] = parse_landmarks(row["landmarks"] or "")
            except ValueError as err:
                raise ValueError(f"{path} line {reader.line_num}: bad landmarks ({err})") from err
    return landmarks


def assign_estimated_poses(
    samples: list[Sample], landmarks: dict[str, np.ndarray], bins: tuple[PoseBin, ...], source: str
) -> list[str]:
    """Give each sample whose ``item_id`` has landmarks its estimated yaw and pose bin, in place.

    Returns the problems: landmarks that do not fit, and one line counting the samples without any
    (their pose stays unknown).
    """
    require_opencv()
    problems, without = [], []
    for sample in samples:
        points = landmarks.get(sample.item_id)
        if points is None:
            without.append(sample.item_id)
            continue
        try:
            sample.yaw = estimate_head_pose(points).yaw
        except ValueError as err:
            problems.append(f"{source}: landmarks of {sample.item_id} unusable ({err}); pose left unknown")
            continue
        sample.pose = nearest_bin(sample.yaw, bins)
    if without:
        problems.append(f"{source}: no landmarks for {len(without)} image(s), e.g. {without[0]}; pose left unknown")
    return problems
