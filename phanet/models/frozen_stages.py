"""Keep the backbone's early stages as pretrained: weights frozen, batch norm on its pretrained statistics.

Trained on synthetic faces only, a pretrained backbone re-fits its early layers to the renders. In the
bundled model the early weights moved little (0.03-0.11 of their ImageNet norm in the stem and the first
three stages) but the batch-norm running means much more (0.45 in the stem, 0.11-0.23 in those stages;
``python benchmarks/backbone_drift.py``), so a photo is normalised with statistics of renders. Freezing the
feature extractor a network reads synthetic images with is the sim-to-real remedy of Hinterstoisser
et al. (*On Pre-Trained Image Features and Synthetic Images for Deep Learning*, ECCV-W 2018); here only
the first few stages are frozen, the low-level filters whose ImageNet statistics photos share, and the
deeper ones still learn expressions.

Frozen means: ``requires_grad`` off for every parameter from the backbone's input through the end of its
``stages``-th feature stage (the stem included), and those layers' batch norm kept in eval mode, so their
running statistics stay the pretrained ones in training too. Nothing is stored beyond the model config:
the checkpoint format and inference are unchanged.
"""

from __future__ import annotations

from torch import nn

from phanet.models.backbones import early_stage_modules

_BatchNorm = nn.modules.batchnorm._BatchNorm


def early_layers(backbone: nn.Module, stages: int) -> list[nn.Module]:
    """Every module of ``backbone`` from its input through the end of its ``stages``-th feature stage.

    Registration order is execution order in timm's ``features_only`` EfficientNet and MobileNet
    backbones (stem, then the blocks), so these are the modules registered before the end of that
    stage's module.
    """
    last_stage = early_stage_modules(backbone, stages)[-1]
    in_last_stage = {id(m) for m in last_stage.modules()}
    layers, reached = [], False
    for module in backbone.modules():
        if module is backbone:
            continue
        if id(module) in in_last_stage:
            reached = True
        elif reached:
            break
        layers.append(module)
    return layers


def freeze_early_stages(backbone: nn.Module, stages: int) -> list[_BatchNorm]:
    """Turn off gradients of :func:`early_layers`; return their batch-norm layers, which the model keeps
    in eval mode (see :meth:`phanet.models.phanet.PhaNet.train`)."""
    layers = early_layers(backbone, stages)
    for layer in layers:
        for param in layer.parameters(recurse=False):
            param.requires_grad_(False)
    return [layer for layer in layers if isinstance(layer, _BatchNorm)]
