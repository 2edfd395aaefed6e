"""AffectNet (Mollahosseini, Hasani & Mahoor, 2017), manually annotated part, as distributed.

Layout (names matched case-insensitively; the CSVs may also lie directly in the root)::

    Manually_Annotated_file_lists/training.csv      the official training set
    Manually_Annotated_file_lists/validation.csv    the official validation set (used as test set)
    Manually_Annotated_Images/<subDirectory_filePath>
      (or Manually_Annotated_compressed/Manually_Annotated_Images/..., or the root itself)

CSV columns: ``subDirectory_filePath, face_x, face_y, face_width, face_height, facial_landmarks,
expression, valence, arousal``; ``facial_landmarks`` is 68 points as ``"x1;y1;x2;y2;..."``.

* **Classes**: expression codes 0-7 are neutral, happy, sad, surprise, fear, disgust, anger,
  contempt (the canonical order). ``classes=8`` keeps all eight; ``classes=7`` (default) drops
  contempt, as most 7-class results do. Codes 8-10 (None, Uncertain, Non-face) are always dropped.
* **Face crop**: ``Sample.box`` = the CSV's face box; :class:`FaceDataset` crops it.
* **Pose**: AffectNet has none. With ``pose="landmarks"`` (default) yaw is estimated from the 68
  landmarks with ``cv2.solvePnP`` against a generic 3D face (:mod:`phanet.data.landmark_pose`) and
  binned to the nearest of ``yaw_centres`` (default -60, -30, 0, +30, +60 degrees); needs OpenCV.
  ``pose="none"`` leaves the pose unknown and declares no pose bins.
* **Splits**: ``Sample.split`` is "train" or "val" from the file each row comes from; the official
  protocol (:func:`phanet.data.protocols.official_split`) tests on the validation set and carves its
  own validation part from training, because the test set was never released.
* Subjects are unknown (web images), so the default protocol is "official".
* Valence and arousal are kept in ``Sample.extra``.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from pathlib import Path

from phanet.data.base import CANONICAL_EXPRESSIONS, UNKNOWN_POSE, LabelSpace, Sample
from phanet.data.landmark_pose import (
    DEFAULT_YAW_CENTRES,
    estimate_head_pose,
    estimated_pose_bins,
    parse_landmarks,
    require_opencv,
)
from phanet.data.layout import ListingCache, child, is_inside, nearest_bin, require_dir, text_file
from phanet.data.registry import DatasetIndex, DatasetLayoutError, register_dataset

log = logging.getLogger(__name__)

COLUMNS = (
    "subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
    "facial_landmarks", "expression", "valence", "arousal",
)
CSV_FILES = {"train": "training.csv", "val": "validation.csv"}
IMAGE_DIRS = (
    ("Manually_Annotated_Images",),
    ("Manually_Annotated_compressed", "Manually_Annotated_Images"),
    ("Manually_Annotated", "Manually_Annotated_Images"),
    (),
)
DROPPED_CODES = {8: "None", 9: "Uncertain", 10: "Non-face"}
EXPECTED = (
    "Manually_Annotated_file_lists/{training,validation}.csv and Manually_Annotated_Images/<subDirectory_filePath>"
)


@register_dataset("affectnet")
def load_affectnet(
    root: str | Path | None,
    classes: int = 7,
    split: str = "all",
    pose: str = "landmarks",
    yaw_centres: tuple[float, ...] | list[float] = DEFAULT_YAW_CENTRES,
) -> DatasetIndex:
    """Index AffectNet; ``classes`` 7 or 8, ``split`` "all"/"train"/"val", ``pose`` "landmarks"/"none"."""
    if int(classes) not in (7, 8):
        raise ValueError(f"affectnet: classes={classes!r}; choose 7 (no contempt) or 8")
    if pose not in ("landmarks", "none"):
        raise ValueError(f"affectnet: pose={pose!r}; choose 'landmarks' (estimated yaw) or 'none'")
    splits = _splits(split)
    root = require_dir(root, "affectnet", EXPECTED)
    if pose == "landmarks":
        require_opencv()
    poses = estimated_pose_bins(tuple(yaw_centres)) if pose == "landmarks" else ()
    label_space = LabelSpace(CANONICAL_EXPRESSIONS[: int(classes)], poses)
    samples, problems = [], []
    for name in splits:
        csv_path = find_csv(root, CSV_FILES[name])
        rows = read_rows(csv_path)
        image_dir = find_image_dir(root, csv_path, rows)
        split_samples, split_problems = rows_to_samples(rows, csv_path, image_dir, label_space, name)
        samples.extend(split_samples)
        problems.extend(split_problems)
    return DatasetIndex(samples, label_space, problems, default_protocol="official", name="affectnet")


def _splits(split: str) -> tuple[str, ...]:
    aliases = {"all": ("train", "val"), "train": ("train",), "val": ("val",), "validation": ("val",)}
    if split not in aliases:
        raise ValueError(f"affectnet: split={split!r}; choose 'all', 'train' or 'val'")
    return aliases[split]


def find_csv(root: Path, name: str) -> Path:
    for folder in (child(root, "Manually_Annotated_file_lists"), root):
        found = child(folder, name) if folder is not None else None
        if found is not None and found.is_file():
            return found
    raise DatasetLayoutError(f"affectnet: {name} not found in {root} or its Manually_Annotated_file_lists/; "
                             f"expected {EXPECTED}")


def read_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """``(line, row)`` pairs; a file without the header row is read with the standard column order."""
    with text_file(path), path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        first = next(reader, None)
        if first is None:
            raise DatasetLayoutError(f"affectnet: {path} is empty; expected columns {','.join(COLUMNS)}")
        header = [name.strip() for name in first]
        rows = []
        if "subDirectory_filePath" not in header:
            if len(first) != len(COLUMNS) or not first[0].strip().lower().endswith((".jpg", ".jpeg", ".png")):
                raise DatasetLayoutError(
                    f"affectnet: {path} line 1 is neither the header nor a data row; expected columns "
                    f"{','.join(COLUMNS)}"
                )
            header = list(COLUMNS)
            rows.append((1, dict(zip(header, first))))
        missing = [c for c in COLUMNS if c not in header]
        if missing:
            raise DatasetLayoutError(f"affectnet: {path} lacks column(s) {', '.join(missing)}; "
                                     f"expected {','.join(COLUMNS)}")
        for fields in reader:
            if fields:
                rows.append((reader.line_num, dict(zip(header, fields)) if len(fields) == len(header) else {}))
    return rows


def find_image_dir(root: Path, csv_path: Path, rows) -> Path:
    """The folder the CSV's relative paths resolve in, judged by the first rows that name a file."""
    names = [row["subDirectory_filePath"].strip() for _, row in rows[:50] if row.get("subDirectory_filePath")]
    tried = []
    for parts in IMAGE_DIRS:
        folder = root
        for part in parts:
            folder = child(folder, part) if folder is not None else None
        if folder is None:
            continue
        tried.append(str(folder))
        if any((folder / name).is_file() for name in names):
            return folder
    example = names[0] if names else "(no row)"
    raise DatasetLayoutError(
        f"affectnet: images named in {csv_path} (e.g. {example}) not found under {', '.join(tried)}; "
        f"expected {EXPECTED}"
    )


def rows_to_samples(rows, csv_path: Path, image_dir: Path, label_space: LabelSpace, split: str):
    samples, problems, dropped = [], [], Counter()
    listing = ListingCache()
    for line, row in rows:
        where = f"{csv_path} line {line}"
        if not row:
            problems.append(f"{where}: expected {len(COLUMNS)} fields; skipped")
            continue
        try:
            code = int(row["expression"])
            x, y, w, h = (float(row[k]) for k in ("face_x", "face_y", "face_width", "face_height"))
        except ValueError:
            problems.append(f"{where}: expression or face box is not a number; skipped")
            continue
        if 0 <= code <= 10 and code >= label_space.num_expressions:
            dropped[DROPPED_CODES.get(code) or CANONICAL_EXPRESSIONS[code]] += 1
            continue
        if code < 0 or code > 10 or w <= 0 or h <= 0:
            problems.append(f"{where}: expression {code} or face box {w}x{h} out of range; skipped")
            continue
        if not is_inside(image_dir, row["subDirectory_filePath"].strip()):
            raise DatasetLayoutError(f"{where}: image {row['subDirectory_filePath'].strip()!r} is outside the "
                                     f"dataset root {image_dir}; expected a path relative to it, without '..'")
        path = image_dir / row["subDirectory_filePath"].strip()
        if not listing.exists(path):
            problems.append(f"{path}: missing (named in {where}); skipped")
            continue
        pose, yaw, pose_problem = _pose(row["facial_landmarks"], label_space)
        if pose_problem:
            problems.append(f"{where}: {pose_problem}; pose left unknown")
        samples.append(
            Sample(
                image=str(path),
                expression=code,
                pose=pose,
                item_id=row["subDirectory_filePath"].strip(),
                yaw=yaw,
                box=(x, y, x + w, y + h),
                split=split,
                extra={"valence": _number(row["valence"]), "arousal": _number(row["arousal"])},
            )
        )
    if dropped:
        log.info("affectnet %s: dropped %s", csv_path.name, ", ".join(f"{n} {k}" for k, n in dropped.items()))
    return samples, problems


def _pose(landmarks_text: str, label_space: LabelSpace) -> tuple[int, float | None, str]:
    if not label_space.poses:
        return UNKNOWN_POSE, None, ""
    try:
        yaw = estimate_head_pose(parse_landmarks(landmarks_text)).yaw
    except ValueError as err:
        return UNKNOWN_POSE, None, f"landmarks unusable ({err})"
    return nearest_bin(yaw, label_space.poses), yaw, ""


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
