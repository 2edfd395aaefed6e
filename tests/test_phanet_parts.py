"""PhaNet's optional parts and the tools that look inside them: ablation variants per backbone,
residual attention pooling, the gate's temperature and detachment, head learning rates, diagnostics,
and pretrained weights that fail fast offline."""

import numpy as np
import pytest
import torch

from phanet.config import Config
from phanet.diagnostics import attention_entropy, gate_entropy, head_gradient_norms, scale_report
from phanet.engine import build_optimizer, build_task_weighting, fit
from phanet.models import PhaNetConfig, create_model, list_models
from phanet.models.phanet import PhaNet, SpatialAttention
from tests.engine_fixtures import tiny_config, tiny_data


def test_every_ablation_variant_exists_for_the_offline_pretrained_backbone():
    for variant in ("baseline", "mtl", "att", "phanet"):
        assert f"{variant}_effl0" in list_models()
    baseline, mtl, att = (create_model(f"{v}_effl0") for v in ("baseline", "mtl", "att"))
    assert (baseline.config.use_attention, baseline.config.use_pose) == (False, False)
    assert (mtl.config.use_attention, mtl.config.use_pose) == (False, True)
    assert (att.config.use_attention, att.config.scale_fusion) == (True, "mean")
    assert baseline.config.backbone == "efficientnet_lite0"


def test_the_library_default_model_trains_from_weights_that_ship_offline():
    config = Config()
    assert config.model.name == "phanet_effl0" and config.model.pretrained is True


def test_residual_attention_pooling_starts_as_global_average_pooling():
    torch.manual_seed(0)
    features = torch.randn(2, 16, 5, 5)
    residual = SpatialAttention(16, 8, "sigmoid", pooling="residual")
    descriptor, _ = residual(features)
    expected = residual.project(features.mean(dim=(2, 3)))
    assert torch.allclose(descriptor, expected, atol=1e-6)
    # ... and moves away from it once its gain is learned.
    with torch.no_grad():
        residual.residual_gain.fill_(1.0)
    assert not torch.allclose(residual(features)[0], expected, atol=1e-4)


def test_a_detached_gate_sends_no_gradient_into_the_pose_branch():
    images = torch.randn(2, 3, 64, 64)

    def pose_gradient(detach: bool) -> float:
        torch.manual_seed(0)
        model = PhaNet(PhaNetConfig(gate_detach=detach))
        model(images).expression_logits.sum().backward()  # FER loss only: no pose or attention loss
        grad = model.pose_classifier.weight.grad
        return 0.0 if grad is None else float(grad.abs().sum())

    assert pose_gradient(detach=False) > 0
    assert pose_gradient(detach=True) == 0


def test_a_high_gate_temperature_keeps_scale_weights_near_uniform():
    torch.manual_seed(0)
    model = PhaNet(PhaNetConfig(gate_temperature=1e6)).eval()
    with torch.no_grad():
        model.gate.mlp[-1].weight.normal_(std=5.0)  # a gate with strong opinions
        beta = model(torch.randn(3, 3, 64, 64)).scale_weights
    assert torch.allclose(beta, torch.full_like(beta, 1 / 3), atol=1e-4)


def test_invalid_gate_temperature_and_pooling_are_refused_by_name():
    with pytest.raises(ValueError, match="gate_temperature"):
        PhaNetConfig(gate_temperature=0)
    with pytest.raises(ValueError, match="attention_pooling"):
        PhaNetConfig(attention_pooling="max")


def test_heads_get_their_own_learning_rate_and_norms_biases_and_task_weights_no_decay():
    config = tiny_config()
    config.train.lr, config.train.head_lr_mult, config.train.weight_decay = 1e-3, 10.0, 0.05
    model = create_model("phanet_r18", num_expressions=3, num_poses=3)
    weighting = build_task_weighting(model, config)
    optimizer = build_optimizer(model, weighting, config)
    backbone_ids = {id(p) for p in model.backbone.parameters()}
    seen = set()
    for group in optimizer.param_groups:
        for param in group["params"]:
            seen.add(id(param))
            assert group["lr"] == pytest.approx(1e-3 if id(param) in backbone_ids else 1e-2)
            assert group["weight_decay"] == (0.05 if param.ndim > 1 else 0.0)
    assert seen == {id(p) for p in model.parameters()} | {id(p) for p in weighting.parameters()}


def test_attention_entropy_is_one_for_a_uniform_map_and_zero_for_a_single_cell():
    uniform = torch.full((1, 1, 4, 4), 0.5)
    peaked = torch.zeros(1, 1, 4, 4)
    peaked[0, 0, 1, 2] = 1.0
    assert float(attention_entropy(uniform)) == pytest.approx(1.0)
    assert float(attention_entropy(peaked)) == pytest.approx(0.0, abs=1e-6)


def test_gate_entropy_and_scale_report_describe_each_scale_and_pose():
    assert gate_entropy(np.array([[1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]])) == pytest.approx([1.0, 0.0], abs=1e-6)
    arrays = {
        "expression": np.array([0, 1, 1, 2]),
        "pose": np.array([0, 0, 1, 1]),
        "scale_pred": np.array([[0, 2], [1, 1], [1, 0], [0, 2]]),
        "attention_entropy": np.array([[0.9, 0.5]] * 4),
        "scale_weights": np.array([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0], [1.0, 0.0]]),
    }
    report = scale_report(arrays, ["left", "right"])
    assert report["scale_accuracy"] == [0.75, 0.5]
    assert report["attention_entropy"] == pytest.approx([0.9, 0.5])
    assert report["gate_entropy_per_pose"] == pytest.approx({"left": 1.0, "right": 0.0}, abs=1e-6)


def test_head_gradient_norms_cover_every_head_after_backward():
    torch.manual_seed(0)
    model = PhaNet(PhaNetConfig())
    output = model(torch.randn(2, 3, 64, 64))
    (output.expression_logits.sum() + output.pose_logits.sum() + output.scale_logits.sum()).backward()
    norms = head_gradient_norms(model)
    assert set(norms) == {"backbone", "attention", "scale_classifiers", "pose", "gate", "classifier"}
    assert all(value > 0 for value in norms.values())


def test_training_history_records_the_diagnostics_of_every_epoch(tmp_path):
    fit(tiny_config(epochs=1), tmp_path / "run", data=tiny_data(), progress=False, write_report=False)
    import json

    record = json.loads((tmp_path / "run" / "history.json").read_text())[0]
    assert set(record["grad_norms"]) >= {"backbone", "attention", "gate", "pose", "classifier"}
    assert len(record["val_scale_accuracy"]) == 3 and len(record["val_attention_entropy"]) == 3
    assert 0.0 <= record["val_gate_entropy"] <= 1.0
    assert set(record["task_weights"]) == {"fer", "pose", "att0", "att1", "att2"}


def test_pretrained_weights_that_cannot_be_fetched_fail_at_once_with_one_clear_line(monkeypatch, tmp_path):
    import huggingface_hub.constants as hub_constants

    from phanet.models.backbones import create_backbone

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens here
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    offline_before = hub_constants.HF_HUB_OFFLINE
    with pytest.raises(ConnectionError, match=r"resnet18.*unreachable.*phanet_effl0") as err:
        create_backbone("resnet18", num_scales=3, pretrained=True)
    assert "\n" not in str(err.value)
    assert hub_constants.HF_HUB_OFFLINE == offline_before  # offline mode was only for that call


def test_cpu_bf16_autocast_runs_matmuls_in_bf16_only_when_asked():
    from phanet.engine import autocast_for

    a = torch.randn(4, 4)
    with autocast_for(torch.device("cpu"), amp=True, cpu_bf16=True):
        assert (a @ a).dtype == torch.bfloat16
    with autocast_for(torch.device("cpu"), amp=True):
        assert (a @ a).dtype == torch.float32


def test_training_with_cpu_bf16_autocast_gives_finite_losses_and_fp32_weights(tmp_path):
    import json

    config = tiny_config(epochs=1, cpu_amp=True)
    fit(config, tmp_path / "run", data=tiny_data(), progress=False, write_report=False)
    record = json.loads((tmp_path / "run" / "history.json").read_text())[0]
    assert np.isfinite(record["train_loss"])
    from safetensors.torch import load_file

    weights = load_file(tmp_path / "run" / "last.safetensors")
    assert {t.dtype for t in weights.values()} <= {torch.float32, torch.int64}


def test_a_gate_floor_keeps_every_scale_in_the_fusion():
    images = torch.randn(3, 3, 64, 64)
    for floor in (0.5, 1.0):
        torch.manual_seed(0)
        model = PhaNet(PhaNetConfig(gate_floor=floor)).eval()
        with torch.no_grad():
            model.gate.mlp[-1].weight.normal_(std=5.0)  # a gate that would pick one scale
            beta = model(images).scale_weights
        assert torch.allclose(beta.sum(-1), torch.ones(3))
        assert float(beta.min()) >= floor / 3 - 1e-6
    assert torch.allclose(beta, torch.full_like(beta, 1 / 3))  # floor 1: the att_* mean fusion
    with pytest.raises(ValueError, match="gate_floor"):
        PhaNetConfig(gate_floor=1.5)


def test_logit_fusion_mixes_the_scale_classifiers_by_beta_and_has_no_shared_classifier():
    torch.manual_seed(0)
    model = PhaNet(PhaNetConfig(fusion_point="logits")).eval()
    assert not hasattr(model, "classifier")
    out = model(torch.randn(2, 3, 64, 64))
    expected = (out.scale_weights.unsqueeze(-1) * out.scale_logits).sum(dim=1)
    torch.testing.assert_close(out.expression_logits, expected)
    # Mean fusion (the att ablation) fuses the same way: the plain average of the experts' logits.
    att = PhaNet(PhaNetConfig(fusion_point="logits", scale_fusion="mean")).eval()
    att_out = att(torch.randn(2, 3, 64, 64))
    torch.testing.assert_close(att_out.expression_logits, att_out.scale_logits.mean(dim=1))
    with pytest.raises(ValueError, match="fusion_point"):
        PhaNetConfig(fusion_point="features")


def test_a_logit_fusion_model_saves_and_loads_with_its_fusion_point(tmp_path):
    from phanet.checkpoint import load_model, save_checkpoint
    from phanet.data.base import LabelSpace

    torch.manual_seed(0)
    label_space = LabelSpace(("neutral", "happy"))
    model = create_model("phanet_r18", num_expressions=2, num_poses=1, label_space=label_space,
                         input_size=64, fusion_point="logits").eval()
    images = torch.randn(1, 3, 64, 64)
    loaded = load_model(save_checkpoint(tmp_path / "best", model)).eval()
    assert loaded.config.fusion_point == "logits"
    torch.testing.assert_close(loaded(images).expression_logits, model(images).expression_logits)
