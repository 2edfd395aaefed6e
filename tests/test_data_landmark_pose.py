"""Yaw from landmarks: solvePnP against the generic 3D face, sign conventions, binning, input checks."""

import numpy as np
import pytest

from phanet.data.landmark_pose import (
    IBUG68_POINTS,
    MODEL_5,
    MODEL_14,
    estimate_head_pose,
    estimated_pose_bins,
    parse_landmarks,
    read_landmarks_csv,
)
from phanet.data.layout import nearest_bin


def project(model: np.ndarray, yaw: float, distance: float = 300.0) -> np.ndarray:
    """Pixel positions of the model turned by ``yaw`` (positive: to the subject's left) in front of a camera."""
    theta = np.radians(-yaw)
    rotation = np.array([[np.cos(theta), 0, np.sin(theta)], [0, 1, 0], [-np.sin(theta), 0, np.cos(theta)]])
    points = model @ rotation.T + [0, 0, distance]
    return 1000 * points[:, :2] / points[:, 2:] + [320, 240]


def ibug68(yaw: float) -> np.ndarray:
    points = np.full((68, 2), 300.0)
    points[list(IBUG68_POINTS)] = project(MODEL_14, yaw)
    return points


@pytest.mark.parametrize("yaw", [-60, -30, 0, 15, 45])
def test_yaw_of_a_turned_generic_face_is_recovered_from_68_and_5_points(yaw):
    assert estimate_head_pose(ibug68(yaw)).yaw == pytest.approx(yaw, abs=4)
    assert estimate_head_pose(project(MODEL_5, yaw)).yaw == pytest.approx(yaw, abs=4)
    assert abs(estimate_head_pose(ibug68(yaw)).pitch) < 3


def test_turning_to_the_subjects_left_moves_the_nose_right_and_gives_positive_yaw():
    points = project(MODEL_14, 30)
    nostrils_x, eye_corners_x = points[8:10, 0].mean(), points[4:8, 0].mean()
    assert nostrils_x > eye_corners_x
    assert estimate_head_pose(ibug68(30)).yaw > 20


def test_a_horizontal_flip_of_five_points_negates_yaw():
    points = project(MODEL_5, 25)
    flipped = points.copy()
    flipped[:, 0] = 640 - flipped[:, 0]
    assert estimate_head_pose(flipped).yaw == pytest.approx(-estimate_head_pose(points).yaw, abs=0.5)


def test_bins_are_nearest_yaw_centres():
    bins = estimated_pose_bins()
    assert [b.name for b in bins] == ["yaw-60", "yaw-30", "yaw+0", "yaw+30", "yaw+60"]
    assert [bins[nearest_bin(y, bins)].yaw for y in (-80, -44, -14, 14, 16, 90)] == [-60, -30, 0, 0, 30, 60]


def test_bad_landmarks_raise_value_errors():
    assert parse_landmarks("1;2;3;4").shape == (2, 2)
    with pytest.raises(ValueError, match="even number"):
        parse_landmarks("1;2;3")
    with pytest.raises(ValueError, match="expected 68 .* or 5"):
        estimate_head_pose(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="all at one point"):
        estimate_head_pose(np.zeros((5, 2)))


def test_a_landmarks_csv_with_a_bad_row_names_file_and_line(tmp_path):
    path = tmp_path / "landmarks.csv"
    path.write_text("image,landmarks\na.png,1;2;3;4\nb.png,1;2;x\n")
    with pytest.raises(ValueError, match=r"landmarks.csv line 3: bad landmarks"):
        read_landmarks_csv(path)
    path.write_text("image,points\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) landmarks"):
        read_landmarks_csv(path)


def test_real_frontal_photos_with_detected_five_points_come_out_frontal(london_sample):
    facenet = pytest.importorskip("facenet_pytorch")
    from PIL import Image

    detector = facenet.MTCNN(keep_all=False, device="cpu")
    for path in sorted(london_sample.glob("*/*.jpg"))[::4]:
        _, _, points = detector.detect(Image.open(path).convert("RGB"), landmarks=True)
        yaw = estimate_head_pose(points[0]).yaw
        assert abs(yaw) < 10, f"{path.name}: frontal face estimated at yaw {yaw:.1f}"
