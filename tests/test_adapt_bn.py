"""Test-time batch-norm adaptation: the statistics it writes, and its paths through predict and evaluate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from phanet.inference.adapt_bn import adapt_batch_norm, batch_norm_layers

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def two_layer_net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 5, 3), nn.BatchNorm2d(5))
    for bn in (net[1], net[4]):  # trained statistics far from the images' so that a mix is visible
        bn.running_mean.fill_(2.0)
        bn.running_var.fill_(3.0)
    return net.eval()


def channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x.mean(dim=(0, 2, 3)), x.var(dim=(0, 2, 3), unbiased=False)


def test_prior_zero_sets_each_layer_to_its_inputs_statistics_measured_after_the_layers_before_adapt():
    net = two_layer_net()
    images = torch.randn(6, 3, 8, 8)
    info = adapt_batch_norm(net, images, prior=0)
    assert info == {"images": 6, "prior": 0.0, "depth": 1.0, "layers": 2, "of_layers": 2}
    assert not net.training
    mean, var = channel_stats(net[0](images))
    torch.testing.assert_close(net[1].running_mean, mean)
    torch.testing.assert_close(net[1].running_var, var)
    # the second layer's input as the adapted first layer makes it
    mean, var = channel_stats(net[3](net[2](net[1](net[0](images)))))
    torch.testing.assert_close(net[4].running_mean, mean)
    torch.testing.assert_close(net[4].running_var, var)


def test_a_prior_mixes_trained_and_measured_statistics_in_proportion_to_images():
    net = two_layer_net()
    images = torch.randn(6, 3, 8, 8)
    with torch.no_grad():
        mean, var = channel_stats(net[0](images))
    adapt_batch_norm(net, images, prior=18)  # 18 : 6, so a quarter of the measured statistics
    torch.testing.assert_close(net[1].running_mean, 0.75 * 2.0 + 0.25 * mean)
    torch.testing.assert_close(net[1].running_var, 0.75 * 3.0 + 0.25 * var)


def test_a_depth_adapts_only_the_first_layers_from_the_input():
    net = two_layer_net()
    info = adapt_batch_norm(net, torch.randn(6, 3, 8, 8), prior=0, depth=0.5)
    assert (info["layers"], info["of_layers"]) == (1, 2)
    assert not torch.allclose(net[1].running_mean, torch.full((4,), 2.0))
    torch.testing.assert_close(net[4].running_mean, torch.full((5,), 2.0))  # the later layer keeps its statistics
    torch.testing.assert_close(net[4].running_var, torch.full((5,), 3.0))
    assert adapt_batch_norm(two_layer_net(), torch.randn(2, 3, 8, 8), depth=0.01)["layers"] == 1  # at least one


def test_the_cli_defaults_are_the_modules_defaults():
    from phanet.commands.common import ADAPT_BN_IMAGES, ADAPT_BN_PRIOR
    from phanet.inference.adapt_bn import DEFAULT_MAX_IMAGES, DEFAULT_PRIOR

    assert (ADAPT_BN_PRIOR, ADAPT_BN_IMAGES) == (DEFAULT_PRIOR, DEFAULT_MAX_IMAGES)


def test_adaptation_refuses_bad_arguments_and_models_without_batch_norm():
    with pytest.raises(ValueError, match="prior must be >= 0"):
        adapt_batch_norm(two_layer_net(), torch.randn(2, 3, 8, 8), prior=-1)
    with pytest.raises(ValueError, match=r"depth must be in \(0, 1\], got 0"):
        adapt_batch_norm(two_layer_net(), torch.randn(2, 3, 8, 8), depth=0)
    with pytest.raises(ValueError, match=r"got shape \(0, 3, 8, 8\)"):
        adapt_batch_norm(two_layer_net(), torch.randn(0, 3, 8, 8))
    with pytest.raises(ValueError, match="has no batch-norm layer"):
        adapt_batch_norm(nn.Sequential(nn.Conv2d(3, 4, 3)), torch.randn(2, 3, 8, 8))
    assert len(batch_norm_layers(two_layer_net())) == 2


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from phanet.checkpoint import save_checkpoint
    from phanet.data.datasets.synthetic import synthetic_label_space
    from phanet.models import create_model

    torch.manual_seed(0)
    model = create_model("phanet_mbv2", label_space=synthetic_label_space("kdef5"), input_size=32, pretrained=False)
    path = tmp_path_factory.mktemp("adapt") / "model"
    save_checkpoint(path, model)
    return path


def face_items(count: int, seed: int = 0):
    from phanet.inference.sources import InputItem

    rng = np.random.default_rng(seed)
    return [InputItem(f"face{i}.png", image=rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)) for i in range(count)]


def test_predictor_adapts_to_its_inputs_and_then_answers_the_same_one_face_at_a_time(checkpoint):
    from phanet.inference import Predictor
    from phanet.inference.sources import InputItem

    predictor = Predictor.from_checkpoint(checkpoint, device="cpu", detector=None)
    items = face_items(5)
    before = [f.probabilities for r in predictor.predict_items(items) for f in r.faces]
    broken = InputItem("broken.jpg", error="cannot read image: truncated")
    info = predictor.adapt_batch_norm([*items, broken], prior=0, max_faces=4)
    assert info["inputs"] == 6 and info["faces_found"] == 5 and info["images"] == 4 and info["prior"] == 0
    assert predictor.adaptation == info
    together = [f.probabilities for r in predictor.predict_items(items) for f in r.faces]
    alone = [predictor.predict(item.image)[0].probabilities for item in items]
    assert together != before  # the statistics moved
    for a, b in zip(together, alone):  # and no longer depend on the batch
        assert a == pytest.approx(b, abs=1e-5)
    with pytest.raises(ValueError, match="no face found in the 1 inputs sampled"):
        predictor.adapt_batch_norm([broken])


def test_sample_inputs_decodes_only_evenly_spaced_picks(tmp_path):
    from PIL import Image

    from phanet.inference.sources import evenly_spaced, expand_paths, sample_inputs

    for i in range(10):
        Image.new("RGB", (8, 8), (i, 0, 0)).save(tmp_path / f"{i:02d}.png")
    files = expand_paths([tmp_path])
    picked = list(sample_inputs(files, 1, 10, 3))
    assert [item.file.rsplit("/", 1)[-1] for item in picked] == ["00.png", "04.png", "09.png"]  # 0, 4.5, 9
    assert all(item.image is not None for item in picked)
    assert len(list(sample_inputs(files, 1, 10, 50))) == 10
    assert list(sample_inputs(files, 1, 10, 0)) == []
    assert evenly_spaced(5, 2) == [0, 4] and evenly_spaced(3, 9) == [0, 1, 2] and evenly_spaced(0, 4) == []


def test_phanet_predict_adapt_bn_reports_the_adaptation_and_refuses_a_negative_prior(checkpoint, tmp_path, capsys):
    from PIL import Image

    from phanet.cli import main

    for i, item in enumerate(face_items(4)):
        Image.fromarray(item.image).save(tmp_path / f"face{i}.png")
    out = tmp_path / "out.jsonl"
    args = ["predict", str(tmp_path), "--checkpoint", str(checkpoint), "--no-detect", "--no-progress",
            "--device", "cpu", "-o", str(out)]
    assert main([*args, "--adapt-bn", "--adapt-images", "3"]) == 0
    err = capsys.readouterr().err
    assert "batch-norm statistics adapted to 3 faces from 3 inputs (prior 16 images, " in err
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    assert main([*args, "--adapt-bn", "-1"]) == 1
    assert "--adapt-bn PRIOR must be >= 0" in capsys.readouterr().err
    assert main([*args, "--adapt-bn", "--adapt-depth", "1.5"]) == 1
    assert "--adapt-depth must be in (0, 1], got 1.5" in capsys.readouterr().err


def test_evaluate_checkpoint_adapts_on_the_evaluated_images_and_records_it(checkpoint):
    from phanet.data.registry import load_dataset
    from phanet.engine import evaluate_checkpoint

    index = load_dataset("synthetic", None, subjects=1, poses="kdef5", size=32)
    plain = evaluate_checkpoint(checkpoint, index, None, None, "cpu", 16, 0, progress=False)
    adapted = evaluate_checkpoint(checkpoint, index, None, None, "cpu", 16, 0, progress=False,
                                  adapt_bn=0.0, adapt_images=7)
    assert plain["batch_norm_adaptation"] is None
    assert adapted["batch_norm_adaptation"]["images"] == 7 and adapted["batch_norm_adaptation"]["prior"] == 0.0
    assert adapted["num_samples"] == plain["num_samples"]
