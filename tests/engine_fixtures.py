"""A tiny in-memory multi-view dataset for engine tests: learnable, labelled, subject-structured."""

from __future__ import annotations

import numpy as np

from phanet.config import Config
from phanet.data.base import LabelSpace, PoseBin, Sample
from phanet.data.registry import DatasetIndex

POSES = (PoseBin("yaw-45", -45.0, 0.0), PoseBin("yaw+0", 0.0, 0.0), PoseBin("yaw+45", 45.0, 0.0))
EXPRESSIONS = ("neutral", "happy", "sad")


def tiny_image(expression: int, pose: int, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """A noisy picture whose colour says the expression and whose bright column says the pose."""
    image = rng.integers(0, 60, (size, size, 3), dtype=np.uint8)
    image[..., expression] += 150
    column = (pose + 1) * size // (len(POSES) + 1)
    image[:, column - 2:column + 2] = 255
    return image


def tiny_index(subjects: int = 6, per_cell: int = 2, size: int = 32, seed: int = 0) -> DatasetIndex:
    rng = np.random.default_rng(seed)
    samples = []
    for subject in range(subjects):
        for expression in range(len(EXPRESSIONS)):
            for pose in range(len(POSES)):
                for k in range(per_cell):
                    samples.append(Sample(
                        image=tiny_image(expression, pose, rng, size), expression=expression, pose=pose,
                        subject=f"s{subject}", item_id=f"s{subject}_{expression}_{pose}_{k}",
                        yaw=POSES[pose].yaw, pitch=0.0,
                    ))
    return DatasetIndex(samples, LabelSpace(EXPRESSIONS, POSES), name="tiny")


def tiny_config(model: str = "phanet_r18", epochs: int = 2, **train) -> Config:
    config = Config()
    config.model.name = model
    config.model.pretrained = False
    config.model.input_size = 32
    config.data.dataset = "tiny"
    config.train.epochs = epochs
    config.train.batch_size = 8
    config.train.workers = 0
    config.train.lr = 1e-3
    config.train.warmup_epochs = 0.5
    config.train.eval_batch_size = 32
    for key, value in train.items():
        setattr(config.train, key, value)
    return config


def tiny_data(index: DatasetIndex | None = None, **kw):
    """The tiny index with fold 0 of a 3-fold subject split (a quarter of the training people validate)."""
    from phanet.data.protocols import make_split
    from phanet.engine import PreparedData

    index = index or tiny_index(**kw)
    return PreparedData(index, make_split(index, "subject_kfold", fold=0, k=3, seed=0, val_fraction=0.25))


def straight_and_resumed_runs(tmp_path, model: str, stop_step: int):
    """Train ``model`` twice on the tiny data: straight through, and stopped by SIGTERM at epoch 1,
    step ``stop_step``, then resumed. Returns the two run folders."""
    import signal

    import pytest

    from phanet.engine import TrainingInterrupted, fit

    data = tiny_data()
    config = tiny_config(model, epochs=2, patience=0)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    fit(config, straight, data=data, progress=False, write_report=False)

    def interrupt(epoch, step):
        if (epoch, step) == (0, stop_step):
            signal.raise_signal(signal.SIGTERM)

    with pytest.raises(TrainingInterrupted, match="resume"):
        fit(config, resumed, data=data, progress=False, on_step=interrupt, write_report=False)
    assert (resumed / "resume.pt").exists()
    fit(config, resumed, data=data, progress=False, resume=True, write_report=False)
    return straight, resumed
