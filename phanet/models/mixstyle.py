"""MixStyle: mix the feature statistics of training images in the early stages (Zhou et al., ICLR 2021).

The early stages of a CNN describe an image's style (colour, texture, contrast, noise) in the channel
means and standard deviations of their feature maps. MixStyle, during training only, normalises each
image's early feature maps by their own statistics and gives them a random mix of their own and another
image's in the batch, so the later layers learn not to rely on the exact style: a regulariser for
domain generalisation (here, from synthetic renders to photos). In eval mode it is the identity.
"""

from __future__ import annotations

import torch
from torch import nn

from phanet.models.backbones import early_stage_modules


class MixStyle(nn.Module):
    """Applied with probability ``p`` per batch; mixing weights ~ Beta(``alpha``, ``alpha``) per image."""

    def __init__(self, p: float = 0.5, alpha: float = 0.1, eps: float = 1e-6):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"MixStyle probability p={p}; must lie in [0, 1]")
        if not alpha > 0:
            raise ValueError(f"MixStyle alpha={alpha}; must be > 0")
        self.p, self.alpha, self.eps = p, alpha, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0 or x.shape[0] < 2 or torch.rand(()).item() >= self.p:
            return x
        b = x.shape[0]
        xf = x.float()
        mean = xf.mean(dim=(2, 3), keepdim=True).detach()
        std = (xf.var(dim=(2, 3), keepdim=True) + self.eps).sqrt().detach()
        weight = torch.distributions.Beta(self.alpha, self.alpha).sample((b, 1, 1, 1)).to(xf.device)
        other = torch.randperm(b, device=x.device)
        mixed_mean = weight * mean + (1 - weight) * mean[other]
        mixed_std = weight * std + (1 - weight) * std[other]
        return (((xf - mean) / std) * mixed_std + mixed_mean).to(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}, alpha={self.alpha}"


def attach_mixstyle(backbone: nn.Module, stages: int, p: float, alpha: float) -> nn.ModuleList:
    """MixStyle after each of the backbone's first ``stages`` feature stages (forward hooks); returns the
    MixStyle modules, to be registered on the owning model so that ``train()`` / ``eval()`` reach them."""
    layers = nn.ModuleList()
    for module in early_stage_modules(backbone, stages):
        mix = MixStyle(p, alpha)
        module.register_forward_hook(lambda _module, _inputs, output, mix=mix: mix(output))
        layers.append(mix)
    return layers
