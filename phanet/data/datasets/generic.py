"""The generic dataset layout: any images plus a ``labels.csv``, for data that has no module of its own.

Layout (what ``phanet synth`` writes, and what a user can write for their own data)::

    ROOT/labels.csv          image,expression,pose,subject,yaw,pitch,split
    ROOT/labelspace.json     optional: LabelSpace.to_json(), fixing the order of classes and pose bins
    ROOT/<image paths>       relative to ROOT, as named in the ``image`` column

* ``image`` (required): path relative to the root. ``expression`` (required): the class *name*.
* ``pose``: the pose-bin name, empty = unknown. ``subject``: any string (subject-independent folds need
  it). ``yaw``/``pitch``: degrees or empty. ``split``: train/val/test or empty.
* Other columns are kept in ``Sample.extra``.

Class and pose names are stored, never implied by an index, so a reordered CSV cannot silently change
the meaning of a label. Without ``labelspace.json``, expressions are ordered as
:data:`CANONICAL_EXPRESSIONS` first, then the others alphabetically; pose bins by (pitch, yaw, name),
each bin's nominal angle being the median of its rows' angles rounded to a whole degree (write
``labelspace.json`` to state exact nominal angles).

Unlike the distributed datasets, this layout is one someone wrote on purpose: a missing file, an
unknown label or a malformed row is an error (:class:`DatasetLayoutError` naming the file and row),
not a skipped sample.
"""

from __future__ import annotations

import csv
import difflib
import json
import statistics
from pathlib import Path

from phanet.data.base import CANONICAL_EXPRESSIONS, UNKNOWN_POSE, LabelSpace, PoseBin, Sample
from phanet.data.layout import ListingCache, is_inside, require_dir
from phanet.data.registry import DatasetIndex, DatasetLayoutError, register_dataset

LABELS_FILE = "labels.csv"
LABELSPACE_FILE = "labelspace.json"
COLUMNS = ("image", "expression", "pose", "subject", "yaw", "pitch", "split")
REQUIRED_COLUMNS = ("image", "expression")
SPLITS = ("train", "val", "test")
EXPECTED = f"{LABELS_FILE} with header {','.join(COLUMNS)} and the images it names"


@register_dataset("generic")
def load_generic(root: str | Path | None) -> DatasetIndex:
    """Index a root holding ``labels.csv`` (+ optional ``labelspace.json``); see the module docstring."""
    root = require_dir(root, "generic", EXPECTED)
    labels_path = root / LABELS_FILE
    if not labels_path.is_file():
        raise DatasetLayoutError(f"generic: {labels_path} not found; expected {EXPECTED}")
    rows = read_label_rows(labels_path)
    declared = read_label_space(root / LABELSPACE_FILE)
    label_space = declared or infer_label_space(rows, labels_path)
    samples = [row_to_sample(root, labels_path, line, row, label_space) for line, row in rows]
    check_images_exist(root, labels_path, rows)
    protocol = "official" if any(s.split for s in samples) else "subject_kfold"
    return DatasetIndex(samples, label_space, problems=[], default_protocol=protocol, name="generic")


register_dataset("csv")(load_generic)


def read_label_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    """``(line number, row)`` pairs of a labels CSV; raises on missing columns or ragged rows."""
    try:
        return _read_label_rows(path)
    except UnicodeDecodeError as err:
        raise DatasetLayoutError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); "
                                 "save the CSV as UTF-8") from None
    except csv.Error as err:
        raise DatasetLayoutError(f"{path}: not a readable CSV ({err})") from None


def _read_label_rows(path: Path) -> list[tuple[int, dict[str, str]]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, restkey="__extra__")
        header = [name.strip() for name in reader.fieldnames or ()]
        missing = [name for name in REQUIRED_COLUMNS if name not in header]
        if missing:
            raise DatasetLayoutError(
                f"{path}: missing column(s) {', '.join(missing)} in header {','.join(header) or '(empty)'}; "
                f"expected {','.join(COLUMNS)}"
            )
        reader.fieldnames = header
        rows = []
        for row in reader:
            if "__extra__" in row or any(value is None for value in row.values()):
                raise DatasetLayoutError(
                    f"{path} line {reader.line_num}: expected {len(header)} fields ({','.join(header)})"
                )
            rows.append((reader.line_num, {key: value.strip() for key, value in row.items()}))
    if not rows:
        raise DatasetLayoutError(f"{path}: no rows; expected one line per image after the header")
    return rows


def read_label_space(path: Path) -> LabelSpace | None:
    if not path.is_file():
        return None
    try:
        space = LabelSpace.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError) as err:
        raise DatasetLayoutError(
            f"{path}: not a label space ({err!r}); expected "
            '{"expressions": [...], "poses": [{"name": ..., "yaw": ..., "pitch": ...}]}'
        ) from err
    if not space.expressions:
        raise DatasetLayoutError(f"{path}: 'expressions' is empty; expected the class names in label order")
    return space


def expression_order(names: set[str]) -> tuple[str, ...]:
    canonical = [name for name in CANONICAL_EXPRESSIONS if name in names]
    return tuple(canonical + sorted(names - set(canonical)))


def check_expression_names(rows: list[tuple[int, dict[str, str]]], path: Path | str) -> None:
    """Without ``labelspace.json`` a new class name is accepted only when it is not a near-miss of a
    canonical name or of another name in the file (``happpy``, ``Happy``): that is a typo, an error."""
    counts: dict[str, int] = {}
    first_line: dict[str, int] = {}
    for line, row in rows:
        name = row["expression"]
        counts[name] = counts.get(name, 0) + 1
        first_line.setdefault(name, line)
    for name in sorted(counts, key=lambda n: first_line[n]):
        if not name or name in CANONICAL_EXPRESSIONS:
            continue
        others = [n for n in (*CANONICAL_EXPRESSIONS, *counts) if n and n != name
                  and (n in CANONICAL_EXPRESSIONS or counts[n] > counts[name])]
        lowered = [n for n in others if n.lower() == name.lower()]
        close = lowered or difflib.get_close_matches(name, others, n=1, cutoff=0.8)
        if close:
            raise DatasetLayoutError(
                f"{path} line {first_line[name]}: unknown expression {name!r} ({counts[name]} row(s)) looks like "
                f"a misspelling of {close[0]!r}; fix the label, or declare every class in {LABELSPACE_FILE}")


def infer_label_space(rows: list[tuple[int, dict[str, str]]], path: Path | str = LABELS_FILE) -> LabelSpace:
    check_expression_names(rows, path)
    expressions = {row["expression"] for _, row in rows if row["expression"]}
    angles: dict[str, tuple[list[float], list[float]]] = {}
    for _, row in rows:
        if row.get("pose"):
            yaws, pitches = angles.setdefault(row["pose"], ([], []))
            if row.get("yaw"):
                yaws.append(_float_or_none(row["yaw"]) or 0.0)
            if row.get("pitch"):
                pitches.append(_float_or_none(row["pitch"]) or 0.0)
    poses = [PoseBin(name, _nominal(yaws), _nominal(pitches)) for name, (yaws, pitches) in angles.items()]
    poses.sort(key=lambda p: (p.pitch or 0.0, p.yaw or 0.0, p.name))
    return LabelSpace(expression_order(expressions), tuple(poses))


def _nominal(values: list[float]) -> float | None:
    return float(round(statistics.median(values))) if values else None


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def row_to_sample(root: Path, path: Path, line: int, row: dict[str, str], space: LabelSpace) -> Sample:
    where = f"{path} line {line}"
    if not row["image"]:
        raise DatasetLayoutError(f"{where}: empty 'image'; expected a path relative to {root}")
    if not is_inside(root, row["image"]):
        raise DatasetLayoutError(f"{where}: image {row['image']!r} is outside the dataset root {root}; "
                                 "expected a path relative to it, without '..'")
    if row["expression"] not in space.expressions:
        raise DatasetLayoutError(
            f"{where}: expression {row['expression']!r} is not one of {', '.join(space.expressions)}"
        )
    pose_names = [p.name for p in space.poses]
    pose = row.get("pose", "")
    if pose and pose not in pose_names:
        raise DatasetLayoutError(
            f"{where}: pose {pose!r} is not one of {', '.join(pose_names) or '(no poses declared)'}"
        )
    split = row.get("split", "").lower()
    if split and split not in SPLITS:
        raise DatasetLayoutError(f"{where}: split {row['split']!r} is not one of {', '.join(SPLITS)} or empty")
    angles = {}
    for key in ("yaw", "pitch"):
        text = row.get(key, "")
        angles[key] = _float_or_none(text) if text else None
        if text and angles[key] is None:
            raise DatasetLayoutError(f"{where}: {key} {text!r} is not a number of degrees (or empty)")
    extra = {key: value for key, value in row.items() if key not in COLUMNS}
    return Sample(
        image=str(root / row["image"]),
        expression=space.expressions.index(row["expression"]),
        pose=pose_names.index(pose) if pose else UNKNOWN_POSE,
        subject=row.get("subject", ""),
        item_id=row["image"],
        yaw=angles["yaw"],
        pitch=angles["pitch"],
        split=split or None,
        extra=extra,
    )


def check_images_exist(root: Path, path: Path, rows: list[tuple[int, dict[str, str]]]) -> None:
    listing = ListingCache()
    for line, row in rows:
        if not listing.exists(root / row["image"]):
            raise DatasetLayoutError(f"{path} line {line}: image {root / row['image']} does not exist")
