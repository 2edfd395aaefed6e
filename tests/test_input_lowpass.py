"""The fixed input low-pass (``model.options.input_lowpass``): block averages in front of the backbone."""

from __future__ import annotations

import pytest
import torch

from phanet.models.phanet import low_pass

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_low_pass_keeps_the_size_and_a_flat_image_and_removes_a_one_pixel_checkerboard():
    flat = torch.full((1, 3, 8, 8), 0.7)
    torch.testing.assert_close(low_pass(flat, 2), flat)
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2
    checker = checker.float().expand(2, 3, 8, 8)
    out = low_pass(checker, 2)
    assert out.shape == checker.shape
    torch.testing.assert_close(out, torch.full_like(checker, 0.5))  # finest detail gone, its mean kept


def test_low_pass_keeps_coarse_structure_and_handles_a_size_the_block_does_not_divide():
    image = torch.zeros(1, 1, 9, 9)
    image[..., :, 5:] = 1.0  # an edge: still there after the low-pass, only softer
    out = low_pass(image, 3)
    assert out.shape == image.shape
    assert out[..., 0].max() < 0.2 and out[..., -1].min() > 0.8


def test_a_phanet_with_input_lowpass_sees_block_averages_and_saves_the_option(tmp_path):
    from phanet.checkpoint import load_checkpoint, save_checkpoint
    from phanet.data.datasets.synthetic import synthetic_label_space
    from phanet.models import check_model_options, create_model

    space = synthetic_label_space("kdef5")
    torch.manual_seed(0)
    plain = create_model("phanet_effl0", label_space=space, input_size=32, pretrained=False)
    torch.manual_seed(0)
    blocky = create_model("phanet_effl0", label_space=space, input_size=32, pretrained=False, input_lowpass=2)
    assert blocky.state_dict().keys() == plain.state_dict().keys()  # no new weights
    torch.manual_seed(1)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        plain.eval(), blocky.eval()
        torch.testing.assert_close(blocky(x).expression_logits, plain(low_pass(x, 2)).expression_logits)
        assert not torch.allclose(blocky(x).expression_logits, plain(x).expression_logits)
        # two inputs with the same block averages are the same input to it
        detail = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(16, 16)
        torch.testing.assert_close(blocky(x + detail).expression_logits, blocky(x).expression_logits,
                                   atol=1e-5, rtol=1e-5)
    save_checkpoint(tmp_path / "m", blocky)
    loaded, meta = load_checkpoint(tmp_path / "m")
    assert meta["model"]["architecture"]["input_lowpass"] == 2 and loaded.config.input_lowpass == 2
    with pytest.raises(ValueError, match="input_lowpass=0"):
        check_model_options("phanet_effl0", {"input_lowpass": 0})
    with pytest.raises(ValueError, match="input_lowpass=1.5"):
        check_model_options("phanet_effl0", {"input_lowpass": 1.5})
