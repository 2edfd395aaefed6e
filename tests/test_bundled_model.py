"""The general model that ships inside the package: small, documented, and used when none is given."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from phanet.checkpoint import bundled_checkpoint, checkpoint_paths, load_checkpoint, save_checkpoint
from phanet.crop import crop_spec
from phanet.data.base import SEVEN_EXPRESSIONS
from phanet.data.datasets.synthetic import synthetic_label_space
from phanet.inference.predictor import Predictor
from phanet.models import create_model
from phanet.synth.render import render_face


def test_the_bundled_model_is_an_fp16_checkpoint_under_12_mb_that_records_its_recipe():
    weights, meta_path = checkpoint_paths(bundled_checkpoint())
    assert weights.stat().st_size <= 12 * 1024 * 1024
    meta = json.loads(meta_path.read_text())
    assert meta["dtype"] == "float16"
    assert meta["crop"] == json.loads(json.dumps(crop_spec(meta["crop"]["padding"], meta["crop"]["fit"])))
    assert meta["recipe"]["file"] == "configs/synthetic_general.yaml" and "synthetic" in meta["recipe"]["text"]
    assert meta["recipe"]["commit"]
    assert meta["label_space"]["expressions"] == list(SEVEN_EXPRESSIONS)
    yaws = {p["yaw"] for p in meta["label_space"]["poses"]}
    pitches = {p["pitch"] for p in meta["label_space"]["poses"]}
    assert min(yaws) == -90 and max(yaws) == 90 and len(pitches) > 1


def test_the_bundled_model_recognises_unseen_synthetic_faces_without_a_checkpoint_argument():
    predictor = Predictor.from_checkpoint(device="cpu", detector=None)  # no path: the bundled model
    size = predictor.input_size
    # identities far from the recipe's (0..71 under generator seed 7): another seed and other ids
    faces = [render_face(123, 5000 + e, e, yaw, 0.0, size, variant=1, align_padding=predictor.align_padding,
                           align_fit=predictor.align_fit)
             for e in range(len(SEVEN_EXPRESSIONS)) for yaw in (-30.0, 0.0, 30.0)]
    predictions = predictor.predict_batch(faces)
    predicted = [faces_[0].expression for faces_ in predictions]
    truth = [name for name in SEVEN_EXPRESSIONS for _ in range(3)]
    correct = sum(p == t for p, t in zip(predicted, truth))
    assert correct >= 15, list(zip(truth, predicted))  # of 21; chance is 3


def test_an_fp16_copy_of_a_checkpoint_gives_the_same_outputs_up_to_rounding(tmp_path):
    from phanet.checkpoint import save_half_precision

    torch.manual_seed(0)
    model = create_model("phanet_effl0", label_space=synthetic_label_space("kdef5"), input_size=64, pretrained=False)
    save_checkpoint(tmp_path / "full", model.eval())
    save_half_precision(tmp_path / "full", tmp_path / "half", extra={"note": "test"})
    half, meta = load_checkpoint(tmp_path / "half")
    assert meta["dtype"] == "float16" and meta["note"] == "test"
    sizes = [checkpoint_paths(tmp_path / name)[0].stat().st_size for name in ("half", "full")]
    assert sizes[0] < 0.6 * sizes[1]
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        np.testing.assert_allclose(half(x).expression_logits, model(x).expression_logits, atol=2e-2)


def test_predict_with_only_a_folder_uses_the_bundled_model(london_sample, tmp_path, capsys):
    from phanet.cli import main

    out = tmp_path / "out.jsonl"
    assert main(["predict", str(london_sample / "smiling"), "-o", str(out), "--no-progress", "--threads", "1"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 10 and all(r["status"] == "ok" for r in records)
    assert all(r["faces"][0]["expression"] in SEVEN_EXPRESSIONS for r in records)


def test_export_fp16_names_its_source_relative_to_the_working_directory(tmp_path, monkeypatch):
    from phanet.cli import main

    model = create_model("phanet_effl0", label_space=synthetic_label_space("kdef5"), input_size=64, pretrained=False)
    save_checkpoint(tmp_path / "runs" / "s0" / "best", model.eval())
    monkeypatch.chdir(tmp_path)
    assert main(["export", "fp16", "--checkpoint", str(tmp_path / "runs" / "s0" / "best"), "--out", "half"]) == 0
    assert json.loads((tmp_path / "half.json").read_text())["source"] == "runs/s0/best.safetensors"


def test_export_fp16_names_a_fine_tuned_models_start_relative_to_the_working_directory(tmp_path, monkeypatch):
    from phanet.cli import main

    model = create_model("phanet_effl0", label_space=synthetic_label_space("kdef5"), input_size=64, pretrained=False)
    start, elsewhere = str(tmp_path / "runs" / "s0" / "best"), "/elsewhere/runs/s9/best"
    config = {"model": {"name": "phanet_effl0"}, "train": {"epochs": 1, "init_from": start}}
    record = {"checkpoint": start, "weights_sha256": "ab" * 32, "copied": 3}
    save_checkpoint(tmp_path / "runs" / "s0_ft" / "best", model.eval(), config=config,
                    extra={"training": {"epoch": 1, "init_from": record}})
    save_checkpoint(tmp_path / "runs" / "s9_ft" / "best", model.eval(),
                    config={**config, "train": {"init_from": elsewhere}},
                    extra={"training": {"init_from": {"checkpoint": elsewhere}}})
    monkeypatch.chdir(tmp_path)
    assert main(["export", "fp16", "--checkpoint", "runs/s0_ft/best", "--out", "half"]) == 0
    meta = json.loads((tmp_path / "half.json").read_text())
    assert meta["config"]["train"] == {"epochs": 1, "init_from": "runs/s0/best"}
    assert meta["training"] == {"epoch": 1, "init_from": {**record, "checkpoint": "runs/s0/best"}}
    assert meta["config"]["model"] == {"name": "phanet_effl0"}
    # a start outside the working directory keeps its path: it names where the weights came from
    assert main(["export", "fp16", "--checkpoint", "runs/s9_ft/best", "--out", "other"]) == 0
    meta = json.loads((tmp_path / "other.json").read_text())
    assert meta["config"]["train"]["init_from"] == meta["training"]["init_from"]["checkpoint"] == elsewhere


@pytest.mark.parametrize("missing", ["safetensors", "json"])
def test_a_missing_bundled_file_is_a_one_line_error_naming_it(monkeypatch, tmp_path, missing):
    import phanet.checkpoint as checkpoint

    (tmp_path / "weights").mkdir()
    present = {"safetensors": "json", "json": "safetensors"}[missing]
    (tmp_path / "weights" / f"{checkpoint.BUNDLED_NAME}.{present}").write_text("{}")
    monkeypatch.setattr(checkpoint, "__file__", str(tmp_path / "checkpoint.py"))
    with pytest.raises(FileNotFoundError, match=f"{checkpoint.BUNDLED_NAME}.{missing}"):
        checkpoint.bundled_checkpoint()
