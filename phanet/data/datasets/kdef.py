"""KDEF, the Karolinska Directed Emotional Faces (Lundqvist, Flykt & Öhman, 1998), as distributed.

Layout (the ``KDEF`` folder of the KDEF & AKDEF download; the root may be that folder or its parent)::

    KDEF/<S><G><NN>/<S><G><NN><EXP><ANGLE>.JPG       e.g. KDEF/AF01/AF01AFHL.JPG, KDEF/BM35NES.JPG

* ``S`` session A/B, ``G`` gender F/M, ``NN`` identity 01-35: 70 people photographed twice.
  The **subject** is ``G+NN`` (e.g. ``F01``), the same across both sessions, so subject-independent
  folds never put one person's session A in training and session B in test.
* ``EXP``: AF afraid, AN angry, DI disgusted, HA happy, NE neutral, SA sad, SU surprised, mapped to the
  canonical names fear, anger, disgust, happy, neutral, sad, surprise (7 classes).
* ``ANGLE`` (note ``S`` is one letter): FL full left, HL half left, S straight, HR half right, FR full
  right profile, as yaw -90, -45, 0, +45, +90 degrees (5 pose bins ``yaw-90`` ... ``yaw+90``).

KDEF copies in circulation have a few misnamed, missing or damaged pictures. Each subject folder
should hold 35 pictures (7 expressions x 5 angles); every expected picture that is absent, and every
file whose name does not parse, is listed in ``problems`` and skipped. Damaged JPEGs are found when
decoded (``phanet data check`` opens every file; training skips them with a warning).

The images are full 562x762 portraits, used whole: no face box is stored.
"""

from __future__ import annotations

import re
from pathlib import Path

from phanet.data.base import SEVEN_EXPRESSIONS, LabelSpace, Sample
from phanet.data.layout import child, is_junk, require_dir, sorted_entries, yaw_bins
from phanet.data.registry import DatasetIndex, DatasetLayoutError, register_dataset

EXPRESSIONS = {
    "AF": "fear", "AN": "anger", "DI": "disgust", "HA": "happy", "NE": "neutral", "SA": "sad", "SU": "surprise",
}
ANGLES = {"FL": -90.0, "HL": -45.0, "S": 0.0, "HR": 45.0, "FR": 90.0}

FOLDER_NAME = re.compile(r"^([AB])([FM])(\d\d)$", re.IGNORECASE)
FILE_NAME = re.compile(r"^([AB])([FM])(\d\d)(AF|AN|DI|HA|NE|SA|SU)(FL|HL|S|HR|FR)\.jpe?g$", re.IGNORECASE)
EXPECTED = "KDEF/<S><G><NN>/<S><G><NN><EXP><ANGLE>.JPG (e.g. KDEF/AF01/AF01AFHL.JPG)"


@register_dataset("kdef")
def load_kdef(root: str | Path | None, angles: tuple[str, ...] | list[str] | None = None) -> DatasetIndex:
    """Index KDEF; ``angles`` keeps a subset of FL/HL/S/HR/FR (default all 5, which are the pose bins)."""
    root = require_dir(root, "kdef", EXPECTED)
    kept_angles = _check_angles(angles)
    label_space = LabelSpace(SEVEN_EXPRESSIONS, yaw_bins(ANGLES[a] for a in kept_angles))
    folders = subject_folders(root)
    samples: list[Sample] = []
    problems: list[str] = []
    for folder in folders:
        folder_samples, folder_problems = index_folder(folder, label_space, kept_angles)
        samples.extend(folder_samples)
        problems.extend(folder_problems)
    return DatasetIndex(samples, label_space, problems, default_protocol="subject_kfold", name="kdef")


def _check_angles(angles) -> tuple[str, ...]:
    if angles is None:
        return tuple(ANGLES)
    chosen = tuple(str(a).upper() for a in angles)
    unknown = [a for a in chosen if a not in ANGLES]
    if unknown or not chosen:
        raise ValueError(f"kdef: unknown angle(s) {unknown or chosen}; choose from {', '.join(ANGLES)}")
    return chosen


def subject_folders(root: Path) -> list[Path]:
    """The ``AF01``-style folders under ``root`` or under ``root/KDEF``; raises if there are none."""
    for base in (root, child(root, "KDEF")):
        if base is None:
            continue
        folders = [Path(e.path) for e in sorted_entries(base) if e.is_dir() and FOLDER_NAME.match(e.name)]
        if folders:
            return folders
    raise DatasetLayoutError(f"kdef: no subject folder such as AF01/ under {root}; expected {EXPECTED}")


def index_folder(folder: Path, label_space: LabelSpace, kept_angles: tuple[str, ...]):
    """Samples of one ``<S><G><NN>`` folder, and the problems found in it (bad names, missing pictures)."""
    session, gender, number = (g.upper() for g in FOLDER_NAME.match(folder.name).groups())
    samples, problems, seen = [], [], set()
    for entry in sorted_entries(folder):
        if entry.is_dir() or is_junk(entry.name):
            continue
        match = FILE_NAME.match(entry.name)
        if not match:
            problems.append(f"{entry.path}: name does not parse; expected {folder.name}<EXP><ANGLE>.JPG")
            continue
        s, g, n, exp, angle = (part.upper() for part in match.groups())
        if (s, g, n) != (session, gender, number):
            problems.append(f"{entry.path}: belongs to {s}{g}{n} but lies in {folder.name}/; skipped")
            continue
        if (exp, angle) in seen:
            problems.append(f"{entry.path}: duplicate of {exp}{angle} in {folder.name}/; skipped")
            continue
        seen.add((exp, angle))
        if angle not in kept_angles:
            continue
        samples.append(_sample(entry.path, folder, label_space, session, gender + number, exp, angle))
    for exp in EXPRESSIONS:
        for angle in ANGLES:
            if (exp, angle) not in seen:
                problems.append(f"{folder}/{folder.name}{exp}{angle}.JPG: missing")
    return samples, problems


def _sample(path, folder: Path, label_space: LabelSpace, session, subject, exp, angle) -> Sample:
    yaw = ANGLES[angle]
    pose = next(i for i, p in enumerate(label_space.poses) if p.yaw == yaw)
    return Sample(
        image=str(path),
        expression=label_space.expressions.index(EXPRESSIONS[exp]),
        pose=pose,
        subject=subject,
        item_id=f"{folder.name}/{Path(path).name}",
        yaw=yaw,
        pitch=0.0,
        extra={"session": session},
    )
