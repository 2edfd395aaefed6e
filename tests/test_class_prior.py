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


# --- the prior estimated from the faces at hand (EM) ----------------------------------------------------------


def calibrated_answers(shares, faces: int, seed: int = 0):
    """Answers of an exactly calibrated classifier under balanced classes: 1-D features from three Gaussians, the
    posterior of each under equal class shares; the true classes drawn with ``shares``."""
    rng = np.random.default_rng(seed)
    means = np.array([0.0, 2.0, 4.0])
    labels = rng.choice(3, size=faces, p=shares)
    x = rng.normal(means[labels], 1.0)
    likelihood = np.exp(-0.5 * (x[:, None] - means[None]) ** 2)
    return likelihood / likelihood.sum(1, keepdims=True), labels


def test_em_recovers_the_class_shares_that_the_mean_answer_misses():
    from phanet.inference.prior import estimate_prior

    truth = np.array([0.7, 0.2, 0.1])
    answers, _ = calibrated_answers(truth, 4000)
    assert np.abs(answers.mean(0) - truth).max() > 0.1  # averaging the answers is biased towards balance
    estimate = estimate_prior(answers)
    assert estimate.converged and estimate.faces == 4000 and estimate.shares.sum() == pytest.approx(1.0)
    assert np.abs(estimate.shares - truth).max() < 0.02


def test_em_gives_a_class_no_face_shows_the_pseudo_counts_share_and_refuses_what_is_not_probabilities():
    from phanet.inference.prior import estimate_prior

    certain = np.array([[1.0, 0.0, 0.0]] * 6 + [[0.0, 1.0, 0.0]] * 2)
    estimate = estimate_prior(certain, pseudo_count=1.0)
    assert estimate.shares == pytest.approx(np.array([7, 3, 1]) / 11)  # (count + 1) / (faces + 3)
    assert estimate_prior(certain, pseudo_count=0).shares[2] == pytest.approx(0.0, abs=1e-9)
    unsettled = estimate_prior(calibrated_answers([0.8, 0.1, 0.1], 50)[0], max_iterations=1)
    assert not unsettled.converged and unsettled.iterations == 1
    for bad, message in [(np.zeros((0, 3)), "at least one face"), (np.ones(3) / 3, r"got shape \(3,\)"),
                         (np.array([[0.5, 0.6, 0.0]]), "each summing to 1"),
                         (np.array([[1.5, -0.5, 0.0]]), "non-negative")]:
        with pytest.raises(ValueError, match=message):
            estimate_prior(bad)
    with pytest.raises(ValueError, match="pseudo-count must be >= 0"):
        estimate_prior(certain, pseudo_count=-1)


def test_predictor_estimates_the_prior_of_its_inputs_and_reweights_every_later_answer(tiny_model, tmp_path):
    from phanet.checkpoint import save_checkpoint
    from phanet.inference import Predictor
    from phanet.inference.prior import estimate_prior
    from phanet.inference.sources import InputItem

    save_checkpoint(tmp_path / "m", tiny_model)
    rng = np.random.default_rng(0)
    items = [InputItem(f"face{i}.png", image=rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)) for i in range(6)]
    predictor = Predictor.from_checkpoint(tmp_path / "m", device="cpu", detector=None)
    names = predictor.label_space.expressions
    plain = np.array([[f.probabilities[n] for n in names] for r in predictor.predict_items(items) for f in r.faces])
    info = predictor.estimate_class_prior([*items, InputItem("broken.jpg", error="cannot read image")])
    assert info["inputs"] == 7 and info["faces"] == 6 and info["pseudo_count"] == 1.0 and info["converged"]
    assert predictor.prior_estimate == info and list(info["prior"]) == list(names)
    expected = estimate_prior(plain).shares
    assert np.allclose(list(predictor.class_prior.values()), expected, atol=1e-4)
    after = np.array([[f.probabilities[n] for n in names] for r in predictor.predict_items(items) for f in r.faces])
    reweighted = plain * expected
    assert np.allclose(after, reweighted / reweighted.sum(1, keepdims=True), atol=1e-4)
    with pytest.raises(ValueError, match="already reweights its answers by a class prior"):
        predictor.estimate_class_prior(items)
    fresh = Predictor.from_checkpoint(tmp_path / "m", device="cpu", detector=None)
    with pytest.raises(ValueError, match="no face found in the 1 inputs sampled"):
        fresh.estimate_class_prior([InputItem("broken.jpg", error="cannot read image")])


def test_phanet_predict_estimate_prior_says_the_shares_and_refuses_a_given_prior_too(tiny_model, tmp_path, capsys):
    import json

    from PIL import Image

    from phanet.checkpoint import save_checkpoint
    from phanet.cli import main

    save_checkpoint(tmp_path / "m", tiny_model)
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(1)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(photos / f"face{i}.png")
    out = tmp_path / "out.jsonl"
    args = ["predict", str(photos), "--checkpoint", str(tmp_path / "m"), "--no-detect", "--no-progress",
            "--device", "cpu", "-o", str(out)]
    assert main([*args, "--estimate-prior", "--prior-images", "3"]) == 0
    err = capsys.readouterr().err
    assert "expression answers reweighted by the class prior estimated on 3 faces from 3 inputs (neutral " in err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 5 and all(r["status"] == "ok" for r in records)
    assert main([*args, "--estimate-prior", "--class-prior", "fer2013"]) == 1
    assert "--estimate-prior estimates the class prior that --class-prior gives: use one of them" in \
        capsys.readouterr().err
