"""Instance normalisation in the early layers (IBN-Net, Pan et al., ECCV 2018), on batch-norm layers.

Batch norm normalises a channel with statistics of the training set; instance norm with the image's
own. In the early layers a channel's per-image mean and spread describe appearance (colour, contrast,
lighting, texture) rather than content, so instance-normalising part of the channels there makes the
network indifferent to those differences in training *and* at test time, one image at a time, with no
target data. IBN-Net does this for half the channels of the first normalisation of each block in the
early stages, and gained most where training images are synthetic and test images real (GTA5 ->
Cityscapes). Here it is the batch-independent counterpart of test-time batch-norm adaptation of the
early layers (:mod:`phanet.inference.adapt_bn`).

It is applied as a forward pre-hook on an existing batch-norm layer, so the layer's weights, running
statistics and the checkpoint format stay as they are (pretrained weights load unchanged): the first
``share`` of the layer's channels are normalised per image and then mapped onto the layer's running
statistics, which the layer then normalises back out. What reaches the layer's affine transform is the
instance-normalised channel, in eval mode exactly, in training mode up to the batch statistics of
those channels, which then equal the running ones.
"""

from __future__ import annotations

import torch
from torch import nn

from phanet.models.backbones import early_stage_modules

_BatchNorm = nn.modules.batchnorm._BatchNorm


class InstanceNormShare:
    """Forward pre-hook of a batch-norm layer: instance-normalise its first ``channels`` input channels."""

    def __init__(self, channels: int):
        if channels < 1:
            raise ValueError(f"instance norm needs at least one channel, got {channels}")
        self.channels = channels

    def __call__(self, layer: _BatchNorm, inputs: tuple) -> tuple:
        x = inputs[0]
        k = self.channels
        part = x[:, :k].float()
        dims = tuple(range(2, x.ndim))
        mean = part.mean(dim=dims, keepdim=True)
        var = part.var(dim=dims, unbiased=False, keepdim=True)
        normed = (part - mean) * torch.rsqrt(var + layer.eps)
        if layer.running_var is not None:  # the layer will subtract these and divide by them: add them back
            shape = (1, k) + (1,) * len(dims)
            normed = normed * torch.sqrt(layer.running_var[:k].float() + layer.eps).view(shape)
            normed = normed + layer.running_mean[:k].float().view(shape)
        return (torch.cat([normed.to(x.dtype), x[:, k:]], dim=1),)


def instance_norm_layers(backbone: nn.Module, stages: int) -> list[_BatchNorm]:
    """The batch-norm layers IBN-Net-a instance-normalises: the stem's, and the first of every block in
    the backbone's first ``stages`` feature stages (a timm ``features_only`` backbone)."""
    stage_modules = early_stage_modules(backbone, stages)
    in_stages = {id(m) for stage in stage_modules for m in stage.modules()}
    layers = []
    stem = next((m for m in backbone.modules() if isinstance(m, _BatchNorm)), None)
    if stem is not None and id(stem) not in in_stages:
        layers.append(stem)
    for stage in stage_modules:
        for block in list(stage.children()) or [stage]:
            first = next((m for m in block.modules() if isinstance(m, _BatchNorm)), None)
            if first is not None:
                layers.append(first)
    if not layers:
        raise ValueError(f"the backbone has no batch-norm layer in its first {stages} stages to instance-normalise")
    return layers


def attach_instance_norm(backbone: nn.Module, stages: int, share: float) -> list[str]:
    """Instance-normalise the first ``share`` of the channels of :func:`instance_norm_layers`; returns the
    names of the layers so changed (for the model's description). Hooks stay for the model's lifetime."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"instance norm share={share}; must lie in (0, 1]")
    names = {id(m): name for name, m in backbone.named_modules()}
    changed = []
    for layer in instance_norm_layers(backbone, stages):
        layer.register_forward_pre_hook(InstanceNormShare(max(1, round(share * layer.num_features))))
        changed.append(names[id(layer)])
    return changed
