"""Test-time augmentation (phanet.inference.tta): flip averaging is exactly mirror-symmetric, averages
probabilities class by class, and reaches Predictor, evaluate_checkpoint and the CLI flags."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import phanet
from phanet.data.base import SEVEN_EXPRESSIONS, LabelSpace, PoseBin
from phanet.inference.tta import FlipAveraged, with_tta

POSES = tuple(PoseBin(f"yaw{yaw:+d}", float(yaw), 0.0) for yaw in (-90, -45, 0, 45, 90))

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return phanet.create_model("phanet_r18", label_space=LabelSpace(SEVEN_EXPRESSIONS, POSES), input_size=64).eval()


@pytest.fixture(scope="module")
def faces():
    # asymmetric inputs, so that a face and its mirror image get different answers from the model
    return torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))


@torch.inference_mode()
def test_flip_averaging_is_the_mean_of_the_two_answers_probabilities(model, faces):
    tta = FlipAveraged(model).eval()
    out = tta(faces)
    plain, mirrored = model(faces), model(faces.flip(-1))
    assert not torch.allclose(plain.expression_logits, mirrored.expression_logits, atol=1e-3)
    expected = (plain.expression_logits.softmax(-1) + mirrored.expression_logits.softmax(-1)) / 2
    torch.testing.assert_close(out.expression_logits.softmax(-1), expected)
    torch.testing.assert_close(out.expression_logits.exp().sum(-1), torch.ones(3))  # log-probabilities
    # pose: the mirror image's bin yaw -45 is the face's yaw +45
    mirror = [4, 3, 2, 1, 0]
    expected_pose = (plain.pose_logits.softmax(-1) + mirrored.pose_logits.softmax(-1)[:, mirror]) / 2
    torch.testing.assert_close(out.pose_logits.softmax(-1), expected_pose)
    torch.testing.assert_close(out.scale_weights, (plain.scale_weights + mirrored.scale_weights) / 2)
    assert out.scale_logits.shape == plain.scale_logits.shape


@torch.inference_mode()
def test_a_face_and_its_mirror_image_get_the_same_expression_and_mirrored_pose_and_attention(model, faces):
    tta = FlipAveraged(model).eval()
    out, out_flipped = tta(faces, return_attention=True), tta(faces.flip(-1), return_attention=True)
    torch.testing.assert_close(out.expression_logits, out_flipped.expression_logits)
    torch.testing.assert_close(out.pose_logits, out_flipped.pose_logits[:, [4, 3, 2, 1, 0]])
    for a, b in zip(out.attention_maps, out_flipped.attention_maps):
        torch.testing.assert_close(a, b.flip(-1))  # the maps stay on the input's pixels


@torch.inference_mode()
def test_pose_bins_without_a_mirror_bin_keep_the_unflipped_answer(faces):
    torch.manual_seed(0)
    one_sided = LabelSpace(SEVEN_EXPRESSIONS, (PoseBin("yaw+0", 0.0, 0.0), PoseBin("yaw+45", 45.0, 0.0)))
    model = phanet.create_model("phanet_r18", label_space=one_sided, input_size=64).eval()
    out = FlipAveraged(model).eval()(faces)
    torch.testing.assert_close(out.pose_logits, model(faces).pose_logits)
    baseline = phanet.create_model("baseline_r18", label_space=LabelSpace(SEVEN_EXPRESSIONS), input_size=64).eval()
    out = FlipAveraged(baseline).eval()(faces)
    assert out.pose_logits is None and out.scale_weights is None and out.expression_logits.shape == (3, 7)


def test_with_tta_names_the_modes(model):
    from phanet.commands.common import TTA_CHOICES
    from phanet.inference.tta import TTA_MODES

    assert TTA_CHOICES == TTA_MODES  # the CLI flag offers exactly the modes with_tta knows
    assert with_tta(model, None) is model and with_tta(model, "none") is model
    wrapped = with_tta(model, "flip")
    assert isinstance(wrapped, FlipAveraged) and wrapped.label_space == model.label_space
    assert wrapped.num_scales == model.num_scales and wrapped.data_config == model.data_config
    with pytest.raises(ValueError, match="none, flip"):
        with_tta(model, "multicrop")


def test_predictor_and_evaluate_checkpoint_take_tta(model, tmp_path):
    from phanet.data.datasets.synthetic import synthetic_index
    from phanet.engine import evaluate_checkpoint
    from phanet.inference import Predictor
    from phanet.synth import RenderSettings

    phanet.save_checkpoint(tmp_path / "model", model)
    crop = (np.random.default_rng(2).random((64, 64, 3)) * 255).astype(np.uint8)
    flip = Predictor.from_checkpoint(tmp_path / "model", device="cpu", detector=None, tta="flip")
    plain = Predictor.from_checkpoint(tmp_path / "model", device="cpu", detector=None)
    a, b = flip.predict(crop)[0], flip.predict(crop[:, ::-1].copy())[0]
    assert a.expression == b.expression
    assert a.probabilities == pytest.approx(b.probabilities, abs=1e-5)
    assert a.probabilities != pytest.approx(plain.predict(crop)[0].probabilities, abs=1e-5)

    index = synthetic_index(2, "kdef5", RenderSettings(size=64))
    results = evaluate_checkpoint(tmp_path / "model", index, list(range(10)), device="cpu", batch_size=5,
                                  workers=0, progress=False, tta="flip")
    assert results["tta"] == "flip" and results["num_samples"] == 10


def test_phanet_predict_tta_flip_gives_a_face_and_its_mirror_image_one_answer(model, tmp_path, capsys):
    import json

    from PIL import Image

    from phanet.cli import main

    phanet.save_checkpoint(tmp_path / "model", model)
    crop = (np.random.default_rng(3).random((64, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(crop).save(tmp_path / "a.png")
    Image.fromarray(crop[:, ::-1]).save(tmp_path / "b.png")
    answers = {}
    for tta in ("flip", "none"):
        assert main(["predict", str(tmp_path / "a.png"), str(tmp_path / "b.png"), "--checkpoint",
                     str(tmp_path / "model"), "--no-detect", "--tta", tta, "--no-progress", "--device", "cpu"]) == 0
        records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        answers[tta] = [r["faces"][0]["probabilities"] for r in records]
    assert answers["flip"][0] == pytest.approx(answers["flip"][1], abs=1e-4)
    assert answers["none"][0] != pytest.approx(answers["none"][1], abs=1e-4)
