"""Resume points and graceful stops: training state saved on Ctrl-C/SIGTERM, restored exactly.

The resume file holds only tensors and plain values, written atomically, and is loaded with
``weights_only=True``: even our own file is never unpickled as arbitrary objects.
"""

from __future__ import annotations

import logging
import random
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)

RESUME_FILE = "resume.pt"


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return getattr(model, "module", model)


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1]),
             "python_version": random.getstate()[0], "python_gauss": random.getstate()[2],
             "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
             "numpy_pos": int(np.random.get_state()[2])}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), state["python_gauss"]))
    np.random.set_state(("MT19937", state["numpy"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_resume_point(path: Path, model, weighting, optimizer, scheduler, scaler, progress: dict) -> None:
    """Our own training state (tensors and plain values only), written atomically."""
    state = {
        "model": unwrap(model).state_dict(),
        "weighting": weighting.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": rng_state(),
        "progress": progress,
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_resume_point(path: Path) -> dict:
    # weights_only=True: even our own resume file is never unpickled as arbitrary objects.
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle.UnpicklingError (refused object), RuntimeError (truncated zip), EOFError
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(f"{path}: not a usable phanet resume point ({type(err).__name__}: {reason[:200]}); "
                         "it is never unpickled as arbitrary objects") from None
    if not isinstance(state, dict) or not {"model", "optimizer", "progress"} <= set(state):
        raise ValueError(f"{path}: not a phanet resume point (expected model, optimizer and progress entries)")
    return state


@contextmanager
def stop_on_signals() -> Iterator[Callable[[], bool]]:
    """While active, SIGINT/SIGTERM request a graceful stop (checked after each step) instead of killing.

    A second Ctrl-C while a stop is pending interrupts immediately.
    """
    requested = {"stop": False}
    previous = {}

    def handler(signum, frame):
        if requested["stop"] and signum == signal.SIGINT:
            raise KeyboardInterrupt
        requested["stop"] = True
        log.warning("received %s: finishing the current step and saving a resume point",
                    signal.Signals(signum).name)

    in_main_thread = True
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: signals cannot be handled here
        in_main_thread = False
    try:
        yield lambda: requested["stop"]
    finally:
        if in_main_thread:
            for sig, old in previous.items():
                signal.signal(sig, old)
