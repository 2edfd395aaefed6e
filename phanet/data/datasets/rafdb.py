"""RAF-DB basic emotions (Li, Deng & Du, CVPR 2017), as distributed.

Layout (the root may be ``basic/`` or the folder holding it)::

    basic/EmoLabel/list_patition_label.txt         "train_00001.jpg 5" per line (sic: "patition")
    basic/Image/aligned/train_00001_aligned.jpg    100x100 aligned faces (aligned=True, default)
    basic/Image/original/train_00001.jpg           the original pictures (aligned=False)
    basic/Annotation/manual/train_00001_manu_attri.txt   5 manual landmarks, then gender, race, age

* **Labels** 1-7: Surprise, Fear, Disgust, Happiness, Sadness, Anger, Neutral, named surprise, fear,
  disgust, happy, sad, anger, neutral and ordered canonically.
* **Split** from the name prefix: train_* (12,271) and test_* (3,068). There is no validation set: the
  official protocol carves one from train (:func:`phanet.data.protocols.official_split`).
* Subjects are unknown: default protocol "official".
* **Pose** is unknown unless ``landmarks`` is given: ``"manual"`` uses the release's 5 manual landmarks
  (annotated on the original picture; yaw does not change under the 2D similarity that aligns it), or a
  path to a CSV ``image,landmarks`` keyed like ``train_00001.jpg``. Yaw is estimated as in
  :mod:`phanet.data.landmark_pose` and binned to ``yaw_centres``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from phanet.data.base import SEVEN_EXPRESSIONS, LabelSpace, Sample
from phanet.data.landmark_pose import (
    DEFAULT_YAW_CENTRES,
    assign_estimated_poses,
    estimated_pose_bins,
    read_landmarks_csv,
)
from phanet.data.layout import ListingCache, child, require_dir, text_file
from phanet.data.registry import DatasetIndex, DatasetLayoutError, register_dataset

LABELS = {1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "anger", 7: "neutral"}
LABEL_FILE = ("EmoLabel", "list_patition_label.txt")
EXPECTED = "basic/EmoLabel/list_patition_label.txt and basic/Image/aligned/<name>_aligned.jpg"


@register_dataset("rafdb")
def load_rafdb(
    root: str | Path | None,
    aligned: bool = True,
    landmarks: str | Path | None = None,
    yaw_centres: tuple[float, ...] | list[float] = DEFAULT_YAW_CENTRES,
) -> DatasetIndex:
    """Index RAF-DB basic; ``aligned`` faces or originals; ``landmarks`` None, "manual" or a CSV path."""
    root = require_dir(root, "rafdb", EXPECTED)
    basic = root if child(root, "EmoLabel") else (child(root, "basic") or root)
    label_path = _find(basic, *LABEL_FILE)
    image_dir = _find(basic, "Image", "aligned" if aligned else "original")
    poses = estimated_pose_bins(tuple(yaw_centres)) if landmarks else ()
    label_space = LabelSpace(SEVEN_EXPRESSIONS, poses)
    samples, problems = read_labels(label_path, image_dir, aligned, label_space)
    if not samples:
        raise DatasetLayoutError(f"rafdb: {label_path} names no image found in {image_dir}; expected {EXPECTED}")
    if landmarks == "manual":
        manual_dir = _find(basic, "Annotation", "manual")
        points, manual_problems = read_manual_landmarks(manual_dir, samples)
        problems += manual_problems + assign_estimated_poses(samples, points, poses, str(manual_dir))
    elif landmarks:
        problems += assign_estimated_poses(samples, read_landmarks_csv(landmarks), poses, str(landmarks))
    return DatasetIndex(samples, label_space, problems, default_protocol="official", name="rafdb")


def _find(base: Path, *parts: str) -> Path:
    found = base
    for part in parts:
        found = child(found, part) if found is not None else None
    if found is None:
        raise DatasetLayoutError(f"rafdb: {base.joinpath(*parts)} not found; expected {EXPECTED}")
    return found


def read_labels(label_path: Path, image_dir: Path, aligned: bool, label_space: LabelSpace):
    samples, problems = [], []
    listing = ListingCache()
    with text_file(label_path):
        label_lines = label_path.read_text(encoding="utf-8").splitlines()
    for line_number, line in enumerate(label_lines, start=1):
        if not line.strip():
            continue
        where = f"{label_path} line {line_number}"
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit() or int(fields[1]) not in LABELS:
            problems.append(f"{where}: expected '<name>.jpg <label 1-7>', got {line.strip()!r}; skipped")
            continue
        name, label = fields[0], int(fields[1])
        split = name.split("_", 1)[0].lower()
        if split not in ("train", "test"):
            problems.append(f"{where}: {name} starts with neither train_ nor test_; skipped")
            continue
        stem, suffix = name.rsplit(".", 1) if "." in name else (name, "jpg")
        path = image_dir / (f"{stem}_aligned.{suffix}" if aligned else name)
        if not listing.exists(path):
            problems.append(f"{path}: missing (labelled in {where}); skipped")
            continue
        samples.append(
            Sample(
                image=str(path),
                expression=label_space.expressions.index(LABELS[label]),
                item_id=name,
                split=split,
            )
        )
    return samples, problems


def read_manual_landmarks(manual_dir: Path, samples: list[Sample]) -> tuple[dict[str, np.ndarray], list[str]]:
    """The 5 manual landmarks of each sample, from ``<stem>_manu_attri.txt`` (first 5 lines "x y")."""
    points, problems = {}, []
    for sample in samples:
        path = manual_dir / f"{sample.item_id.rsplit('.', 1)[0]}_manu_attri.txt"
        try:
            lines = path.read_text().split("\n")[:5]
            points[sample.item_id] = np.array([[float(v) for v in ln.split()[:2]] for ln in lines]).reshape(5, 2)
        except FileNotFoundError:
            continue  # counted by assign_estimated_poses as "no landmarks"
        except (ValueError, OSError) as err:
            problems.append(f"{path}: expected 5 lines 'x y' first ({err}); pose left unknown")
    return points, problems
