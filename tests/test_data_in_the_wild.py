"""SFEW 2.0, RAF-DB basic and FER2013/FER+ on fixture trees in their distributed layouts."""

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from phanet.data import FaceDataset, load_dataset
from phanet.data.datasets.fer2013 import majority_label
from phanet.data.registry import DatasetLayoutError


def write_image(path: Path, size=(10, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), 100, np.uint8)).save(path)


# ----------------------------------------------------------------------------- SFEW 2.0

def make_sfew(root: Path) -> Path:
    for split in ("Train", "Val"):
        for cls in ("Angry", "Happy", "Neutral"):
            write_image(root / split / cls / f"Movie_{split}_{cls}_001.png", (20, 30))
            write_image(root / split / f"{split}_Aligned_Faces" / cls / f"Movie_{split}_{cls}_001.png")
    (root / "Train" / "Happy" / "notes.txt").write_text("x")
    (root / "Train" / "Bored").mkdir()
    return root


def test_sfew_prefers_aligned_faces_and_labels_by_class_folder(tmp_path):
    index = load_dataset("sfew", make_sfew(tmp_path))
    names = index.label_space.expressions
    assert len(index.samples) == 6
    assert {(names[s.expression], s.split) for s in index.samples} >= {("anger", "train"), ("happy", "val")}
    assert all("_Aligned_Faces" in s.image for s in index.samples)
    assert index.default_protocol == "official" and index.label_space.poses == ()


def test_sfew_frames_and_their_problems(tmp_path):
    index = load_dataset("sfew", make_sfew(tmp_path), aligned=False)
    assert len(index.samples) == 6 and not any("_Aligned_Faces" in s.image for s in index.samples)
    problems = "\n".join(index.problems)
    assert "notes.txt: not an image file name" in problems
    assert "Bored: not a class folder" in problems


def test_sfew_without_class_folders_fails(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"sfew: no labelled image under .*Train/<Class>"):
        load_dataset("sfew", tmp_path)


def test_sfew_pose_from_a_landmarks_csv(tmp_path):
    root = make_sfew(tmp_path)
    landmarks = tmp_path / "landmarks.csv"
    with landmarks.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "landmarks"])
        # 5 points, frontal: eyes, nose tip centred, mouth corners
        writer.writerow(["Train/Train_Aligned_Faces/Angry/Movie_Train_Angry_001.png", "30;40;70;40;50;60;35;80;65;80"])
    index = load_dataset("sfew", root, landmarks=str(landmarks))
    poses = index.label_space.poses
    estimated = [s for s in index.samples if s.pose >= 0]
    assert len(estimated) == 1 and poses[estimated[0].pose].name == "yaw+0"
    assert any("no landmarks for 5 image(s)" in p for p in index.problems)


# ----------------------------------------------------------------------------- RAF-DB

def make_rafdb(root: Path) -> Path:
    basic = root / "basic"
    lines = ["train_00001.jpg 4", "train_00002.jpg 7", "test_0001.jpg 1", "test_0002.jpg 9", "oops", "test_0003.jpg 2"]
    (basic / "EmoLabel").mkdir(parents=True)
    (basic / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    for name in ("train_00001", "train_00002", "test_0001"):
        write_image(basic / "Image" / "aligned" / f"{name}_aligned.jpg")
        write_image(basic / "Image" / "original" / f"{name}.jpg", (30, 20))
        manual = basic / "Annotation" / "manual" / f"{name}_manu_attri.txt"
        manual.parent.mkdir(parents=True, exist_ok=True)
        manual.write_text("30.0\t40.0\n70.0\t40.0\n50.0\t60.0\n35.0\t80.0\n65.0\t80.0\n1\n0\n2\n")
    return root


def test_rafdb_labels_splits_and_problems(tmp_path):
    index = load_dataset("rafdb", make_rafdb(tmp_path))
    names = index.label_space.expressions
    assert [(s.item_id, names[s.expression], s.split) for s in index.samples] == [
        ("train_00001.jpg", "happy", "train"), ("train_00002.jpg", "neutral", "train"),
        ("test_0001.jpg", "surprise", "test"),
    ]
    assert index.samples[0].image.endswith("Image/aligned/train_00001_aligned.jpg")
    problems = "\n".join(index.problems)
    assert "list_patition_label.txt line 4: expected '<name>.jpg <label 1-7>'" in problems
    assert "list_patition_label.txt line 5" in problems
    assert "test_0003_aligned.jpg: missing" in problems


def test_rafdb_originals_and_manual_landmark_pose(tmp_path):
    root = make_rafdb(tmp_path)
    index = load_dataset("rafdb", root / "basic", aligned=False, landmarks="manual")
    assert index.samples[0].image.endswith("Image/original/train_00001.jpg")
    poses = index.label_space.poses
    assert {poses[s.pose].name for s in index.samples} == {"yaw+0"}


def test_rafdb_without_label_file_fails_naming_it(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"EmoLabel.* not found"):
        load_dataset("rafdb", tmp_path)


# ----------------------------------------------------------------------------- FER2013 / FER+

def pixels(value: int) -> str:
    return " ".join([str(value)] * 2304)


def make_fer2013(root: Path) -> Path:
    rows = [
        (3, pixels(10), "Training"), (6, pixels(20), "Training"), (0, pixels(30), "PublicTest"),
        (5, pixels(40), "PrivateTest"), (2, "1 2 3", "Training"), (1, pixels(50), "Bogus"),
    ]
    with (root / "fer2013.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        writer.writerows(rows)
    votes = [  # neutral happiness surprise sadness anger disgust fear contempt unknown NF
        (0, 10, 0, 0, 0, 0, 0, 0, 0, 0), (4, 0, 0, 0, 0, 0, 0, 6, 0, 0), (0, 0, 0, 0, 0, 0, 0, 0, 8, 2),
        (4, 4, 2, 0, 0, 0, 0, 0, 0, 0), (10, 0, 0, 0, 0, 0, 0, 0, 0, 0), (10, 0, 0, 0, 0, 0, 0, 0, 0, 0),
    ]
    usages = [r[2] for r in rows]
    with (root / "fer2013new.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger",
                         "disgust", "fear", "contempt", "unknown", "NF"])
        for i, (usage, vote) in enumerate(zip(usages, votes)):
            writer.writerow([usage, f"fer{i:07d}.png", *vote])
    return root


def test_fer2013_pixels_labels_and_usage_splits(tmp_path):
    index = load_dataset("fer2013", make_fer2013(tmp_path))
    names = index.label_space.expressions
    assert [(names[s.expression], s.split) for s in index.samples] == [
        ("happy", "train"), ("neutral", "train"), ("anger", "val"), ("surprise", "test"),
    ]
    image = index.samples[1].image()
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8 and image[0, 0, 0] == 20
    assert pickle.loads(pickle.dumps(index.samples[1].image))()[5, 5, 2] == 20
    assert FaceDataset(index.samples, index.label_space)[0]["image"].shape == (3, 48, 48)
    problems = "\n".join(index.problems)
    assert "fer2013.csv line 6: expected 2304 pixel values" in problems
    assert "fer2013.csv line 7: Usage 'Bogus'" in problems


def test_ferplus_majority_labels_drop_unknown_and_ties(tmp_path):
    index = load_dataset("fer2013", make_fer2013(tmp_path), labels="ferplus")
    names = index.label_space.expressions
    assert len(names) == 8 and names[-1] == "contempt"
    assert [(s.item_id, names[s.expression]) for s in index.samples] == [
        ("fer0000000.png", "happy"), ("fer0000001.png", "contempt"),
    ]


def test_ferplus_majority_rule():
    assert majority_label([6, 1, 1, 1, 1, 0, 0, 0, 0, 0]) == "neutral"  # single votes are outliers
    assert majority_label([5, 5, 0, 0, 0, 0, 0, 0, 0, 0]) is None  # no strict majority
    assert majority_label([0, 0, 0, 0, 0, 0, 0, 0, 0, 9]) is None  # not a face


def test_ferplus_rows_must_match_fer2013(tmp_path):
    root = make_fer2013(tmp_path)
    lines = (root / "fer2013new.csv").read_text().splitlines()
    (root / "fer2013new.csv").write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(DatasetLayoutError, match="fer2013new.csv has 5 rows but fer2013.csv has 6"):
        load_dataset("fer2013", root, labels="ferplus")


def test_fer2013_missing_csv_fails(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"fer2013.csv not found"):
        load_dataset("fer2013", tmp_path)
