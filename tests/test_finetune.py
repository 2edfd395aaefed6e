"""Fine-tuning from a checkpoint (train.init_from, phanet.finetune): what is copied, what is mapped by
class name, what starts fresh, and how a run records it."""

from __future__ import annotations

import json

import pytest
import torch
from engine_fixtures import EXPRESSIONS, POSES, tiny_config, tiny_data

from phanet.checkpoint import checkpoint_paths, load_checkpoint, save_checkpoint
from phanet.cli import build_parser
from phanet.data.base import LabelSpace, PoseBin
from phanet.engine import fit
from phanet.finetune import init_from_checkpoint
from phanet.models import create_model

MODEL = "phanet_mbv2"  # the smallest PhaNet


def _model(expressions=EXPRESSIONS, poses=POSES, name: str = MODEL, seed: int = 0):
    torch.manual_seed(seed)
    return create_model(name, label_space=LabelSpace(tuple(expressions), tuple(poses)), input_size=32,
                        pretrained=False)


def _saved(tmp_path, **kw):
    model = _model(seed=1, **kw)
    return model, save_checkpoint(tmp_path / "source", model.eval(), config={})


def test_same_labels_copy_every_tensor(tmp_path):
    source, path = _saved(tmp_path)
    target = _model(seed=2)
    record = init_from_checkpoint(target, path)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key
    assert record["fresh"] == [] and record["reordered"] == 0
    assert record["copied"] == len(source.state_dict())
    assert record["weights_sha256"] == json.loads(checkpoint_paths(path)[1].read_text())["weights_sha256"]


def test_classifier_rows_follow_class_names_and_an_unknown_class_starts_fresh(tmp_path):
    source, path = _saved(tmp_path)  # neutral, happy, sad
    target = _model(expressions=("happy", "neutral", "contempt", "sad"), seed=2)
    initial = {k: v.clone() for k, v in target.state_dict().items()}
    record = init_from_checkpoint(target, path)
    expression_tensors = target.label_indexed_tensors()["expression"]
    assert "classifier.weight" in expression_tensors and "scale_classifiers.0.bias" in expression_tensors
    for key in expression_tensors:
        got, src = target.state_dict()[key], source.state_dict()[key]
        assert torch.equal(got[0], src[1]) and torch.equal(got[1], src[0]) and torch.equal(got[3], src[2]), key
        assert torch.equal(got[2], initial[key][2]), f"{key}: contempt was never learned, its row stays fresh"
    assert record["reordered"] == len(expression_tensors)
    assert torch.equal(target.state_dict()["pose_classifier.weight"], source.state_dict()["pose_classifier.weight"])


def test_other_pose_bins_leave_the_pose_layers_fresh_and_copy_the_rest(tmp_path):
    source, path = _saved(tmp_path)
    other_bins = tuple(PoseBin(f"pitch{p:+d}", 0.0, float(p)) for p in (-20, 0, 20))  # as many bins, other ones
    target = _model(poses=other_bins, seed=2)
    initial = {k: v.clone() for k, v in target.state_dict().items()}
    record = init_from_checkpoint(target, path)
    pose_tensors = target.label_indexed_tensors()["pose"]
    assert pose_tensors == {"pose_classifier.weight", "pose_classifier.bias", "gate.mlp.0.weight"}
    assert set(record["fresh"]) == pose_tensors
    for key, value in target.state_dict().items():
        expected = initial[key] if key in pose_tensors else source.state_dict()[key]
        assert torch.equal(value, expected), key


def test_a_checkpoint_of_another_architecture_is_refused_by_name(tmp_path):
    _, path = _saved(tmp_path)
    with pytest.raises(ValueError, match="shares no backbone tensor.*phanet_r18"):
        init_from_checkpoint(_model(name="phanet_r18"), path)


def test_the_bundled_model_fine_tunes_onto_a_dataset_with_fewer_classes_and_other_poses():
    from phanet.checkpoint import bundled_checkpoint

    bundled, meta = load_checkpoint(bundled_checkpoint())
    order = meta["label_space"]["expressions"]
    target = _model(expressions=("sad", "happy"), name="phanet_effl0")
    record = init_from_checkpoint(target, "bundled")
    assert record["model"] == "phanet_effl0" and record["copied"] > 100
    assert record["checkpoint"] == "bundled" and record["weights_sha256"] == meta["weights_sha256"]
    sad_row = bundled.state_dict()["classifier.weight"][order.index("sad")]
    assert torch.equal(target.state_dict()["classifier.weight"][0], sad_row)
    assert {"pose_classifier.weight", "pose_classifier.bias", "gate.mlp.0.weight"} <= set(record["fresh"])
    backbone = next(k for k in target.state_dict() if k.startswith("backbone.") and k.endswith("weight"))
    assert torch.equal(target.state_dict()[backbone], bundled.state_dict()[backbone])


def test_a_fine_tuning_run_starts_from_the_checkpoint_and_records_it(tmp_path):
    data = tiny_data()
    first = tmp_path / "first"
    fit(tiny_config(MODEL, epochs=1), first, data=data, progress=False, write_report=False)
    config = tiny_config(MODEL, epochs=1, init_from=str(first / "best.safetensors"), lr=1e-12, warmup_epochs=0.0)
    fit(config, tmp_path / "tuned", data=data, progress=False, write_report=False)
    start, _ = load_checkpoint(first / "best")
    tuned, meta = load_checkpoint(tmp_path / "tuned" / "best")
    record = meta["training"]["init_from"]
    assert record["checkpoint"] == str(first / "best") and record["fresh"] == []
    # a learning rate of 1e-12 leaves the weights where the checkpoint put them (batch-norm statistics move)
    for key, value in start.state_dict().items():
        if "running_" not in key and "num_batches" not in key:
            assert torch.allclose(tuned.state_dict()[key], value, atol=1e-6), key


def test_a_missing_init_checkpoint_fails_before_the_data_is_prepared(tmp_path, monkeypatch):
    import phanet.engine as engine

    monkeypatch.setattr(engine, "prepare_data", lambda *a, **k: pytest.fail("data prepared before the check"))
    config = tiny_config(MODEL, init_from=str(tmp_path / "nowhere" / "best"))
    with pytest.raises(FileNotFoundError, match="nowhere/best.safetensors"):
        fit(config, tmp_path / "run", progress=False, write_report=False)


def test_init_from_flag_and_its_config_checks(tmp_path):
    from phanet.commands.common import build_config
    from phanet.config import apply_overrides

    args = build_parser().parse_args(["train", "--init-from", "bundled", "--dataset", "synthetic"])
    assert build_config(args).train.init_from == "bundled"
    args = build_parser().parse_args(["cv", "--init-from", "runs/x/best", "--dataset", "synthetic"])
    assert build_config(args).train.init_from == "runs/x/best"
    with pytest.raises(ValueError, match="train.init_from=3 should be a checkpoint path"):
        apply_overrides(tiny_config(MODEL), {"train.init_from": 3})


def test_a_resumed_fine_tuning_run_needs_its_source_no_more(tmp_path):
    """resume.pt holds the weights: resuming reads the start's record from the run folder, so a source
    checkpoint deleted meanwhile is no error, and the finished run still records where it started."""
    import shutil
    import signal

    from phanet.engine import TrainingInterrupted

    data = tiny_data()
    source = tmp_path / "source"
    fit(tiny_config(MODEL, epochs=1), source, data=data, progress=False, write_report=False)
    config = tiny_config(MODEL, epochs=2, init_from=str(source / "best"))
    run = tmp_path / "tuned"

    def interrupt(epoch, step):
        if (epoch, step) == (0, 1):
            signal.raise_signal(signal.SIGTERM)

    with pytest.raises(TrainingInterrupted):
        fit(config, run, data=data, progress=False, on_step=interrupt, write_report=False)
    record = json.loads((run / "init_from.json").read_text())
    shutil.rmtree(source)
    fit(config, run, data=data, progress=False, resume=True, write_report=False)
    assert json.loads((run / "best.json").read_text())["training"]["init_from"] == record
    assert record["checkpoint"] == str(source / "best")
