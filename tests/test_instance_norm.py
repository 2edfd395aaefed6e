"""Instance normalisation of early batch-norm layers (IBN-Net-a), as forward pre-hooks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from phanet.models.instance_norm import InstanceNormShare, attach_instance_norm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _trained_batch_norm(channels: int) -> nn.BatchNorm2d:
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(channels)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(channels))
        bn.running_var.copy_(torch.rand(channels) * 4 + 0.5)
        bn.weight.copy_(torch.rand(channels) + 0.5)
        bn.bias.copy_(torch.randn(channels))
    return bn


def test_the_hooked_channels_are_instance_normalised_in_eval_mode_and_the_others_batch_normalised():
    bn = _trained_batch_norm(6)
    reference = _trained_batch_norm(6).eval()
    bn.register_forward_pre_hook(InstanceNormShare(3))
    x = torch.randn(4, 6, 7, 7) * 3 + 1
    out = bn.eval()(x)
    part = x[:, :3]
    normed = (part - part.mean(dim=(2, 3), keepdim=True)) / torch.sqrt(
        part.var(dim=(2, 3), unbiased=False, keepdim=True) + bn.eps)
    expected = normed * bn.weight[:3].view(1, 3, 1, 1) + bn.bias[:3].view(1, 3, 1, 1)
    torch.testing.assert_close(out[:, :3], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[:, 3:], reference(x)[:, 3:])
    # each image alone: the answer of an image does not depend on the others in the batch
    torch.testing.assert_close(bn(x[:1]), out[:1])


def test_the_instance_normalised_channels_ignore_an_image_s_brightness_and_contrast_in_training_too():
    bn = _trained_batch_norm(4).train()
    bn.register_forward_pre_hook(InstanceNormShare(2))
    x = torch.randn(8, 4, 9, 9)
    shifted = x * torch.rand(8, 1, 1, 1).add(0.5) + torch.randn(8, 1, 1, 1)
    a, b = bn(x), bn(shifted)
    torch.testing.assert_close(a[:, :2], b[:, :2], atol=1e-3, rtol=1e-3)
    assert not torch.allclose(a[:, 2:], b[:, 2:], atol=1e-2)
    # the layer's running statistics of those channels stay where they were (what it divides out again)
    before = _trained_batch_norm(4)
    torch.testing.assert_close(bn.running_mean[:2], before.running_mean[:2])
    torch.testing.assert_close(bn.running_var[:2], before.running_var[:2], atol=1e-2, rtol=1e-2)


def test_a_phanet_with_instance_norm_keeps_its_weights_and_checkpoint_format(tmp_path):
    from phanet.checkpoint import load_checkpoint, save_checkpoint
    from phanet.data.datasets.synthetic import synthetic_label_space
    from phanet.models import check_model_options, create_model

    space = synthetic_label_space("kdef5")
    torch.manual_seed(0)
    plain = create_model("phanet_effl0", label_space=space, input_size=32, pretrained=False)
    torch.manual_seed(0)
    model = create_model("phanet_effl0", label_space=space, input_size=32, pretrained=False, instance_norm=0.5)
    # the stem's batch norm and the first of every block in stages 1-3 (blocks 0, 1, 2)
    assert model.instance_norm_layers == ["bn1", "blocks.0.0.bn1", "blocks.1.0.bn1", "blocks.1.1.bn1",
                                          "blocks.2.0.bn1", "blocks.2.1.bn1"]
    assert model.state_dict().keys() == plain.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), plain.state_dict().values()))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ours = model.eval()(x).expression_logits
        assert not torch.allclose(ours, plain.eval()(x).expression_logits)
        # two contrasts of one image move the stem's normalised channels not at all (the stem's convolution
        # is linear and has no bias; a brightness shift would also meet its zero padding at the borders)
        stem = {}
        model.backbone.bn1.register_forward_hook(lambda _m, _i, out: stem.setdefault(len(stem), out))
        model(x * 4), model(x * 2)
        half = model.backbone.bn1.num_features // 2
        torch.testing.assert_close(stem[0][:, :half], stem[1][:, :half], atol=1e-3, rtol=1e-3)
        assert not torch.allclose(stem[0][:, half:], stem[1][:, half:], atol=1e-2)
    save_checkpoint(tmp_path / "m", model)
    loaded, meta = load_checkpoint(tmp_path / "m")
    assert meta["model"]["architecture"]["instance_norm"] == 0.5
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x).expression_logits, ours)
    with pytest.raises(ValueError, match="instance_norm=1.5"):
        check_model_options("phanet_effl0", {"instance_norm": 1.5})
    with pytest.raises(ValueError, match="share=0"):
        attach_instance_norm(model.backbone, 3, 0.0)
    with pytest.raises(ValueError, match="out of range"):
        create_model("phanet_r18", label_space=space, input_size=32, pretrained=False, instance_norm=0.5,
                     instance_norm_stages=9)


def test_instance_norm_finds_a_resnet_stem_and_its_blocks():
    from phanet.models.backbones import create_backbone
    from phanet.models.instance_norm import instance_norm_layers

    backbone = create_backbone("resnet18", 3, pretrained=False)
    names = {id(m): name for name, m in backbone.named_modules()}
    found = [names[id(m)] for m in instance_norm_layers(backbone, 3)]
    assert found[0] == "bn1" and "layer1.0.bn1" in found and "layer2.1.bn1" in found
    assert not any(name.startswith("layer3") for name in found)
