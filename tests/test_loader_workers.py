"""DataLoader workers are capped at the cores the process may use."""

import os

import pytest

from phanet import distributed
from phanet.distributed import available_cores, loader_workers


def test_loader_workers_never_exceed_the_cores_this_process_may_use(monkeypatch):
    monkeypatch.setattr(distributed, "available_cores", lambda: 2)
    assert [loader_workers(n) for n in (0, 1, 2, 4, 16)] == [0, 1, 2, 2, 2]
    monkeypatch.setattr(distributed, "available_cores", lambda: 32)
    assert loader_workers(8) == 8  # a big machine keeps what was asked for


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="affinity masks are Linux-only")
def test_available_cores_follows_the_affinity_mask():
    assert available_cores() == len(os.sched_getaffinity(0)) >= 1
