"""`benchmarks/contention.py` runs end to end on a tiny setting, so the script cannot rot (no timing asserts)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import contention  # noqa: E402


@pytest.mark.slow
def test_contention_times_training_alone_and_next_to_a_busy_process():
    settings = {"CLI default": ({}, None), "one thread": ({}, 1)}
    result = contention.run("baseline_r18", size=32, batch=4, steps=1, rounds=1, settings=settings)
    default, single = result["summary"]["CLI default"], result["summary"]["one thread"]
    assert default["policy"] == "PASSIVE"  # set by importing phanet.cli in the child, not by the parent's env
    assert single["torch_threads"] == 1
    for row in (default, single):
        assert row["alone"] > 0 and row["loaded"] > 0 and row["ratio"] == row["loaded"] / row["alone"]
    assert len(result["runs"]["CLI default"]["loaded"]) == 1
    assert "of its alone throughput" in contention.report(result)
    # the busy helper processes are gone afterwards
    children = subprocess.run(["ps", "-o", "comm=", "--ppid", str(os.getpid())], capture_output=True, text=True)
    assert "yes" not in children.stdout.split()
