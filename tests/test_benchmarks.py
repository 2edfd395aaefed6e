"""The benchmark scripts' core functions run end to end on tiny settings, so the scripts cannot rot."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import ablation  # noqa: E402
import ablation_plots  # noqa: E402
import profile_train_step  # noqa: E402
import train_speed  # noqa: E402


@pytest.mark.slow
def test_ablation_trains_every_model_and_reports_per_pose_tables_task_and_scale_weights(tmp_path):
    settings = ablation.AblationSettings(presets=("kdef5",), seeds=(0,), data_seeds=(0, 1), size=32, epochs=1,
                                         train_subjects=2, val_subjects=1, test_subjects=1, device="cpu",
                                         pretrained=False, train_overrides={"head_lr_mult": 2.0})
    results = ablation.run_ablation(settings, tmp_path, log_line=lambda line: None)
    entry = results["presets"]["kdef5"]
    assert set(entry["runs"]) == set(ablation.MODELS)
    assert all([(r["data_seed"], r["seed"]) for r in runs] == [(0, 0), (1, 0)] for runs in entry["runs"].values())
    text = ablation.report(results)
    for name in (*ablation.MODELS, *entry["poses"], "overall", "fer", "att0", "scale 1/3", "train acc, last epoch"):
        assert name in text
    assert " ± " in text
    assert "[" in text and "pairs better" in text  # paired differences with 95% intervals
    phanet = entry["runs"]["phanet_effl0"][0]
    assert set(phanet["mean_scale_weights_per_pose"]) == set(entry["poses"])
    assert "pose" in phanet["task_weights"] and "task_weights" in entry["runs"]["baseline_effl0"][0]

    plots = ablation_plots.write_plots(results, tmp_path / "plots")
    assert [p.name for p in plots] == ["ablation_kdef5_accuracy_vs_yaw.png", "ablation_kdef5_scale_weights.png"]
    assert all(p.stat().st_size > 5000 for p in plots)  # real figures, not empty canvases

    lines = []  # a restart with the same --keep-runs folder reuses every finished run
    again = ablation.run_ablation(settings, tmp_path, log_line=lines.append)
    assert sum("reused" in line for line in lines) == 2 * len(ablation.MODELS)
    assert again["presets"]["kdef5"]["runs"] == entry["runs"]


def test_ablation_tables_show_mean_and_std_over_seeds_and_marginals_for_pitched_presets():
    poses = ["yaw-15_pitch-15", "yaw+15_pitch-15", "yaw-15_pitch+15", "yaw+15_pitch+15"]
    angles = [[-15, -15], [15, -15], [-15, 15], [15, 15]]

    def run(seed, accuracy):
        return {"seed": seed, "accuracy": accuracy, "macro_f1": accuracy,
                "per_pose_accuracy": {p: accuracy for p in poses}, "task_weights": {"fer": 1.0}}

    entry = {"poses": poses, "pose_angles": angles, "split_sizes": {},
             "runs": {"baseline_r18": [run(0, 0.5), run(1, 0.7)], "phanet_r18": [run(0, 0.6), run(1, 0.9)]}}
    table = ablation.accuracy_table(entry)
    assert "60.0 ± 10.0" in table and "75.0 ± 15.0" in table
    marginal = ablation.marginal_tables(entry)
    assert "yaw -15" in marginal and "pitch +15" in marginal
    gains = ablation.paired_gain_table(entry)
    # differences 0.1 and 0.2: mean 15 points, 95% t-interval 15 ± 12.706 * 5 = [-48.5, +78.5]
    assert "+15.0 [-48.5, +78.5]" in gains and "2/2" in gains
    assert gains.startswith("| phanet_r18 − …")


def test_ablation_settings_use_per_preset_sizes_unless_overridden():
    default = ablation.AblationSettings()
    assert default.demo_settings("bu3dfe35").train_subjects == ablation.PRESET_DEFAULTS["bu3dfe35"][0]
    assert ablation.AblationSettings(train_subjects=3).demo_settings("kdef5").train_subjects == 3
    assert all(default.demo_settings(p).train_subjects >= 40 for p in ablation.PRESETS)
    assert len(default.seeds) >= 3 and len(default.data_seeds) >= 2
    config = ablation.train_config(default, "kdef5", "att_effl0", seed=7, data_seed=1)
    assert (config.train.seed, config.train.patience, config.model.pretrained) == (7, 0, True)
    assert default.demo_settings("kdef5", data_seed=1).seed == 1  # the identities the renderer draws
    tuned = ablation.AblationSettings(model_options={"attention_pooling": "residual"},
                                      train_overrides={"head_lr_mult": 10.0})
    config = ablation.train_config(tuned, "kdef5", "phanet_effl0", seed=0)
    assert config.model.options == {"attention_pooling": "residual"} and config.train.head_lr_mult == 10.0
    with pytest.raises(ValueError, match="no_such_setting"):
        ablation.train_config(ablation.AblationSettings(train_overrides={"no_such_setting": 1}), "kdef5",
                              "phanet_effl0", seed=0)


@pytest.mark.slow
def test_train_speed_times_a_variant_against_its_plain_backbone_and_measures_memory():
    rows = train_speed.compare_models(["phanet_r18"], size=32, batch=4, device="cpu", steps=1, rounds=1)
    row = rows[0]
    assert row["plain"] == "baseline_r18"
    assert row["images_per_s"] > 0 and row["step_ratio"] > 0 and row["cpu_ratio"] > 0
    assert row["peak_mb"] > 0 and row["plain_peak_mb"] > 0
    assert "phanet_r18" in train_speed.model_table(rows)


def test_train_speed_data_part_reads_the_generic_layout_and_the_crop_cache(tmp_path):
    rows = train_speed.compare_data(tmp_path, subjects=1, image_size=48, size=32, workers=[0], rounds=1)
    assert rows[0]["images"] == 35
    assert rows[0]["generic_images_per_s"] > 0 and rows[0]["cache_images_per_s"] > 0
    assert "cached crops" in train_speed.data_table(rows)


def test_the_cpu_bf16_step_timer_trains():
    timer = train_speed.StepTimer("att_r18", size=32, batch=4, cpu_bf16=True)
    before = [p.detach().clone() for p in timer.model.parameters()]
    wall, cpu = timer.run(1)
    assert wall > 0 and cpu > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, timer.model.parameters()))


def test_profile_sections_run_and_the_optimised_transform_matches_the_reference():
    text, data = profile_train_step.transform_section(32, rounds=1, count=8)
    assert "before µs" in text
    for row in data.values():
        assert row["same_flips"]
        assert row["max_diff_grey_levels"] < 4.0  # only the uint8 rounding between colour steps differs
    text, _ = profile_train_step.step_section(32, 4, steps=1, rounds=1, variants=profile_train_step.STEP_VARIANTS[:2])
    assert "channels-last" in text
    text, data = profile_train_step.ops_section(32, 4, top=3)
    assert data["forward_s_per_step"]["backbone"] > 0
    text, _ = profile_train_step.loader_section(32, rounds=1, count=64, batch=16)
    assert "2 workers" in text


def test_ablation_results_of_separate_runs_merge_by_seed_and_refuse_other_settings():
    def part(seeds, epochs=10):
        runs = [{"seed": seed, "accuracy": 0.5, "macro_f1": 0.5, "per_pose_accuracy": {"p": 0.5},
                 "train_seconds": 60.0} for seed in seeds]
        settings = {**ablation.asdict(ablation.AblationSettings(epochs=epochs)), "seeds": list(seeds)}
        return {"settings": settings, "machine": "m", "wall_seconds": 60.0 * len(seeds),
                "presets": {"kdef5": {"poses": ["p"], "pose_angles": [[0, 0]], "split_sizes": {"test": 1},
                                      "runs": {"phanet_r18": runs}}}}

    merged = ablation.merge_results([part([2]), part([0, 1])])
    assert merged["settings"]["seeds"] == [0, 1, 2]
    assert [r["seed"] for r in merged["presets"]["kdef5"]["runs"]["phanet_r18"]] == [0, 1, 2]
    assert merged["wall_seconds"] == 180.0
    with pytest.raises(ValueError, match="epochs"):
        ablation.merge_results([part([0]), part([1], epochs=20)])
    with pytest.raises(ValueError, match="more than one part"):
        ablation.merge_results([part([0]), part([0])])


def test_a_saved_run_stays_reusable_when_a_later_release_only_adds_settings(tmp_path):
    import yaml

    config = ablation.train_config(ablation.AblationSettings(), "kdef5", "phanet_effl0", seed=0)
    saved = config.to_dict()
    del saved["train"]["cpu_amp"]  # as written by a release before train.cpu_amp existed
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(saved))
    assert ablation.same_config(tmp_path, config)
    config.train.cpu_amp = True  # a new setting that is not at its default is a different run
    assert not ablation.same_config(tmp_path, config)
