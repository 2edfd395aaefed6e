"""Losses of PhaNet: expression (FER), per-scale attention, and pose, balanced by learned weights.

The task weighting follows Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh
Losses", CVPR 2018: ``total = sum_t exp(-s_t) * L_t + s_t`` with a learned log-variance ``s_t`` per
task. That is our reading of PhaNet's "dynamically learned loss weights"
(arXiv:1905.10059); :class:`FixedTaskWeights` is the ablation.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from phanet.data.base import UNKNOWN_POSE


def expression_loss(logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy of ``logits [B, E]`` against ``target``: class indices ``[B]`` or probabilities ``[B, E]``."""
    return F.cross_entropy(logits, target, label_smoothing=label_smoothing)


def attention_losses(scale_logits: torch.Tensor, target: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """One cross-entropy per scale: ``scale_logits [B, S, E]``, ``target [B]`` (or ``[B, E]``) -> ``[S]``."""
    batch, scales, classes = scale_logits.shape
    per_sample = F.cross_entropy(
        scale_logits.reshape(batch * scales, classes),
        target.repeat_interleave(scales, dim=0),
        reduction="none",
        label_smoothing=label_smoothing,
    )
    return per_sample.view(batch, scales).mean(dim=0)


def pose_loss(pose_logits: torch.Tensor, pose_target: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """Cross-entropy over samples whose pose is known (target != -1).

    Returns ``(loss, has_labels)``. With no known pose in the batch the loss is an exact zero that
    stays attached to the graph (no NaN from averaging over nothing), and ``has_labels`` is False so
    that the task weighting can leave the task out.
    """
    known = pose_target != UNKNOWN_POSE
    if not bool(known.any()):
        return pose_logits.sum() * 0.0, False
    return F.cross_entropy(pose_logits[known], pose_target[known]), True


def gate_balance_penalty(scale_weights: torch.Tensor) -> torch.Tensor:
    """``1 - H(mean_b beta) / log S`` of PhaNet's scale weights ``[B, S]``: 0 when the batch uses every
    scale equally on average, 1 when every sample puts all its weight on the same scale.

    It penalises only the batch's average use of the scales (the load balancing of mixture-of-experts
    gates), so each sample may still pick one scale sharply: what it rules out is the collapse onto one
    scale for every pose, not a pose-dependent choice.
    """
    usage = scale_weights.float().mean(dim=0).clamp_min(1e-8)
    return 1.0 - (-(usage * usage.log()).sum()) / math.log(scale_weights.shape[-1])


class LearnedTaskWeights(nn.Module):
    """Uncertainty weighting: ``sum_t exp(-s_t) * L_t + s_t`` with learned ``s_t`` (init 0 = weight 1)."""

    def __init__(self, task_names: list[str]):
        super().__init__()
        self.task_names = list(task_names)
        self.log_vars = nn.Parameter(torch.zeros(len(self.task_names)))

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        total = self.log_vars.new_zeros(())
        for i, name in enumerate(self.task_names):
            if name in losses:
                total = total + torch.exp(-self.log_vars[i]) * losses[name] + self.log_vars[i]
        return total

    def weights(self) -> dict[str, float]:
        """The current effective weights ``exp(-s_t)`` by task name."""
        return {n: float(torch.exp(-s)) for n, s in zip(self.task_names, self.log_vars.detach())}


class FixedTaskWeights(nn.Module):
    """Constant task weights (ablation of the learned weighting); unnamed tasks weigh 1."""

    def __init__(self, task_names: list[str], weights: dict[str, float] | None = None):
        super().__init__()
        self.task_names = list(task_names)
        self._weights = {n: float((weights or {}).get(n, 1.0)) for n in self.task_names}

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return sum(self._weights[n] * losses[n] for n in self.task_names if n in losses)

    def weights(self) -> dict[str, float]:
        return dict(self._weights)


def task_names_for(num_scales: int, has_pose: bool) -> list[str]:
    """Tasks of a model: ``fer``, then ``pose`` if it has a pose branch, then ``att0..att{S-1}``."""
    return ["fer"] + (["pose"] if has_pose else []) + [f"att{s}" for s in range(num_scales)]


class LossBreakdown(NamedTuple):
    total: torch.Tensor
    components: dict[str, torch.Tensor]


def phanet_loss(
    output,
    expression: torch.Tensor,
    pose: torch.Tensor,
    weighting: nn.Module,
    label_smoothing: float = 0.0,
    gate_balance: float = 0.0,
) -> LossBreakdown:
    """Total loss of a :class:`~phanet.models.PhaNetOutput` and each component (unweighted).

    ``expression`` holds class indices ``[B]`` or target probabilities ``[B, E]``
    (:mod:`phanet.intensity_targets`).

    Tasks the model lacks (no pose branch, no attention) are absent from ``components``; the pose
    task is also absent for a batch with no known pose, so its learned weight is not pushed around
    by a loss that carries no information. ``gate_balance`` > 0 adds that multiple of
    :func:`gate_balance_penalty` (a regulariser with a fixed weight, outside the learned task
    weighting; reported as component ``gate_balance``, unweighted).
    """
    components = {"fer": expression_loss(output.expression_logits, expression, label_smoothing)}
    if output.pose_logits is not None:
        loss, has_labels = pose_loss(output.pose_logits, pose)
        if has_labels:
            components["pose"] = loss
        else:
            # Keeps every pose parameter in the graph (DDP needs it) without adding anything.
            components["fer"] = components["fer"] + loss
    if output.scale_logits is not None:
        for s, loss in enumerate(attention_losses(output.scale_logits, expression, label_smoothing)):
            components[f"att{s}"] = loss
    total = weighting(components)
    if gate_balance > 0 and output.scale_weights is not None and output.scale_weights.shape[-1] > 1:
        components["gate_balance"] = gate_balance_penalty(output.scale_weights)
        total = total + gate_balance * components["gate_balance"]
    return LossBreakdown(total, components)
