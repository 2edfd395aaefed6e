"""Datasets, label spaces, transforms and evaluation protocols."""

from phanet.data.base import (
    CANONICAL_EXPRESSIONS,
    SEVEN_EXPRESSIONS,
    UNKNOWN_POSE,
    FaceDataset,
    LabelSpace,
    PoseBin,
    Sample,
    collate_skipping_none,
    load_rgb,
)
from phanet.data.registry import DatasetIndex, DatasetLayoutError, list_datasets, load_dataset, register_dataset

__all__ = [
    "CANONICAL_EXPRESSIONS",
    "SEVEN_EXPRESSIONS",
    "UNKNOWN_POSE",
    "DatasetIndex",
    "DatasetLayoutError",
    "FaceDataset",
    "LabelSpace",
    "PoseBin",
    "Sample",
    "collate_skipping_none",
    "list_datasets",
    "load_dataset",
    "load_rgb",
    "register_dataset",
]
