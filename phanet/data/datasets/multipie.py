"""CMU Multi-PIE (Gross, Matthews, Cohn, Kanade & Baker, 2010), multiview part, as distributed.

Layout (the root may be the folder holding ``data/`` or ``data/`` itself)::

    data/session<SS>/multiview/<SUBJ>/<REC>/<CAM>/<SUBJ>_<SS>_<REC>_<CAMNODOT>_<ILL>.png
    e.g. data/session01/multiview/001/01/05_1/001_01_01_051_07.png

* **Expression** from (session, recording), the only place Multi-PIE records it:
  s01 r01 neutral, r02 smile; s02 r01 neutral, r02 surprise, r03 squint; s03 r01 neutral, r02 smile,
  r03 disgust; s04 r01 neutral, r02 neutral, r03 scream.
  Class names: neutral, happy, surprise, disgust, squint, scream. Multi-PIE's *smile* is named
  **happy** here: it is the posed happy expression, and sharing the canonical name lets
  cross-dataset evaluation (e.g. KDEF <-> Multi-PIE on neutral/happy/surprise/disgust) match it by
  name; squint and scream have no canonical counterpart and keep their names.
* **Pose**: the 13 cameras at head height, yaw -90..+90 degrees in 15 degree steps
  (11_0 12_0 09_0 08_0 13_0 14_0 05_1 05_0 04_1 19_0 20_0 01_0 24_0). The two elevated cameras
  (08_1, 19_1) are not part of the horizontal sweep and are left out. ``poses="7"`` keeps the
  -45..+45 subset (08_0 .. 19_0) used by many pose-invariant FER papers.
* **Illumination** 00-19 (flash number); ``illuminations`` keeps a subset (default all).
* **Subject**: the 3-digit subject id, shared across sessions.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from phanet.data.base import LabelSpace, Sample
from phanet.data.layout import child, is_junk, require_dir, sorted_entries, yaw_bins
from phanet.data.registry import DatasetIndex, DatasetLayoutError, register_dataset

EXPRESSION_OF_RECORDING = {
    ("01", "01"): "neutral", ("01", "02"): "happy",
    ("02", "01"): "neutral", ("02", "02"): "surprise", ("02", "03"): "squint",
    ("03", "01"): "neutral", ("03", "02"): "happy", ("03", "03"): "disgust",
    ("04", "01"): "neutral", ("04", "02"): "neutral", ("04", "03"): "scream",
}
EXPRESSIONS = ("neutral", "happy", "surprise", "disgust", "squint", "scream")

CAMERA_YAW = {
    "11_0": -90.0, "12_0": -75.0, "09_0": -60.0, "08_0": -45.0, "13_0": -30.0, "14_0": -15.0,
    "05_1": 0.0, "05_0": 15.0, "04_1": 30.0, "19_0": 45.0, "20_0": 60.0, "01_0": 75.0, "24_0": 90.0,
}
POSE_SETS = {"13": 90.0, "7": 45.0}  # pose set -> largest |yaw| kept

SESSION_DIR = re.compile(r"^session(\d\d)$")
FILE_NAME = re.compile(r"^(\d{3})_(\d\d)_(\d\d)_(\d\d)(\d)_(\d\d)\.png$", re.IGNORECASE)
EXPECTED = "data/session<SS>/multiview/<SUBJ>/<REC>/<CAM>/<SUBJ>_<SS>_<REC>_<CAMNODOT>_<ILL>.png"


@register_dataset("multipie")
def load_multipie(
    root: str | Path | None, poses: str | int = "13", illuminations: list[int] | tuple[int, ...] | None = None
) -> DatasetIndex:
    """Index Multi-PIE multiview; ``poses`` "13" (+-90) or "7" (+-45); ``illuminations`` e.g. [7]."""
    root = require_dir(root, "multipie", EXPECTED)
    cameras = cameras_for(poses)
    label_space = LabelSpace(EXPRESSIONS, yaw_bins(CAMERA_YAW[c] for c in cameras))
    kept_lights = _check_illuminations(illuminations)
    samples: list[Sample] = []
    problems: list[str] = []
    for session_dir in session_dirs(root):
        session = SESSION_DIR.match(session_dir.name).group(1)
        multiview = child(session_dir, "multiview")
        if multiview is None:
            problems.append(f"{session_dir}: no multiview/ folder; session skipped")
            continue
        for recording_dir in _recording_dirs(multiview, session, problems):
            for camera in cameras:
                camera_dir = recording_dir / camera
                if camera_dir.is_dir():
                    samples.extend(
                        _index_camera(camera_dir, session, camera, label_space, kept_lights, problems)
                    )
    if not samples:
        raise DatasetLayoutError(f"multipie: no image of the selected cameras under {root}; expected {EXPECTED}")
    return DatasetIndex(samples, label_space, problems, default_protocol="subject_kfold", name="multipie")


def cameras_for(poses: str | int) -> tuple[str, ...]:
    key = str(poses)
    if key not in POSE_SETS:
        raise ValueError(f"multipie: poses={poses!r}; choose '13' (yaw +-90) or '7' (yaw +-45)")
    return tuple(cam for cam, yaw in CAMERA_YAW.items() if abs(yaw) <= POSE_SETS[key])


def _check_illuminations(illuminations) -> frozenset[int] | None:
    if illuminations is None:
        return None
    kept = frozenset(int(i) for i in illuminations)
    if not kept or not kept <= set(range(20)):
        raise ValueError(f"multipie: illuminations must be numbers 0-19, got {sorted(kept)}")
    return kept


def session_dirs(root: Path) -> list[Path]:
    for base in (child(root, "data"), root):
        if base is None:
            continue
        found = [Path(e.path) for e in sorted_entries(base) if e.is_dir() and SESSION_DIR.match(e.name)]
        if found:
            return found
    raise DatasetLayoutError(f"multipie: no session01/-style folder under {root} or {root}/data; expected {EXPECTED}")


def _recording_dirs(multiview: Path, session: str, problems: list[str]):
    """Yield ``<SUBJ>/<REC>`` folders whose (session, recording) has a known expression."""
    for subject in sorted_entries(multiview):
        if not subject.is_dir():
            continue
        for recording in sorted_entries(Path(subject.path)):
            if not recording.is_dir():
                continue
            if (session, recording.name) not in EXPRESSION_OF_RECORDING:
                problems.append(f"{recording.path}: session {session} has no recording {recording.name}; skipped")
                continue
            yield Path(recording.path)


def _index_camera(camera_dir: Path, session, camera, label_space, kept_lights, problems) -> list[Sample]:
    subject, recording = camera_dir.parent.parent.name, camera_dir.parent.name
    yaw = CAMERA_YAW[camera]
    pose = next(i for i, p in enumerate(label_space.poses) if p.yaw == yaw)
    expression = label_space.expressions.index(EXPRESSION_OF_RECORDING[(session, recording)])
    samples = []
    for name in sorted(os.listdir(camera_dir)):
        if is_junk(name):
            continue
        match = FILE_NAME.match(name)
        expected_prefix = (subject, session, recording, camera.replace("_", ""))
        fits = match and (match[1], match[2], match[3], match[4] + match[5]) == expected_prefix
        if not fits or int(match[6]) > 19:
            problems.append(
                f"{camera_dir / name}: name does not fit its folder; expected "
                f"{'_'.join(expected_prefix)}_<ILL 00-19>.png"
            )
            continue
        light = int(match[6])
        if kept_lights is not None and light not in kept_lights:
            continue
        samples.append(
            Sample(
                image=str(camera_dir / name),
                expression=expression,
                pose=pose,
                subject=subject,
                item_id=f"session{session}/{subject}/{recording}/{camera}/{name}",
                yaw=yaw,
                pitch=0.0,
                extra={"session": session, "recording": recording, "camera": camera, "illumination": light},
            )
        )
    return samples
