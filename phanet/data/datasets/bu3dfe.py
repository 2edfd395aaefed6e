"""BU-3DFE (Yin, Wei, Sun, Wang & Rosato, 2006): 100 subjects, 3D scans + frontal 2D textures.

Distributed layout (the root may be the folder of subject folders or its parent ``BU_3DFE/``)::

    <SUBJ>/<SUBJ>_<EXP><INT><RACE>_F2D.bmp        e.g. F0001/F0001_AN03WH_F2D.bmp, F0001/F0001_NE00WH_F2D.bmp

* ``SUBJ``: F0001-F0056, M0001-M0044 (the **subject**). ``EXP``: AN DI FE HA SA SU at intensity
  ``INT`` 01-04, plus NE00 (neutral) - 25 pictures per subject. ``RACE``: WH BL AE AM LA IN.
  Other files of the release (``_F3D.wrl``, ``_RAW_*``) are ignored.
* ``min_intensity``: keep intensities >= this (default 1 = all). Most multi-view FER papers keep the
  two strongest (``min_intensity=3``), where the expression is unambiguous.
* ``include_neutral``: keep NE00 (default True); the 6-class papers drop it.

The F2D pictures are frontal only. Multi-view FER papers **render** the 3D models at chosen yaw/pitch;
BU-3DFE ships no such images, so phanet defines the layout it reads renders from (``source="renders"``)::

    renders/<SUBJ>/<SUBJ>_<EXP><INT><RACE>_yaw<+Y>_pitch<+P>.png  e.g. renders/F0001/F0001_HA04WH_yaw-30_pitch+15.png

with yaw/pitch in whole degrees (sign optional for 0; .png, .jpg or .bmp). The pose bins are the grid
``render_yaws`` x ``render_pitches`` (default yaw -45..+45 and pitch -30..+30 in 15 degree steps, the
35 views of the multi-view BU-3DFE protocol); a render off that grid is reported and skipped. Yaw is
positive when the subject turns to their left (see :class:`phanet.data.base.PoseBin`).
"""

from __future__ import annotations

import re
from pathlib import Path

from phanet.data.base import SEVEN_EXPRESSIONS, LabelSpace, PoseBin, Sample
from phanet.data.layout import child, is_junk, pose_name, require_dir, sorted_entries, yaw_bins
from phanet.data.registry import DatasetIndex, DatasetLayoutError, register_dataset

EXPRESSIONS = {
    "AN": "anger", "DI": "disgust", "FE": "fear", "HA": "happy", "SA": "sad", "SU": "surprise", "NE": "neutral",
}
DEFAULT_RENDER_YAWS = (-45, -30, -15, 0, 15, 30, 45)
DEFAULT_RENDER_PITCHES = (-30, -15, 0, 15, 30)

SUBJECT_DIR = re.compile(r"^[FM]\d{4}$")
_STEM = r"([FM]\d{4})_(AN|DI|FE|HA|SA|SU|NE)(\d\d)([A-Z]{2})"
F2D_NAME = re.compile(rf"^{_STEM}_F2D\.bmp$", re.IGNORECASE)
RENDER_NAME = re.compile(rf"^{_STEM}_yaw([+-]?\d+)_pitch([+-]?\d+)\.(png|jpe?g|bmp)$", re.IGNORECASE)
EXPECTED = {
    "f2d": "<SUBJ>/<SUBJ>_<EXP><INT><RACE>_F2D.bmp (e.g. F0001/F0001_AN03WH_F2D.bmp)",
    "renders": "renders/<SUBJ>/<SUBJ>_<EXP><INT><RACE>_yaw<+Y>_pitch<+P>.png "
    "(e.g. renders/F0001/F0001_HA04WH_yaw-30_pitch+15.png)",
}


@register_dataset("bu3dfe")
def load_bu3dfe(
    root: str | Path | None,
    source: str = "f2d",
    min_intensity: int = 1,
    include_neutral: bool = True,
    render_yaws: tuple[int, ...] | list[int] = DEFAULT_RENDER_YAWS,
    render_pitches: tuple[int, ...] | list[int] = DEFAULT_RENDER_PITCHES,
) -> DatasetIndex:
    """Index BU-3DFE's frontal F2D pictures (``source="f2d"``) or multi-view renders (``"renders"``)."""
    if source not in EXPECTED:
        raise ValueError(f"bu3dfe: source={source!r}; choose 'f2d' (distributed) or 'renders'")
    if not 1 <= int(min_intensity) <= 4:
        raise ValueError(f"bu3dfe: min_intensity must be 1-4, got {min_intensity}")
    root = require_dir(root, "bu3dfe", EXPECTED[source])
    expressions = SEVEN_EXPRESSIONS if include_neutral else tuple(e for e in SEVEN_EXPRESSIONS if e != "neutral")
    if source == "f2d":
        poses = yaw_bins([0.0])
        base = root if _subject_dirs(root) else (child(root, "BU_3DFE", "BU-3DFE") or root)
    else:
        poses = render_grid(render_yaws, render_pitches)
        base = child(root, "renders") or root
    subject_dirs = _subject_dirs(base)
    if not subject_dirs:
        raise DatasetLayoutError(f"bu3dfe: no subject folder such as F0001/ under {base}; expected {EXPECTED[source]}")
    label_space = LabelSpace(expressions, poses)
    samples, problems = [], []
    for folder in subject_dirs:
        index_folder = _index_f2d if source == "f2d" else _index_renders
        folder_samples, folder_problems = index_folder(folder, label_space, int(min_intensity))
        samples.extend(folder_samples)
        problems.extend(folder_problems)
    return DatasetIndex(samples, label_space, problems, default_protocol="subject_kfold", name="bu3dfe")


def render_grid(yaws, pitches) -> tuple[PoseBin, ...]:
    grid = [(float(p), float(y)) for p in sorted(set(pitches)) for y in sorted(set(yaws))]
    return tuple(PoseBin(pose_name(yaw, pitch), yaw, pitch) for pitch, yaw in grid)


def _subject_dirs(base: Path) -> list[Path]:
    return [Path(e.path) for e in sorted_entries(base) if e.is_dir() and SUBJECT_DIR.match(e.name)]


def _parse(path: Path, pattern: re.Pattern, folder: Path, expected: str, problems: list[str]):
    """The name's groups when it fits ``pattern`` and its folder, else None (with a problem line)."""
    match = pattern.match(path.name)
    if not match:
        problems.append(f"{path}: name does not parse; expected {expected}")
        return None
    subject, exp, intensity = match[1].upper(), match[2].upper(), int(match[3])
    if subject != folder.name.upper():
        problems.append(f"{path}: belongs to {subject} but lies in {folder.name}/; skipped")
        return None
    if (exp == "NE") != (intensity == 0) or intensity > 4:
        problems.append(f"{path}: intensity {match[3]} impossible for {exp} (NE is 00, others 01-04); skipped")
        return None
    return match


def _keep(exp: str, intensity: int, label_space: LabelSpace, min_intensity: int) -> bool:
    if exp == "NE":
        return "neutral" in label_space.expressions
    return intensity >= min_intensity


def _index_f2d(folder: Path, label_space: LabelSpace, min_intensity: int):
    samples, problems, seen = [], [], set()
    for entry in sorted_entries(folder):
        name = entry.name
        if entry.is_dir() or is_junk(name) or not name.lower().endswith("_f2d.bmp"):
            continue  # the release's 3D meshes and raw textures share the folder
        match = _parse(Path(entry.path), F2D_NAME, folder, EXPECTED["f2d"], problems)
        if match is None:
            continue
        exp, intensity = match[2].upper(), int(match[3])
        seen.add((exp, intensity))
        if _keep(exp, intensity, label_space, min_intensity):
            samples.append(_sample(entry.path, folder, label_space, exp, intensity, match[4], 0))
    expected = [("NE", 0)] + [(e, i) for e in EXPRESSIONS if e != "NE" for i in range(1, 5)]
    for exp, intensity in expected:
        if (exp, intensity) not in seen:
            problems.append(f"{folder}/{folder.name}_{exp}{intensity:02d}??_F2D.bmp: missing")
    return samples, problems


def _index_renders(folder: Path, label_space: LabelSpace, min_intensity: int):
    samples, problems = [], []
    pose_of = {(p.yaw, p.pitch): i for i, p in enumerate(label_space.poses)}
    for entry in sorted_entries(folder):
        if entry.is_dir() or is_junk(entry.name):
            continue
        match = _parse(Path(entry.path), RENDER_NAME, folder, EXPECTED["renders"], problems)
        if match is None:
            continue
        yaw, pitch = float(match[5]), float(match[6])
        if (yaw, pitch) not in pose_of:
            problems.append(f"{entry.path}: view yaw {yaw:+.0f} pitch {pitch:+.0f} is off the render grid; skipped")
            continue
        exp, intensity = match[2].upper(), int(match[3])
        if _keep(exp, intensity, label_space, min_intensity):
            samples.append(
                _sample(entry.path, folder, label_space, exp, intensity, match[4], pose_of[(yaw, pitch)])
            )
    return samples, problems


def _sample(path, folder: Path, label_space: LabelSpace, exp, intensity, race, pose) -> Sample:
    bin_ = label_space.poses[pose]
    return Sample(
        image=str(path),
        expression=label_space.expressions.index(EXPRESSIONS[exp]),
        pose=pose,
        subject=folder.name.upper(),
        item_id=f"{folder.name}/{Path(path).name}",
        yaw=bin_.yaw,
        pitch=bin_.pitch,
        extra={"intensity": intensity, "race": race.upper()},
    )
