"""The generic layout: images + labels.csv (image,expression,pose,subject,yaw,pitch,split) + labelspace.json."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from phanet.data import LabelSpace, PoseBin, load_dataset
from phanet.data.registry import DatasetLayoutError

HEADER = "image,expression,pose,subject,yaw,pitch,split\n"


def make_generic(root: Path, rows: list[str], header: str = HEADER, images=None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "labels.csv").write_text(header + "".join(line + "\n" for line in rows))
    for name in images if images is not None else [r.split(",")[0] for r in rows]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((6, 6, 3), np.uint8)).save(root / name)
    return root


ROWS = [
    "img/a.png,squint,left,s1,-30,0,train",
    "img/b.png,happy,front,s1,0,0,train",
    "img/c.png,neutral,right,s2,30.0,0,test",
    "img/d.png,happy,,s2,,,val",
]


def test_names_are_stored_and_ordered_canonically_without_labelspace_json(tmp_path):
    index = load_dataset("generic", make_generic(tmp_path, ROWS))
    assert index.label_space.expressions == ("neutral", "happy", "squint")
    assert [(p.name, p.yaw, p.pitch) for p in index.label_space.poses] == [
        ("left", -30.0, 0.0), ("front", 0.0, 0.0), ("right", 30.0, 0.0),
    ]
    a, b, c, d = index.samples
    assert (a.expression, a.pose, a.subject, a.yaw, a.split) == (2, 0, "s1", -30.0, "train")
    assert (d.pose, d.yaw, d.split) == (-1, None, "val")
    assert c.item_id == "img/c.png" and c.image == str(tmp_path / "img/c.png")
    assert index.default_protocol == "official"
    assert index.label_space.mirror_pose_index() == [2, 1, 0]


def test_labelspace_json_fixes_the_order_of_classes_and_poses(tmp_path):
    root = make_generic(tmp_path, ROWS)
    space = LabelSpace(("squint", "happy", "neutral", "sad"),
                       (PoseBin("right", 30.0, 0.0), PoseBin("front", 0.0, 0.0), PoseBin("left", -30.0, 0.0)))
    (root / "labelspace.json").write_text(json.dumps(space.to_json()))
    index = load_dataset("generic", root)
    assert index.label_space == space
    assert [s.expression for s in index.samples] == [0, 1, 2, 1]
    assert [s.pose for s in index.samples] == [2, 1, 0, -1]


def test_csv_alias_and_minimal_columns_give_subject_kfold_default(tmp_path):
    root = make_generic(tmp_path, ["a.png,happy", "b.png,sad"], header="image,expression\n")
    index = load_dataset("csv", root)
    assert index.label_space.expressions == ("happy", "sad") and index.label_space.poses == ()
    assert index.default_protocol == "subject_kfold"


def test_unknown_label_fails_naming_file_row_and_expected_names(tmp_path):
    root = make_generic(tmp_path, ROWS)
    (root / "labelspace.json").write_text(json.dumps({"expressions": ["neutral", "happy"], "poses": []}))
    expected = r"labels.csv line 2: expression 'squint' is not one of neutral, happy"
    with pytest.raises(DatasetLayoutError, match=expected):
        load_dataset("generic", root)


def test_missing_image_fails_naming_the_row(tmp_path):
    root = make_generic(tmp_path, ROWS, images=["img/a.png", "img/b.png", "img/d.png"])
    with pytest.raises(DatasetLayoutError, match=r"labels.csv line 4: image .*img/c.png does not exist"):
        load_dataset("generic", root)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("img/a.png,happy,,s1,0,0,train,extra", "line 2: expected 7 fields"),
        ("img/a.png,happy,,s1", "line 2: expected 7 fields"),
        ("img/a.png,happy,,s1,left,0,train", "line 2: yaw 'left' is not a number"),
        ("img/a.png,happy,,s1,0,0,holdout", "line 2: split 'holdout' is not one of train, val, test"),
        (",happy,,s1,0,0,train", "line 2: empty 'image'"),
    ],
)
def test_malformed_rows_fail_early_with_the_line(tmp_path, row, message):
    root = make_generic(tmp_path, [row], images=["img/a.png"])
    with pytest.raises(DatasetLayoutError, match=message):
        load_dataset("generic", root)


def test_missing_labels_csv_or_columns_fail_with_the_expected_header(tmp_path):
    expected = r"labels.csv not found; expected labels.csv with header image,expression"
    with pytest.raises(DatasetLayoutError, match=expected):
        load_dataset("generic", tmp_path)
    make_generic(tmp_path, ["a.png"], header="image\n")
    with pytest.raises(DatasetLayoutError, match=r"missing column\(s\) expression"):
        load_dataset("generic", tmp_path)
