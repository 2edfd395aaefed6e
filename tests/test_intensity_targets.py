"""Intensity-graded targets (train.intensity_labels): the intensities the generator draws, and training with them."""

import dataclasses

import numpy as np
import pytest
import torch

from phanet.config import Config, apply_overrides
from phanet.data.datasets.synthetic import synthetic_index
from phanet.data.registry import DatasetIndex
from phanet.engine import fit
from phanet.intensity_targets import intensity_graded_targets
from phanet.losses import attention_losses
from phanet.synth import RenderSettings
from phanet.synth.expressions import AU_INDEX, EXPRESSIONS, sample_aus, sample_intensity
from phanet.synth.render import capture_intensity
from tests.engine_fixtures import tiny_config, tiny_data, tiny_index


def test_graded_targets_move_a_weak_expressions_mass_to_neutral_and_keep_neutral_one_hot():
    expression = torch.tensor([1, 1, 2, 0])
    intensity = torch.tensor([0.35, 1.0, 0.6, 0.0])
    target = intensity_graded_targets(expression, intensity, num_classes=3, neutral_index=0, weight=0.6)
    expected = torch.tensor([[0.39, 0.61, 0.0], [0.0, 1.0, 0.0], [0.24, 0.0, 0.76], [1.0, 0.0, 0.0]])
    assert torch.allclose(target, expected, atol=1e-6)
    assert torch.allclose(target.sum(1), torch.ones(4))
    assert torch.equal(intensity_graded_targets(expression, intensity, 3, 0, 0.0),
                       torch.nn.functional.one_hot(expression, 3).float())


def test_attention_losses_take_graded_targets_per_sample():
    logits = torch.randn(4, 3, 5)  # [B, S, E]
    hard = torch.tensor([0, 1, 2, 3])
    soft = torch.nn.functional.one_hot(hard, 5).float()
    assert torch.allclose(attention_losses(logits, hard), attention_losses(logits, soft), atol=1e-6)


def test_sample_intensity_is_the_intensity_sample_aus_draws():
    """Replayed from a generator in the same state, the intensity scales the prototype as drawn: surprise's
    AU 1 (weight 1 in both forms) is intensity x U(0.85, 1.15), averaged over the two sides."""
    surprise = EXPRESSIONS.index("surprise")
    checked = 0
    for key in range(200):
        aus = sample_aus(np.random.default_rng([key, 0xE]), surprise, subtle=True, blends=False)
        intensity = sample_intensity(np.random.default_rng([key, 0xE]), surprise, subtle=True)
        assert 0.35 <= intensity < 1.0
        if intensity < 0.75:  # no side clipped at 1
            assert 0.85 - 1e-9 <= aus[AU_INDEX[1]].mean() / intensity <= 1.15 + 1e-9
            checked += 1
    assert checked > 50
    assert sample_intensity(np.random.default_rng(0), EXPRESSIONS.index("neutral")) == 0.0


def test_the_synthetic_index_records_each_captures_intensity():
    render = RenderSettings(32, randomize=("subtle", "teeth"))
    index = synthetic_index([3, 4], "kdef5", render, seed=5, per_cell=2)
    for sample in index.samples[::7]:
        subject, variant = sample.extra["generator_id"], int(sample.item_id.rsplit("_v", 1)[1])
        assert sample.extra["intensity"] == capture_intensity(5, subject, sample.expression, render.randomize,
                                                              variant=variant)
    neutral = [s.extra["intensity"] for s in index.samples if EXPRESSIONS[s.expression] == "neutral"]
    others = [s.extra["intensity"] for s in index.samples if EXPRESSIONS[s.expression] != "neutral"]
    assert set(neutral) == {0.0} and min(others) >= 0.35 and len(set(others)) > 10


def _with_intensity(index: DatasetIndex, value: float) -> DatasetIndex:
    samples = [dataclasses.replace(s, extra={**s.extra, "intensity": value}) for s in index.samples]
    return dataclasses.replace(index, samples=samples)


def test_training_with_every_target_graded_to_neutral_answers_neutral(tmp_path):
    """Intensity 0 with weight 1 puts every target on neutral: the trained model must answer neutral, where
    the same run with one-hot targets learns the three classes (tests/test_engine.py)."""
    data = tiny_data(_with_intensity(tiny_index(), 0.0))
    fit(tiny_config("baseline_r18", epochs=4, intensity_labels=1.0), tmp_path, data=data, progress=False,
        write_report=False)
    import phanet

    model = phanet.load_model(tmp_path / "best.safetensors").eval()
    images = torch.stack([torch.from_numpy(s.image).permute(2, 0, 1).float() / 255 for s in data.index.samples[:36]])
    mean, std = torch.tensor(model.data_config.mean)[:, None, None], torch.tensor(model.data_config.std)[:, None, None]
    with torch.no_grad():
        answers = model((images - mean) / std).expression_logits.argmax(1)
    assert (answers == 0).float().mean() >= 0.9


def test_graded_targets_refuse_data_without_intensities_naming_the_setting(tmp_path):
    with pytest.raises(ValueError, match=r"intensity_labels=0.5 needs each training image.s expression intensity"):
        fit(tiny_config("baseline_r18", epochs=1, intensity_labels=0.5), tmp_path, data=tiny_data(), progress=False,
            write_report=False)


def test_the_setting_is_checked_in_configs():
    assert apply_overrides(Config(), ["train.intensity_labels=0.6"]).train.intensity_labels == 0.6
    with pytest.raises(ValueError, match="train.intensity_labels"):
        apply_overrides(Config(), ["train.intensity_labels=1.5"])


def test_a_phanet_synth_folder_carries_the_intensities_through_the_generic_loader(tmp_path):
    from phanet.data.datasets.generic import load_generic
    from phanet.data.synthetic_writer import write_synthetic_dataset
    from phanet.intensity_targets import intensity_targets_for

    render = ("subtle", "teeth")
    write_synthetic_dataset(tmp_path / "synth", subjects=2, poses="kdef5", size=32, seed=4, randomize=render)
    index = load_generic(tmp_path / "synth")
    assert index.samples[0].extra["intensity"] == "0.0000"  # text, as the CSV holds it
    from phanet.data.base import FaceDataset

    targets = intensity_targets_for(FaceDataset(index.samples, index.label_space), index.label_space, 0.6)
    drawn = synthetic_index(2, "kdef5", RenderSettings(32, randomize=render), seed=4)
    def cell(sample, space):
        return sample.subject, space.expressions[sample.expression], space.poses[sample.pose].name

    by_cell = {cell(s, drawn.label_space): s.extra["intensity"] for s in drawn.samples}
    for k, sample in enumerate(index.samples):
        assert abs(float(targets.intensity[k]) - by_cell[cell(sample, index.label_space)]) < 1e-4
    assert len(set(by_cell.values())) > 5

    broken = [dataclasses.replace(s, extra={**s.extra, "intensity": ""}) for s in index.samples]
    with pytest.raises(ValueError, match="intensity '' is not a number in"):
        intensity_targets_for(FaceDataset(broken, index.label_space), index.label_space, 0.6)
