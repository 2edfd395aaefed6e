"""Multi-PIE on a fixture tree: data/session<SS>/multiview/<SUBJ>/<REC>/<CAM>/<SUBJ>_<SS>_<REC>_<CAMNODOT>_<ILL>.png."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from phanet.data import SEVEN_EXPRESSIONS, LabelSpace, load_dataset
from phanet.data.datasets.multipie import CAMERA_YAW
from phanet.data.protocols import map_label_space
from phanet.data.registry import DatasetLayoutError


def write_png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)


def picture(root: Path, subject: str, session: str, recording: str, camera: str, light: int) -> Path:
    path = (root / "data" / f"session{session}" / "multiview" / subject / recording / camera
            / f"{subject}_{session}_{recording}_{camera.replace('_', '')}_{light:02d}.png")
    write_png(path)
    return path


def make_multipie(root: Path, cameras=tuple(CAMERA_YAW) + ("08_1",), lights=(0, 7)) -> Path:
    recordings = {"01": ("01", "02"), "02": ("01", "02", "03"), "04": ("03",)}
    for subject in ("001", "002"):
        for session, recs in recordings.items():
            for recording in recs:
                for camera in cameras:
                    for light in lights:
                        picture(root, subject, session, recording, camera, light)
    return root


def test_expression_comes_from_session_and_recording(tmp_path):
    index = load_dataset("multipie", make_multipie(tmp_path, cameras=("05_1",), lights=(0,)))
    names = index.label_space.expressions
    label = {(s.extra["session"], s.extra["recording"]): names[s.expression] for s in index.samples}
    assert label == {
        ("01", "01"): "neutral", ("01", "02"): "happy",
        ("02", "01"): "neutral", ("02", "02"): "surprise", ("02", "03"): "squint",
        ("04", "03"): "scream",
    }
    assert names == ("neutral", "happy", "surprise", "disgust", "squint", "scream")


def test_thirteen_horizontal_cameras_become_yaw_bins_and_elevated_cameras_are_left_out(tmp_path):
    index = load_dataset("multipie", make_multipie(tmp_path, lights=(0,)))
    assert [p.yaw for p in index.label_space.poses] == list(range(-90, 91, 15))
    assert "08_1" not in {s.extra["camera"] for s in index.samples}
    yaw_of_camera = {s.extra["camera"]: index.label_space.poses[s.pose].yaw for s in index.samples}
    assert yaw_of_camera["11_0"] == -90 and yaw_of_camera["05_1"] == 0 and yaw_of_camera["24_0"] == 90
    assert yaw_of_camera["19_0"] == 45 and yaw_of_camera["08_0"] == -45
    assert {s.subject for s in index.samples} == {"001", "002"}
    assert len(index.samples) == 2 * 6 * 13


def test_seven_pose_subset_and_illumination_filter(tmp_path):
    index = load_dataset("multipie", make_multipie(tmp_path), poses="7", illuminations=[7])
    assert [p.yaw for p in index.label_space.poses] == [-45, -30, -15, 0, 15, 30, 45]
    assert {s.extra["illumination"] for s in index.samples} == {7}
    assert len(index.samples) == 2 * 6 * 7
    with pytest.raises(ValueError, match="poses"):
        load_dataset("multipie", tmp_path, poses="5")


def test_names_that_do_not_fit_their_folder_and_unknown_recordings_are_reported(tmp_path):
    root = make_multipie(tmp_path, cameras=("05_1",), lights=(0,))
    camera_dir = root / "data/session01/multiview/001/01/05_1"
    write_png(camera_dir / "002_01_01_051_03.png")  # another subject's name in 001/
    write_png(camera_dir / "001_01_01_051_3.png")  # malformed illumination
    write_png(root / "data/session01/multiview/001/03/05_1/001_01_03_051_00.png")  # session 1 has no r03
    index = load_dataset("multipie", root)
    problems = "\n".join(index.problems)
    assert "002_01_01_051_03.png: name does not fit its folder; expected 001_01_01_051_<ILL" in problems
    assert "001_01_01_051_3.png: name does not fit" in problems
    assert "session 01 has no recording 03" in problems
    assert len(index.samples) == 2 * 6


def test_smile_is_named_happy_so_kdef_and_multipie_share_four_classes(tmp_path):
    index = load_dataset("multipie", make_multipie(tmp_path, cameras=("05_1",), lights=(0,)))
    kdef_space = LabelSpace(SEVEN_EXPRESSIONS)
    mapping, dropped = map_label_space(kdef_space, index.label_space)
    shared = {index.label_space.expressions[t]: kdef_space.expressions[s] for t, s in mapping.items()}
    assert shared == {"neutral": "neutral", "happy": "happy", "surprise": "surprise", "disgust": "disgust"}
    assert dropped == ["squint", "scream"]


def test_a_root_without_sessions_fails_naming_the_expected_layout(tmp_path):
    (tmp_path / "data").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"no session01/-style folder under .*data/session<SS>/multiview"):
        load_dataset("multipie", tmp_path)
