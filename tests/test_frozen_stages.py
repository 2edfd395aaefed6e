"""Frozen early stages (``model.options.frozen_stages``): pretrained weights and batch-norm statistics kept."""

from __future__ import annotations

import pytest
import torch

from phanet.models.frozen_stages import early_layers

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _names(backbone, modules) -> set[str]:
    names = {id(m): name for name, m in backbone.named_modules()}
    return {names[id(m)] for m in modules}


def test_early_layers_run_from_the_stem_through_the_last_frozen_stage():
    from phanet.models.backbones import create_backbone

    efficient = create_backbone("efficientnet_lite0", 3, pretrained=False)
    names = _names(efficient, early_layers(efficient, 2))
    assert {"conv_stem", "bn1", "blocks.0.0.conv_dw", "blocks.1.1.bn3"} <= names
    assert not any(name.startswith(("blocks.2", "blocks.6")) for name in names)
    resnet = create_backbone("resnet18", 3, pretrained=False)
    names = _names(resnet, early_layers(resnet, 2))
    assert {"conv1", "bn1", "layer1.1.conv2"} <= names and not any(n.startswith("layer2") for n in names)
    with pytest.raises(ValueError, match="stages=9 is out of range"):
        early_layers(resnet, 9)


def test_training_leaves_the_frozen_stages_as_they_started_and_the_checkpoint_records_them(tmp_path):
    from engine_fixtures import tiny_config, tiny_data

    from phanet.checkpoint import load_checkpoint
    from phanet.engine import fit

    config = tiny_config("phanet_r18", epochs=1)
    config.model.options = {"frozen_stages": 2}
    torch.manual_seed(0)
    fit(config, tmp_path / "run", data=tiny_data(), progress=False, write_report=False)
    trained, meta = load_checkpoint(tmp_path / "run" / "last")
    assert meta["model"]["architecture"]["frozen_stages"] == 2
    # the same architecture with the same seed's initial weights: what the run started from
    torch.manual_seed(0)
    from phanet.models import create_model

    start = create_model("phanet_r18", label_space=trained.label_space, input_size=32, frozen_stages=2)
    frozen = _names(trained.backbone, early_layers(trained.backbone, 2))
    begin, end = start.backbone.state_dict(), trained.backbone.state_dict()
    kept = [key for key in end if key.rsplit(".", 1)[0] in frozen]
    assert any(key.endswith("running_mean") for key in kept) and any(key.startswith("conv1") for key in kept)
    for key in kept:
        if not key.endswith("num_batches_tracked"):
            torch.testing.assert_close(end[key], begin[key], msg=f"{key} changed in training")
    assert not torch.equal(end["layer3.0.conv1.weight"], begin["layer3.0.conv1.weight"])  # the rest learned
    trained.train()
    assert not trained.backbone.bn1.training and trained.backbone.layer3[0].bn1.training
    grouped = {id(p) for group in trained.parameter_groups() for p in group["params"]}
    assert id(trained.backbone.conv1.weight) not in grouped and id(trained.backbone.layer3[0].conv1.weight) in grouped


def test_frozen_stages_refuses_a_bad_count():
    from phanet.models import check_model_options, create_model

    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match=f"frozen_stages={bad}"):
            check_model_options("phanet_effl0", {"frozen_stages": bad})
    with pytest.raises(ValueError, match="out of range"):
        create_model("phanet_r18", num_expressions=3, num_poses=3, input_size=32, frozen_stages=6)
