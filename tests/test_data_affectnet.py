"""AffectNet on a fixture tree: Manually_Annotated_file_lists/*.csv + Manually_Annotated_Images/<dir>/<file>."""

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from phanet.data import FaceDataset, load_dataset
from phanet.data.datasets.affectnet import COLUMNS
from phanet.data.landmark_pose import IBUG68_POINTS, MODEL_14
from phanet.data.registry import DatasetLayoutError


def face_landmarks(yaw_degrees: float) -> str:
    """68 landmarks (the 14 used by the pose fit, others at the centre) of the generic face turned by yaw."""
    theta = np.radians(-yaw_degrees)
    rotation = np.array([[np.cos(theta), 0, np.sin(theta)], [0, 1, 0], [-np.sin(theta), 0, np.cos(theta)]])
    points3d = MODEL_14 @ rotation.T + [0, 0, 200.0]
    points = np.full((68, 2), 100.0)
    points[list(IBUG68_POINTS)] = 1000 * points3d[:, :2] / points3d[:, 2:] + 100
    return ";".join(f"{v:.2f}" for v in points.ravel())


def make_affectnet(root: Path, rows_by_split: dict[str, list[tuple]]) -> Path:
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True)
    for split, rows in rows_by_split.items():
        with (lists / f"{split}.csv").open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for name, expression, yaw in rows:
                path = root / "Manually_Annotated_Images" / name
                if not name.startswith("missing"):
                    path.parent.mkdir(parents=True, exist_ok=True)
                    Image.fromarray(np.full((40, 30, 3), 90, np.uint8)).save(path)
                writer.writerow([name, 5, 6, 20, 24, face_landmarks(yaw), expression, 0.5, -0.25])
    return root


ROWS = {
    "training": [("1/a.jpg", 0, 0), ("1/b.jpg", 1, 30), ("2/c.jpg", 7, -60), ("2/d.jpg", 8, 0),
                 ("2/e.jpg", 10, 0), ("missing/f.jpg", 3, 0)],
    "validation": [("3/g.jpg", 6, -30), ("3/h.jpg", 9, 0)],
}


def test_seven_class_setting_drops_contempt_none_uncertain_and_non_faces(tmp_path):
    index = load_dataset("affectnet", make_affectnet(tmp_path, ROWS))
    names = index.label_space.expressions
    assert names == ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")
    assert [(s.item_id, names[s.expression], s.split) for s in index.samples] == [
        ("1/a.jpg", "neutral", "train"), ("1/b.jpg", "happy", "train"), ("3/g.jpg", "anger", "val"),
    ]
    assert index.default_protocol == "official"
    assert any("missing/f.jpg: missing" in p for p in index.problems)


def test_eight_class_setting_keeps_contempt(tmp_path):
    index = load_dataset("affectnet", make_affectnet(tmp_path, ROWS), classes=8, split="train")
    assert index.label_space.expressions[-1] == "contempt"
    assert [s.item_id for s in index.samples] == ["1/a.jpg", "1/b.jpg", "2/c.jpg"]


def test_face_box_is_cropped_and_valence_arousal_are_kept(tmp_path):
    index = load_dataset("affectnet", make_affectnet(tmp_path, ROWS))
    sample = index.samples[0]
    assert sample.box == (5.0, 6.0, 25.0, 30.0)
    assert sample.extra == {"valence": 0.5, "arousal": -0.25}
    item = FaceDataset(index.samples, index.label_space)[0]
    assert item["image"].shape == (3, 24, 20)


def test_pose_bins_are_estimated_from_the_68_landmarks(tmp_path):
    index = load_dataset("affectnet", make_affectnet(tmp_path, ROWS))
    poses = index.label_space.poses
    assert [p.yaw for p in poses] == [-60, -30, 0, 30, 60]
    by_id = {s.item_id: s for s in index.samples}
    assert poses[by_id["1/a.jpg"].pose].name == "yaw+0"
    assert poses[by_id["1/b.jpg"].pose].name == "yaw+30"
    assert poses[by_id["3/g.jpg"].pose].name == "yaw-30"
    assert by_id["1/b.jpg"].yaw == pytest.approx(30, abs=3)


def test_pose_none_declares_no_bins(tmp_path):
    index = load_dataset("affectnet", make_affectnet(tmp_path, ROWS), pose="none")
    assert index.label_space.poses == () and {s.pose for s in index.samples} == {-1}


def test_malformed_rows_are_reported_with_file_and_line(tmp_path):
    root = make_affectnet(tmp_path, {"training": ROWS["training"][:1]})
    path = root / "Manually_Annotated_file_lists/training.csv"
    with path.open("a", newline="") as handle:
        csv.writer(handle).writerow(["1/a.jpg", "x", 6, 20, 24, "1;2", 1, 0, 0])
        csv.writer(handle).writerow(["1/a.jpg", 5, 6, 20, 24, "1;2;3;4", 1, 0, 0])
        csv.writer(handle).writerow(["1/a.jpg", 5])
    index = load_dataset("affectnet", root, split="train")
    problems = "\n".join(index.problems)
    assert "training.csv line 3: expression or face box is not a number" in problems
    assert "training.csv line 4: landmarks unusable" in problems
    assert "training.csv line 5: expected 9 fields" in problems
    assert len(index.samples) == 2 and index.samples[1].pose == -1


def test_missing_csv_or_columns_fail_naming_the_file(tmp_path):
    with pytest.raises(DatasetLayoutError, match="training.csv not found"):
        load_dataset("affectnet", tmp_path)
    lists = tmp_path / "Manually_Annotated_file_lists"
    lists.mkdir()
    (lists / "training.csv").write_text("subDirectory_filePath,expression\n1/a.jpg,0\n")
    with pytest.raises(DatasetLayoutError, match=r"training.csv lacks column\(s\) face_x"):
        load_dataset("affectnet", tmp_path, split="train")


def test_images_not_found_anywhere_fail_early(tmp_path):
    root = make_affectnet(tmp_path, {"training": [("missing/a.jpg", 0, 0)]})
    with pytest.raises(DatasetLayoutError, match=r"images named in .*training.csv \(e.g. missing/a.jpg\) not found"):
        load_dataset("affectnet", root, split="train")
