"""Loss functions and the learned task weighting."""

import math

import pytest
import torch

from phanet.losses import (
    FixedTaskWeights,
    LearnedTaskWeights,
    attention_losses,
    gate_balance_penalty,
    phanet_loss,
    pose_loss,
    task_names_for,
)
from phanet.models import PhaNetOutput


def test_learned_task_weights_compute_uncertainty_weighted_sum():
    weighting = LearnedTaskWeights(["a", "b"])
    with torch.no_grad():
        weighting.log_vars.copy_(torch.tensor([0.5, -1.0]))
    total = weighting({"a": torch.tensor(2.0), "b": torch.tensor(3.0)}).detach()
    expected = math.exp(-0.5) * 2 + 0.5 + math.exp(1.0) * 3 - 1.0
    assert abs(total.item() - expected) < 1e-5


def test_learned_task_weights_receive_gradients():
    weighting = LearnedTaskWeights(["fer", "pose"])
    weighting({"fer": torch.tensor(1.5), "pose": torch.tensor(0.2)}).backward()
    assert weighting.log_vars.grad is not None and torch.all(weighting.log_vars.grad != 0)


def test_fixed_weights_scale_each_task():
    weighting = FixedTaskWeights(["fer", "pose"], {"pose": 0.5})
    assert float(weighting({"fer": torch.tensor(2.0), "pose": torch.tensor(4.0)})) == 4.0


def test_unknown_pose_labels_contribute_nothing_to_the_pose_loss():
    logits = torch.randn(4, 5, requires_grad=True)
    partial, has = pose_loss(logits, torch.tensor([2, -1, -1, 4]))
    only_known, _ = pose_loss(logits[[0, 3]], torch.tensor([2, 4]))
    assert has
    torch.testing.assert_close(partial, only_known)


def test_a_batch_with_no_known_pose_gives_zero_loss_without_nan():
    logits = torch.randn(3, 5, requires_grad=True)
    loss, has = pose_loss(logits, torch.full((3,), -1))
    assert not has and loss.item() == 0.0
    loss.backward()
    assert torch.all(torch.isfinite(logits.grad))


def test_phanet_loss_leaves_out_the_pose_task_when_no_pose_is_known():
    out = PhaNetOutput(
        expression_logits=torch.randn(2, 7, requires_grad=True),
        pose_logits=torch.randn(2, 5, requires_grad=True),
        scale_weights=torch.full((2, 3), 1 / 3),
        scale_logits=torch.randn(2, 3, 7, requires_grad=True),
    )
    weighting = LearnedTaskWeights(task_names_for(3, True))
    result = phanet_loss(out, torch.tensor([0, 1]), torch.tensor([-1, -1]), weighting)
    assert set(result.components) == {"fer", "att0", "att1", "att2"}
    result.total.backward()
    assert weighting.log_vars.grad[weighting.task_names.index("pose")] == 0
    assert torch.isfinite(result.total)


def test_attention_losses_give_one_cross_entropy_per_scale():
    scale_logits = torch.randn(4, 3, 7)
    target = torch.tensor([0, 1, 2, 3])
    losses = attention_losses(scale_logits, target)
    for s in range(3):
        torch.testing.assert_close(losses[s], torch.nn.functional.cross_entropy(scale_logits[:, s], target))


def test_gate_balance_penalty_is_zero_for_even_use_of_scales_and_one_for_a_collapsed_gate():
    assert float(gate_balance_penalty(torch.full((4, 3), 1 / 3))) == pytest.approx(0.0, abs=1e-6)
    collapsed = torch.tensor([[0.0, 0.0, 1.0]] * 4)
    assert float(gate_balance_penalty(collapsed)) == pytest.approx(1.0, abs=1e-4)
    # Sharp per sample but each scale used by a third of the batch: no penalty (a pose-dependent choice).
    assert float(gate_balance_penalty(torch.eye(3))) == pytest.approx(0.0, abs=1e-6)


def test_phanet_loss_adds_the_gate_balance_penalty_only_when_weighted():
    out = PhaNetOutput(
        expression_logits=torch.randn(2, 7),
        pose_logits=torch.randn(2, 5),
        scale_weights=torch.tensor([[0.0, 0.1, 0.9], [0.0, 0.2, 0.8]]),
        scale_logits=torch.randn(2, 3, 7),
    )
    weighting = FixedTaskWeights(task_names_for(3, True))
    target, pose = torch.tensor([0, 1]), torch.tensor([0, 1])
    plain = phanet_loss(out, target, pose, weighting)
    balanced = phanet_loss(out, target, pose, weighting, gate_balance=2.0)
    assert "gate_balance" not in plain.components
    penalty = balanced.components["gate_balance"]
    assert 0 < float(penalty) < 1
    torch.testing.assert_close(balanced.total, plain.total + 2.0 * penalty)
