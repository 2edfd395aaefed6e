"""The demo's models trained side by side, one spawned process each (``phanet demo --jobs N``).

Why processes: on a CPU, EfficientNet-Lite0 at the demo's sizes trains almost as fast on one thread as on
two, so two models side by side at one thread each take about half the wall time of one after the other.

The parent keeps everything the user sees and the demo's state: each worker trains one model with
:func:`phanet.demo.fit_demo_model` and sends its steps, its log records and its outcome over one queue;
the parent draws the overall progress line, prints the records and records finished models in
``demo_state.json``. A stop (Ctrl-C, or SIGTERM to the parent) is passed to every worker as SIGTERM, so each
one saves its resume point like a stopped ``phanet train``; the parent then raises one
:class:`phanet.engine.TrainingInterrupted` that names where every model stopped.
"""

from __future__ import annotations

import logging
import logging.handlers
import queue as queue_module
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager

log = logging.getLogger(__name__)

# How long a stopped worker may take to finish its step and write its resume point.
STOP_GRACE_SECONDS = 120.0
# How long the parent waits for the last message of a worker that has exited with an error code.
EXIT_GRACE_SECONDS = 5.0


class _ToParent:
    """A worker's stand-in for the parent's :class:`phanet.demo.DemoProgress`: forwards steps."""

    def __init__(self, queue, k: int):
        self.queue, self.k = queue, k

    def start(self, k: int) -> None:
        self.queue.put(("start", k))

    def on_step(self, epoch: int, step: int) -> None:
        self.queue.put(("step", self.k, epoch, step))


def _worker(queue, demo, k: int, model: str, index, split, threads: int, log_level: int) -> None:
    """Train model ``k`` in this (spawned) process and report the outcome: ``done`` with the test metrics,
    ``stopped`` with where training stopped, or ``error`` with the traceback."""
    import torch

    from phanet.demo import fit_demo_model
    from phanet.engine import TrainingInterrupted

    torch.set_num_threads(threads)
    root = logging.getLogger()
    handler = logging.handlers.QueueHandler(queue)
    handler.setFormatter(logging.Formatter(f"{model}: %(message)s"))  # two models' epoch lines interleave
    root.handlers[:] = [handler]
    root.setLevel(log_level)
    try:
        metrics = fit_demo_model(demo, k, model, index, split, _ToParent(queue, k))
        queue.put(("done", k, metrics))
    except TrainingInterrupted as stop:
        queue.put(("stopped", k, stop.where))
    except KeyboardInterrupt:  # a second Ctrl-C while stopping: no resume point for this step
        queue.put(("stopped", k, "interrupted"))
    except BaseException:  # noqa: BLE001 - every failure goes to the parent, which raises it
        queue.put(("error", k, traceback.format_exc()))
        raise SystemExit(1) from None


@contextmanager
def _sigint_ignored():
    """Workers start with SIGINT ignored (inherited through exec), so a Ctrl-C while one is still importing
    torch prints no traceback there: until ``fit`` installs its stop handler, the parent's SIGTERM stops it."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to change
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def train_side_by_side(demo, todo: list[tuple[int, str]], index, split, overall,
                       record: Callable[[int, str, dict], None]) -> None:
    """Train ``todo`` ((k, model) pairs) in at most ``demo.jobs`` spawned processes at a time, each on
    ``torch.get_num_threads() // demo.jobs`` threads; ``record(k, model, metrics)`` as each one finishes.

    Raises :class:`phanet.engine.TrainingInterrupted` after a stop (once every worker has saved), and
    RuntimeError with the worker's traceback when one fails.
    """
    import dataclasses
    import multiprocessing

    import torch

    from phanet.demo import resume_hint
    from phanet.engine import TrainingInterrupted

    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    jobs = min(demo.jobs, len(todo))
    threads = max(1, torch.get_num_threads() // jobs)
    # workers draw no bars of their own (they would fight over the terminal) and call no callback
    worker_demo = dataclasses.replace(demo, progress=False, on_step=None)
    log_level = logging.getLogger().getEffectiveLevel()
    pending = deque(todo)
    running: dict[int, tuple[str, multiprocessing.Process]] = {}
    stops: list[str] = []
    log.info("training %d models side by side, %d thread%s each", jobs, threads, "" if threads == 1 else "s")
    try:
        while pending or running:
            while pending and not stops and len(running) < jobs:
                k, model = pending.popleft()
                process = context.Process(target=_worker, name=f"phanet-demo-{model}", daemon=True,
                                          args=(messages, worker_demo, k, model, index, split, threads, log_level))
                with _sigint_ignored():
                    process.start()
                running[k] = (model, process)
            if not running:
                break
            _handle(_next_message(messages, running), running, overall, record, stops)
    except KeyboardInterrupt:
        _stop_workers(messages, running, overall, record, stops)
        raise TrainingInterrupted(resume_hint(demo, stops or ["interrupted"])) from None
    except BaseException:
        for _model, process in running.values():
            process.kill()
        raise
    if stops:
        raise TrainingInterrupted(resume_hint(demo, stops))


def _next_message(messages, running: dict) -> tuple:
    """The next message from a worker; a worker that died without a last word (killed, out of memory) is
    reported as an error message for it."""
    dead_since: dict[int, float] = {}
    while True:
        try:
            return messages.get(timeout=0.5)
        except queue_module.Empty:
            pass
        for k, (model, process) in running.items():
            if process.is_alive() or process.exitcode == 0:  # exit code 0: its last message is on the way
                continue
            first = dead_since.setdefault(k, time.monotonic())
            if time.monotonic() - first > EXIT_GRACE_SECONDS:
                return ("error", k, f"the training process of {model} exited with code {process.exitcode} "
                                    "without a result")


def _handle(message: tuple, running: dict, overall, record, stops: list[str]) -> None:
    """Apply one worker message to the parent's progress, log and state."""
    if isinstance(message, logging.LogRecord):
        logging.getLogger(message.name).handle(message)
        return
    kind = message[0]
    if kind == "start":
        overall.start(message[1])
    elif kind == "step":
        _, k, epoch, step = message
        overall.on_step(epoch, step, k=k)
    elif kind == "done":
        _, k, metrics = message
        model, process = running.pop(k)
        process.join()
        record(k, model, metrics)
    elif kind == "stopped":
        _, k, where = message
        model, process = running.pop(k)
        process.join()
        stops.append(f"{model}: {where}")
    elif kind == "error":
        _, k, text = message
        model, _process = running[k]
        raise RuntimeError(f"training {model} failed:\n{text}")


def _stop_workers(messages, running: dict, overall, record, stops: list[str]) -> None:
    """SIGTERM to every worker, then collect their outcomes: each finishes its step and saves a resume point
    (a worker that finishes its model meanwhile is recorded as finished)."""
    for _model, process in running.values():
        if process.is_alive():
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while running and time.monotonic() < deadline:
        try:
            message = messages.get(timeout=0.5)
        except queue_module.Empty:
            for k, (model, process) in list(running.items()):
                if not process.is_alive() and process.exitcode != 0:  # stopped before training began
                    running.pop(k)
                    stops.append(f"{model}: stopped before training began")
            continue
        try:
            _handle(message, running, overall, record, stops)
        except RuntimeError as error:  # a worker that failed while stopping: say so, keep collecting
            log.warning("%s", error)
            running.pop(message[1], None)
    for model, process in running.values():  # past the grace time: no resume point from these
        process.kill()
        stops.append(f"{model}: killed after {STOP_GRACE_SECONDS:.0f} s without saving")
