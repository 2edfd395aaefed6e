"""Training engine: fit, checkpoints, resume after interruption, bad images, sampling, config."""

import json
import signal

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import phanet
from phanet.config import Config, apply_overrides, config_from_dict, load_config
from phanet.data.base import FaceDataset, LabelSpace, PoseBin, Sample
from phanet.data.transforms import FaceTransform
from phanet.engine import DistInfo, EpochSampler, fit
from tests.engine_fixtures import straight_and_resumed_runs, tiny_config, tiny_data


def test_fit_writes_checkpoints_metrics_and_report_and_the_checkpoint_reloads(tmp_path):
    results = fit(tiny_config("phanet_r18", epochs=3), tmp_path, data=tiny_data(), progress=False)
    for name in ("best.safetensors", "best.json", "last.safetensors", "last.json", "config.yaml",
                 "metrics.json", "history.json", "confusion_matrix.png", "accuracy_vs_pose.png", "attention.png"):
        assert (tmp_path / name).exists(), name
    assert not (tmp_path / "resume.pt").exists()  # a completed run drops its resume point (train.keep_resume)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert set(metrics["per_pose_accuracy"]) == {"yaw-45", "yaw+0", "yaw+45"}
    assert metrics["num_samples"] == results["num_samples"] > 0
    assert 0 <= metrics["accuracy"] <= 1 and "task_weights" in metrics
    model = phanet.load_model(tmp_path / "best.safetensors")
    assert model.label_space.expressions == ("neutral", "happy", "sad")
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.expression_logits.shape == (2, 3) and out.pose_logits.shape == (2, 3)


def test_the_tiny_problem_is_learned_well_above_chance(tmp_path):
    results = fit(tiny_config("baseline_r18", epochs=6), tmp_path, data=tiny_data(), progress=False,
                  write_report=False)
    assert results["accuracy"] > 0.6  # chance is 1/3


def test_keep_resume_keeps_the_resume_point_of_a_completed_run(tmp_path):
    fit(tiny_config("baseline_r18", epochs=1, keep_resume=True), tmp_path, data=tiny_data(), progress=False,
        write_report=False)
    assert (tmp_path / "resume.pt").exists()


def _weights(path):
    return load_file(str(path))


def test_resuming_after_sigterm_reaches_the_same_weights_as_an_uninterrupted_run(tmp_path):
    straight_dir, resumed_dir = straight_and_resumed_runs(tmp_path, "phanet_r18", stop_step=3)
    straight = _weights(straight_dir / "last.safetensors")
    resumed = _weights(resumed_dir / "last.safetensors")
    assert straight.keys() == resumed.keys()
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=1e-6, msg=key)


def test_sigterm_handler_is_removed_after_fit(tmp_path):
    before = signal.getsignal(signal.SIGTERM)
    fit(tiny_config("baseline_r18", epochs=1), tmp_path, data=tiny_data(), progress=False, write_report=False)
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_corrupt_image_is_skipped_and_counted_unless_strict(tmp_path):
    data = tiny_data()
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    victim = data.split["train"][0]
    data.index.samples[victim].image = bad
    with pytest.warns(UserWarning, match="bad.jpg"):
        fit(tiny_config("baseline_r18", epochs=1), tmp_path / "run", data=data, progress=False, write_report=False)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[0]["skipped"] >= 1
    with pytest.raises(OSError, match="bad.jpg"):
        fit(tiny_config("baseline_r18", epochs=1, strict=True), tmp_path / "strict", data=data, progress=False)


def test_horizontal_flip_mirrors_the_pose_label():
    poses = (PoseBin("left", -45.0, 0.0), PoseBin("front", 0.0, 0.0), PoseBin("right", 45.0, 0.0))
    space = LabelSpace(("a", "b"), poses)
    image = np.zeros((16, 16, 3), np.uint8)
    image[:, :4] = 255  # bright on the left
    samples = [Sample(image=image, expression=0, pose=0), Sample(image=image, expression=0, pose=1)]
    always_flip = FaceTransform(16, (0, 0, 0), (1, 1, 1), augment="light")
    dataset = FaceDataset(samples, space, always_flip)
    seen = set()
    for epoch in range(20):
        dataset.epoch = epoch
        item = dataset[0]
        flipped = item["image"][0, 8, 12] > item["image"][0, 8, 3]
        assert int(item["pose"]) == (2 if flipped else 0)
        assert int(dataset[1]["pose"]) == 1
        seen.add(bool(flipped))
    assert seen == {True, False}


def test_augmentation_is_a_pure_function_of_seed_epoch_and_index():
    samples = [Sample(image=np.random.default_rng(0).integers(0, 255, (20, 20, 3), dtype=np.uint8), expression=0)]
    dataset = FaceDataset(samples, LabelSpace(("a", "b")), FaceTransform(16, (0, 0, 0), (1, 1, 1), "strong"))
    first = dataset[0]["image"]
    torch.testing.assert_close(dataset[0]["image"], first)
    dataset.epoch = 1
    assert not torch.equal(dataset[0]["image"], first)


def test_epoch_sampler_shards_cover_every_sample_once_and_reshuffle_per_epoch():
    shards = [list(EpochSampler(10, 0, DistInfo(rank, 2, rank))) for rank in range(2)]
    assert len(shards[0]) == len(shards[1]) == 5
    assert sorted(shards[0] + shards[1]) == list(range(10))
    sampler = EpochSampler(10, 0, DistInfo())
    first = list(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    sampler.set_epoch(1, start=4)
    assert len(sampler) == 6


def test_class_balanced_sampling_draws_rare_classes_as_often_as_common_ones():
    labels = np.array([0] * 90 + [1] * 10)
    drawn = labels[list(EpochSampler(100, 0, DistInfo(), labels=labels))]
    sampler = EpochSampler(100, 0, DistInfo(), labels=labels)
    counts = np.zeros(2)
    for epoch in range(20):
        sampler.set_epoch(epoch)
        counts += np.bincount(labels[list(sampler)], minlength=2)
    assert 0.4 < counts[1] / counts.sum() < 0.6
    assert len(drawn) == 100


def test_config_rejects_unknown_keys_naming_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train:\n  epochz: 3\n")
    with pytest.raises(ValueError, match=r"bad\.yaml.*epochz"):
        load_config(path)


def test_config_overrides_are_typed_and_checked():
    config = apply_overrides(Config(), ["train.epochs=3", "train.lr=1e-3", "model.name=att_r18"])
    assert config.train.epochs == 3 and config.train.lr == 1e-3 and config.model.name == "att_r18"
    config = apply_overrides(config, {"train.epochs": None, "data.fold": 2})
    assert config.train.epochs == 3 and config.data.fold == 2
    with pytest.raises(ValueError, match="epochs"):
        apply_overrides(Config(), ["train.epochs=many"])
    with pytest.raises(ValueError, match="section"):
        config_from_dict({"optim": {}})


def test_library_overrides_set_nested_options_and_refuse_non_mappings():
    config = apply_overrides(Config(), ["model.options.top_k=2", "data.options.poses=kdef5"])
    assert config.model.options == {"top_k": 2} and config.data.options == {"poses": "kdef5"}
    with pytest.raises(ValueError, match="train.epochs is not a mapping"):
        apply_overrides(Config(), ["train.epochs.x=1"])
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['nope'\]"):
        apply_overrides(Config(), ["model.nope.x=1"])


@pytest.mark.parametrize("name, options, message", [
    ("phanet_effl0", {"top_k": 9}, "top_k=9 must lie in 1..num_scales=3"),
    ("att_r18", {"gate_floor": 2.0}, "gate_floor=2.0; must lie in"),
    ("mtl_effl0", {"selction": "hard"}, "unknown option(s) ['selction']"),
    ("phanet_r18", {"backbone": "resnet50"}, "backbone cannot be set there"),
    ("phanet_r99", {}, "unknown model 'phanet_r99'"),
])
def test_model_options_are_checked_without_building_the_model(name, options, message, monkeypatch):
    from phanet.models import PhaNet, check_model_options

    def no_build(*args, **kwargs):
        raise AssertionError("check_model_options must not build the model")

    monkeypatch.setattr(PhaNet, "__init__", no_build)
    with pytest.raises(ValueError) as err:
        check_model_options(name, options)
    assert message in str(err.value)
    check_model_options("baseline_effl0", {"dropout": 0.1})  # a valid option passes


def test_ablation_baselines_need_no_scale_fusion_switch():
    model = phanet.create_model("mtl_r18", num_expressions=7, num_poses=5)
    assert not model.config.use_attention and model.config.use_pose
    out = model(torch.randn(2, 3, 64, 64))
    assert out.scale_weights is None and out.pose_logits.shape == (2, 5)
