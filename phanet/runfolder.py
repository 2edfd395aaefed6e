"""Run folders that cannot lie: one writer at a time, no silent mixing of two runs.

* :class:`RunLock` — an advisory lock file (``.phanet.lock``, holding the writer's PID and host) that
  makes a run folder owned by one process. A second writer gets an error naming the holder; a lock
  whose PID is dead (a crash, ``kill -9``) is taken over with a warning, so a crash never bricks a
  folder. The lock is released on normal exit, on exceptions and after SIGTERM (which the engine turns
  into an exception once the resume point is saved).
* :func:`prepare_run_folder` — an existing run is never silently overwritten: continuing needs
  ``resume``, replacing needs ``overwrite`` (which first removes the old run's files), and ``resume``
  on a folder that is not a resumable run is an error.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import time
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_FILE = ".phanet.lock"
RESUME_FILE = "resume.pt"
CONFIG_FILE = "config.yaml"

# Files a run writes directly in its folder (the report's PNGs are matched by suffix).
RUN_FILES = (
    CONFIG_FILE, "folds.json", RESUME_FILE, "history.json", "metrics.json",
    "best.safetensors", "best.json", "last.safetensors", "last.json", "cv_metrics.json",
    "init_from.json",  # what a fine-tuning run copied from its checkpoint (phanet.engine.fine_tune_start)
)
# Their presence means "a run trained here" (a config.yaml alone is left by an attempt that failed before
# training, e.g. on a data error: nothing to protect, and the next attempt may write over it).
RUN_MARKERS = (RESUME_FILE, "best.json", "last.json", "metrics.json", "history.json", "cv_metrics.json")


class RunFolderError(ValueError):
    """The run folder cannot be used as asked; the message names the folder and what to do."""


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except OSError as err:
        return err.errno == errno.EPERM  # exists, but belongs to someone else
    return True


def read_lock(folder: str | Path) -> dict | None:
    """The lock file's content (``pid``, ``host``, ``since``), or None when the folder is not locked."""
    path = Path(folder) / LOCK_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"pid": -1, "host": "", "since": None}  # unreadable/half-written: treated as stale
    return data if isinstance(data, dict) else {"pid": -1, "host": "", "since": None}


class RunLock:
    """Exclusive ownership of a run folder by this process (advisory lock file with the PID).

    Use as a context manager; ``enabled=False`` (non-zero ranks under torchrun) does nothing.
    """

    def __init__(self, folder: str | Path, enabled: bool = True):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.enabled = enabled
        self.held = False

    def acquire(self) -> RunLock:
        if not self.enabled or self.held:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = read_lock(self.folder)
                if holder is None:
                    continue  # released between our open and our read: try again
                pid, host = int(holder.get("pid", -1)), holder.get("host", "")
                same_host = host in ("", me["host"])
                if same_host and not _pid_alive(pid):
                    log.warning("%s: taking over the stale lock of process %d (no longer running)", self.folder, pid)
                    self.path.unlink(missing_ok=True)
                    continue
                where = f"process {pid}" + (f" on {host}" if host and host != me["host"] else "")
                raise RunFolderError(
                    f"{self.folder} is in use by {where} (lock file {self.path}, since {holder.get('since')}); "
                    "wait for it to finish or choose another --out (if that process is not phanet, delete the "
                    "lock file)") from None
            with os.fdopen(fd, "w") as handle:
                json.dump(me, handle)
            self.held = True
            return self
        raise RunFolderError(f"{self.folder}: could not take the lock file {self.path}")

    def release(self) -> None:
        if not self.held:
            return
        holder = read_lock(self.folder)
        if holder is not None and holder.get("pid") == os.getpid():
            self.path.unlink(missing_ok=True)
        self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def is_run_folder(folder: str | Path) -> bool:
    folder = Path(folder)
    return folder.is_dir() and any((folder / name).exists() for name in RUN_MARKERS)


def run_files(folder: str | Path) -> list[Path]:
    """The files of a run directly in ``folder`` (checkpoints, state, metrics, report pictures, temp files)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        name = path.name
        if name == LOCK_FILE:
            continue
        if (name in RUN_FILES or name.endswith(".png") or name.endswith(".tmp")) and not path.is_dir():
            found.append(path)
    return found


def clear_run(folder: str | Path) -> list[Path]:
    """Remove the files of the run in ``folder`` (see :func:`run_files`); returns what was removed."""
    removed = run_files(folder)
    for path in removed:
        path.unlink()
    return removed


def prepare_run_folder(folder: str | Path, resume: bool = False, overwrite: bool = False,
                       keep: tuple[Path, ...] = ()) -> None:
    """Check that ``folder`` may be written as asked (call with the lock held).

    * ``resume``: the folder must hold a resumable run (``resume.pt`` and ``config.yaml``).
    * otherwise an existing run is an error unless ``overwrite``, which removes its files first
      (``keep``: files to leave alone, e.g. a fold file the user pointed into the folder).
    """
    folder = Path(folder)
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite contradict each other: choose one")
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"--out {folder} is a file, not a folder")
    if resume:
        missing = [name for name in (RESUME_FILE, CONFIG_FILE) if not (folder / name).is_file()]
        if missing:
            what = "does not exist" if not folder.exists() else f"has no {' and no '.join(missing)}"
            if folder.is_dir() and (folder / "metrics.json").is_file() and RESUME_FILE in missing:
                what += " (the run completed: resume.pt is removed then, unless train.keep_resume)"
            raise RunFolderError(f"cannot resume: {folder} {what}, so it is not a run that can be resumed "
                                 "(check the --out path, or start a new run without --resume)")
        return
    if not is_run_folder(folder):
        return
    if not overwrite:
        raise RunFolderError(f"{folder} already holds a run; pass --resume to continue it or --overwrite to "
                             "replace it (its files are removed first), or choose another --out")
    keep_resolved = {Path(k).resolve() for k in keep}
    removed = [p for p in run_files(folder) if p.resolve() not in keep_resolved]
    for path in removed:
        path.unlink()
    log.warning("--overwrite: removed %d file(s) of the previous run in %s", len(removed), folder)
