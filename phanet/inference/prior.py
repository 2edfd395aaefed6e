"""A deployment class prior: expression probabilities adjusted for how often each class occurs where the model is used.

A classifier trained on balanced classes (every synthetic recipe here draws the seven expressions equally) answers
as if each were equally likely a priori. In photos they are not: most faces people photograph are neutral or
smiling. When the classes' frequencies differ between training and use (label shift) and what a face looks like
given its class does not, Bayes' rule moves the answer by the ratio of the priors: p'(c | x) ∝ p(c | x) π(c) / q(c),
with q the training frequencies (uniform here) and π those of the deployment (Saerens et al. 2002; the logit
adjustment of Menon et al. 2021). This module does that, with π given by the user or a named preset; it is off
unless asked for, because it trades the rare classes' recall for the common ones': a model with a prior that
makes fear rare calls fewer faces fear, rightly or not.

When the deployment prior is not known, :func:`estimate_prior` estimates it from the model's own answers on the
unlabelled faces at hand, by the expectation-maximisation of Saerens et al. (2002): reweight every answer by the
current estimate, take the mean reweighted answer as the next estimate, repeat until it settles. It assumes
what the fixed prior assumes (only the classes' frequencies differ) and that the model's probabilities are
calibrated; a model that reads a domain gap as one class (a real neutral face as faint disgust) pulls the
estimate towards that class. Like batch-norm adaptation it makes one face's answer depend on the others.

Presets (:data:`PRESETS`) are published class counts of labelled face collections; ``fer2013`` is the training
split of FER2013 (Goodfellow et al. 2013; the data of the ``fer`` package's model, the peer of
``benchmarks/real_faces.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


ESTIMATE_PSEUDO_COUNT = 1.0  # faces per class added to the estimate: no class's share reaches 0
ESTIMATE_TOLERANCE = 1e-6
ESTIMATE_MAX_ITERATIONS = 1000


@dataclass
class PriorEstimate:
    """What :func:`estimate_prior` found: ``shares`` (the model's class order, summing to 1), the number of
    ``faces`` it was estimated on, the ``iterations`` run and whether they ``converged`` within the tolerance."""

    shares: np.ndarray
    faces: int
    iterations: int
    converged: bool


def estimate_prior(probabilities: np.ndarray, pseudo_count: float = ESTIMATE_PSEUDO_COUNT,
                   tolerance: float = ESTIMATE_TOLERANCE,
                   max_iterations: int = ESTIMATE_MAX_ITERATIONS) -> PriorEstimate:
    """The class shares of the faces whose expression probabilities ``[n, C]`` (each row the model's answer under
    balanced training classes) are given: EM of Saerens et al. (2002), each step reweighting every row by the
    current shares and taking the mean reweighted row, plus ``pseudo_count`` faces per class (a symmetric
    Dirichlet prior on the shares, so that a class no face seems to show keeps a small share instead of 0).

    Stops when no share moves by more than ``tolerance``, or after ``max_iterations``. Raises ValueError on an
    empty or non-2-D array, a row that is not a probability distribution, or a negative pseudo-count.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] == 0 or probabilities.shape[1] < 2:
        raise ValueError(f"estimating a class prior needs the probabilities of at least one face over at least "
                         f"two classes, as [faces, classes]; got shape {probabilities.shape}")
    if not np.isfinite(probabilities).all() or (probabilities < 0).any() \
            or not np.allclose(probabilities.sum(1), 1.0, atol=1e-3):
        raise ValueError("estimating a class prior needs rows of probabilities (non-negative, each summing to 1)")
    if pseudo_count < 0:
        raise ValueError(f"the pseudo-count must be >= 0, got {pseudo_count}")
    faces, classes = probabilities.shape
    shares = np.full(classes, 1.0 / classes)
    for iteration in range(1, max_iterations + 1):
        reweighted = probabilities * shares  # the training shares are equal, so the ratio is the shares alone
        reweighted /= np.maximum(reweighted.sum(1, keepdims=True), 1e-300)
        updated = (reweighted.sum(0) + pseudo_count) / (faces + classes * pseudo_count)
        updated = np.maximum(updated, 1e-12)  # pseudo_count 0: keep log(share) finite for the wrapper
        updated /= updated.sum()
        moved = float(np.abs(updated - shares).max())
        shares = updated
        if moved <= tolerance:
            return PriorEstimate(shares, faces, iteration, True)
    return PriorEstimate(shares, faces, max_iterations, False)


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
