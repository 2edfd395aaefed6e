"""Test-time augmentation: a model's answer averaged over a face and its mirror image.

A horizontal flip leaves the expression as it is and maps the head pose (yaw, pitch) to (-yaw, pitch)
(:meth:`phanet.data.base.LabelSpace.mirror_pose_index`), so the two answers can be averaged class by
class: the expression probabilities as they are, the pose probabilities after moving the mirror
image's to the mirrored bins. A model trained with flips (every augmentation preset but ``none``)
has seen both sides; averaging cancels part of what it reads from one side only (asymmetric lighting,
a parting, a crease) at twice the compute.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from phanet.inference.wrapped import WrappedModel
from phanet.models.phanet import PhaNetOutput

TTA_MODES = ("none", "flip")


class FlipAveraged(WrappedModel):
    """Wraps a registry model: the same forward, answered on ``x`` and ``x`` flipped, averaged.

    Returned logits are the logarithms of the averaged probabilities, so their softmax is the average
    (``expression_logits`` and each scale's ``scale_logits``; ``pose_logits`` when every pose bin has a
    mirror bin, otherwise the unflipped image's, since a bin without one cannot be averaged).
    ``scale_weights`` are averaged; ``attention_maps`` are averaged after flipping the mirror image's
    maps back, so they stay on the input's pixels.
    """

    def __init__(self, model: nn.Module):
        super().__init__(model)
        mirror = model.label_space.mirror_pose_index() if model.label_space.poses else []
        self.pose_mirrorable = bool(mirror) and all(j >= 0 for j in mirror)
        self.register_buffer("pose_mirror", torch.tensor(mirror, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor, return_attention: bool = False) -> PhaNetOutput:
        n = x.shape[0]
        out = self.model(torch.cat([x, x.flip(-1)]), return_attention=return_attention)
        expression = _mean_log_probs(out.expression_logits[:n], out.expression_logits[n:])
        pose = out.pose_logits
        if pose is not None:
            if self.pose_mirrorable:
                # bin i of the input is bin mirror[i] of its mirror image
                pose = _mean_log_probs(pose[:n], pose[n:].index_select(1, self.pose_mirror))
            else:
                pose = pose[:n]
        weights = None if out.scale_weights is None else (out.scale_weights[:n] + out.scale_weights[n:]) / 2
        scale_logits = None if out.scale_logits is None else _mean_log_probs(out.scale_logits[:n], out.scale_logits[n:])
        maps = None
        if out.attention_maps is not None:
            maps = tuple((a[:n] + a[n:].flip(-1)) / 2 for a in out.attention_maps)
        return PhaNetOutput(expression, pose, weights, scale_logits, maps)


def _mean_log_probs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """log((softmax(a) + softmax(b)) / 2) over the last dimension, computed stably."""
    stacked = torch.stack([a.float().log_softmax(-1), b.float().log_softmax(-1)])
    return torch.logsumexp(stacked, dim=0) - math.log(2.0)


def with_tta(model: nn.Module, mode: str | None) -> nn.Module:
    """``model`` wrapped for test-time augmentation ``mode`` (:data:`TTA_MODES`; None = ``none``)."""
    if mode in (None, "none"):
        return model
    if mode == "flip":
        return FlipAveraged(model)
    raise ValueError(f"unknown test-time augmentation {mode!r}; choose one of {', '.join(TTA_MODES)}")
