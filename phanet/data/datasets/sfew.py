"""SFEW 2.0, Static Facial Expressions in the Wild (Dhall, Goecke, Lucey & Gedeon; EmotiW 2015).

Layout (folder names matched case-insensitively)::

    Train/<Class>/<movie>_<frame>.png     full frames
    Val/<Class>/...
    Train/Train_Aligned_Faces/<Class>/... aligned faces (also accepted at the top: Train_Aligned_Faces/<Class>/...)
    Val/Val_Aligned_Faces/<Class>/...                                           (or Val_Aligned_Faces/<Class>/...)

``<Class>`` is Angry, Disgust, Fear, Happy, Neutral, Sad or Surprise (canonical anger, disgust, fear,
happy, neutral, sad, surprise). With ``aligned=True`` (default) the organisers' aligned face crops are
read where present, else the full frames; ``aligned=False`` reads the frames. The test set was released
without labels, so the official protocol tests on Val and carves a validation part from Train
(:func:`phanet.data.protocols.official_split`). Subjects (actors) are not given: default protocol
"official".

**Pose** is unknown unless ``landmarks`` names a CSV ``image,landmarks`` (paths relative to the root,
68 or 5 points as ``"x1;y1;..."``) from a face-landmark detector; yaw is then estimated as in
:mod:`phanet.data.landmark_pose` and binned to ``yaw_centres``.
"""

from __future__ import annotations

from pathlib import Path

from phanet.data.base import SEVEN_EXPRESSIONS, LabelSpace, Sample
from phanet.data.landmark_pose import (
    DEFAULT_YAW_CENTRES,
    assign_estimated_poses,
    estimated_pose_bins,
    read_landmarks_csv,
)
from phanet.data.layout import child, is_image_name, is_junk, require_dir, sorted_entries
from phanet.data.registry import DatasetIndex, DatasetLayoutError, register_dataset

CLASS_FOLDERS = {
    "angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happy",
    "neutral": "neutral", "sad": "sad", "surprise": "surprise",
}
SPLIT_FOLDERS = {"train": "Train", "val": "Val"}
EXPECTED = "Train/<Class>/*.png and Val/<Class>/*.png (or Train_Aligned_Faces/<Class>/..., Val_Aligned_Faces/...)"


@register_dataset("sfew")
def load_sfew(
    root: str | Path | None,
    aligned: bool = True,
    landmarks: str | Path | None = None,
    yaw_centres: tuple[float, ...] | list[float] = DEFAULT_YAW_CENTRES,
) -> DatasetIndex:
    """Index SFEW 2.0 Train and Val; see the module docstring for ``aligned`` and ``landmarks``."""
    root = require_dir(root, "sfew", EXPECTED)
    poses = estimated_pose_bins(tuple(yaw_centres)) if landmarks else ()
    label_space = LabelSpace(SEVEN_EXPRESSIONS, poses)
    samples, problems = [], []
    for split, folder_name in SPLIT_FOLDERS.items():
        folder = split_folder(root, folder_name, aligned)
        if folder is None:
            problems.append(f"{root}: no {folder_name}/ folder; the {split} split is empty")
            continue
        split_samples, split_problems = index_split(root, folder, split, label_space)
        samples.extend(split_samples)
        problems.extend(split_problems)
    if not samples:
        raise DatasetLayoutError(f"sfew: no labelled image under {root}; expected {EXPECTED}")
    if landmarks:
        problems += assign_estimated_poses(samples, read_landmarks_csv(landmarks), poses, str(landmarks))
    return DatasetIndex(samples, label_space, problems, default_protocol="official", name="sfew")


def split_folder(root: Path, name: str, aligned: bool) -> Path | None:
    """The folder holding the class folders of one split: aligned faces first when asked for."""
    split_dir = child(root, name)
    candidates = []
    if aligned:
        aligned_name = f"{name}_Aligned_Faces"
        candidates += [child(split_dir, aligned_name) if split_dir else None, child(root, aligned_name)]
    candidates.append(split_dir)
    for folder in candidates:
        if folder is not None and any(child(folder, c) for c in CLASS_FOLDERS):
            return folder
    return None


def index_split(root: Path, folder: Path, split: str, label_space: LabelSpace):
    samples, problems = [], []
    for entry in sorted_entries(folder):
        if not entry.is_dir() or entry.name.lower().endswith("_aligned_faces"):
            continue
        expression = CLASS_FOLDERS.get(entry.name.lower())
        if expression is None:
            problems.append(f"{entry.path}: not a class folder ({', '.join(CLASS_FOLDERS)}); skipped")
            continue
        for image in sorted_entries(Path(entry.path)):
            if is_junk(image.name) or image.is_dir():
                continue
            if not is_image_name(image.name):
                problems.append(f"{image.path}: not an image file name; skipped")
                continue
            samples.append(
                Sample(
                    image=image.path,
                    expression=label_space.expressions.index(expression),
                    item_id=Path(image.path).relative_to(root).as_posix(),
                    split=split,
                )
            )
    return samples, problems
