"""KDEF on a fixture tree in the distributed layout: KDEF/<S><G><NN>/<S><G><NN><EXP><ANGLE>.JPG."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from phanet.data import FaceDataset, load_dataset
from phanet.data.datasets.kdef import ANGLES, EXPRESSIONS
from phanet.data.registry import DatasetLayoutError


def write_jpeg(path: Path, value: int = 128) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((12, 8, 3), value, np.uint8)).save(path, "JPEG")


def make_kdef(root: Path, folders=("AF01", "BF01", "AM02", "BM02")) -> Path:
    """A complete tiny KDEF: 35 pictures (7 expressions x 5 angles) per session folder."""
    for folder in folders:
        for exp in EXPRESSIONS:
            for angle in ANGLES:
                write_jpeg(root / "KDEF" / folder / f"{folder}{exp}{angle}.JPG")
    return root


def test_complete_tree_gives_seven_expressions_five_poses_and_subjects_across_sessions(tmp_path):
    index = load_dataset("kdef", make_kdef(tmp_path))
    assert len(index.samples) == 4 * 35
    assert index.problems == []
    assert index.label_space.expressions == ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")
    assert [p.yaw for p in index.label_space.poses] == [-90, -45, 0, 45, 90]
    assert {s.subject for s in index.samples} == {"F01", "M02"}
    assert {s.extra["session"] for s in index.samples if s.subject == "F01"} == {"A", "B"}
    assert index.default_protocol == "subject_kfold"


def test_file_name_decides_expression_and_pose(tmp_path):
    index = load_dataset("kdef", make_kdef(tmp_path, folders=("AF01",)))
    by_name = {Path(s.image).name: s for s in index.samples}
    space = index.label_space
    afraid_full_left = by_name["AF01AFFL.JPG"]
    assert space.expressions[afraid_full_left.expression] == "fear"
    assert space.poses[afraid_full_left.pose].name == "yaw-90" and afraid_full_left.yaw == -90
    straight_happy = by_name["AF01HAS.JPG"]
    assert space.expressions[straight_happy.expression] == "happy"
    assert space.poses[straight_happy.pose].yaw == 0
    assert space.expressions[by_name["AF01SUHR.JPG"].expression] == "surprise"
    assert by_name["AF01SUHR.JPG"].yaw == 45


def test_root_may_be_the_kdef_folder_itself(tmp_path):
    make_kdef(tmp_path, folders=("AF01",))
    assert len(load_dataset("kdef", tmp_path / "KDEF").samples) == 35


def test_missing_and_misnamed_pictures_are_listed_skipped_and_counted(tmp_path):
    root = make_kdef(tmp_path, folders=("AF01", "AM31"))
    (root / "KDEF/AF01/AF01NEHL.JPG").unlink()
    (root / "KDEF/AM31/AM31HAHR.JPG").rename(root / "KDEF/AM31/AM31H.JPG")
    write_jpeg(root / "KDEF/AF01/AF02SAS.JPG")  # another subject's picture in the wrong folder
    (root / "KDEF/AF01/Thumbs.db").write_bytes(b"junk")
    index = load_dataset("kdef", root)
    assert len(index.samples) == 70 - 2
    problems = "\n".join(index.problems)
    assert "AF01NEHL.JPG: missing" in problems
    assert "AM31H.JPG: name does not parse" in problems
    assert "AM31HAHR.JPG: missing" in problems
    assert "AF02SAS.JPG: belongs to AF02" in problems
    assert "Thumbs.db" not in problems
    assert len(index.problems) == 4


def test_angles_option_keeps_a_subset_of_poses(tmp_path):
    index = load_dataset("kdef", make_kdef(tmp_path, folders=("AF01",)), angles=["HL", "S", "HR"])
    assert [p.name for p in index.label_space.poses] == ["yaw-45", "yaw+0", "yaw+45"]
    assert len(index.samples) == 21
    with pytest.raises(ValueError, match="unknown angle"):
        load_dataset("kdef", tmp_path, angles=["XX"])


def test_a_folder_without_kdef_layout_fails_naming_the_root_and_expected_names(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"no subject folder such as AF01/ under .*KDEF/<S><G><NN>"):
        load_dataset("kdef", tmp_path)
    with pytest.raises(DatasetLayoutError, match="is not a folder"):
        load_dataset("kdef", tmp_path / "nowhere")


def test_a_corrupt_jpeg_is_indexed_but_skipped_with_a_warning_when_loaded(tmp_path):
    root = make_kdef(tmp_path, folders=("AF01",))
    (root / "KDEF/AF01/AF01ANS.JPG").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    index = load_dataset("kdef", root)
    dataset = FaceDataset(index.samples, index.label_space)
    broken = next(i for i, s in enumerate(index.samples) if s.image.endswith("AF01ANS.JPG"))
    with pytest.warns(UserWarning, match="AF01ANS.JPG"):
        assert dataset[broken] is None
    assert dataset[(broken + 1) % len(dataset)]["image"].shape == (3, 12, 8)
