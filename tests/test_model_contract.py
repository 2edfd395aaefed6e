"""One model contract: a model carries its name, label space and data config from construction,
checkpoints store them, and every consumer reads them from there."""

from __future__ import annotations

import pytest
import torch

from phanet.checkpoint import load_checkpoint, save_checkpoint
from phanet.crop import crop_spec
from phanet.data import SEVEN_EXPRESSIONS, LabelSpace, PoseBin
from phanet.data.transforms import FaceTransform
from phanet.models import PhaNet, PhaNetConfig, create_model
from phanet.models.contract import ModelDataConfig, normalise

POSES = tuple(PoseBin(f"yaw{y:+d}", float(y)) for y in (-45, 0, 45))
SPACE = LabelSpace(SEVEN_EXPRESSIONS, POSES)


def test_create_model_sets_name_label_space_and_data_config_at_construction():
    model = create_model("phanet_effl0", label_space=SPACE, input_size=48, crop=crop_spec(0.1))
    assert model.model_name == "phanet_effl0" and model.label_space == SPACE
    assert model.config.num_poses == 3 and model.config.num_expressions == 7
    assert model.data_config.input_size == 48 and model.data_config.crop["fit"] == "eye_mouth"
    assert model.data_config.mean == model.mean == (0.5, 0.5, 0.5)  # EfficientNet-Lite0's own normalisation
    pose_less = create_model("baseline_r18", label_space=LabelSpace(SEVEN_EXPRESSIONS), input_size=32)
    assert pose_less.config.num_poses == 1  # a 1-bin head: the architecture does not change with the dataset


def test_the_model_names_its_tasks_and_scales():
    assert create_model("phanet_r18", label_space=SPACE).task_names == ["fer", "pose", "att0", "att1", "att2"]
    assert create_model("phanet_r18", label_space=SPACE).num_scales == 3
    baseline = create_model("baseline_r18", label_space=SPACE)
    assert baseline.task_names == ["fer"] and baseline.num_scales == 0


def test_a_label_space_that_disagrees_with_the_architecture_is_refused():
    with pytest.raises(ValueError, match="names 7 expressions, the model has 6"):
        create_model("phanet_r18", label_space=SPACE, num_expressions=6)


def test_a_directly_built_phanet_saves_and_loads_through_the_generic_builder(tmp_path):
    config = PhaNetConfig(backbone="efficientnet_lite0", num_expressions=7, num_poses=3, num_scales=2)
    model = PhaNet(config, label_space=SPACE, input_size=40).eval()
    save_checkpoint(tmp_path / "direct", model)
    loaded, meta = load_checkpoint(tmp_path / "direct")
    assert meta["model"]["name"] == "phanet" and loaded.config == config
    assert loaded.data_config == model.data_config and loaded.label_space == SPACE
    x = torch.randn(2, 3, 40, 40)
    with torch.no_grad():
        assert torch.allclose(loaded(x).expression_logits, model(x).expression_logits)


def test_a_model_without_a_label_space_cannot_be_saved_and_the_error_says_how(tmp_path):
    model = create_model("baseline_r18", num_expressions=7, num_poses=5)
    with pytest.raises(ValueError, match=r"no label space; build it with create_model\(name, label_space=...\)"):
        save_checkpoint(tmp_path / "m", model)


def test_checkpoints_store_the_data_config_and_loading_restores_it(tmp_path):
    model = create_model("baseline_effl0", label_space=SPACE, input_size=36, crop=crop_spec(0.2, "lsq5"))
    save_checkpoint(tmp_path / "m", model)
    loaded, meta = load_checkpoint(tmp_path / "m")
    assert ModelDataConfig.from_meta(meta) == model.data_config == loaded.data_config
    assert meta["crop"]["padding"] == 0.2 and meta["input_size"] == 36


def test_parameter_groups_decay_only_matrices_and_run_heads_at_their_multiplier():
    model = create_model("phanet_r18", label_space=SPACE)
    groups = model.parameter_groups(head_lr_mult=5.0)
    assert sum(len(g["params"]) for g in groups) == len([p for p in model.parameters() if p.requires_grad])
    for group in groups:
        assert all((p.ndim > 1) == group["decay"] for p in group["params"])
        assert group["lr_mult"] == (1.0 if group["part"] == "backbone" else 5.0)
    backbone = {id(p) for p in model.backbone.parameters()}
    assert all((id(p) in backbone) == (g["part"] == "backbone") for g in groups for p in g["params"])


def test_one_normalise_for_transforms_and_predictor():
    images = torch.rand(2, 3, 8, 8)
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    expected = (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(normalise(images, mean, std), expected, atol=1e-6)
    transform = FaceTransform.for_model(ModelDataConfig(8, mean, std))
    pixels = (images[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    tensor, _ = transform(pixels)
    assert torch.allclose(tensor, normalise(torch.from_numpy(pixels).permute(2, 0, 1).float() / 255, mean, std))


def test_data_config_refuses_impossible_values():
    with pytest.raises(ValueError, match="3 values"):
        ModelDataConfig(32, (0.5, 0.5), (0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="positive"):
        ModelDataConfig(32, (0.5,) * 3, (0.5, 0.0, 0.5))
    with pytest.raises(ValueError, match="at least 8"):
        ModelDataConfig(4)
