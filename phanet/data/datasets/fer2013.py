"""FER2013 (Goodfellow et al., ICML 2013 challenge), optionally with FER+ labels (Barsoum et al., 2016).

Layout (the root is the folder holding the CSVs; FER+ may also lie in ``FERPlus/``)::

    fer2013.csv        emotion,pixels,Usage      (48x48 grey pixels as 2304 space-separated numbers)
    fer2013new.csv     Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF

* **Images** live in the CSV: ``Sample.image`` is a small picklable callable returning the face as a
  ``[48, 48, 3]`` uint8 array (grey repeated), so DataLoader workers need no files.
* **Labels** ``labels="fer2013"`` (default): 0-6 Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral
  -> 7 canonical classes. ``labels="ferplus"``: the FER+ majority label over 8 classes (the 7 plus
  contempt), computed as FER+'s own "majority" mode: votes of 1 are dropped as outliers, the top class
  must hold more than half of the remaining votes, and images whose majority is *unknown* or *NF*
  (not a face), or that have no majority, are dropped. FER+ rows are matched to FER2013 rows by
  position (row ``i`` is ``fer{i:07d}.png``), and the two files must agree on row count and Usage.
* **Splits** from ``Usage``: Training -> train, PublicTest -> val, PrivateTest -> test (the standard
  protocol: train, select on public, report private).
* Subjects are unknown: default protocol "official". **Pose** is unknown unless ``landmarks`` names a
  CSV ``image,landmarks`` keyed ``fer0000000.png`` (see :mod:`phanet.data.landmark_pose`).
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from phanet.data.base import CANONICAL_EXPRESSIONS, SEVEN_EXPRESSIONS, LabelSpace, Sample
from phanet.data.landmark_pose import (
    DEFAULT_YAW_CENTRES,
    assign_estimated_poses,
    estimated_pose_bins,
    read_landmarks_csv,
)
from phanet.data.layout import child, require_dir, text_file
from phanet.data.registry import DatasetIndex, DatasetLayoutError, register_dataset

FER2013_LABELS = ("anger", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FERPLUS_VOTES = ("neutral", "happy", "surprise", "sad", "anger", "disgust", "fear", "contempt", "unknown", "NF")
FERPLUS_VOTE_COLUMNS = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF",
)
USAGE_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SIDE = 48
EXPECTED = "fer2013.csv with columns emotion,pixels,Usage (and fer2013new.csv for labels='ferplus')"


@dataclass(frozen=True, eq=False)
class GreyPixels:
    """A picklable zero-argument callable returning one FER2013 face as ``[48, 48, 3]`` uint8."""

    pixels: np.ndarray  # [48, 48] uint8

    def __call__(self) -> np.ndarray:
        return np.repeat(self.pixels[:, :, None], 3, axis=2)


@register_dataset("fer2013")
def load_fer2013(
    root: str | Path | None,
    labels: str = "fer2013",
    landmarks: str | Path | None = None,
    yaw_centres: tuple[float, ...] | list[float] = DEFAULT_YAW_CENTRES,
) -> DatasetIndex:
    """Index FER2013 with its own labels (``labels="fer2013"``) or FER+ majority labels ("ferplus")."""
    if labels not in ("fer2013", "ferplus"):
        raise ValueError(f"fer2013: labels={labels!r}; choose 'fer2013' or 'ferplus'")
    root = require_dir(root, "fer2013", EXPECTED)
    csv_path = child(root, "fer2013.csv") or child(child(root, "fer2013") or root, "fer2013.csv")
    if csv_path is None:
        raise DatasetLayoutError(f"fer2013: {root / 'fer2013.csv'} not found; expected {EXPECTED}")
    rows = read_fer2013(csv_path)
    poses = estimated_pose_bins(tuple(yaw_centres)) if landmarks else ()
    if labels == "ferplus":
        label_space = LabelSpace(CANONICAL_EXPRESSIONS, poses)
        votes_path = child(root, "fer2013new.csv") or child(child(root, "FERPlus") or root, "fer2013new.csv")
        if votes_path is None:
            raise DatasetLayoutError(f"fer2013: {root / 'fer2013new.csv'} not found (labels='ferplus'); "
                                     f"expected {EXPECTED}")
        names = ferplus_labels(votes_path, rows)
    else:
        label_space = LabelSpace(SEVEN_EXPRESSIONS, poses)
        names = [FER2013_LABELS[row.emotion] if row.emotion is not None else None for row in rows]
    samples, problems = [], [row.problem for row in rows if row.problem]
    for row, name in zip(rows, names):
        if row.problem or name is None:
            continue
        samples.append(
            Sample(
                image=GreyPixels(row.pixels),
                expression=label_space.expressions.index(name),
                item_id=f"fer{row.index:07d}.png",
                split=USAGE_SPLITS[row.usage],
            )
        )
    if landmarks:
        problems += assign_estimated_poses(samples, read_landmarks_csv(landmarks), poses, str(landmarks))
    return DatasetIndex(samples, label_space, problems, default_protocol="official", name="fer2013")


@dataclass
class FerRow:
    index: int
    emotion: int | None
    usage: str
    pixels: np.ndarray | None
    problem: str = ""


def read_fer2013(path: Path) -> list[FerRow]:
    """Every data row of fer2013.csv, in order; rows that do not parse carry a ``problem``."""
    rows = []
    with text_file(path), path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or ())
        if missing:
            raise DatasetLayoutError(f"fer2013: {path} lacks column(s) {', '.join(sorted(missing))}; "
                                     f"expected {EXPECTED}")
        for index, row in enumerate(reader):
            rows.append(_parse_row(index, row, f"{path} line {reader.line_num}"))
    if not rows:
        raise DatasetLayoutError(f"fer2013: {path} has no data rows; expected {EXPECTED}")
    return rows


def _parse_row(index: int, row: dict, where: str) -> FerRow:
    usage = (row.get("Usage") or "").strip()
    if usage not in USAGE_SPLITS:
        return FerRow(index, None, usage, None, f"{where}: Usage {usage!r} is not one of {', '.join(USAGE_SPLITS)}")
    emotion_text = (row.get("emotion") or "").strip()
    if not emotion_text.isdigit() or int(emotion_text) > 6:
        return FerRow(index, None, usage, None, f"{where}: emotion {emotion_text!r} is not 0-6; skipped")
    values = np.fromstring(row.get("pixels") or "", dtype=np.int32, sep=" ")
    if values.size != SIDE * SIDE or values.min() < 0 or values.max() > 255:
        return FerRow(index, None, usage, None, f"{where}: expected {SIDE * SIDE} pixel values 0-255, "
                                                f"got {values.size}; skipped")
    return FerRow(index, int(emotion_text), usage, values.astype(np.uint8).reshape(SIDE, SIDE))


def ferplus_labels(path: Path, rows: list[FerRow]) -> list[str | None]:
    """The FER+ majority label (canonical name) of each FER2013 row, None where FER+ drops it."""
    with text_file(path), path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [name.strip() for name in reader.fieldnames or ()]
        missing = [c for c in ("Usage", *FERPLUS_VOTE_COLUMNS) if c not in header]
        if missing:
            raise DatasetLayoutError(f"fer2013: {path} lacks column(s) {', '.join(missing)}; expected "
                                     f"Usage,Image name,{','.join(FERPLUS_VOTE_COLUMNS)}")
        reader.fieldnames = header
        vote_rows = list(reader)
    if len(vote_rows) != len(rows):
        raise DatasetLayoutError(f"fer2013: {path} has {len(vote_rows)} rows but fer2013.csv has {len(rows)}; "
                                 "FER+ labels are matched by row and need both files complete")
    names = []
    for row, votes_row in zip(rows, vote_rows):
        if votes_row["Usage"].strip() != row.usage:
            raise DatasetLayoutError(f"fer2013: row {row.index} of {path} is {votes_row['Usage']!r} but "
                                     f"fer2013.csv says {row.usage!r}; the files do not belong together")
        try:
            votes = [float(votes_row[c]) for c in FERPLUS_VOTE_COLUMNS]
        except (TypeError, ValueError):
            names.append(None)
            continue
        names.append(majority_label(votes))
    return names


def majority_label(votes: list[float]) -> str | None:
    """FER+ "majority" mode over the 10 vote counts (8 emotions, unknown, NF); None = dropped."""
    kept = [v if v > 1.0 + sys.float_info.epsilon else 0.0 for v in votes]
    total = sum(kept)
    if total <= 0:
        return None
    top = int(np.argmax(kept))
    if kept[top] <= 0.5 * total or FERPLUS_VOTES[top] in ("unknown", "NF"):
        return None
    return FERPLUS_VOTES[top]
