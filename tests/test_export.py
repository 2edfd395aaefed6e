"""ONNX export: dynamic batch, metadata, and parity with PyTorch in onnxruntime (<= 1e-4)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import phanet  # noqa: E402
from phanet.cli import main  # noqa: E402
from phanet.data.base import SEVEN_EXPRESSIONS, LabelSpace, PoseBin  # noqa: E402
from phanet.export import export_onnx  # noqa: E402

POSES = tuple(PoseBin(f"yaw{yaw:+d}", float(yaw), 0.0) for yaw in (-90, -45, 0, 45, 90))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """Random-init 64x64 checkpoints: full PhaNet (hard top-1 scale selection) and a baseline without pose."""
    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    full = phanet.create_model("phanet_r18", label_space=LabelSpace(SEVEN_EXPRESSIONS, POSES), input_size=64,
                               selection="hard")
    phanet.save_checkpoint(root / "phanet", full)
    baseline = phanet.create_model("baseline_r18", label_space=LabelSpace(SEVEN_EXPRESSIONS), input_size=64)
    phanet.save_checkpoint(root / "baseline", baseline)
    return {"phanet": root / "phanet", "baseline": root / "baseline"}


@pytest.fixture(scope="module")
def exported(checkpoints, tmp_path_factory) -> tuple[Path, dict]:
    """The full PhaNet checkpoint exported once (with the built-in parity check): ``(path, result)``."""
    out = tmp_path_factory.mktemp("onnx") / "phanet.onnx"
    return out, export_onnx(checkpoints["phanet"], out)


def test_exported_phanet_matches_pytorch_within_1e_4_on_another_batch_size(checkpoints, exported):
    out, result = exported
    assert result["outputs"] == ["expression_logits", "pose_logits", "scale_weights"]
    assert result["max_abs_diff"] <= 1e-4

    # Independently of the built-in check: batch of 5 (exported with 2) against the loaded model.
    model = phanet.load_model(checkpoints["phanet"])
    images = torch.randn(5, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    expression, pose, weights = session.run(None, {"image": images.numpy()})
    with torch.inference_mode():
        reference = model(images)
    assert expression.shape == (5, 7) and pose.shape == (5, 5) and weights.shape == (5, 3)
    assert np.abs(expression - reference.expression_logits.numpy()).max() <= 1e-4
    assert np.abs(pose - reference.pose_logits.numpy()).max() <= 1e-4
    assert np.abs(weights - reference.scale_weights.numpy()).max() <= 1e-4


def test_exported_model_carries_labels_and_preprocessing_in_its_metadata(exported):
    out, _ = exported
    metadata = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert json.loads(metadata["label_space"])["expressions"] == list(SEVEN_EXPRESSIONS)
    assert metadata["input_size"] == "64" and len(json.loads(metadata["mean"])) == 3
    batch_dim = onnx.load(str(out)).graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param == "batch"


def test_a_baseline_without_pose_branch_exports_its_expression_logits_only(checkpoints, tmp_path):
    result = export_onnx(checkpoints["baseline"], tmp_path / "baseline.onnx")
    assert result["outputs"] == ["expression_logits"] and result["max_abs_diff"] <= 1e-4


def test_a_phanet_with_instance_norm_exports_its_per_image_normalisation(tmp_path):
    # the instance norm is a forward pre-hook on batch-norm layers: the trace must carry it
    torch.manual_seed(0)
    model = phanet.create_model("phanet_r18", label_space=LabelSpace(SEVEN_EXPRESSIONS, POSES), input_size=64,
                                instance_norm=0.5)
    phanet.save_checkpoint(tmp_path / "ibn", model)
    result = export_onnx(tmp_path / "ibn", tmp_path / "ibn.onnx")
    assert result["max_abs_diff"] <= 1e-4
    session = ort.InferenceSession(str(tmp_path / "ibn.onnx"), providers=["CPUExecutionProvider"])
    images = torch.randn(3, 3, 64, 64) * 3  # another batch size and contrast than the built-in check's
    with torch.inference_mode():
        reference = model.eval()(images).expression_logits.numpy()
    assert np.abs(session.run(None, {"image": images.numpy()})[0] - reference).max() <= 1e-4


def test_a_phanet_with_input_lowpass_exports_its_block_average(tmp_path):
    torch.manual_seed(0)
    model = phanet.create_model("phanet_r18", label_space=LabelSpace(SEVEN_EXPRESSIONS, POSES), input_size=64,
                                input_lowpass=2)
    phanet.save_checkpoint(tmp_path / "lowpass", model)
    assert export_onnx(tmp_path / "lowpass", tmp_path / "lowpass.onnx")["max_abs_diff"] <= 1e-4


def test_export_onnx_command_runs_the_parity_check_and_prints_the_result(checkpoints, tmp_path, capsys):
    out = tmp_path / "cli.onnx"
    code = main(["export", "onnx", "--checkpoint", str(checkpoints["baseline"]), "--out", str(out)])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and out.exists() and result["max_abs_diff"] <= 1e-4


def test_export_fails_loudly_when_parity_is_not_met(checkpoints, tmp_path, monkeypatch):
    import phanet.export

    monkeypatch.setattr(phanet.export, "onnx_parity", lambda *args: {"expression_logits": 0.25})
    with pytest.raises(RuntimeError, match="differs from PyTorch by 0.25"):
        export_onnx(checkpoints["baseline"], tmp_path / "broken.onnx")
