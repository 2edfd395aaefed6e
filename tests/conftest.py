"""Shared test settings: small, deterministic, CPU-only."""

from pathlib import Path

import pytest
import torch

torch.set_num_threads(2)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def london_sample() -> Path:
    """The 20 real photos of ../shared/data/london-sample (CC BY 4.0, see ../shared/data/README.md)."""
    root = SHARED_DATA / "london-sample"
    if not root.is_dir():
        pytest.skip(f"real test photos not found at {root} (../shared is not beside this checkout)")
    return root


@pytest.fixture(scope="module")
def one_torch_thread():
    """MTCNN is many small ops: on a small shared CPU, extra threads only contend (10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
