"""Test-time batch-norm adaptation: normalise each layer with statistics of the images at hand.

A model trained on synthetic faces normalises every batch-norm layer with the mean and variance its
activations had on synthetic renders. On photos those activations are distributed differently
(covariate shift), and re-measuring the statistics on the unlabelled target images is a known remedy
(AdaBN, Li et al. 2016). With few target images their statistics are noisy, so they are mixed with the
trained ones in proportion ``n : prior`` (Schneider et al. 2020, "Improving robustness against common
corruptions by covariate shift adaptation": ``prior`` is the trained statistics' weight counted in
images, ``n`` the number of target images; ``prior = 0`` is plain AdaBN).

The target statistics of a layer are measured on its input *after* the layers before it have been
adapted, in one forward pass over all the target images together; the adapted statistics are then
written into the model's running statistics, so every later call (any batch size, one face at a time)
uses the same adapted model. The answer for a face therefore depends on which images adapted the
model: an opt-in, for a folder of photos from one source, never a default.
"""

from __future__ import annotations

import torch
from torch import nn

DEFAULT_PRIOR = 16.0
DEFAULT_MAX_IMAGES = 256  # one forward pass over them: memory grows with it (~0.5 GB at 112 px for effl0)


def batch_norm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The batch-norm layers of ``model`` that keep running statistics, in module order."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats and m.running_mean is not None]


@torch.no_grad()
def adapt_batch_norm(model: nn.Module, images: torch.Tensor, prior: float = DEFAULT_PRIOR,
                     depth: float = 1.0) -> dict:
    """Mix the target statistics of ``images [n, 3, H, W]`` (normalised model inputs) into ``model``'s
    batch-norm layers; returns what was done (``images``, ``prior``, ``depth``, ``layers``, ``of_layers``).

    Each layer's new running mean is ``(prior * trained + n * target) / (prior + n)``, and likewise its
    variance. ``depth`` in (0, 1]: the share of the batch-norm layers adapted, counted from the input
    (module order), at least one: the early layers see colour, texture and noise, the late ones what
    the images show, whose statistics also move when the target set holds few classes. ``model`` is
    left in eval mode. Raises ValueError when ``model`` has no batch-norm layer, ``images`` is empty,
    ``prior`` is negative or ``depth`` is outside (0, 1].
    """
    if prior < 0:
        raise ValueError(f"the batch-norm adaptation prior must be >= 0 (0 = target statistics only), got {prior}")
    if not 0 < depth <= 1:
        raise ValueError(f"the batch-norm adaptation depth must be in (0, 1], got {depth}")
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(f"batch-norm adaptation needs a batch of images [n, 3, H, W], got shape {tuple(images.shape)}")
    every_layer = batch_norm_layers(model)
    if not every_layer:
        raise ValueError(f"{type(model).__name__} has no batch-norm layer to adapt")
    layers = every_layer[: max(1, round(depth * len(every_layer)))]
    n = len(images)  # a wrapper may show a layer more (flip TTA: 2n), but the evidence is n images
    keep = prior / (prior + n)
    adapted: set[int] = set()

    def mix(layer: nn.modules.batchnorm._BatchNorm, inputs: tuple) -> None:
        if id(layer) in adapted:  # a layer applied twice in one forward is adapted once
            return
        adapted.add(id(layer))
        x = inputs[0].float()
        dims = [0, *range(2, x.ndim)]
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=False)
        layer.running_mean.mul_(keep).add_((1 - keep) * mean.to(layer.running_mean.dtype))
        layer.running_var.mul_(keep).add_((1 - keep) * var.to(layer.running_var.dtype))

    model.eval()
    hooks = [layer.register_forward_pre_hook(mix) for layer in layers]
    try:
        model(images)
    finally:
        for hook in hooks:
            hook.remove()
    model.eval()
    return {"images": n, "prior": float(prior), "depth": float(depth), "layers": len(layers),
            "of_layers": len(every_layer)}
