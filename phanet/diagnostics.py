"""Training diagnostics: is each part of PhaNet doing its job?

The ablation question "do attention and the pose-adaptive gate pay?" needs more than the final
accuracy. These functions measure, per epoch, what each part does:

- gradient norm per head (backbone, attention, scale classifiers, pose branch, gate, classifier),
  averaged over the epoch's steps: a head whose gradient is orders of magnitude below the others'
  is not learning at the same pace;
- accuracy of each scale's own classifier (the attention losses' heads): a scale whose classifier is
  at chance brings nothing to the fusion;
- attention-map entropy per scale, as a fraction of the uniform map's (1.0 = attention is global
  average pooling, lower = it concentrates);
- gate entropy (as a fraction of log S) and mean beta per pose: a gate that gives the same beta at
  every pose is not pose-adaptive.

Everything here is read-only on the model: no behaviour changes with diagnostics on.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

# Top-level children of a PhaNet, grouped into the heads we report.
HEAD_GROUPS = {
    "backbone": ("backbone",),
    "attention": ("attention",),
    "scale_classifiers": ("scale_classifiers",),
    "pose": ("pose_embed", "pose_classifier"),
    "gate": ("gate",),
    "classifier": ("classifier",),
}


def head_gradient_norms(model: nn.Module) -> dict[str, torch.Tensor]:
    """L2 norm of the current gradients of each head present in ``model`` (after ``backward``).

    Returns 0-d tensors on the gradients' device, so a caller that sums them over an epoch reads them
    back once, not once per step (a GPU sync per head and step would stall training).
    """
    model = getattr(model, "module", model)  # DDP
    norms = {}
    for head, children in HEAD_GROUPS.items():
        squares = [p.grad.detach().float().pow(2).sum()
                   for name in children if hasattr(model, name)
                   for p in getattr(model, name).parameters() if p.grad is not None]
        if squares:
            norms[head] = torch.stack(squares).sum().sqrt()
    return norms


def attention_entropy(maps: torch.Tensor) -> torch.Tensor:
    """Entropy of each attention map ``[B, 1, h, w]`` normalised to a distribution, over log(h*w) -> ``[B]``.

    1.0 means uniform attention (global average pooling); a single hot pixel gives 0.
    """
    flat = maps.float().flatten(1)
    cells = flat.shape[1]
    if cells < 2:
        return flat.new_ones(flat.shape[0])
    p = flat / flat.sum(dim=1, keepdim=True).clamp_min(1e-12)
    return -(p * p.clamp_min(1e-12).log()).sum(dim=1) / math.log(cells)


def gate_entropy(scale_weights: np.ndarray) -> np.ndarray:
    """Entropy of each row of ``beta [N, S]`` over log S (1.0 = uniform over scales, 0 = one scale)."""
    scales = scale_weights.shape[1]
    if scales < 2:
        return np.zeros(len(scale_weights))
    p = np.clip(scale_weights, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1) / math.log(scales)


def scale_report(arrays: dict[str, np.ndarray], pose_names: list[str]) -> dict:
    """Per-scale accuracy, attention entropy and gate statistics from :func:`phanet.engine.predict` arrays."""
    report: dict = {}
    if "scale_pred" in arrays:
        correct = arrays["scale_pred"] == arrays["expression"][:, None]
        report["scale_accuracy"] = correct.mean(0).tolist()
    if "attention_entropy" in arrays:
        report["attention_entropy"] = arrays["attention_entropy"].mean(0).tolist()
    if "scale_weights" in arrays and arrays["scale_weights"].shape[1] > 1:
        entropy = gate_entropy(arrays["scale_weights"])
        report["gate_entropy"] = float(entropy.mean())
        report["gate_entropy_per_pose"] = {
            name: float(entropy[arrays["pose"] == i].mean())
            for i, name in enumerate(pose_names) if (arrays["pose"] == i).any()
        }
    return report
