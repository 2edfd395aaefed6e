"""Every registered model: forward/backward on tiny inputs, shapes, gradients, determinism."""

import pytest
import torch

from phanet.losses import LearnedTaskWeights, phanet_loss, task_names_for
from phanet.models import PhaNetConfig, create_model, list_models
from phanet.models.phanet import hard_top_k

NUM_EXPRESSIONS, NUM_POSES = 7, 5
EXPECTED_MODELS = {
    "phanet_r18", "phanet_r50", "phanet_vgg16bn", "phanet_effl0", "baseline_r18", "mtl_r18", "att_r18",
}


def build(name, **kw):
    torch.manual_seed(0)
    return create_model(name, num_expressions=NUM_EXPRESSIONS, num_poses=NUM_POSES, **kw)


def test_registry_holds_the_paper_variants_and_the_ablations():
    assert EXPECTED_MODELS <= set(list_models())


def test_unknown_model_name_raises_with_the_registered_names():
    with pytest.raises(KeyError, match="phanet_r18"):
        create_model("phanet_r19")


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
@pytest.mark.parametrize("size", [112, 64])
def test_every_model_runs_forward_and_backward_and_every_parameter_gets_a_gradient(name, size):
    model = build(name).train()
    images = torch.randn(2, 3, size, size)
    expression = torch.tensor([1, 3])
    pose = torch.tensor([0, 4])
    output = model(images, return_attention=True)
    assert output.expression_logits.shape == (2, NUM_EXPRESSIONS)

    has_pose = output.pose_logits is not None
    num_scales = 0 if output.scale_logits is None else output.scale_logits.shape[1]
    weighting = LearnedTaskWeights(task_names_for(num_scales, has_pose))
    loss = phanet_loss(output, expression, pose, weighting).total
    assert torch.isfinite(loss)
    loss.backward()
    params = dict(model.named_parameters())
    assert [n for n, p in params.items() if p.grad is None] == []
    # timm zero-initialises each residual block's last BN scale, so the convs before it get an exact-zero
    # gradient on the first step; every head parameter must get a real (non-zero) one.
    dead_heads = [n for n, p in params.items() if not n.startswith("backbone.") and not p.grad.abs().sum() > 0]
    assert dead_heads == []
    assert all(p.grad is not None for p in weighting.parameters())


@pytest.mark.parametrize("name", ["phanet_r18", "att_r18", "phanet_effl0"])
def test_attention_models_return_scale_weights_as_a_distribution_and_maps_in_range(name):
    model = build(name).eval()
    with torch.no_grad():
        out = model(torch.randn(3, 3, 112, 112), return_attention=True)
    assert out.pose_logits.shape == (3, NUM_POSES)
    assert out.scale_weights.shape == (3, 3)
    assert torch.all(out.scale_weights >= 0)
    torch.testing.assert_close(out.scale_weights.sum(-1), torch.ones(3))
    assert out.scale_logits.shape == (3, 3, NUM_EXPRESSIONS)
    strides = model.backbone.feature_info.reduction()
    for attention, stride in zip(out.attention_maps, strides):
        assert attention.shape[:2] == (3, 1)
        assert attention.shape[-1] == -(-112 // stride)
        assert attention.min() >= 0 and attention.max() <= 1


def test_attention_maps_are_only_returned_when_asked():
    model = build("phanet_r18").eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 64, 64)).attention_maps is None


def test_baselines_have_no_pose_or_attention_outputs_where_the_ablation_removes_them():
    with torch.no_grad():
        base = build("baseline_r18").eval()(torch.randn(2, 3, 64, 64))
        mtl = build("mtl_r18").eval()(torch.randn(2, 3, 64, 64))
    assert base.pose_logits is None and base.scale_weights is None
    assert mtl.pose_logits.shape == (2, NUM_POSES) and mtl.scale_weights is None


def test_mean_fusion_gives_uniform_scale_weights():
    with torch.no_grad():
        out = build("att_r18").eval()(torch.randn(2, 3, 64, 64))
    torch.testing.assert_close(out.scale_weights, torch.full((2, 3), 1 / 3))


def test_hard_selection_keeps_top_k_scales_and_renormalises():
    weights = torch.tensor([[0.2, 0.5, 0.3], [0.6, 0.1, 0.3]])
    torch.testing.assert_close(hard_top_k(weights, 1), torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]))
    two = hard_top_k(weights, 2)
    torch.testing.assert_close(two, torch.tensor([[0.0, 0.625, 0.375], [0.6 / 0.9, 0.0, 0.3 / 0.9]]))
    model = build("phanet_r18", selection="hard", top_k=2).eval()
    with torch.no_grad():
        out = model(torch.randn(4, 3, 64, 64))
    assert ((out.scale_weights > 0).sum(-1) == 2).all()


def test_same_seed_builds_identical_models_and_outputs():
    a, b = build("phanet_r18").eval(), build("phanet_r18").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(a(x).expression_logits, b(x).expression_logits, rtol=0, atol=0)


def test_invalid_config_choices_fail_with_the_field_name():
    with pytest.raises(ValueError, match="selection"):
        PhaNetConfig(selection="sparse")
    with pytest.raises(ValueError, match="pose-adaptive"):
        PhaNetConfig(use_pose=False)


def test_channel_counts_come_from_the_backbone():
    model = build("phanet_r50")
    assert [a.project[0].in_features for a in model.attention] == [512, 1024, 2048]


@pytest.mark.parametrize("name", ["phanet_r18", "baseline_r18", "mtl_r18", "att_r18"])
@pytest.mark.parametrize("options", [{}, {"fusion_point": "logits"}, {"gate_input": "embedding"}])
def test_label_indexed_tensors_are_exactly_the_ones_sized_by_the_labels(name, options):
    """What fine-tuning maps by class name (phanet.finetune): every expression-indexed tensor has one row
    per class, and only the pose layers depend on the pose bins, in every ablation variant."""
    try:
        model = build(name, pretrained=False, **options)
    except (TypeError, ValueError):
        pytest.skip(f"{name} has no option {options}")
    labelled = model.label_indexed_tensors()
    state = model.state_dict()
    assert labelled["expression"], "every model classifies expressions"
    for key in labelled["expression"]:
        assert state[key].shape[0] == NUM_EXPRESSIONS, key
    # a model built with one more pose bin differs exactly in the pose-indexed tensors
    more_bins = create_model(name, num_expressions=NUM_EXPRESSIONS, num_poses=NUM_POSES + 1, pretrained=False,
                             **options).state_dict()
    differ = {key for key, value in state.items() if value.shape != more_bins[key].shape}
    assert differ == labelled["pose"]
