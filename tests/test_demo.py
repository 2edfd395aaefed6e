"""`phanet demo --quick` end to end (the README's main job, CI-sized) and `phanet info`."""

import json

import pytest

from phanet.cli import main
from phanet.demo import DemoSettings, render_demo_data


def test_demo_data_keeps_train_val_and_test_subjects_disjoint():
    settings = DemoSettings(train_subjects=2, val_subjects=1, test_subjects=1, per_cell=1, size=32)
    index, split = render_demo_data(settings, progress=False)
    subjects = {part: {index.samples[i].subject for i in indices} for part, indices in split.items()}
    assert not subjects["train"] & subjects["test"] and not subjects["val"] & subjects["test"]
    assert len(split["test"]) == 7 * 5  # one subject x 7 expressions x kdef5 poses
    assert index.samples[0].image.shape == (32, 32, 3)


@pytest.mark.slow
def test_quick_demo_trains_both_models_and_writes_the_comparison(tmp_path, capsys):
    assert main(["demo", "--quick", "--out", str(tmp_path), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "phanet_r18" in printed and "baseline_r18" in printed and "yaw+90" in printed
    summary = json.loads((tmp_path / "demo_summary.json").read_text())
    assert set(summary["results"]) == {"phanet_r18", "baseline_r18"}
    for model in ("phanet_r18", "baseline_r18"):
        assert set(summary["results"][model]["per_pose_accuracy"]) == {"yaw-90", "yaw-45", "yaw+0", "yaw+45", "yaw+90"}
        assert (tmp_path / model / "best.safetensors").exists()
    for picture in ("accuracy_vs_pose.png", "synthetic_preview.png", "phanet_r18/attention.png"):
        assert (tmp_path / picture).exists()


def test_info_lists_models_with_parameter_counts_and_datasets(capsys):
    assert main(["info"]) == 0
    printed = capsys.readouterr().out
    assert "phanet_r18" in printed and "baseline_r18" in printed and "M" in printed
    assert "kdef" in printed and "synthetic" in printed
