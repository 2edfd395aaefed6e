"""The deployment class prior (phanet.inference.prior): parsing, the model wrapper, Predictor and evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from phanet.data.base import SEVEN_EXPRESSIONS
from phanet.inference.prior import PRESETS, PriorAdjusted, parse_class_prior, with_class_prior


def test_a_preset_is_turned_into_shares_in_the_models_class_order():
    prior = parse_class_prior("fer2013", SEVEN_EXPRESSIONS)
    counts = PRESETS["fer2013"]
    assert sum(counts.values()) == 28709  # FER2013's training rows
    assert prior.sum() == pytest.approx(1.0)
    assert prior[SEVEN_EXPRESSIONS.index("happy")] == pytest.approx(7215 / 28709)
    assert SEVEN_EXPRESSIONS[int(prior.argmin())] == "disgust"
    reordered = parse_class_prior("fer2013", list(reversed(SEVEN_EXPRESSIONS)))
    assert np.allclose(reordered, prior[::-1])
    with pytest.raises(ValueError, match="no count for contempt"):
        parse_class_prior("fer2013", (*SEVEN_EXPRESSIONS, "contempt"))


def test_named_shares_and_the_rest_shared_equally_by_the_classes_not_named():
    prior = parse_class_prior("neutral=0.4, happy=0.3", SEVEN_EXPRESSIONS)
    assert prior[0] == pytest.approx(0.4) and prior[1] == pytest.approx(0.3)
    assert np.allclose(prior[2:], 0.3 / 5) and prior.sum() == pytest.approx(1.0)
    every = ",".join(f"{name}={1 / 7}" for name in SEVEN_EXPRESSIONS)
    assert np.allclose(parse_class_prior(every, SEVEN_EXPRESSIONS), 1 / 7)


@pytest.mark.parametrize("spec, message", [
    ("uniform", "expected a preset"),
    ("joy=0.5", "unknown class 'joy'"),
    ("happy=0.2,happy=0.3", "given twice"),
    ("happy=lots", "not a number"),
    ("happy=0", "between 0 and 1"),
    ("happy=1.5", "between 0 and 1"),
    ("happy=0.6,neutral=0.4", "leaving nothing for sad"),
    (",".join(f"{name}=0.1" for name in SEVEN_EXPRESSIONS), "sum to 0.7, expected 1"),
])
def test_a_bad_prior_is_refused_naming_what_is_wrong(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_class_prior(spec, SEVEN_EXPRESSIONS)


@pytest.fixture(scope="module")
def tiny_model():
    from phanet.data.datasets.synthetic import synthetic_label_space
    from phanet.models import create_model

    torch.manual_seed(0)
    model = create_model("phanet_mbv2", label_space=synthetic_label_space("kdef5"), input_size=32, pretrained=False)
    return model.eval()


def test_the_wrapper_reweights_the_expression_probabilities_by_the_prior_and_leaves_the_rest(tiny_model):
    x = torch.randn(3, 3, 32, 32)
    prior = np.array([0.5, 0.2, 0.1, 0.05, 0.05, 0.05, 0.05])
    with torch.no_grad():
        plain = tiny_model(x)
        adjusted = PriorAdjusted(tiny_model, prior)(x)
    expected = plain.expression_logits.softmax(-1) * torch.tensor(prior, dtype=torch.float32)
    expected = expected / expected.sum(-1, keepdim=True)
    assert torch.allclose(adjusted.expression_logits.softmax(-1), expected, atol=1e-6)
    assert torch.equal(adjusted.pose_logits, plain.pose_logits)
    assert torch.equal(adjusted.scale_weights, plain.scale_weights)
    uniform = with_class_prior(tiny_model, np.full(7, 1 / 7))(x)
    assert torch.allclose(uniform.expression_logits.softmax(-1), plain.expression_logits.softmax(-1), atol=1e-6)
    assert with_class_prior(tiny_model, None) is tiny_model
    assert with_class_prior(tiny_model, "fer2013").label_space is tiny_model.label_space
    with pytest.raises(ValueError, match="needs 7 positive shares"):
        PriorAdjusted(tiny_model, np.ones(5))


def test_predictor_answers_with_the_prior_and_says_which(tiny_model, tmp_path):
    from phanet.checkpoint import save_checkpoint
    from phanet.inference import Predictor

    save_checkpoint(tmp_path / "m", tiny_model)
    crops = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    plain = Predictor.from_checkpoint(tmp_path / "m", device="cpu", detector=None)
    tilted = Predictor.from_checkpoint(tmp_path / "m", device="cpu", detector=None, class_prior="neutral=0.94")
    assert plain.class_prior is None and tilted.class_prior["neutral"] == pytest.approx(0.94)
    assert list(tilted.class_prior) == list(tilted.label_space.expressions)
    p, q = plain.classify(crops)["expression"], tilted.classify(crops)["expression"]
    expected = p * np.array(list(tilted.class_prior.values()))
    assert np.allclose(q, expected / expected.sum(1, keepdims=True), atol=1e-5)
    assert (q[:, 0] >= p[:, 0]).all()


def test_evaluation_with_a_prior_moves_answers_towards_the_favoured_class():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import detail_robustness

    from phanet.checkpoint import bundled_checkpoint

    base = ["lips", "subtle", "blends"]
    plain = detail_robustness.probe(bundled_checkpoint(), base, subjects=1)
    tilted = detail_robustness.probe(bundled_checkpoint(), base, subjects=1, class_prior="neutral=0.99")
    assert tilted["per_expression"]["neutral"] >= plain["per_expression"]["neutral"]
    assert tilted["neutral_called"].get("neutral", 0) == 23  # every neutral test face, at every pose
    assert tilted["accuracy"] < plain["accuracy"]  # the other classes pay for it
