"""Weight averaging (`phanet average`) and the shared initial weights it relies on (train.init_seed)."""

from __future__ import annotations

import json
import re

import pytest
import torch
from engine_fixtures import EXPRESSIONS, POSES, tiny_config, tiny_index

from phanet.averaging import average_checkpoints, initial_seed, starting_point
from phanet.checkpoint import checkpoint_paths, file_sha256, load_checkpoint, save_checkpoint
from phanet.cli import main
from phanet.data.base import LabelSpace
from phanet.engine import initial_model
from phanet.models import create_model

MODEL = "phanet_mbv2"  # the smallest PhaNet


def _member(folder, name: str, seed: int, init_seed: int | None, fill: float | None = None,
            label_space: LabelSpace | None = None, init_from: dict | None = None):
    """A checkpoint whose metadata records a training config with ``seed``/``init_seed``; with ``fill`` every
    floating-point tensor is that constant, so averages are easy to check."""
    torch.manual_seed(seed)
    model = create_model(MODEL, label_space=label_space or LabelSpace(EXPRESSIONS, POSES), input_size=32,
                         pretrained=False)
    if fill is not None:
        with torch.no_grad():
            for tensor in model.state_dict().values():
                if tensor.is_floating_point():
                    tensor.fill_(fill)
    config = {"train": {"seed": seed, "init_seed": init_seed}}
    extra = {} if init_from is None else {"training": {"init_from": init_from}}
    return save_checkpoint(folder / name, model.eval(), config=config, extra=extra)


def test_init_seed_gives_runs_with_different_seeds_the_same_initial_weights():
    index = tiny_index(subjects=2, per_cell=1)
    models = []
    for seed in (1, 2):
        config = tiny_config(MODEL, seed=seed, init_seed=0)
        torch.manual_seed(seed)  # as the engine seeds the run
        before = torch.get_rng_state()
        models.append(initial_model(config, index))
        assert torch.equal(before, torch.get_rng_state()), "the run's own generator must not be consumed"
    for (key, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
        assert torch.equal(a, b), key
    # without init_seed the initial weights follow the run's seed, as before the option existed
    torch.manual_seed(2)
    free = initial_model(tiny_config(MODEL, seed=2), index)
    assert any(not torch.equal(a, b) for a, b in zip(free.state_dict().values(), models[1].state_dict().values()))


def test_average_is_the_weighted_mean_of_floating_tensors(tmp_path):
    a = _member(tmp_path, "a", seed=1, init_seed=0, fill=1.0)
    b = _member(tmp_path, "b", seed=2, init_seed=0, fill=4.0)
    out = average_checkpoints([a, b], tmp_path / "soup")
    soup, meta = load_checkpoint(out)
    for key, tensor in soup.state_dict().items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, torch.full_like(tensor, 2.5)), key
    assert [m["initial_seed"] for m in meta["averaged_from"]] == [0, 0]
    assert [m["weight"] for m in meta["averaged_from"]] == [0.5, 0.5]
    assert meta["averaged_from"][1]["checkpoint"] == str(checkpoint_paths(b)[0])

    weighted = average_checkpoints([a, b], tmp_path / "weighted", weights=[2, 1])
    state = load_checkpoint(weighted)[0].state_dict()
    floats = [t for t in state.values() if t.is_floating_point()]
    assert all(torch.allclose(t, torch.full_like(t, 2.0)) for t in floats)


def test_average_of_real_members_lies_between_them(tmp_path):
    a = _member(tmp_path, "a", seed=1, init_seed=0)
    b = _member(tmp_path, "b", seed=2, init_seed=0)
    soup = load_checkpoint(average_checkpoints([a, b], tmp_path / "soup"))[0]
    ta, tb = load_checkpoint(a)[0].state_dict(), load_checkpoint(b)[0].state_dict()
    for key, value in soup.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, (ta[key] + tb[key]) / 2, atol=1e-6), key
        else:
            assert torch.equal(value, ta[key]), key  # integer counters: the first member's
    with torch.no_grad():
        out = soup(torch.randn(2, 3, 32, 32))
    assert torch.isfinite(out.expression_logits).all()


def test_average_refuses_members_that_do_not_match(tmp_path):
    a = _member(tmp_path, "a", seed=1, init_seed=0)
    other_classes = _member(tmp_path, "c", seed=2, init_seed=0, label_space=LabelSpace(("neutral", "happy"), POSES))
    with pytest.raises(ValueError, match=r"c\.json.*'model'|c\.json.*label_space"):
        average_checkpoints([a, other_classes], tmp_path / "soup")
    other_init = _member(tmp_path, "d", seed=3, init_seed=None)
    with pytest.raises(ValueError, match="different initial weights .*seed 0, seed 3"):
        average_checkpoints([a, other_init], tmp_path / "soup")
    assert not checkpoint_paths(tmp_path / "soup")[0].exists()
    assert average_checkpoints([a, other_init], tmp_path / "soup", allow_different_init=True).exists()
    with pytest.raises(ValueError, match="at least 2"):
        average_checkpoints([a], tmp_path / "soup")
    with pytest.raises(ValueError, match="3 weights given for 2"):
        average_checkpoints([a, a], tmp_path / "soup", weights=[1, 1, 1])


def test_fine_tunes_of_one_checkpoint_share_their_start_whatever_their_seeds(tmp_path):
    bundled = {"checkpoint": "bundled", "weights_sha256": "ab" * 32, "fresh": []}
    a = _member(tmp_path, "a", seed=2, init_seed=None, init_from=bundled)
    b = _member(tmp_path, "b", seed=3, init_seed=None, init_from=bundled)
    meta = load_checkpoint(average_checkpoints([a, b], tmp_path / "soup"))[1]
    assert [m["start"] for m in meta["averaged_from"]] == ["weights abababababab"] * 2
    # a fine-tune of other weights, one with fresh layers, and a run from its own seed all start elsewhere
    other = _member(tmp_path, "c", seed=2, init_seed=None, init_from={**bundled, "weights_sha256": "cd" * 32})
    fresh = _member(tmp_path, "d", seed=3, init_seed=None, init_from={**bundled, "fresh": ["head.weight"]})
    own = _member(tmp_path, "e", seed=2, init_seed=None)
    for stranger, start in ((other, "weights cdcdcdcdcdcd"), (fresh, "weights abababababab + fresh layers from seed 3"),
                            (own, "seed 2")):
        with pytest.raises(ValueError, match=re.escape(f"weights abababababab, {start}")):
            average_checkpoints([a, stranger], tmp_path / "soup")


def test_a_checkpoint_joins_its_own_fine_tunes_for_interpolation(tmp_path):
    start = _member(tmp_path, "start", seed=0, init_seed=None, fill=0.0)
    made_from_start = {"checkpoint": "start", "weights_sha256": file_sha256(checkpoint_paths(start)[0]), "fresh": []}
    a = _member(tmp_path, "a", seed=2, init_seed=None, fill=4.0, init_from=made_from_start)
    b = _member(tmp_path, "b", seed=3, init_seed=None, fill=8.0, init_from=made_from_start)
    wise = average_checkpoints([start, a, b], tmp_path / "wise", weights=[0.5, 0.25, 0.25])
    soup, meta = load_checkpoint(wise)
    floats = [t for t in soup.state_dict().values() if t.is_floating_point()]
    assert all(torch.allclose(t, torch.full_like(t, 3.0)) for t in floats)  # half-way from 0 to their mean, 6
    assert [m.get("role") for m in meta["averaged_from"]] == ["start", None, None]
    # a checkpoint that is not their start is still refused beside them
    stranger = _member(tmp_path, "s", seed=0, init_seed=None, fill=1.0)
    with pytest.raises(ValueError, match="different initial weights"):
        average_checkpoints([stranger, a, b], tmp_path / "refused")


def test_initial_seed_reads_the_recorded_config():
    assert initial_seed({"config": {"train": {"seed": 4}}}) == 4
    assert initial_seed({"config": {"train": {"seed": 4, "init_seed": 0}}}) == 0
    assert initial_seed({}) is None
    assert starting_point({"config": {"train": {"seed": 4}}}) == "seed 4" and starting_point({}) is None


def test_cli_average(tmp_path, capsys):
    a = _member(tmp_path, "a", seed=1, init_seed=0, fill=1.0)
    b = _member(tmp_path, "b", seed=2, init_seed=0, fill=3.0)
    assert main(["average", str(a), str(b), "--out", str(tmp_path / "soup"), "--weights", "1,3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["members"] == 2
    state = load_checkpoint(tmp_path / "soup")[0].state_dict()
    assert all(torch.allclose(t, torch.full_like(t, 2.5)) for t in state.values() if t.is_floating_point())
    assert main(["average", str(a), str(b), "--out", str(tmp_path / "x"), "--weights", "1,x"]) == 1
    assert "--weights '1,x': expected comma-separated numbers" in capsys.readouterr().err


def test_init_seed_in_configs_and_overrides():
    from phanet.config import Config, apply_overrides, config_from_dict

    assert Config().train.init_seed is None
    assert apply_overrides(Config(), ["train.init_seed=3"]).train.init_seed == 3
    assert config_from_dict({"train": {"init_seed": 0}}).train.init_seed == 0
    with pytest.raises(ValueError, match=r"train\.init_seed='abc' should be a number"):
        apply_overrides(Config(), ["train.init_seed=abc"])
    with pytest.raises(ValueError, match=r"train\.init_seed=-1 must be >= 0"):
        apply_overrides(Config(), ["train.init_seed=-1"])


def test_batch_norm_reestimation_keeps_the_pretrained_statistics_of_frozen_early_stages():
    from phanet.averaging import reestimate_batch_norm
    from phanet.config import Config
    from phanet.data.datasets.synthetic import synthetic_label_space

    config = Config()
    config.data.dataset = "synthetic"
    config.data.protocol = "official"
    config.data.options = {"subjects": 3, "splits": {"train": 1, "val": 1, "test": 1}, "poses": "kdef5", "size": 32}
    config.train.batch_size, config.train.workers, config.train.augment = 4, 0, "standard"
    model = create_model(MODEL, label_space=synthetic_label_space("kdef5"), input_size=32, pretrained=False,
                         frozen_stages=2)
    frozen = {id(norm) for norm in model.frozen_norms}
    assert frozen
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:
        norm.running_mean.fill_(100.0)
    reestimate_batch_norm(model, config, batches=2, progress=False)
    for norm in norms:
        if id(norm) in frozen:
            assert torch.all(norm.running_mean == 100.0)  # kept, not reset and left at zero
        else:
            assert norm.running_mean.abs().max() < 50  # measured afresh


def test_batch_norm_statistics_are_measured_afresh_on_the_training_images(tmp_path):
    from phanet.averaging import reestimate_batch_norm
    from phanet.config import Config
    from phanet.data.datasets.synthetic import synthetic_label_space

    config = Config()
    config.data.dataset = "synthetic"
    config.data.protocol = "official"
    config.data.options = {"subjects": 3, "splits": {"train": 1, "val": 1, "test": 1}, "poses": "kdef5", "size": 32}
    config.train.batch_size, config.train.workers, config.train.augment = 4, 0, "standard"
    model = create_model(MODEL, label_space=synthetic_label_space("kdef5"), input_size=32, pretrained=False)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    for norm in norms:  # statistics that describe nothing these images produce
        norm.running_mean.fill_(100.0)
        norm.running_var.fill_(1e-3)
    used = reestimate_batch_norm(model, config, batches=3, progress=False)
    assert used == {"dataset": "synthetic", "split": "train", "augment": "standard", "batches": 3, "batch_size": 4,
                    "seed": 0}
    assert not model.training
    assert all(norm.running_mean.abs().max() < 50 and norm.running_var.min() > 0 for norm in norms)
    with pytest.raises(ValueError, match="at least 1 batch"):
        reestimate_batch_norm(model, config, batches=0, progress=False)

    # through `phanet average --bn-config`: recorded in the JSON
    a = _member(tmp_path, "a", seed=1, init_seed=0, label_space=synthetic_label_space("kdef5"))
    b = _member(tmp_path, "b", seed=2, init_seed=0, label_space=synthetic_label_space("kdef5"))
    from phanet.config import save_config

    save_config(config, tmp_path / "recipe.yaml")
    assert main(["average", str(a), str(b), "--out", str(tmp_path / "soup"), "--bn-config",
                 str(tmp_path / "recipe.yaml"), "--bn-batches", "2", "--threads", "1"]) == 0
    assert load_checkpoint(tmp_path / "soup")[1]["batch_norm"]["batches"] == 2
