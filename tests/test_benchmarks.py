"""The benchmark scripts' core functions run end to end on tiny settings, so the scripts cannot rot."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from phanet.synth import RANDOMIZATIONS

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import ablation  # noqa: E402
import ablation_plots  # noqa: E402
import adapt_bn  # noqa: E402
import backbone_drift  # noqa: E402
import cpu_train_step  # noqa: E402
import detail_robustness  # noqa: E402
import estimate_prior  # noqa: E402
import occlusion_cues  # noqa: E402
import photo_path  # noqa: E402
import profile_train_step  # noqa: E402
import real_faces  # noqa: E402
import render_geometry  # noqa: E402
import train_speed  # noqa: E402
import transfer_study  # noqa: E402


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


@pytest.mark.slow
def test_ablation_jobs_train_runs_side_by_side_with_the_same_results_in_the_same_order(tmp_path):
    settings = ablation.AblationSettings(presets=("kdef5",), models=("baseline_effl0", "phanet_effl0"), seeds=(0, 1),
                                         data_seeds=(0,), size=32, epochs=1, train_subjects=2, val_subjects=1,
                                         test_subjects=1, device="cpu", pretrained=False)
    lines = []
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # two jobs: one thread per worker
    try:
        parallel = ablation.run_ablation(settings, tmp_path / "parallel", log_line=lines.append, jobs=2)
        torch.set_num_threads(1)  # the same thread count as each worker had
        serial = ablation.run_ablation(settings, tmp_path / "serial", log_line=lambda line: None)
    finally:
        torch.set_num_threads(threads)
    assert sum("test acc" in line for line in lines) == 4  # one line per run, as each finishes
    for model in settings.models:
        got, expected = parallel["presets"]["kdef5"]["runs"][model], serial["presets"]["kdef5"]["runs"][model]
        assert [r["seed"] for r in got] == [0, 1]
        for a, b in zip(got, expected):
            assert a["accuracy"] == b["accuracy"] and a["per_pose_accuracy"] == b["per_pose_accuracy"]
            assert a["history"] == b["history"]


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
    by_yaw = ablation.paired_gain_by_yaw_table(entry)  # every pose moves alike here: same cell at each yaw
    assert by_yaw.count("+15.0 [-48.5, +78.5] 2/2") == 2 and "yaw -15" in by_yaw and "yaw +15" in by_yaw
    flat = dict(entry, poses=poses[:2], pose_angles=[[-15, 0], [15, 0]])
    assert ablation.paired_gain_by_yaw_table(flat) == ""  # one pitch: the per-pose table says it all


def test_ablation_cpu_default_and_gpu_scale_come_from_the_command_line_unless_given(monkeypatch):
    settings, _ = ablation.parse_args([])
    assert settings.presets == ablation.CPU_PRESETS == ("kdef5", "bu3dfe35")
    assert (settings.size, settings.device, settings.workers) == (ablation.AblationSettings().size, "auto", 0)
    gpu, _ = ablation.parse_args(["--gpu"])
    assert gpu.presets == ablation.PRESETS and "multipie13" in gpu.presets
    assert (gpu.size, gpu.device, gpu.workers) == (112, "cuda", 4)
    mixed, _ = ablation.parse_args(["--gpu", "--size", "64", "--presets", "kdef5", "--device", "cuda:1"])
    assert (mixed.presets, mixed.size, mixed.device, mixed.workers) == (("kdef5",), 64, "cuda:1", 4)
    # side by side on a CPU: one run per thread, never more than there are runs; one at a time on a GPU
    monkeypatch.setattr(ablation.torch, "get_num_threads", lambda: 2)
    assert ablation.side_by_side_jobs("cpu", 24) == 2 and ablation.side_by_side_jobs("cpu", 1) == 1
    assert ablation.side_by_side_jobs("cuda:1", 24) == 1


def test_ablation_settings_use_per_preset_sizes_unless_overridden():
    default = ablation.AblationSettings()
    assert default.demo_settings("bu3dfe35").train_subjects == ablation.PRESET_DEFAULTS["bu3dfe35"][0]
    assert ablation.AblationSettings(train_subjects=3).demo_settings("kdef5").train_subjects == 3
    assert all(default.demo_settings(p).train_subjects >= 40 for p in ablation.PRESETS)
    assert len(default.seeds) >= 3 and len(default.data_seeds) >= 2
    config = ablation.train_config(default, "kdef5", "att_effl0", seed=7, data_seed=1)
    assert (config.train.seed, config.train.patience, config.model.pretrained) == (7, 0, True)
    assert default.demo_settings("kdef5", data_seed=1).seed == 1  # the identities the renderer draws
    # bu3dfe35 trains each subject in 5 of its 35 poses (kdef5's cost); 0 asks for every pose
    assert default.demo_settings("bu3dfe35").train_poses_per_subject == 5
    assert default.demo_settings("kdef5").train_poses_per_subject is None
    every_pose = ablation.AblationSettings(train_poses_per_subject=0).demo_settings("bu3dfe35")
    assert every_pose.train_poses_per_subject is None
    assert ablation.AblationSettings(train_poses_per_subject=3).demo_settings("kdef5").train_poses_per_subject == 3
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
    # convolution/matmul FLOPs of a step: PhaNet's attention and heads add to the plain network's
    assert row["gflop_per_step"] > row["plain_gflop_per_step"] > 0 and row["gflops"] > 0
    assert "GFLOP/s" in train_speed.model_table(rows)


def test_train_speed_with_an_option_times_the_variant_against_itself_without_it():
    rows = train_speed.compare_models(["phanet_r18"], size=32, batch=4, device="cpu", steps=1, rounds=1,
                                      memory=False, options={"frozen_stages": 2})
    row = rows[0]
    assert row["plain"] == "no options" and row["model"] == "phanet_r18 {'frozen_stages': 2}"
    assert row["step_ratio"] > 0 and "no options" in train_speed.model_table(rows)


def test_flop_count_of_a_training_step_scales_with_the_batch_and_sgemm_rate_is_positive():
    model = train_speed.build_model(train_speed.train_config("baseline_r18", 32, 2, "cpu"), train_speed.LABEL_SPACE)
    two, eight = (train_speed.training_step_gflop(model, 32, batch) for batch in (2, 8))
    assert eight == pytest.approx(4 * two, rel=1e-6) and two > 0
    assert train_speed.sgemm_gflops(side=128, repeats=1) > 0


def test_cpu_train_step_variants_train_their_own_copies_in_their_memory_format():
    nhwc = cpu_train_step.variant_timer("baseline_r18", "channels_last", size=32, batch=2)
    plain = cpu_train_step.variant_timer("baseline_r18", "fp32", size=32, batch=2)
    conv = next(m for m in nhwc.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert nhwc.ctx.channels_last and not plain.ctx.channels_last  # the engine makes its batches NHWC
    plain_conv = next(m for m in plain.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert plain_conv.weight.is_contiguous()
    before = [p.detach().clone() for p in nhwc.model.parameters()]
    times = cpu_train_step.step_seconds("baseline_r18", ["fp32", "bf16"], size=32, batch=2, steps=1, rounds=1)
    assert set(times) == {"fp32", "bf16"} and all(t > 0 for t in times.values())
    assert nhwc.run(1)[0] > 0
    assert any(not torch.equal(a, b) for a, b in zip(before, nhwc.model.parameters()))


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


# --- real_faces.py ----------------------------------------------------------------------------------


def _row(label, expression, p_happy=None, p_neutral=None, pose=None, yaw=None, pitch=None):
    return {"file": f"{label}/x.jpg", "label": label, "expression": expression, "p_happy": p_happy,
            "p_neutral": p_neutral, "pose": pose, "yaw": yaw, "pitch": pitch}


def test_real_faces_balanced_accuracies_on_hand_made_rows():
    from phanet.data.base import CANONICAL_EXPRESSIONS, PoseBin

    assert real_faces.DEFAULT_EXPRESSIONS == CANONICAL_EXPRESSIONS
    rows = [
        # neutral photos: 3 of 4 called neutral by p(happy) < p(neutral); argmax right on 1 of 4
        _row("neutral", "neutral", 0.1, 0.8, "yaw+0", 0.0, 0.0),
        _row("neutral", "sad", 0.2, 0.3, "yaw+45", 45.0, 0.0),
        _row("neutral", "happy", 0.5, 0.4, "yaw-90", -90.0, 0.0),
        _row("neutral", None),  # no face: wrong in both
        # happy photos: both called happy; argmax happy on 1 of 2
        _row("happy", "happy", 0.9, 0.05, "yaw+0", 0.0, 0.0),
        _row("happy", "surprise", 0.3, 0.2, "yaw+0", 0.0, 30.0),
    ]
    acc = real_faces.balanced_accuracies(rows)
    assert acc["happy_vs_neutral_per_class"] == {"neutral": 0.5, "happy": 1.0}
    assert acc["happy_vs_neutral"] == pytest.approx(0.75)
    assert acc["n_way_per_class"] == {"neutral": 0.25, "happy": 0.5}
    assert acc["n_way"] == pytest.approx(0.375)
    assert acc["photos_per_class"] == {"neutral": 4, "happy": 2} and acc["no_face"] == 1

    poses = [PoseBin("yaw-90", -90.0), PoseBin("yaw+0", 0.0), PoseBin("yaw+45", 45.0)]
    frontal = real_faces.frontal_rate(rows, poses)
    # five faces; frontal: yaw 0 pitch 0 twice (pitch 30 is not within 22.5)
    assert (frontal["frontal"], frontal["faces"], frontal["frontal_bins"]) == (2, 5, ["yaw+0"])
    assert real_faces.frontal_rate(rows, []) is None
    assert real_faces.confusion(rows)["neutral"] == {"(no face)": 1, "happy": 1, "neutral": 1, "sad": 1}

    # ranking by p(happy): happy 0.9 beats the three neutral faces (0.1, 0.2, 0.5) and loses to the faceless
    # neutral photo; happy 0.3 beats 0.1 and 0.2 only: (3 + 2) / (2 x 4)
    assert acc["happy_ranking"] == pytest.approx(5 / 8)
    tied = [_row("neutral", "neutral", 0.3, 0.6), _row("happy", "neutral", 0.3, 0.6), _row("happy", None)]
    assert real_faces.balanced_accuracies(tied)["happy_ranking"] == pytest.approx(0.25)  # a tie, and a miss

    # a model without "happy": the two-way accuracy and the ranking are undefined, the N-way one is not
    no_happy = [_row("neutral", "neutral", None, 0.9), _row("happy", "sad", None, 0.1)]
    acc = real_faces.balanced_accuracies(no_happy)
    assert acc["happy_vs_neutral"] is None and acc["happy_ranking"] is None and acc["n_way"] == 0.5

    text = real_faces.report(real_faces.summarise("hand-made", rows, CANONICAL_EXPRESSIONS[:7], poses))
    for part in ("faces found: 5 / 6", "no face found in: neutral/x.jpg", "balanced happy-vs-neutral accuracy",
                 "75.0%", "balanced 7-way accuracy", "37.5%", "frontal pose rate", "40.0%", "bootstrap interval",
                 "outranks a neutral one by p(happy); no threshold): 0.625"):
        assert part in text


def test_real_faces_bootstrap_interval_says_how_far_a_few_photos_can_move_the_accuracy():
    # 10 photos right in one class, 5 of 10 in the other: balanced 75%; the resampled class has a
    # standard error of sqrt(0.25 / 10) = 0.158, so the balanced accuracy's is 0.079: about +-15 points
    hits = {"happy": [True] * 10, "neutral": [True] * 5 + [False] * 5}
    low, high = real_faces.balanced_interval(hits)
    assert 0.55 <= low <= 0.65 and 0.85 <= high <= 0.95
    assert real_faces.balanced_interval(hits) == (low, high)  # deterministic
    assert real_faces.balanced_interval({"happy": [True] * 4, "neutral": [True] * 3}) == (1.0, 1.0)
    assert real_faces.balanced_interval({"happy": []}) is None
    # more photos at the same accuracy: a narrower interval
    low40, high40 = real_faces.balanced_interval({label: h * 4 for label, h in hits.items()})
    assert high40 - low40 < 0.6 * (high - low)
    acc = real_faces.balanced_accuracies([_row("neutral", "neutral", 0.1, 0.8), _row("neutral", "sad", 0.6, 0.3),
                                          _row("happy", "happy", 0.9, 0.05)])
    assert acc["n_way_interval"] == (0.5, 1.0) and acc["happy_vs_neutral_interval"] == (0.5, 1.0)


def test_real_faces_refuses_a_missing_photo_folder_and_a_missing_bundled_model(tmp_path, capsys, monkeypatch):
    assert real_faces.main(["--photos", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "not found" in err and "../shared/data/london-sample" in err and len(err.strip().splitlines()) == 1

    from phanet.inference import Predictor

    def no_bundled_model(path, **kwargs):
        raise FileNotFoundError("no bundled checkpoint")

    (tmp_path / "neutral").mkdir()
    monkeypatch.setattr(Predictor, "from_checkpoint", staticmethod(no_bundled_model))
    assert real_faces.main(["--photos", str(tmp_path), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("no bundled model in this install; pass --checkpoint")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("script", [real_faces, detail_robustness, backbone_drift, adapt_bn, occlusion_cues,
                                    photo_path],
                         ids=["real_faces", "detail_robustness", "backbone_drift", "adapt_bn", "occlusion_cues",
                              "photo_path"])
def test_benchmarks_refuse_to_write_their_numbers_over_a_checkpoints_metadata(script, tmp_path, capsys):
    from phanet.checkpoint import read_meta, save_checkpoint
    from phanet.data.datasets.synthetic import synthetic_label_space
    from phanet.models import create_model

    model = create_model("baseline_mbv2", label_space=synthetic_label_space("kdef5"), input_size=32, pretrained=False)
    save_checkpoint(tmp_path / "m", model)
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--checkpoint", str(tmp_path / "m"), "--json", str(tmp_path / "m.json")])
    assert exit_info.value.code == 2
    assert "is a checkpoint's metadata" in capsys.readouterr().err
    assert read_meta(tmp_path / "m")["model"]["name"] == "baseline_mbv2"  # untouched


def test_real_faces_runs_a_checkpoint_on_real_photos(tmp_path, london_sample, capsys, one_torch_thread):
    import json
    import shutil

    from phanet.checkpoint import save_checkpoint
    from phanet.data.datasets.synthetic import synthetic_label_space
    from phanet.models import create_model

    torch.manual_seed(0)
    model = create_model("phanet_effl0", label_space=synthetic_label_space("kdef5"), input_size=64, pretrained=False)
    save_checkpoint(tmp_path / "m", model)
    photos_dir = tmp_path / "photos"
    for folder in ("neutral", "smiling"):
        (photos_dir / folder).mkdir(parents=True)
        for photo in sorted((london_sample / folder).glob("*.jpg"))[:2]:
            shutil.copy(photo, photos_dir / folder)
    (photos_dir / "notes").mkdir()  # not a label: ignored
    photos = real_faces.list_photos(photos_dir)
    assert [(p.parent.name, label) for p, label in photos] == [("neutral", "neutral")] * 2 + [("smiling", "happy")] * 2

    out = tmp_path / "real.json"
    code = real_faces.main(["--checkpoint", str(tmp_path / "m"), "--photos", str(photos_dir), "--device", "cpu",
                            "--json", str(out), "--peer"])
    assert code == 0
    text = capsys.readouterr().out
    assert "Face Research Lab London Set" in text and "CC BY 4.0" in text
    assert "ignored subfolders (not a label): notes" in text
    assert "balanced happy-vs-neutral accuracy" in text and "frontal pose rate" in text

    data = json.loads(out.read_text())
    (result,) = data["checkpoints"]
    assert result["photos"] == 4 and result["faces_found"] == 4 and result["no_face"] == []  # real frontal faces
    rows = result["rows"]
    assert [r["label"] for r in rows] == ["neutral", "neutral", "happy", "happy"]
    for r in rows:
        assert r["expression"] in real_faces.DEFAULT_EXPRESSIONS and r["pose"] in {p["name"] for p in result["poses"]}
        assert r["probabilities"][r["expression"]] == max(r["probabilities"].values())
        assert 0.0 <= r["p_happy"] <= 1.0 and 0.0 <= r["p_neutral"] <= 1.0
    # the accuracies follow from the rows
    hv = {label: sum((r["p_happy"] > r["p_neutral"]) == (label == "happy") for r in rows if r["label"] == label) / 2
          for label in ("neutral", "happy")}
    assert result["accuracy"]["happy_vs_neutral"] == pytest.approx((hv["neutral"] + hv["happy"]) / 2)
    seven = {label: sum(r["expression"] == label for r in rows if r["label"] == label) / 2
             for label in ("neutral", "happy")}
    assert result["accuracy"]["n_way"] == pytest.approx((seven["neutral"] + seven["happy"]) / 2)
    frontal = sum(abs(r["yaw"]) <= 22.5 for r in rows)
    assert result["frontal"]["rate"] == pytest.approx(frontal / 4) and result["frontal"]["frontal_bins"] == ["yaw+0"]
    assert sum(sum(c.values()) for c in result["confusion"].values()) == 4
    assert "skipped" in data["peer"] or data["peer"]["photos"] == 4
    assert result["prior_estimate"] is None and result["class_prior"] is None

    # --estimate-prior: the same photos' answers reweighted by the prior estimated on them
    assert real_faces.main(["--checkpoint", str(tmp_path / "m"), "--photos", str(photos_dir), "--device", "cpu",
                            "--json", str(out), "--estimate-prior"]) == 0
    assert "class prior estimated on 4 faces of 4 photos (pseudo-count 1, " in capsys.readouterr().out
    (estimated,) = json.loads(out.read_text())["checkpoints"]
    shares = np.array(list(estimated["class_prior"].values()))
    assert estimated["prior_estimate"]["faces"] == 4 and shares.sum() == pytest.approx(1.0, abs=1e-5)
    for before, after in zip(rows, estimated["rows"]):
        p = np.array(list(before["probabilities"].values())) * shares
        assert np.allclose(list(after["probabilities"].values()), p / p.sum(), atol=1e-4)


def test_real_faces_peer_rows_map_fer_emotions_and_take_the_largest_face(tmp_path):
    from PIL import Image

    for folder in ("neutral", "smiling"):
        (tmp_path / folder).mkdir()
        Image.new("RGB", (40, 30), (120, 90, 60)).save(tmp_path / folder / "a.jpg")

    class FakeFER:  # the fer package's output format: boxes [x, y, w, h], its own emotion keys
        def detect_emotions(self, bgr):
            assert bgr.shape == (30, 40, 3)
            small = {"angry": 0.0, "disgust": 0.0, "fear": 0.0, "happy": 0.9, "sad": 0.0, "surprise": 0.0,
                     "neutral": 0.1}
            large = {**small, "happy": 0.2, "angry": 0.5, "neutral": 0.3}
            return [{"box": [0, 0, 5, 5], "emotions": small}, {"box": [0, 0, 20, 20], "emotions": large}]

    result = real_faces.evaluate_fer(real_faces.list_photos(tmp_path), detector=FakeFER())
    assert [r["expression"] for r in result["rows"]] == ["anger", "anger"]  # the larger face, angry -> anger
    assert result["accuracy"]["happy_vs_neutral_per_class"] == {"neutral": 1.0, "happy": 0.0}
    assert result["accuracy"]["n_way"] == 0.0 and result["frontal"] is None
    assert "frontal pose rate: n/a" in real_faces.report(result)


def test_transfer_study_variants_switch_one_part_of_the_recipe_at_a_time():
    configs = {name: transfer_study.variant_config(name, train_subjects=3, epochs=1)
               for name in transfer_study.VARIANTS}
    recipe = configs["recipe"]
    assert recipe.data.options["splits"]["train"] == 3 and recipe.train.epochs == 1
    assert recipe.data.options["subjects"] == sum(recipe.data.options["splits"].values())
    assert recipe.train.augment == "photo" and recipe.data.options["align_padding"] == 0.1
    assert configs["randomized"].train.augment == "standard"
    assert configs["aligned"].data.options["randomize"] == [] and configs["aligned"].data.options["align_padding"]
    assert configs["camera"].data.options["align_padding"] is None
    assert set(configs["details"].data.options["randomize"]) == set(RANDOMIZATIONS)
    age = configs["+age"]
    assert age.data.options["randomize"] == ["lips", "subtle", "blends", "age"] and age.train.augment == "photo"
    assert "+age" not in transfer_study.DEFAULT_VARIANTS and "details" in transfer_study.DEFAULT_VARIANTS
    row = {"variant": "recipe", "synthetic_accuracy": 0.9,
           "real": {"accuracy": {"happy_vs_neutral": 0.85, "n_way": None}, "frontal": {"rate": 1.0}}}
    assert "| recipe | 90.0 | 85.0 | n/a | 100 |" in transfer_study.table([row])


def test_detail_robustness_probes_the_same_faces_with_one_detail_switched_on_at_a_time():
    from phanet.checkpoint import bundled_checkpoint

    names = [name for name, _ in detail_robustness.rows()]
    assert names[0] == "base" and names[-1] == "all" and "+brows" in names and "+resting" in names
    assert len(names) == 2 + len(detail_robustness.DETAILS)
    assert dict(detail_robustness.rows())["+glasses"] == ["lips", "subtle", "blends", "glasses"]
    base_index, base_test = detail_robustness.test_index(["lips"], subjects=1)
    glasses_index, glasses_test = detail_robustness.test_index(["lips", "glasses"], subjects=1)
    assert base_test == glasses_test and len(base_test) == 7 * 23  # one test identity, 7 expressions x 23 poses
    labels = [(s.expression, s.pose, s.subject) for s in (base_index.samples[i] for i in base_test)]
    assert labels == [(s.expression, s.pose, s.subject) for s in (glasses_index.samples[i] for i in glasses_test)]
    result = detail_robustness.probe(bundled_checkpoint(), ["lips", "subtle", "blends"], subjects=1)
    assert result["images"] == 161 and 0.0 <= result["accuracy"] <= 1.0
    assert sum(result["neutral_called"].values()) == 23 and set(result["per_expression"]) >= {"neutral", "anger"}
    assert "| base |" in detail_robustness.report({"base": result})


def test_detail_robustness_can_render_the_validation_identities_to_choose_settings_on():
    index, val = detail_robustness.test_index(["lips"], split="val")
    _, test = detail_robustness.test_index(["lips"])
    val_subjects = {index.samples[i].subject for i in val}
    assert len(val_subjects) == 4 and len(val) == 4 * 7 * 23  # the recipe's 4 validation identities
    assert not val_subjects & {index.samples[i].subject for i in test}
    with pytest.raises(SystemExit):
        detail_robustness.main(["--split", "train"])  # the training identities are not a probe's to render


def test_occlusion_bands_sit_on_the_crop_templates_features_and_hide_only_their_rows():
    from phanet.crop import template_points

    for size, padding in ((96, 0.1), (112, 0.2)):
        bands = occlusion_cues.band_rows(size, padding)
        points = template_points(size, padding)
        eye_y, nose_y, mouth_y = points[:2, 1].mean(), points[2, 1], points[3:, 1].mean()
        assert bands["brows+forehead"][0] == 0 and bands["brows+forehead"][1] == bands["eyes"][0]
        assert bands["eyes"][0] < eye_y < bands["eyes"][1] <= bands["nose"][0] < nose_y < bands["nose"][1]
        assert bands["mouth"][0] < mouth_y < bands["mouth"][1] <= size
    crops = np.full((2, 8, 8, 3), 7, np.uint8)
    hidden = occlusion_cues.masked(crops, (2, 5))
    assert (hidden[:, 2:5] == occlusion_cues.FILL).all() and (hidden[:, :2] == 7).all() and (hidden[:, 5:] == 7).all()
    assert (crops == 7).all() and occlusion_cues.masked(crops, None) is not crops
    edge = np.zeros((1, 16, 16, 3), np.uint8)
    edge[:, :, 8:] = 200  # a vertical edge: a blur softens it inside the band and leaves the rows outside
    soft = occlusion_cues.masked(edge, (4, 12), "blur")
    assert np.array_equal(soft[:, :4], edge[:, :4]) and np.array_equal(soft[:, 12:], edge[:, 12:])
    assert 0 < soft[0, 8, 7, 0] < 200 and 0 < soft[0, 8, 8, 0] < 200
    with pytest.raises(ValueError, match="expected 'grey' or 'blur'"):
        occlusion_cues.masked(edge, (4, 12), "black")


def test_nose_parts_split_the_nose_band_into_its_middle_and_sides_and_masks_hide_only_their_pixels():
    from phanet.crop import template_points

    bands = occlusion_cues.band_rows(96, 0.1)
    parts = occlusion_cues.nose_parts(96, 0.1, bands["nose"])
    middle, sides = parts["nose middle"], parts["nose sides"]
    band = np.zeros((96, 96), bool)
    band[bands["nose"][0]:bands["nose"][1]] = True
    assert not (middle & sides).any() and np.array_equal(middle | sides, band)  # the band, split in two
    points = template_points(96, 0.1)
    nose_x, eyes_apart = points[2, 0], np.hypot(*(points[1] - points[0]))
    columns = np.nonzero(middle.any(0))[0]
    assert columns[0] < nose_x < columns[-1] and abs((columns[0] + columns[-1] + 1) / 2 - nose_x) <= 1
    # the nose, not the cheeks: 2 x NOSE_HALF_WIDTH interocular distances wide, inside the eye centres
    assert abs(len(columns) - 2 * occlusion_cues.NOSE_HALF_WIDTH * eyes_apart) <= 1.5
    assert points[0, 0] < columns[0] and columns[-1] < points[1, 0]
    assert occlusion_cues._column_runs(sides.any(0)) == [f"0-{columns[0]}", f"{columns[-1] + 1}-96"]
    crops = np.full((2, 96, 96, 3), 7, np.uint8)
    hidden = occlusion_cues.masked(crops, middle)
    assert (hidden[:, middle] == occlusion_cues.FILL).all() and (hidden[:, ~middle] == 7).all()


def test_occlusion_table_counts_each_class_under_each_band():
    class Fixed:  # calls a face happy unless its top rows are hidden (then anger)
        class label_space:
            expressions = ("neutral", "happy", "anger")

        def classify(self, crops):
            top_hidden = (crops[:, 0, 0, 0] == occlusion_cues.FILL)
            probs = np.tile([0.1, 0.8, 0.1], (len(crops), 1))
            probs[top_hidden] = [0.1, 0.1, 0.8]
            return {"expression": probs}

    crops = np.zeros((3, 8, 8, 3), np.uint8)
    bands = {"top": (0, 2), "low": (6, 8)}
    table = occlusion_cues.occlusion_table(Fixed(), crops, ["happy", "happy", "neutral"], bands)
    assert list(table) == ["none", "top", "low"] and list(table["none"]) == ["neutral", "happy"]
    assert table["none"]["happy"] == {"images": 2, "accuracy": 1.0, "p_true": 0.8, "called": {"happy": 2}}
    assert table["top"]["happy"]["called"] == {"anger": 2} and table["top"]["happy"]["accuracy"] == 0.0
    assert table["low"]["neutral"]["called"] == {"happy": 1}
    text = occlusion_cues.report("title", table)
    assert "| happy | 2 | 100 (0.80) | 0 (0.10) | 100 (0.80) |" in text and "top: neutral -> anger 1" in text


@pytest.mark.slow
def test_occlusion_cues_runs_on_test_renders_and_photos(tmp_path, london_sample, capsys, one_torch_thread):
    out_file = tmp_path / "o.json"
    assert occlusion_cues.main(["--subjects", "1", "--photos", str(london_sample), "--json", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "mouth hidden" in out and "photos in" in out
    import json

    results = json.loads(out_file.read_text())
    assert set(results["synthetic"]["none"]) == {"neutral", "happy", "sad", "surprise", "fear", "disgust", "anger"}
    assert results["synthetic"]["none"]["happy"]["images"] == 1  # one identity, frontal
    assert set(results["photos"]["none"]) == {"neutral", "happy"}


def test_detail_robustness_takes_extra_renderings_by_their_switch_lists():
    import argparse

    assert detail_robustness.switch_list("resting, lips") == ["lips", "resting"]
    with pytest.raises(argparse.ArgumentTypeError, match="known: lips"):
        detail_robustness.switch_list("lips,wrinkles")


def test_backbone_drift_is_zero_at_the_pretrained_start_and_measures_each_stage(tmp_path, capsys):
    import json

    from phanet.checkpoint import save_checkpoint
    from phanet.data.datasets.synthetic import synthetic_label_space
    from phanet.models import create_model

    assert backbone_drift.stage_of("blocks.3.1.conv_pw.weight") == "blocks.3"
    assert backbone_drift.stage_of("layer2.0.conv1.weight") == "layer2.0"
    assert backbone_drift.stage_of("conv_stem.weight") == "conv_stem" and backbone_drift.stage_of("bn1.bias") == "bn1"
    model = create_model("phanet_effl0", label_space=synthetic_label_space("kdef5"), input_size=32, pretrained=True)
    save_checkpoint(tmp_path / "start", model)
    with torch.no_grad():  # one stage scaled by 1.1 moves it by exactly 0.1 of its norm, and nothing else
        for name, param in model.backbone.named_parameters():
            if name.startswith("blocks.1."):
                param.mul_(1.1)
        model.backbone.blocks[2][0].bn1.running_mean.mul_(3.0)  # one layer's statistics moved by twice their norm
    save_checkpoint(tmp_path / "moved", model)
    out = tmp_path / "drift.json"
    assert backbone_drift.main(["--checkpoint", str(tmp_path / "start"), "--checkpoint", str(tmp_path / "moved"),
                                "--json", str(out)]) == 0
    start, moved = json.loads(out.read_text())
    assert start["overall"] == 0.0 and set(start["stages"].values()) == {0.0}
    assert moved["stages"]["blocks.1"] == pytest.approx(0.1, rel=1e-4)
    assert all(value == 0.0 for stage, value in moved["stages"].items() if stage != "blocks.1")
    assert 0.0 < moved["overall"] < 0.1
    assert set(start["running_means"].values()) == {0.0} and moved["running_means"]["blocks.1"] == 0.0
    assert 0.0 < moved["running_means"]["blocks.2"] <= 2.0  # the layer's 2.0, diluted by the stage's others
    table = capsys.readouterr().out
    assert "batch-norm running means" in table
    assert "| conv_stem | bn1 | blocks.0 | blocks.1 |" in table and "0.100" in table


def test_adapt_bn_study_picks_frontal_and_two_expression_target_sets():
    index, test = detail_robustness.test_index(["lips"], subjects=1)
    names = index.label_space.expressions
    assert adapt_bn.target_indices(index, test, "all") == test
    frontal = adapt_bn.target_indices(index, test, "frontal")
    # 7 expressions x the 5 frontal bins of the recipe's 23 (yaw 0, +-15 at pitch 0; yaw 0 at pitch +-20)
    assert len(frontal) == 7 * 5
    two = adapt_bn.target_indices(index, test, "frontal neutral+happy")
    assert len(two) == 2 * 5 and {names[index.samples[i].expression] for i in two} == {"neutral", "happy"}
    with pytest.raises(ValueError, match="unknown target set"):
        adapt_bn.target_indices(index, test, "profiles")
    results = {"per_expression_accuracy": {"neutral": 1.0, "happy": 0.5, "sad": None}}
    assert adapt_bn.balanced_accuracy(results) == 0.75
    assert adapt_bn.recipe_switches()[:3] == ["lips", "subtle", "blends"]
    held = adapt_bn.rendered_once(index, two)
    assert all(isinstance(held.samples[i].image, np.ndarray) for i in two)
    assert [held.samples[i].expression for i in two] == [index.samples[i].expression for i in two]


def test_photo_path_summary_counts_missed_faces_as_wrong_and_reports_the_frontal_landmark_bias():
    def row(yaw, expression, native, exact, detector, offset=None):
        found = detector is not None
        offsets = [[offset, 0.0]] * 5 if found else None
        realigned = expression if found and yaw else detector  # the turned faces' second crops are right
        return {"expression": expression, "yaw": yaw, "pitch": 0.0, "found": found, "native": native,
                "exact": exact, "detector": detector, "realigned": realigned, "offsets": offsets,
                "retried": found and abs(yaw) == 90}

    rows = [row(0.0, 0, 0, 0, 0, 0.1), row(0.0, 1, 1, 1, 2, -0.1), row(-90.0, 1, 1, 1, None),
            row(90.0, 2, 2, 0, 2, 0.3)]
    summary = photo_path.summarise(rows, ("neutral", "happy", "sad"))
    by_yaw = summary["by_yaw"]
    assert list(by_yaw) == ["0", "90", "all"]
    assert by_yaw["0"]["images"] == 2 and by_yaw["0"]["found"] == 2
    assert by_yaw["0"]["landmark_error"] == pytest.approx(0.1)
    assert by_yaw["0"]["native"] == 1.0 and by_yaw["0"]["detector"] == 0.5
    # yaw -90 and +90 in one row; the missed face counts as wrong over all images, not among the found ones
    assert by_yaw["90"]["images"] == 2 and by_yaw["90"]["found"] == 1 and by_yaw["90"]["detector"] == 0.5
    assert by_yaw["90"]["detector_on_found"] == 1.0 and by_yaw["90"]["exact"] == 0.5
    assert by_yaw["all"]["native"] == 1.0 and by_yaw["all"]["detector"] == 0.5
    assert summary["frontal_bias"]["images"] == 2
    assert summary["frontal_bias"]["mean"]["nose"] == [0.0, 0.0] and summary["frontal_bias"]["sd"]["nose"][0] == 0.1
    assert summary["right_on_native_wrong_on_detector"] == {"happy -> sad": 1}
    assert by_yaw["0"]["realigned"] == 0.5 and by_yaw["90"]["realigned"] == 0.5
    assert by_yaw["90"]["retried"] == 1 and by_yaw["0"]["retried"] == 0
    row_90 = "| 90 | 2 | 1 (1) | 0.300 | 100.0 | 50.0 | 50.0 | 50.0 | 100.0 / 0.0 / 100.0 / 100.0 |"
    assert row_90 in photo_path.report(summary)


def test_photo_path_counts_false_alarms_on_face_free_images_for_each_set_of_passes(one_torch_thread):
    import numpy as np

    alarms = photo_path.face_free_alarms(photo_path.face_free_backdrops(3, canvas=160), progress=False)
    assert list(alarms) == list(photo_path.detector_passes())
    for entry in alarms.values():
        assert entry["images"] == 3 and entry["with_a_face"] == 0 and entry["scores"] == [] and entry["seconds"] > 0
    assert "| first pass | 0 / 3 | - | 1.00x |" in photo_path.alarms_report("backdrops", alarms)
    pytest.importorskip("skimage")
    views = list(photo_path.face_free_photos(views=2, canvas=64))
    assert len(views) == 2 * len(photo_path.FACE_FREE_PHOTOS)
    assert all(view.dtype == np.uint8 and view.ndim == 3 and view.shape[2] == 3 for view in views)
    assert views[1].shape == (64, 64, 3)


def test_photo_path_finds_frontal_renders_with_the_renderers_landmarks(tmp_path, capsys, one_torch_thread):
    """The crop contract end to end: on frontal renders MTCNN's five points sit near the renderer's exact ones."""
    import json

    from phanet.checkpoint import save_checkpoint
    from phanet.data.datasets.synthetic import synthetic_label_space
    from phanet.models import create_model

    pytest.importorskip("facenet_pytorch")
    model = create_model("baseline_mbv2", label_space=synthetic_label_space("kdef5"), input_size=32, pretrained=False)
    save_checkpoint(tmp_path / "m", model)
    out = tmp_path / "path.json"
    assert photo_path.main(["--checkpoint", str(tmp_path / "m"), "--subjects", "1", "--poses", "frontal",
                            "--no-progress", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert len(result["rows"]) == 7 and result["by_yaw"]["0"]["found"] == 7  # one identity, 7 expressions
    assert result["by_yaw"]["0"]["landmark_error"] < 0.15  # measured 0.06 on the recipe's 56 frontal renders
    assert "frontal faces (7)" in capsys.readouterr().out


def _face_points(seed: int = 0) -> np.ndarray:
    """478 random 3D points standing in for a FaceMesh face (image axes)."""
    return np.random.default_rng(seed).normal(0, 50, (render_geometry.MESH_POINTS + 10, 3))


def test_render_geometry_alignment_removes_scale_rotation_and_shift_but_never_mirrors():
    face = _face_points()
    angle = np.radians(25)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    moved = 1.7 * face @ rotation.T + np.array([100.0, -40.0, 7.0])
    assert np.allclose(render_geometry.similarity_align(moved, face), face, atol=1e-6)
    mirrored = face * np.array([-1.0, 1.0, 1.0])
    assert not np.allclose(render_geometry.similarity_align(mirrored, face), face, atol=1.0)
    reference = render_geometry.mean_shape(np.stack([face, moved, 0.5 * face]))
    assert np.linalg.norm(reference) == pytest.approx(1.0) and np.allclose(reference.mean(0), 0, atol=1e-9)
    assert np.allclose(render_geometry.similarity_align(face, reference), reference, atol=1e-6)
    missed = np.stack([face, np.full_like(face, np.nan)])
    features, found = render_geometry.shape_features(missed, reference)
    assert found.tolist() == [True, False] and not features[1].any() and features.shape == (2, face.size)


def test_render_geometry_part_measures_and_five_points_on_a_hand_made_face():
    g = render_geometry
    face = np.zeros((g.MESH_POINTS + 10, 3))
    face[g.OUTER_EYE_CORNERS[0], :2], face[g.OUTER_EYE_CORNERS[1], :2] = (0, 0), (100, 0)  # unit: 100 px
    for lid in g.UPPER_LIDS:
        face[lid, 1] = -5.0
    for low in g.LOWER_LIDS:
        face[low, 1] = 5.0
    for brow in g.BROWS:
        face[list(brow), 1] = -35.0
    face[g.MOUTH_CORNERS[0], :2], face[g.MOUTH_CORNERS[1], :2] = (20, 100), (80, 100)
    face[list(g.LIP_MIDDLE), 1] = 103.0
    face[g.FOREHEAD, 1], face[g.CHIN, 1] = -100.0, 150.0
    assert np.allclose(g.part_measures(face), [0.30, 0.10, 0.60, 0.03, 2.50])
    # five points: iris centres, nose tip and mouth corners, each pair put in image order
    face[g.IRIS_CENTRES[0], :2], face[g.IRIS_CENTRES[1], :2] = (75, 0), (25, 0)
    face[g.NOSE_TIP, :2] = (50, 50)
    points = g.five_points(face[None])[0]
    assert points.tolist() == [[25, 0], [75, 0], [50, 50], [20, 100], [80, 100]]
    exact = points + np.array([0.0, 10.0])  # every exact point 10 px lower; eye-to-mouth distance 100 px
    assert np.allclose(g.landmark_offsets(points[None], exact[None]), [[0.0, -0.1]] * 5)


def test_render_geometry_reads_the_canonical_face_and_photo_folders(tmp_path):
    g = render_geometry
    obj = tmp_path / "face.obj"
    obj.write_text("mtllib x.mtl\n" + "".join(f"v {i} {2 * i} {3 * i}\n" for i in range(g.MESH_POINTS))
                   + "vt 0.1 0.2\nf 1 2 3\n")
    face = g.canonical_in_image_axes(g.obj_vertices(obj))
    assert face.shape == (g.MESH_POINTS, 3) and face[2].tolist() == [2.0, -4.0, -6.0]
    (tmp_path / "empty.obj").write_text("vt 0 0\n")
    with pytest.raises(ValueError, match="no vertex"):
        g.obj_vertices(tmp_path / "empty.obj")
    with pytest.raises(ValueError, match="468"):
        g.canonical_in_image_axes(np.zeros((10, 3)))
    for folder, name in (("neutral", "a.jpg"), ("smiling", "b.png"), ("other", "c.jpg"), ("smiling", "notes.txt")):
        (tmp_path / "photos" / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / "photos" / folder / name).write_bytes(b"")
    rows = g.photo_rows(tmp_path / "photos")
    assert [(path.name, label) for path, label in rows] == [("a.jpg", 0), ("b.png", 1)]
    with pytest.raises(SystemExit, match="no photos"):
        g.photo_rows(tmp_path / "photos" / "other")


def test_render_geometry_photo_report_counts_a_missed_face_as_wrong():
    probabilities = np.zeros((4, 7))
    probabilities[0, 0], probabilities[3, 6] = 1.0, 1.0  # a neutral face right; a smile called anger
    probabilities[2, [0, 1]] = (0.3, 0.7)  # a smile called happy; the second neutral photo had no face
    text = "\n".join(render_geometry.photo_report(["n1", "n2", "s1", "s2"], [0, 0, 1, 1], probabilities))
    assert "faces found: 3 / 4" in text and "no face" in text
    # the missed neutral face is wrong although its (zero) p(happy) is not above its p(neutral)
    assert "happy-vs-neutral accuracy: 50.0% [neutral 50, happy 50]" in text
    assert "7-way accuracy: 50.0% [neutral 50, happy 50]" in text


def test_render_geometry_renders_the_probe_faces_with_their_exact_landmarks(tmp_path):
    import csv
    import json

    from PIL import Image

    samples = render_geometry.probe_samples(train_subjects=2, max_yaw=0.0)
    splits = [sample.split for _, sample in samples]
    # yaw 0 at pitch -20, 0, +20: 3 poses x 7 expressions per identity; 2 training, 4 validation, 8 test identities
    assert (splits.count("train"), splits.count("val"), splits.count("test")) == (42, 84, 168)
    assert "rest_shape" not in samples[0][1].image.render.randomize
    shaped = render_geometry.probe_samples(train_subjects=2, max_yaw=0.0, add=("rest_shape",))
    assert [i for i, _ in shaped] == [i for i, _ in samples] and "rest_shape" in shaped[0][1].image.render.randomize
    listing = render_geometry.render(tmp_path, samples[:2], processes=2, progress=False)
    rows = list(csv.DictReader(open(listing)))
    assert len(rows) == 2 and (tmp_path / rows[0]["file"]).is_file()
    assert np.array(json.loads(rows[0]["landmarks"])).shape == (5, 2)
    assert 0.03 < float(rows[0]["drawn_eye_opening"]) < 0.15  # about 0.7 cm of lid gap over 9 cm between corners
    neutral = [(i, sample) for i, sample in samples if sample.expression == 0 and sample.split == "train"][:1]
    views = list(csv.DictReader(open(render_geometry.render_views(tmp_path, neutral, processes=1))))
    assert [float(row["distance"]) for row in views] == list(render_geometry.VIEW_DISTANCES)
    near, far = (np.asarray(Image.open(tmp_path / row["file"])) for row in views)
    assert near.shape == far.shape and not np.array_equal(near, far)  # the same face, another perspective


def test_render_geometry_classifier_learns_shapes_and_chooses_its_l2_on_validation():
    pytest.importorskip("sklearn")
    rng = np.random.default_rng(0)
    base = _face_points(1)

    def faces(count):
        labels = np.arange(count) % 7
        shapes = base + rng.normal(0, 1, (count,) + base.shape)
        # each expression moves its own block of 68 points (standardising would make a single moved point one
        # feature among 1,434 equally loud noisy ones)
        shapes[:, :476, 1] += 5.0 * np.repeat(np.eye(7)[labels], 68, axis=1)
        return shapes, labels

    train, val, test = faces(70), faces(21), faces(21)
    classifier = render_geometry.ShapeClassifier(*train, *val, strengths=(1e-3, 1.0))
    assert set(classifier.validation) == {1e-3, 1.0} and classifier.strength in classifier.validation
    assert render_geometry.accuracy(classifier.predict(test[0]), test[1]) > 0.9
    missed = test[0].copy()
    missed[0] = np.nan
    assert classifier.predict(missed)[0] == -1 and not classifier.probabilities(missed)[0].any()


# --- estimate_prior.py -----------------------------------------------------------------------------------


def test_estimate_prior_scores_folders_as_answered_with_the_em_estimate_and_with_the_true_mix():
    names = ["neutral", "happy", "sad", "surprise", "fear", "disgust", "anger"]
    assert estimate_prior.mix_shares("happy+neutral", names).tolist() == [0.5, 0.5, 0, 0, 0, 0, 0]
    assert estimate_prior.mix_shares("uniform", names) == pytest.approx(np.full(7, 1 / 7))
    assert estimate_prior.mix_shares("fer2013", names).sum() == pytest.approx(1.0)
    # a calibrated but unsure model of two classes: each face's own class gets 0.6 or 0.4 (a wrong answer)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 4000)
    right = rng.random(4000) < 0.75
    p_own = np.where(right, 0.6, 0.4)
    probabilities = np.where(labels[:, None] == np.arange(2)[None], p_own[:, None], 1 - p_own[:, None])
    skewed = np.array([0.9, 0.1])
    scores = estimate_prior.folder_scores(probabilities, labels, skewed, 500, 20, np.random.default_rng(1))
    assert scores["none"] == pytest.approx(0.75, abs=0.03)  # the model's own accuracy
    assert scores["oracle"] == pytest.approx(0.9, abs=0.03)  # the prior outweighs a 0.6 : 0.4 answer
    assert scores["estimated"] > scores["none"] + 0.1 and scores["l1_error"] < 0.2
    text = estimate_prior.table({"row": {"mix": {500: scores}}})
    assert "| row | mix | 500 | 75." in text
