"""Classification metrics for expression (and pose-conditional) evaluation, on integer label arrays."""

from __future__ import annotations

import numpy as np


def confusion_matrix(target: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """``[K, K]`` counts, rows = true class, columns = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(target), np.asarray(pred)), 1)
    return matrix


def per_class_accuracy(matrix: np.ndarray) -> np.ndarray:
    """Recall of each class; NaN for classes absent from the targets."""
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / np.maximum(support, 1), np.nan)


def macro_f1(matrix: np.ndarray) -> float:
    """Mean F1 over the classes present in targets or predictions."""
    tp = np.diag(matrix).astype(float)
    predicted = matrix.sum(axis=0)
    actual = matrix.sum(axis=1)
    present = (predicted + actual) > 0
    if not present.any():
        return float("nan")
    f1 = 2 * tp / np.maximum(predicted + actual, 1)
    return float(f1[present].mean())


def grouped_accuracy(target: np.ndarray, pred: np.ndarray, groups: np.ndarray, num_groups: int) -> np.ndarray:
    """Accuracy within each group (e.g. pose bin) ``0..num_groups-1``; NaN where a group is empty."""
    target, pred, groups = map(np.asarray, (target, pred, groups))
    out = np.full(num_groups, np.nan)
    for g in range(num_groups):
        mask = groups == g
        if mask.any():
            out[g] = float((target[mask] == pred[mask]).mean())
    return out


def classification_report(
    target: np.ndarray,
    pred: np.ndarray,
    class_names: list[str],
    pose: np.ndarray | None = None,
    pose_names: list[str] | None = None,
) -> dict:
    """Overall/per-class/per-pose accuracy, macro-F1 and confusion matrix as a JSON-able dict."""
    target, pred = np.asarray(target), np.asarray(pred)
    matrix = confusion_matrix(target, pred, len(class_names))
    report = {
        "num_samples": int(len(target)),
        "accuracy": float((target == pred).mean()) if len(target) else float("nan"),
        "macro_f1": macro_f1(matrix),
        "per_expression_accuracy": dict(zip(class_names, map(_nan_to_none, per_class_accuracy(matrix)))),
        "confusion_matrix": matrix.tolist(),
        "class_names": list(class_names),
    }
    if pose is not None and pose_names:
        pose = np.asarray(pose)
        by_pose = grouped_accuracy(target, pred, pose, len(pose_names))
        report["per_pose_accuracy"] = dict(zip(pose_names, map(_nan_to_none, by_pose)))
        report["per_pose_count"] = {name: int((pose == i).sum()) for i, name in enumerate(pose_names)}
    return report


def _nan_to_none(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
