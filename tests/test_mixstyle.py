"""MixStyle: feature statistics mixed in training only, after the backbone's early stages."""

from __future__ import annotations

import pytest
import torch

from phanet.models.backbones import early_stage_modules
from phanet.models.mixstyle import MixStyle

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_mixstyle_is_the_identity_in_eval_mode_and_with_probability_zero():
    x = torch.randn(4, 3, 5, 5)
    assert torch.equal(MixStyle(p=1.0).eval()(x), x)
    assert torch.equal(MixStyle(p=0.0).train()(x), x)
    assert torch.equal(MixStyle(p=1.0).train()(x[:1]), x[:1])  # one image has no other to mix with


def test_mixstyle_gives_each_image_a_mix_of_two_images_channel_statistics_and_keeps_its_content():
    torch.manual_seed(0)
    x = torch.randn(6, 4, 8, 8) * torch.rand(6, 4, 1, 1) * 3 + torch.randn(6, 4, 1, 1) * 2
    out = MixStyle(p=1.0, alpha=0.1).train()(x)
    mean, std = x.mean(dim=(2, 3)), x.std(dim=(2, 3), unbiased=False)
    out_mean, out_std = out.mean(dim=(2, 3)), out.std(dim=(2, 3), unbiased=False)
    assert not torch.allclose(out, x)
    for i in range(6):
        # out_mean[i] = w * mean[i] + (1 - w) * mean[j] for one weight w in [0, 1] and one image j
        found = False
        for j in range(6):
            span = mean[j] - mean[i]
            w = ((out_mean[i] - mean[i]) * span).sum() / span.pow(2).sum().clamp_min(1e-12)
            if torch.allclose(out_mean[i], mean[i] + w * span, atol=1e-4) and -1e-4 <= w <= 1 + 1e-4:
                assert torch.allclose(out_std[i], std[i] + w * (std[j] - std[i]), atol=1e-3)
                found = True
        assert found
        # the normalised content is the image's own
        a = (x[i] - x[i].mean(dim=(1, 2), keepdim=True)) / x[i].std(dim=(1, 2), unbiased=False, keepdim=True)
        b = (out[i] - out_mean[i][:, None, None]) / out_std[i][:, None, None]
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)


def test_mixstyle_refuses_bad_settings():
    with pytest.raises(ValueError, match="p=1.5"):
        MixStyle(p=1.5)
    with pytest.raises(ValueError, match="alpha=0"):
        MixStyle(alpha=0)


def test_a_phanet_with_mixstyle_hooks_its_early_stages_and_saves_the_same_weights(tmp_path):
    from phanet.checkpoint import load_checkpoint, save_checkpoint
    from phanet.data.datasets.synthetic import synthetic_label_space
    from phanet.models import check_model_options, create_model

    space = synthetic_label_space("kdef5")
    torch.manual_seed(0)
    plain = create_model("phanet_effl0", label_space=space, input_size=32, pretrained=False)
    torch.manual_seed(0)
    mixed = create_model("phanet_effl0", label_space=space, input_size=32, pretrained=False, mixstyle=0.5)
    assert len(mixed.mixstyle) == 3 and not hasattr(plain, "mixstyle")
    stages = early_stage_modules(mixed.backbone, 3)
    assert stages == [mixed.backbone.blocks[0], mixed.backbone.blocks[1], mixed.backbone.blocks[2]]
    assert mixed.state_dict().keys() == plain.state_dict().keys()  # nothing new to save or load
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(mixed.eval()(x).expression_logits, plain.eval()(x).expression_logits)
    mixed.train()
    assert all(m.training for m in mixed.mixstyle)
    save_checkpoint(tmp_path / "m", mixed)
    loaded, meta = load_checkpoint(tmp_path / "m")
    assert meta["model"]["architecture"]["mixstyle"] == 0.5 and len(loaded.mixstyle) == 3
    with pytest.raises(ValueError, match="mixstyle=2"):
        check_model_options("phanet_effl0", {"mixstyle": 2})
    with pytest.raises(ValueError, match="out of range"):
        create_model("phanet_r18", label_space=space, input_size=32, pretrained=False, mixstyle=0.5, mixstyle_stages=9)
