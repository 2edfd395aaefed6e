"""``phanet predict`` output: one JSON record per input (image or video frame), as JSON lines or CSV.

A record is ``{"file", "frame", "status", "error", "faces": [...]}`` with status ``ok``, ``no_face``
or ``error``; each face is :meth:`FacePrediction.to_json`. CSV flattens this to one row per face,
and one row with empty face columns for an input with no face or an error, so that every input
appears in the table. CSV columns are fixed by the checkpoint's label space and number of scales.
"""

from __future__ import annotations

import csv
import json
from typing import TextIO

from phanet.data.base import LabelSpace
from phanet.inference.predictor import ItemResult

FORMATS = ("jsonl", "csv")


def result_record(result: ItemResult) -> dict:
    """The JSON record of one input."""
    return {
        "file": result.item.file,
        "frame": result.item.frame,
        "status": result.status,
        "error": result.error,
        "faces": [face.to_json() for face in result.faces],
    }


def csv_columns(label_space: LabelSpace, num_scales: int) -> list[str]:
    """Header of the CSV output: file/face fields, then one column per class, pose bin and scale."""
    return (
        ["file", "frame", "status", "error", "face", "x0", "y0", "x1", "y1", "score", "expression",
         "expression_probability", "pose", "yaw", "pose_probability", "realigned", "retried"]
        + [f"p_{name}" for name in label_space.expressions]
        + [f"pose_p_{pose.name}" for pose in label_space.poses]
        + [f"scale_weight_{i}" for i in range(num_scales)]
    )


def csv_rows(record: dict) -> list[dict]:
    """The CSV rows of one record (at least one row, so inputs without faces are listed too)."""
    base = {key: record[key] for key in ("file", "frame", "status", "error")}
    if not record["faces"]:
        return [base]
    rows = []
    for index, face in enumerate(record["faces"]):
        row = dict(base, face=index, score=face["score"], expression=face["expression"], pose=face["pose"],
                   yaw=face["yaw"], realigned=face["realigned"], retried=face["retried"])
        row.update(zip(("x0", "y0", "x1", "y1"), face["box"]))
        row["expression_probability"] = face["probabilities"][face["expression"]]
        row.update({f"p_{name}": p for name, p in face["probabilities"].items()})
        if face["pose_probabilities"]:
            row["pose_probability"] = face["pose_probabilities"][face["pose"]]
            row.update({f"pose_p_{name}": p for name, p in face["pose_probabilities"].items()})
        for i, weight in enumerate(face["scale_weights"] or ()):
            row[f"scale_weight_{i}"] = weight
        rows.append(row)
    return rows


class RecordWriter:
    """Writes records to a text stream as JSON lines or CSV (header first)."""

    def __init__(self, stream: TextIO, fmt: str, label_space: LabelSpace, num_scales: int):
        if fmt not in FORMATS:
            raise ValueError(f"unknown output format {fmt!r}; choose from {', '.join(FORMATS)}")
        self.stream = stream
        self.format = fmt
        self._csv = None
        if fmt == "csv":
            self._csv = csv.DictWriter(stream, fieldnames=csv_columns(label_space, num_scales), restval="")
            self._csv.writeheader()

    def write(self, record: dict) -> None:
        if self._csv is not None:
            self._csv.writerows(csv_rows(record))
        else:
            self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()
