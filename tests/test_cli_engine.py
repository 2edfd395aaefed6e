"""`phanet train` / `evaluate` / `cv` end to end on a generic-layout folder, and 2-process DDP training."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from phanet.cli import main
from tests.engine_fixtures import EXPRESSIONS, POSES, tiny_image


def write_generic_tree(root, subjects=6, per_cell=1):
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in range(subjects):
        for e, expression in enumerate(EXPRESSIONS):
            for p, pose in enumerate(POSES):
                for k in range(per_cell):
                    name = f"img/s{s}_{expression}_{pose.name}_{k}.png"
                    (root / "img").mkdir(exist_ok=True)
                    Image.fromarray(tiny_image(e, p, rng)).save(root / name)
                    rows.append({"image": name, "expression": expression, "pose": pose.name, "subject": f"s{s}",
                                 "yaw": pose.yaw, "pitch": 0, "split": ""})
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


COMMON = ["--dataset", "generic", "--model", "baseline_r18", "--no-pretrained", "--input-size", "32",
          "--batch-size", "8", "--workers", "0", "--folds", "3", "--no-progress"]


def test_train_then_evaluate_from_the_command_line(tmp_path, capsys):
    root = write_generic_tree(tmp_path / "data")
    run = tmp_path / "run"
    assert main(["train", "--root", str(root), "--epochs", "2", "--fold", "1", "--out", str(run), *COMMON]) == 0
    printed = capsys.readouterr().out
    assert "yaw+45" in printed and (run / "folds.json").exists()
    folds = json.loads((run / "folds.json").read_text())
    assert len(folds["folds"]) == 3
    assert main(["evaluate", "--checkpoint", str(run / "best.safetensors"), "--dataset", "generic",
                 "--root", str(root), "--split", "test", "--protocol", "subject_kfold", "--folds", "3",
                 "--fold", "1", "--fold-file", str(run / "folds.json"), "--out", str(tmp_path / "eval"),
                 "--workers", "0"]) == 0
    evaluated = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    trained = json.loads((run / "metrics.json").read_text())
    assert evaluated["num_samples"] == trained["num_samples"]
    assert abs(evaluated["accuracy"] - trained["accuracy"]) < 1e-9


def test_train_reports_a_missing_dataset_root_as_a_clear_error(tmp_path, capsys):
    code = main(["train", "--root", str(tmp_path / "nope"), "--epochs", "1", "--out", str(tmp_path / "r"), *COMMON])
    assert code == 1
    assert "nope" in capsys.readouterr().err


def test_cross_validation_aggregates_every_fold(tmp_path):
    root = write_generic_tree(tmp_path / "data")
    assert main(["cv", "--root", str(root), "--epochs", "1", "--out", str(tmp_path / "cv"), *COMMON]) == 0
    summary = json.loads((tmp_path / "cv" / "cv_metrics.json").read_text())
    assert summary["accuracy"]["n"] == 3
    assert set(summary["per_pose_accuracy"]) == {p.name for p in POSES}
    assert all((tmp_path / "cv" / f"fold{k}" / "best.safetensors").exists() for k in range(3))


@pytest.mark.slow
def test_torchrun_with_two_gloo_processes_trains_data_parallel_and_rank0_writes(tmp_path):
    root = write_generic_tree(tmp_path / "data", subjects=6, per_cell=2)
    run = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "phanet",
           "train", "--root", str(root), "--epochs", "2", "--out", str(run), "--device", "cpu", *COMMON]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert metrics["num_samples"] == metrics["split_sizes"]["test"]
    assert proc.stdout.count("run folder:") == 1  # only rank 0 prints and writes
