"""BU-3DFE on fixture trees: <SUBJ>/<SUBJ>_<EXP><INT><RACE>_F2D.bmp, and the documented renders layout."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from phanet.data import load_dataset
from phanet.data.registry import DatasetLayoutError

EXPS = ("AN", "DI", "FE", "HA", "SA", "SU")


def write_bmp(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path, "BMP")


def make_bu3dfe(root: Path, subjects=(("F0001", "WH"), ("M0001", "AE"))) -> Path:
    for subject, race in subjects:
        folder = root / "BU_3DFE" / subject
        write_bmp(folder / f"{subject}_NE00{race}_F2D.bmp")
        (folder / f"{subject}_NE00{race}_F3D.wrl").write_text("#VRML V2.0 utf8\n")
        for exp in EXPS:
            for intensity in range(1, 5):
                write_bmp(folder / f"{subject}_{exp}0{intensity}{race}_F2D.bmp")
    return root


def test_frontal_pictures_give_seven_classes_intensity_race_and_subject(tmp_path):
    index = load_dataset("bu3dfe", make_bu3dfe(tmp_path))
    assert len(index.samples) == 2 * 25 and index.problems == []
    assert index.label_space.expressions == ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")
    assert [p.name for p in index.label_space.poses] == ["yaw+0"]
    sample = next(s for s in index.samples if s.image.endswith("M0001_FE03AE_F2D.bmp"))
    assert index.label_space.expressions[sample.expression] == "fear"
    assert sample.extra == {"intensity": 3, "race": "AE"} and sample.subject == "M0001"


def test_min_intensity_keeps_the_strongest_and_neutral_can_be_dropped(tmp_path):
    root = make_bu3dfe(tmp_path)
    index = load_dataset("bu3dfe", root, min_intensity=3, include_neutral=False)
    assert len(index.samples) == 2 * 6 * 2
    assert {s.extra["intensity"] for s in index.samples} == {3, 4}
    assert "neutral" not in index.label_space.expressions
    with pytest.raises(ValueError, match="min_intensity"):
        load_dataset("bu3dfe", root, min_intensity=5)


def test_missing_and_malformed_files_are_reported(tmp_path):
    root = make_bu3dfe(tmp_path, subjects=(("F0001", "WH"),))
    folder = root / "BU_3DFE/F0001"
    (folder / "F0001_SA02WH_F2D.bmp").unlink()
    write_bmp(folder / "F0001_SA2WH_F2D.bmp")
    write_bmp(folder / "F0001_NE03WH_F2D.bmp")
    index = load_dataset("bu3dfe", root)
    problems = "\n".join(index.problems)
    assert "F0001_SA02??_F2D.bmp: missing" in problems
    assert "F0001_SA2WH_F2D.bmp: name does not parse" in problems
    assert "F0001_NE03WH_F2D.bmp: intensity 03 impossible for NE" in problems
    assert len(index.samples) == 24


def test_renders_carry_yaw_and_pitch_from_their_names_on_the_declared_grid(tmp_path):
    folder = tmp_path / "renders" / "F0002"
    for yaw in (-45, 0, 30):
        for pitch in (-15, 0):
            write_bmp(folder / f"F0002_HA04BL_yaw{yaw:+d}_pitch{pitch:+d}.png")
    write_bmp(folder / "F0002_HA04BL_yaw+50_pitch+0.png")  # off the 15-degree grid
    index = load_dataset("bu3dfe", tmp_path, source="renders")
    assert index.label_space.num_poses == 35
    assert len(index.samples) == 6
    views = {(s.yaw, s.pitch) for s in index.samples}
    assert views == {(y, p) for y in (-45.0, 0.0, 30.0) for p in (-15.0, 0.0)}
    pose = index.label_space.poses[index.samples[0].pose]
    assert (pose.yaw, pose.pitch) == (index.samples[0].yaw, index.samples[0].pitch)
    assert pose.name.startswith("yaw") and "_pitch" in pose.name
    assert any("yaw +50 pitch +0 is off the render grid" in p for p in index.problems)


def test_a_folder_without_subject_folders_fails_naming_the_layout(tmp_path):
    with pytest.raises(DatasetLayoutError, match=r"no subject folder such as F0001/.*_F2D\.bmp"):
        load_dataset("bu3dfe", tmp_path)
    with pytest.raises(DatasetLayoutError, match=r"renders/<SUBJ>"):
        load_dataset("bu3dfe", tmp_path, source="renders")
