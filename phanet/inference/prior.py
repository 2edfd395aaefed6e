"""A deployment class prior: expression probabilities adjusted for how often each class occurs where the model is used.

A classifier trained on balanced classes (every synthetic recipe here draws the seven expressions equally) answers
as if each were equally likely a priori. In photos they are not: most faces people photograph are neutral or
smiling. When the classes' frequencies differ between training and use (label shift) and what a face looks like
given its class does not, Bayes' rule moves the answer by the ratio of the priors: p'(c | x) ∝ p(c | x) π(c) / q(c),
with q the training frequencies (uniform here) and π those of the deployment (Saerens et al. 2002; the logit
adjustment of Menon et al. 2021). This module does that, with π given by the user or a named preset; it is off
unless asked for, because it trades the rare classes' recall for the common ones': a model with a prior that
makes fear rare calls fewer faces fear, rightly or not.

Presets (:data:`PRESETS`) are published class counts of labelled face collections; ``fer2013`` is the training
split of FER2013 (Goodfellow et al. 2013; the data of the ``fer`` package's model, the peer of
``benchmarks/real_faces.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from phanet.inference.wrapped import WrappedModel
from phanet.models.phanet import PhaNetOutput

# class counts (not shares) of published training sets, by canonical expression name
PRESETS: dict[str, dict[str, int]] = {
    # FER2013's "Training" usage rows: 28,709 faces (the Kaggle release's fer2013.csv)
    "fer2013": {"anger": 3995, "disgust": 436, "fear": 4097, "happy": 7215, "sad": 4830, "surprise": 3171,
                "neutral": 4965},
}


def parse_class_prior(spec: str, expressions: Sequence[str]) -> np.ndarray:
    """The prior ``spec`` names over ``expressions`` (in their order), as shares summing to 1.

    ``spec`` is a preset of :data:`PRESETS`, or ``NAME=SHARE,...``: the named classes get those shares and the
    classes not named share what is left equally (all named: the shares must sum to 1).
    """
    expressions = list(expressions)
    if spec in PRESETS:
        counts = PRESETS[spec]
        missing = [name for name in expressions if name not in counts]
        if missing:
            raise ValueError(f"class prior {spec!r} has no count for {', '.join(missing)}; give the prior as "
                             "NAME=SHARE,... instead")
        prior = np.array([counts[name] for name in expressions], dtype=np.float64)
        return prior / prior.sum()
    shares: dict[str, float] = {}
    for part in spec.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep:
            raise ValueError(f"class prior {spec!r}: expected a preset ({', '.join(PRESETS)}) or NAME=SHARE,... "
                             f"with NAME one of {', '.join(expressions)}")
        if name not in expressions:
            raise ValueError(f"class prior {spec!r}: unknown class {name!r}; the model's classes are "
                             f"{', '.join(expressions)}")
        if name in shares:
            raise ValueError(f"class prior {spec!r}: {name!r} given twice")
        try:
            shares[name] = float(value)
        except ValueError:
            raise ValueError(f"class prior {spec!r}: the share of {name!r} is not a number: {value!r}") from None
        if not 0.0 < shares[name] < 1.0:
            raise ValueError(f"class prior {spec!r}: the share of {name!r} must be between 0 and 1, got {value}")
    total = sum(shares.values())
    rest = [name for name in expressions if name not in shares]
    if rest:
        if total >= 1.0:
            raise ValueError(f"class prior {spec!r}: the named shares sum to {total:g}, leaving nothing for "
                             f"{', '.join(rest)}")
        shares.update({name: (1.0 - total) / len(rest) for name in rest})
    elif abs(total - 1.0) > 1e-3:
        raise ValueError(f"class prior {spec!r}: the shares sum to {total:g}, expected 1")
    prior = np.array([shares[name] for name in expressions], dtype=np.float64)
    return prior / prior.sum()


class PriorAdjusted(WrappedModel):
    """Wraps a registry model: its expression logits shifted by ``log(prior)`` (the training classes taken as
    balanced), so their softmax is the model's answer reweighted by the prior; everything else as the model's."""

    def __init__(self, model: nn.Module, prior: np.ndarray):
        super().__init__(model)
        prior = np.asarray(prior, dtype=np.float64)
        classes = len(model.label_space.expressions)
        if prior.shape != (classes,) or (prior <= 0).any():
            raise ValueError(f"a class prior needs {classes} positive shares, got {prior.tolist()}")
        self.register_buffer("log_prior", torch.tensor(np.log(prior / prior.sum()), dtype=torch.float32),
                             persistent=False)

    def forward(self, x: torch.Tensor, return_attention: bool = False) -> PhaNetOutput:
        out = self.model(x, return_attention=return_attention)
        adjusted = out.expression_logits.float().log_softmax(-1) + self.log_prior
        return PhaNetOutput(adjusted, out.pose_logits, out.scale_weights, out.scale_logits, out.attention_maps)


def with_class_prior(model: nn.Module, prior: str | np.ndarray | None) -> nn.Module:
    """``model`` with its expression answers adjusted to ``prior`` (a spec for :func:`parse_class_prior` or
    shares in the model's class order); ``model`` itself when ``prior`` is None."""
    if prior is None:
        return model
    if isinstance(prior, str):
        prior = parse_class_prior(prior, model.label_space.expressions)
    return PriorAdjusted(model, prior)
