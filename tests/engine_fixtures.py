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
