"""Intensity-graded expression targets (``train.intensity_labels``).

A one-hot label tells a model that a face barely moved towards an expression is that expression with
certainty, so it learns to answer any faint cue with a whole class. Real faces at rest carry such cues
(a low brow, a downturned mouth line) that are no expression at all. With graded targets, an image of
class ``e`` shown at intensity ``i`` (the synthetic generator's overall expression intensity, in [0, 1])
gives neutral ``weight * (1 - i)`` of its target and keeps the rest on ``e``; neutral images stay
one-hot. Only data that knows each image's intensity can be graded: the synthetic dataset records it
(``Sample.extra["intensity"]``), and so does the ``intensity`` column of a folder written by ``phanet synth``,
which the generic loader keeps as text.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from phanet.data.base import FaceDataset, LabelSpace, Sample


def intensity_graded_targets(expression: torch.Tensor, intensity: torch.Tensor, num_classes: int,
                             neutral_index: int, weight: float) -> torch.Tensor:
    """Targets ``[B, E]`` for class indices ``expression [B]`` shown at ``intensity [B]``."""
    share = (weight * (1.0 - intensity.float())).clamp(0.0, 1.0)
    share = torch.where(expression == neutral_index, torch.zeros_like(share), share)
    target = F.one_hot(expression, num_classes).float() * (1.0 - share)[:, None]
    target[:, neutral_index] += share
    return target


@dataclass
class IntensityTargets:
    """The graded targets of one training set: each image's intensity, looked up by dataset index."""

    intensity: torch.Tensor  # [N] float32, by index into the training set
    num_classes: int
    neutral_index: int
    weight: float

    def __call__(self, expression: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        intensity = self.intensity[index.cpu()].to(expression.device)
        return intensity_graded_targets(expression, intensity, self.num_classes, self.neutral_index, self.weight)


def intensity_targets_for(train_set: FaceDataset, label_space: LabelSpace, weight: float) -> IntensityTargets | None:
    """The graded targets for ``train_set`` (None for ``weight`` 0); a ``ValueError`` that says why when the
    label space has no neutral class or a training sample has no recorded intensity."""
    if weight == 0:
        return None
    if "neutral" not in label_space.expressions:
        raise ValueError(f"train.intensity_labels={weight} moves target mass to the neutral class, but the "
                         f"dataset's expressions {list(label_space.expressions)} have none; set it to 0")
    missing = [sample for sample in train_set.samples if "intensity" not in sample.extra]
    if missing:
        raise ValueError(
            f"train.intensity_labels={weight} needs each training image's expression intensity, which the "
            f"synthetic dataset records; {len(missing)} of {len(train_set.samples)} training samples have none "
            f"(first: {missing[0].item_id or missing[0].image!r}); set it to 0 for this dataset")
    intensity = torch.tensor([_intensity_of(sample) for sample in train_set.samples])
    return IntensityTargets(intensity, len(label_space.expressions), label_space.expressions.index("neutral"),
                            float(weight))


def _intensity_of(sample: Sample) -> float:
    value = sample.extra["intensity"]
    try:
        intensity = float(value)
    except (TypeError, ValueError):
        intensity = float("nan")
    if not 0.0 <= intensity <= 1.0:  # also NaN
        raise ValueError(f"training sample {sample.item_id or sample.image!r}: intensity {value!r} is not a number "
                         "in [0, 1] (train.intensity_labels)")
    return intensity
