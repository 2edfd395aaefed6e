"""Small helpers shared by the dataset modules: checking a root, finding folders, naming pose bins.

Every dataset module turns a folder *as distributed* into samples. They all need the same
few things: fail early with a message naming the path and the expected layout, find sub-folders whose
capitalisation varies between copies of a dataset, list directories once instead of ``stat``-ing every
file, and name pose bins after their nominal yaw so that cross-dataset reports read the same.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path

from phanet.data.base import PoseBin
from phanet.data.registry import DatasetLayoutError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})

# Files that operating systems drop into image folders; never worth a problem line.
JUNK_FILES = frozenset({"thumbs.db", ".ds_store", "desktop.ini"})


def require_dir(root: str | Path | None, dataset: str, expected: str) -> Path:
    """The root as a Path, or :class:`DatasetLayoutError` naming it and the layout ``expected``."""
    if root is None or str(root) == "":
        raise DatasetLayoutError(f"{dataset}: no root folder given; expected {expected}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DatasetLayoutError(f"{dataset}: root {path} is not a folder; expected {expected}")
    return path


def child(parent: Path, *names: str) -> Path | None:
    """The first existing child of ``parent`` among ``names``, matched case-insensitively."""
    try:
        entries = {entry.lower(): entry for entry in os.listdir(parent)}
    except OSError:
        return None
    for name in names:
        found = entries.get(name.lower())
        if found is not None:
            return parent / found
    return None


def is_junk(name: str) -> bool:
    return name.lower() in JUNK_FILES or name.startswith("._")


def is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_SUFFIXES


def sorted_entries(folder: Path) -> list[os.DirEntry]:
    """Directory entries sorted by name, so every index is in a reproducible order."""
    with os.scandir(folder) as it:
        return sorted(it, key=lambda entry: entry.name)


class ListingCache:
    """Answers "does this file exist?" by listing each directory once.

    Datasets such as AffectNet name ~300k files in a CSV; one ``listdir`` per folder is far cheaper than
    one ``stat`` per file, especially on network storage.
    """

    def __init__(self):
        self._listings: dict[str, frozenset[str]] = {}

    def exists(self, path: Path) -> bool:
        folder = str(path.parent)
        if folder not in self._listings:
            try:
                self._listings[folder] = frozenset(os.listdir(folder))
            except OSError:
                self._listings[folder] = frozenset()
        return path.name in self._listings[folder]


def pose_name(yaw: float, pitch: float | None = None) -> str:
    """``yaw+45``, ``yaw+22.5`` or ``yaw-30_pitch+15``: bins named by their nominal angles, alike across
    datasets (the synthetic faces' bins too); no rounding, so two bins never share a name."""
    name = f"yaw{yaw + 0.0:+g}"  # + 0.0: no "-0"
    if pitch is not None:
        name += f"_pitch{pitch + 0.0:+g}"
    return name


def yaw_bins(yaws: Iterable[float]) -> tuple[PoseBin, ...]:
    """Pose bins for a set of nominal yaws (degrees, pitch 0), ordered by yaw."""
    return tuple(PoseBin(pose_name(yaw), float(yaw), 0.0) for yaw in sorted(set(yaws)))


def nearest_bin(yaw: float, bins: tuple[PoseBin, ...]) -> int:
    """Index of the bin whose nominal yaw is closest to ``yaw`` (ties go to the smaller |yaw|)."""
    return min(range(len(bins)), key=lambda i: (abs(bins[i].yaw - yaw), abs(bins[i].yaw)))


def is_inside(root: Path, relative: str) -> bool:
    """True when ``root / relative`` stays under ``root`` (no absolute path, no escaping ``..``)."""
    if Path(relative).is_absolute() or relative.startswith(("/", "\\")):
        return False
    base = os.path.normpath(str(root))
    target = os.path.normpath(os.path.join(base, relative))
    return target == base or target.startswith(base.rstrip(os.sep) + os.sep)


@contextmanager
def text_file(path: str | Path):
    """Reading a text file (CSV, labels) inside this block: bytes that are not UTF-8 become one
    :class:`DatasetLayoutError` naming the file, instead of a bare codec error."""
    try:
        yield
    except UnicodeDecodeError as err:
        raise DatasetLayoutError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") \
            from None
