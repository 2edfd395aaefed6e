"""What a new user gets wrong, and what phanet must do about it (issue 13, "run folders and inputs that
cannot lie"): run folders owned by one process and never silently mixed, checkpoint pairs that must
agree, data checks that catch duplicates / leaks / typos / paths outside the root, range-checked
configs, one-line CLI errors that name the file, bounded memory on huge images, and checkpoints that
know which people they have seen.

Every test asserts the exact behaviour: exit code, the message naming the file or value, and that
nothing was overwritten or lost.
"""

import json
import os
import signal
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from phanet.checkpoint import checkpoint_paths, load_checkpoint, save_checkpoint
from phanet.cli import main
from phanet.config import Config, apply_overrides, load_config
from phanet.data.base import LabelSpace, Sample
from phanet.data.registry import DatasetIndex
from phanet.engine import TrainingInterrupted, fit
from phanet.models import create_model
from phanet.runfolder import LOCK_FILE, RunFolderError, RunLock
from tests.engine_fixtures import EXPRESSIONS, POSES, straight_and_resumed_runs, tiny_config, tiny_data, tiny_index
from tests.test_cli_engine import COMMON, write_generic_tree

# ------------------------------------------------------------- helpers


def quick_fit(out, **kw):
    kw.setdefault("write_report", False)
    return fit(tiny_config("baseline_r18", epochs=1), out, data=kw.pop("data", None) or tiny_data(),
               progress=False, **kw)


def snapshot(folder) -> dict:
    """Every file under ``folder`` with its bytes (to prove nothing was changed)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def error_line(err: str, command: str) -> str:
    """The CLI's error: exactly one ``phanet COMMAND: error:`` line and no traceback."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith(f"phanet {command}: error:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture
def live_pid():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def generic_root(tmp_path_factory):
    return write_generic_tree(tmp_path_factory.mktemp("generic") / "data")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A real (untrained) baseline checkpoint for the tiny label space: ``best.safetensors`` + ``best.json``."""
    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    model = create_model("baseline_r18", label_space=LabelSpace(EXPRESSIONS, POSES), input_size=32, pretrained=False)
    return save_checkpoint(folder / "best", model)


def copy_checkpoint(checkpoint, folder):
    weights, meta = checkpoint_paths(checkpoint)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / weights.name).write_bytes(weights.read_bytes())
    (folder / meta.name).write_bytes(meta.read_bytes())
    return folder / weights.name, folder / meta.name


# ------------------------------------------------------------- 1. one writer per run folder


def test_a_second_writer_gets_an_error_naming_the_holder_and_the_folder_is_untouched(tmp_path, live_pid, capsys,
                                                                                     generic_root):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text(json.dumps({"pid": live_pid, "host": "", "since": "then"}))
    before = snapshot(run)
    code = main(["train", "--root", str(generic_root), "--epochs", "1", "--out", str(run), *COMMON])
    assert code == 1
    line = error_line(capsys.readouterr().err, "train")
    assert f"in use by process {live_pid}" in line and str(run) in line
    assert snapshot(run) == before  # no config.yaml, folds.json or .tmp file written by the loser


def test_two_processes_cannot_own_one_run_folder_and_a_killed_owner_does_not_brick_it(tmp_path, caplog):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from phanet.runfolder import RunLock; "
         "RunLock(sys.argv[1]).acquire(); print('locked', flush=True); time.sleep(60)", str(run)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderError, match=rf"{run} is in use by process {holder.pid} \(lock file"):
            quick_fit(run)
        assert sorted(p.name for p in run.iterdir()) == [LOCK_FILE]  # the loser wrote nothing
    finally:
        holder.kill()  # like kill -9: no chance to release the lock
        holder.wait()
    quick_fit(run)
    assert f"taking over the stale lock of process {holder.pid}" in caplog.text
    assert (run / "best.safetensors").exists() and not (run / LOCK_FILE).exists()


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path, dead_pid, caplog):
    run = tmp_path / "run"
    run.mkdir()
    (run / LOCK_FILE).write_text(json.dumps({"pid": dead_pid, "host": "", "since": "then"}))
    quick_fit(run)
    assert f"taking over the stale lock of process {dead_pid}" in caplog.text
    assert (run / "best.safetensors").exists() and not (run / LOCK_FILE).exists()


def test_the_lock_is_held_while_training_and_released_on_exceptions_and_sigterm(tmp_path):
    run = tmp_path / "run"
    seen = []

    def boom(epoch, step):
        seen.append(json.loads((run / LOCK_FILE).read_text())["pid"])
        raise RuntimeError("a bug in a callback")

    with pytest.raises(RuntimeError, match="a bug"):
        quick_fit(run, on_step=boom)
    assert seen == [os.getpid()] and not (run / LOCK_FILE).exists()

    def term(epoch, step):
        if step == 1:
            signal.raise_signal(signal.SIGTERM)

    interrupted = tmp_path / "interrupted"
    with pytest.raises(TrainingInterrupted):
        quick_fit(interrupted, on_step=term)
    assert (interrupted / "resume.pt").exists() and not (interrupted / LOCK_FILE).exists()


def test_sigterm_before_training_starts_releases_the_lock_too(tmp_path, monkeypatch):
    import phanet.engine as engine

    real = engine.build_model

    def build_then_terminated(*args):
        model = real(*args)
        signal.raise_signal(signal.SIGTERM)  # e.g. while the data is loading, before the first step
        return model

    monkeypatch.setattr(engine, "build_model", build_then_terminated)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted, match="terminated by SIGTERM outside a training step"):
        quick_fit(tmp_path / "run")
    assert not (tmp_path / "run" / LOCK_FILE).exists() and not (tmp_path / "run" / "best.safetensors").exists()
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_lock_in_the_same_process_is_exclusive_and_disabled_locks_write_nothing(tmp_path):
    with RunLock(tmp_path / "a"):
        with pytest.raises(RunFolderError, match=f"in use by process {os.getpid()}"):
            RunLock(tmp_path / "a").acquire()
    assert not (tmp_path / "a" / LOCK_FILE).exists()
    with RunLock(tmp_path / "b", enabled=False):  # ranks other than 0 under torchrun
        assert not (tmp_path / "b").exists()


# ------------------------------------------------------------- 2./3. existing runs, --overwrite, --resume


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("finished") / "run"
    quick_fit(run, write_report=True)
    return run


def test_an_existing_run_without_resume_or_overwrite_is_an_error_and_nothing_changes(finished_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for path in finished_run.iterdir():
        (run / path.name).write_bytes(path.read_bytes())
    before = snapshot(run)
    with pytest.raises(RunFolderError, match=f"{run} already holds a run; pass --resume .* or --overwrite"):
        quick_fit(run)
    assert snapshot(run) == before


def test_overwrite_removes_every_file_of_the_old_run_first(finished_run, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for path in finished_run.iterdir():
        (run / path.name).write_bytes(path.read_bytes())
    (run / "notes.txt").write_text("mine")  # not a run file: kept
    assert (run / "confusion_matrix.png").exists() and (run / "accuracy_vs_pose.png").exists()
    quick_fit(run, overwrite=True)  # no report this time: the old pictures must not remain
    names = {p.name for p in run.iterdir()}
    assert "confusion_matrix.png" not in names and "accuracy_vs_pose.png" not in names
    assert {"best.safetensors", "best.json", "metrics.json", "history.json", "notes.txt"} <= names
    load_checkpoint(run / "best")  # a consistent pair from the new run


def test_train_overwrite_flag_from_the_command_line(tmp_path, generic_root, capsys):
    run = tmp_path / "run"
    args = ["train", "--root", str(generic_root), "--epochs", "1", "--out", str(run), *COMMON]
    assert main(args) == 0
    first = snapshot(run)
    capsys.readouterr()
    assert main(args) == 1
    line = error_line(capsys.readouterr().err, "train")
    assert str(run) in line and "--overwrite" in line and "--resume" in line
    assert snapshot(run) == first
    assert main([*args, "--overwrite"]) == 0


def test_resume_with_a_mistyped_out_is_an_error_and_starts_no_new_run(tmp_path, capsys):
    typo = tmp_path / "runz"
    assert main(["train", "--resume", "--out", str(typo), "--no-progress"]) == 1
    line = error_line(capsys.readouterr().err, "train")
    assert f"cannot resume: {typo} does not exist" in line
    assert not typo.exists() and not (tmp_path.parent / "runs").exists()


def test_resume_on_a_folder_without_resume_point_is_an_error_naming_what_is_missing(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(Config().to_dict()))
    assert main(["train", "--resume", "--out", str(run)]) == 1
    assert f"cannot resume: {run} has no resume.pt" in error_line(capsys.readouterr().err, "train")
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]
    with pytest.raises(RunFolderError, match="contradict"):
        quick_fit(tmp_path / "other", resume=True, overwrite=True)


def test_a_resume_point_that_is_truncated_or_holds_pickled_objects_is_refused_in_one_line(tmp_path):
    data = tiny_data()

    def term(epoch, step):
        if step == 1:
            signal.raise_signal(signal.SIGTERM)

    run = tmp_path / "run"
    with pytest.raises(TrainingInterrupted):
        quick_fit(run, data=data, on_step=term)
    good = (run / "resume.pt").read_bytes()
    (run / "resume.pt").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"resume.pt: not a usable phanet resume point"):
        quick_fit(run, data=data, resume=True)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    torch.save({"model": Evil(), "optimizer": {}, "progress": {}}, run / "resume.pt")
    with pytest.raises(ValueError, match=r"resume.pt: not a usable phanet resume point .*never unpickled"):
        quick_fit(run, data=data, resume=True)


def test_cross_validation_into_an_existing_folder_needs_overwrite(tmp_path, generic_root, capsys):
    (tmp_path / "cv").mkdir()
    (tmp_path / "cv" / "cv_metrics.json").write_text("{}")
    assert main(["cv", "--root", str(generic_root), "--epochs", "1", "--out", str(tmp_path / "cv"), *COMMON]) == 1
    line = error_line(capsys.readouterr().err, "cv")
    assert "already holds a cross-validation" in line and "--overwrite" in line
    assert (tmp_path / "cv" / "cv_metrics.json").read_text() == "{}"


# ------------------------------------------------------------- 5./7. checkpoint pairs that agree


def test_a_checkpoint_records_the_weights_hash_and_loads(checkpoint):
    meta = json.loads(checkpoint_paths(checkpoint)[1].read_text())
    assert len(meta["weights_sha256"]) == 64
    model, _ = load_checkpoint(checkpoint)
    assert model.label_space.expressions == EXPRESSIONS


def test_killed_between_the_weights_and_the_metadata_rename_the_pair_is_refused(checkpoint, tmp_path, monkeypatch):
    import phanet.checkpoint as ckpt

    weights, meta = copy_checkpoint(checkpoint, tmp_path)
    old_meta = meta.read_bytes()
    calls = []
    real = ckpt._replace

    def die_before_meta(tmp, final):
        calls.append(final.name)
        if final.suffix == ".json":
            raise KeyboardInterrupt  # killed after the weights were renamed
        real(tmp, final)

    monkeypatch.setattr(ckpt, "_replace", die_before_meta)
    other = create_model("baseline_r18", label_space=LabelSpace(EXPRESSIONS, POSES), input_size=32, pretrained=False)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path / "best", other)
    assert calls == ["best.safetensors", "best.json"] and meta.read_bytes() == old_meta
    with pytest.raises(ValueError, match=rf"{meta} does not describe {weights} \(sha256 differs\)"):
        load_checkpoint(weights)


def test_damaged_or_foreign_weight_files_are_one_line_errors_naming_the_file(checkpoint, tmp_path):
    weights, _ = copy_checkpoint(checkpoint, tmp_path / "trunc")
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=rf"{weights} \(sha256 differs\)"):
        load_checkpoint(weights)
    meta_path = weights.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    del meta["weights_sha256"]  # a checkpoint from before hashes: the file itself is checked
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=rf"{weights}: not a readable safetensors file, truncated"):
        load_checkpoint(weights)
    weights.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match=rf"{weights}: not a readable safetensors file"):
        load_checkpoint(weights)
    folder = tmp_path / "dir" / "X.safetensors"
    folder.mkdir(parents=True)
    (tmp_path / "dir" / "X.json").write_text(meta_path.read_text())
    with pytest.raises(ValueError, match=rf"{folder} is a directory, not a .safetensors file"):
        load_checkpoint(folder)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["label_space"].update(expressions=["a", "b", "c", "d", "e", "f"]),
     "label_space names 6 expressions but the architecture has 3"),
    (lambda m: m["model"]["architecture"].update(num_expressions=7, ),
     "label_space names 3 expressions but the architecture has 7"),
    (lambda m: (m["model"]["architecture"].update(num_expressions=7),
                m["label_space"].update(expressions=list("abcdefg"))),
     "its architecture does not match the tensors in"),
    (lambda m: m["model"].update(name="phanet_r50"), "its architecture does not match the tensors in"),
    (lambda m: m["model"]["architecture"].update(stray_key=1), "cannot build its architecture 'baseline_r18'"),
    (lambda m: m["model"].update(name="no_such_model"), "cannot build its architecture 'no_such_model'"),
    (lambda m: m.pop("label_space"), "malformed phanet checkpoint metadata (missing 'label_space')"),
    (lambda m: m.update(format="other"), "is not a phanet checkpoint (format='other')"),
])
def test_metadata_that_does_not_match_the_weights_is_refused_naming_the_json(checkpoint, tmp_path, edit, message):
    weights, meta_path = copy_checkpoint(checkpoint, tmp_path)
    meta = json.loads(meta_path.read_text())
    edit(meta)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError) as err:
        load_checkpoint(weights)
    assert message in str(err.value) and str(meta_path) in str(err.value) and "\n" not in str(err.value)


def test_malformed_checkpoint_json_is_one_line_in_the_cli(checkpoint, tmp_path, generic_root, capsys):
    weights, meta_path = copy_checkpoint(checkpoint, tmp_path)
    meta_path.write_text('{"format": "phanet-checkpoint", ')
    code = main(["evaluate", "--checkpoint", str(weights), "--dataset", "generic", "--root", str(generic_root),
                 "--workers", "0"])
    assert code == 1
    assert f"{meta_path}: not a phanet checkpoint (not valid JSON" in error_line(capsys.readouterr().err, "evaluate")


# ------------------------------------------------------------- 5. one-line CLI errors, config ranges


@pytest.mark.parametrize("extra, message", [
    (["--batch-size", "0"], "train.batch_size=0 must be >= 1"),
    (["--epochs", "0"], "train.epochs=0 must be >= 1"),
    (["--device", "bogus"], "device 'bogus' is not one of auto, cpu, cuda"),
    (["--set", "data.val_fraction=2"], "data.val_fraction=2.0 must be < 1.0"),
    (["--set", "data.val_fraction=-0.5"], "data.val_fraction=-0.5 must be >= 0.0"),
    (["--set", "train.augment=strongest"], "train.augment='strongest' is not one of none, light, standard, strong"),
    (["--set", "train.lr=0"], "train.lr=0.0 must be > 0.0"),
    (["--set", "data.fold=3", "--protocol", "subject_kfold"], "data.fold=3 must be < data.folds=3"),
    (["--set", "model.options.bogus=1"], "model 'baseline_r18' with model.options={'bogus': 1}"),
    (["--set", "model.options.num_poses=2"], "model.options: num_poses cannot be set there"),
    (["--set", "train.epochz=1"], "unknown key(s) ['epochz'] in section 'train'"),
])
def test_bad_values_on_the_command_line_are_one_line_errors_and_write_nothing(tmp_path, generic_root, capsys,
                                                                              extra, message):
    run = tmp_path / "run"
    code = main(["train", "--root", str(generic_root), "--epochs", "1", "--out", str(run), *COMMON, *extra])
    assert code == 1
    assert message in error_line(capsys.readouterr().err, "train")
    assert not (run / "best.safetensors").exists() and not (run / LOCK_FILE).exists()


def test_unknown_dataset_names_and_options_are_one_line_errors(tmp_path, generic_root, capsys):
    run = tmp_path / "run"
    args = ["train", "--root", str(generic_root), "--out", str(run), *COMMON]
    assert main([*args, "--set", "data.options.bogus=1"]) == 1
    line = error_line(capsys.readouterr().err, "train")
    assert "dataset 'generic' has no option bogus (data.options)" in line
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]  # failed before training: not a run
    assert main(["train", "--dataset", "nosuch", "--out", str(run)]) == 1
    assert error_line(capsys.readouterr().err, "train").startswith("phanet train: error: unknown dataset 'nosuch';")


def test_a_traceback_only_with_verbose(tmp_path, generic_root):
    with pytest.raises(ValueError, match="train.batch_size=0"):
        main(["-v", "train", "--root", str(generic_root), "--out", str(tmp_path / "r"), *COMMON, "--batch-size", "0"])


@pytest.mark.parametrize("text, message", [
    ("train: {epochs: 3\n", "line 2: not valid YAML"),
    ("train:\n  epochs: [1\n", "not valid YAML"),
    ("- just a list\n", "expected a mapping of sections"),
    ("data:\n  val_fraction: 2\n", "data.val_fraction=2.0 must be < 1.0"),
    ("train:\n  batch_size: 0\n", "train.batch_size=0 must be >= 1"),
    ("train:\n  epochz: 3\n", "unknown key(s) ['epochz']"),
])
def test_config_files_are_checked_at_load_with_the_file_named(tmp_path, capsys, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        load_config(path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert main(["train", "--config", str(path), "--out", str(tmp_path / "r")]) == 1
    line = error_line(capsys.readouterr().err, "train")
    assert str(path) in line and message in line


def test_a_config_file_that_is_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("train:\n  augment: l\xe9ger\n".encode("latin-1"))
    with pytest.raises(ValueError, match=rf"{path}: not a UTF-8 text file"):
        load_config(path)


def test_overrides_are_range_checked_too():
    with pytest.raises(ValueError, match="override train.workers: train.workers=-1 must be >= 0"):
        apply_overrides(Config(), ["train.workers=-1"])
    config = apply_overrides(Config(), ["data.val_fraction=0", "train.label_smoothing=0.1"])
    assert config.data.val_fraction == 0.0 and config.train.label_smoothing == 0.1


def test_a_non_utf8_labels_csv_names_the_file(tmp_path, capsys):
    root = tmp_path / "data"
    root.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "a.png")
    (root / "labels.csv").write_bytes("image,expression\na.png,fr\xf6hlich\n".encode("latin-1"))
    assert main(["data", "check", "--dataset", "generic", "--root", str(root)]) == 1
    line = error_line(capsys.readouterr().err, "data")
    assert f"{root / 'labels.csv'}: not UTF-8 text" in line


# ------------------------------------------------------------- 4. datasets: leaks, typos, outside the root


def write_rows(root, rows, images=()):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(rows))
    for name in images:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(root / name)
    (root / "labels.csv").write_text("image,expression,subject,split\n" + "".join(r + "\n" for r in rows))
    return root


def test_data_check_reports_a_file_in_train_and_test_as_a_leak_and_exits_non_zero(tmp_path, capsys):
    root = write_rows(tmp_path / "d", ["a.png,happy,s1,train", "b.png,sad,s2,train", "a.png,happy,s1,test"],
                      images=["a.png", "b.png"])
    assert main(["data", "check", "--dataset", "generic", "--root", str(root)]) == 1
    captured = capsys.readouterr()
    assert f"{root / 'a.png'}: leak, the same file is in test and train" in captured.out
    assert "problems: 1" in captured.out
    assert "1 duplicate(s) or train/test leak(s)" in error_line(captured.err, "data")


def test_data_check_finds_the_same_picture_under_two_names_across_splits_and_duplicated_rows(tmp_path, capsys):
    root = write_rows(tmp_path / "d", ["a.png,happy,s1,train", "copy.png,happy,s9,test", "b.png,sad,s2,train",
                                       "b.png,sad,s2,train"], images=["a.png", "b.png"])
    (root / "copy.png").write_bytes((root / "a.png").read_bytes())
    assert main(["data", "check", "--dataset", "generic", "--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"{root / 'copy.png'} (test): leak, the same image as {root / 'a.png'} (train)" in out
    assert f"{root / 'b.png'}: duplicate, listed 2 times (train)" in out


def test_training_refuses_a_leaky_split_unless_allowed(tmp_path, generic_root, capsys):
    root = tmp_path / "leaky"
    root.mkdir()
    for path in generic_root.rglob("*"):
        if path.is_file():
            (root / path.relative_to(generic_root)).parent.mkdir(parents=True, exist_ok=True)
            (root / path.relative_to(generic_root)).write_bytes(path.read_bytes())
    lines = (root / "labels.csv").read_text().splitlines()
    first_image = lines[1].split(",")[0]
    # the first subject's first picture again, under another subject (so it lands in another fold)
    lines.append(lines[1].replace(",s0,", ",s5,"))
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    run = tmp_path / "run"
    args = ["train", "--root", str(root), "--epochs", "1", "--out", str(run), *COMMON]
    assert main(args) == 1
    line = error_line(capsys.readouterr().err, "train")
    assert first_image in line and "leak" in line and "--allow-leaks" in line
    assert not (run / "best.safetensors").exists()
    assert main([*args, "--overwrite", "--allow-leaks"]) == 0


def test_fit_refuses_in_memory_data_with_the_same_image_in_train_and_test(tmp_path):
    data = tiny_data()
    index = data.index
    test_i, train_i = data.split["test"][0], data.split["train"][0]
    index.samples[test_i].image = index.samples[train_i].image.copy()
    with pytest.raises(ValueError, match=r"tiny: s\d_0_0_0 \((test|train)\): leak, the same image as") as err:
        quick_fit(tmp_path / "run", data=data)
    assert index.samples[test_i].item_id in str(err.value) and index.samples[train_i].item_id in str(err.value)
    assert not (tmp_path / "run" / "best.safetensors").exists()


@pytest.mark.parametrize("label, near", [("happpy", "happy"), ("Happy", "happy"), ("surprised", "surprise")])
def test_a_misspelt_or_miscased_expression_is_an_error_not_a_new_class(tmp_path, capsys, label, near):
    root = write_rows(tmp_path / "d", ["a.png,happy,s1,", "b.png,sad,s1,", f"c.png,{label},s2,", "d.png,happy,s2,"],
                      images=["a.png", "b.png", "c.png", "d.png"])
    assert main(["data", "check", "--dataset", "generic", "--root", str(root)]) == 1
    line = error_line(capsys.readouterr().err, "data")
    assert f"{root / 'labels.csv'} line 4: unknown expression {label!r}" in line
    assert f"misspelling of {near!r}" in line and "labelspace.json" in line


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "img/../../outside.png"])
def test_rows_pointing_outside_the_root_are_errors_and_never_read(tmp_path, capsys, path):
    (tmp_path / "outside.png").write_bytes(b"secret")
    root = write_rows(tmp_path / "d", ["a.png,happy,s1,", f"{path},sad,s2,"], images=["a.png"])
    assert main(["data", "check", "--dataset", "generic", "--root", str(root)]) == 1
    line = error_line(capsys.readouterr().err, "data")
    assert f"line 3: image {path!r} is outside the dataset root {root}" in line


# ------------------------------------------------------------- 6. who the checkpoint has seen


def test_synth_defaults_to_identities_no_training_default_uses(tmp_path):
    assert main(["synth", "--out", str(tmp_path / "s"), "--subjects", "1", "--poses=0:0", "--size", "24"]) == 0
    config = json.loads((tmp_path / "s" / "synth_config.json").read_text())
    assert config["subjects"] == [1000] and config["seed"] == 0


@pytest.fixture(scope="module")
def synthetic_checkpoint(tmp_path_factory):
    """A checkpoint whose metadata says it was trained on synthetic ids 0-2 (seed 0), validated on id 3."""
    from phanet.data.datasets.synthetic import synthetic_index
    from phanet.provenance import training_provenance
    from phanet.synth import RenderSettings

    index = synthetic_index(range(4), poses="0:0", render=RenderSettings(24))
    n = len(index.samples) // 4
    split = {"train": list(range(3 * n)), "val": list(range(3 * n, 4 * n)), "test": []}
    provenance = training_provenance(index, split)
    assert provenance["synthetic"] == {"train": [{"seed": 0, "ids": [0, 1, 2]}], "val": [{"seed": 0, "ids": [3]}]}
    assert provenance["subjects"]["val"] == ["synth0003"]
    model = create_model("baseline_r18", label_space=index.label_space, input_size=24, pretrained=False)
    folder = tmp_path_factory.mktemp("synthckpt")
    return save_checkpoint(folder / "best", model,
                           extra={"training": {"dataset": "synthetic", "provenance": provenance}})


@pytest.mark.parametrize("first, seed, warned", [(0, 0, True), (3, 0, True), (1000, 0, False), (0, 1, False)])
def test_evaluate_warns_loudly_when_the_evaluated_people_were_trained_on(synthetic_checkpoint, tmp_path, capsys,
                                                                        first, seed, warned):
    out = tmp_path / "s"
    assert main(["synth", "--out", str(out), "--subjects", "2", "--first-subject", str(first), "--seed", str(seed),
                 "--poses=0:0", "--size", "24"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--checkpoint", str(synthetic_checkpoint), "--dataset", "generic", "--root", str(out),
                 "--workers", "0", "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert ("WARNING:" in err and "NOT a test on unseen people" in err) == warned, err
    if warned:
        assert f"generator seed {seed}, ids" in err


def test_a_trained_checkpoint_records_its_training_and_validation_subjects(finished_run):
    meta = json.loads((finished_run / "best.json").read_text())
    provenance = meta["training"]["provenance"]
    data = tiny_data()
    for part in ("train", "val"):
        expected = sorted({data.index.samples[i].subject for i in data.split[part]})
        assert provenance["subjects"][part] == expected
    assert not set(provenance["subjects"]["train"]) & set(provenance["subjects"]["val"])


def test_evaluating_a_checkpoint_on_its_own_training_subjects_warns(tmp_path, generic_root, capsys):
    run = tmp_path / "run"
    assert main(["train", "--root", str(generic_root), "--epochs", "1", "--out", str(run), *COMMON]) == 0
    capsys.readouterr()
    evaluate = ["evaluate", "--checkpoint", str(run / "best.safetensors"), "--dataset", "generic", "--root",
                str(generic_root), "--workers", "0", "--folds", "3", "--protocol", "subject_kfold",
                "--fold-file", str(run / "folds.json")]
    assert main([*evaluate, "--split", "all"]) == 0
    assert "were in this checkpoint's training/validation data" in capsys.readouterr().err
    assert main([*evaluate, "--split", "test"]) == 0
    assert "WARNING" not in capsys.readouterr().err


# ------------------------------------------------------------- 7. history after resume, bounded memory


def test_history_after_a_resume_equals_the_uninterrupted_runs(tmp_path):
    straight_dir, resumed_dir = straight_and_resumed_runs(tmp_path, "baseline_r18", stop_step=2)
    straight = json.loads((straight_dir / "history.json").read_text())
    resumed = json.loads((resumed_dir / "history.json").read_text())
    assert len(straight) == len(resumed) == 2
    for a, b in zip(straight, resumed):
        assert a.keys() == b.keys()
        # every field, the per-head gradient norms of the interrupted epoch included
        flat_a, flat_b = flatten(a, skip=None), flatten(b, skip=None)
        assert flat_a.keys() == flat_b.keys() and "train_loss" in flat_a and "loss_fer" in flat_a
        assert "grad_norms.backbone" in flat_a
        assert flat_a == pytest.approx(flat_b, rel=1e-6, abs=1e-9)


def flatten(record: dict, skip: str, prefix: str = "") -> dict:
    out = {}
    for key, value in record.items():
        if key == skip:
            continue
        if isinstance(value, dict):
            out.update(flatten(value, skip, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_annotated_output_of_a_huge_image_is_drawn_on_a_bounded_copy(tmp_path, monkeypatch):
    import phanet.inference.annotated as annotated

    h, w = 3000, 4000
    image = np.full((h, w, 3), 90, np.uint8)
    face = {"box": (0.0, 0.0, float(w), float(h)), "matrix": np.array([[32 / w, 0, 0], [0, 32 / h, 0]]),
            "attention": np.random.default_rng(0).random((32, 32)).astype(np.float32),
            "expression": "happy", "probabilities": {"happy": 0.9}, "pose": None}
    monkeypatch.setattr(annotated, "MAX_ANNOTATED_PIXELS", 1_000_000)
    tracemalloc.start()
    small, faces = annotated.bounded_copy(image, [face])
    picture = annotated.annotate(small, faces)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert picture.shape[0] * picture.shape[1] <= 1_000_000
    assert abs(picture.shape[1] / picture.shape[0] - w / h) < 0.01
    assert peak < 4 * image.nbytes  # drawn at full size: ~90 bytes per pixel (> 1 GB here)
    assert faces[0]["box"] == pytest.approx((0, 0, picture.shape[1], picture.shape[0]), abs=1)
    # the heat-map covers the whole (scaled) face: the picture changed everywhere, not in a corner
    assert (picture[-5:, -5:] != 90).any() and (picture[:5, :5] != 90).any()


# ------------------------------------------------------------- what already held (kept so)


def test_prediction_lists_a_broken_image_and_goes_on(checkpoint, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(folder / "good.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    out = tmp_path / "out.jsonl"
    code = main(["predict", str(folder), "--checkpoint", str(checkpoint), "--no-detect", "--format", "jsonl",
                 "-o", str(out)])
    assert code == 0  # one input failed, not all (and no --strict)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert any("good.png" in json.dumps(r) for r in records)
    assert "broken.jpg" in capsys.readouterr().err


def test_unknown_config_keys_name_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  nmae: x\n")
    with pytest.raises(ValueError, match=rf"{path}: unknown key\(s\) \['nmae'\] in section 'model'"):
        load_config(path)


def test_a_dataset_index_of_distinct_samples_passes_the_leak_check():
    from phanet.data.check import find_leaks

    index = tiny_index()
    assert find_leaks(index) == []
    same = DatasetIndex([Sample(image=index.samples[0].image, expression=0, item_id="x", split="train"),
                         Sample(image=index.samples[0].image.copy(), expression=0, item_id="y", split="test")],
                        index.label_space)
    assert find_leaks(same) == ["y (test): leak, the same image as x (train)"]


def test_an_affectnet_row_pointing_outside_the_images_folder_is_an_error(tmp_path):
    from phanet.data import load_dataset
    from phanet.data.registry import DatasetLayoutError
    from tests.test_data_affectnet import make_affectnet

    name = "missing/../../../etc/passwd"  # "missing...": the fixture writes no picture for it
    root = make_affectnet(tmp_path / "an", {"training": [("1/a.jpg", 0, 0), (name, 1, 0)],
                                            "validation": [("3/g.jpg", 6, 0)]})
    expected = rf"training.csv line 3: image '{name}' is outside the dataset root {root / 'Manually_Annotated_Images'}"
    with pytest.raises(DatasetLayoutError, match=expected):
        load_dataset("affectnet", root)


def test_predict_save_annotated_writes_a_bounded_picture_of_a_huge_input(checkpoint, tmp_path, monkeypatch):
    import phanet.inference.annotated as annotated

    monkeypatch.setattr(annotated, "MAX_ANNOTATED_PIXELS", 200_000)
    (tmp_path / "in").mkdir()
    Image.fromarray(np.full((1500, 2000, 3), 100, np.uint8)).save(tmp_path / "in" / "big.png")
    code = main(["predict", str(tmp_path / "in" / "big.png"), "--checkpoint", str(checkpoint), "--no-detect",
                 "--save-annotated", str(tmp_path / "ann"), "--format", "jsonl", "-o", str(tmp_path / "p.jsonl")])
    assert code == 0
    with Image.open(tmp_path / "ann" / "big.png") as picture:
        width, height = picture.size
    assert width * height <= 200_000 and abs(width / height - 2000 / 1500) < 0.01


def test_a_non_utf8_fer2013_csv_names_the_file(tmp_path, capsys):
    root = tmp_path / "fer"
    root.mkdir()
    (root / "fer2013.csv").write_bytes("emotion,pixels,Usage\n0,1 2 3,Training \xe9\n".encode("latin-1"))
    assert main(["data", "check", "--dataset", "fer2013", "--root", str(root), "--no-open"]) == 1
    assert f"{root / 'fer2013.csv'}: not UTF-8 text" in error_line(capsys.readouterr().err, "data")


def test_cv_overwrite_removes_the_old_folds_files_also_those_not_run_again(tmp_path, generic_root):
    cv = tmp_path / "cv"
    for name in ("fold0", "fold1"):
        (cv / name).mkdir(parents=True)
        (cv / name / "metrics.json").write_text('{"old": true}')
        (cv / name / "best.json").write_text("{}")
    (cv / "cv_metrics.json").write_text('{"old": true}')
    (cv / "folds.json").write_text('{"old": true}')
    args = ["cv", "--root", str(generic_root), "--epochs", "1", "--out", str(cv), *COMMON, "--only-folds", "0"]
    assert main([*args, "--overwrite"]) == 0
    assert json.loads((cv / "cv_metrics.json").read_text())["accuracy"]["n"] == 1
    assert "old" not in json.loads((cv / "folds.json").read_text())
    assert "old" not in json.loads((cv / "fold0" / "metrics.json").read_text())
    assert list((cv / "fold1").iterdir()) == []  # a result of the old folds must not sit beside the new ones


def test_equal_sized_files_with_different_content_are_not_duplicates(tmp_path):
    from phanet.data.check import PREFIX_BYTES, find_leaks

    root = tmp_path / "d"
    root.mkdir()
    head = bytes(PREFIX_BYTES)  # same first 64 KiB, same size, different tail
    (root / "a.bin").write_bytes(head + b"A")
    (root / "b.bin").write_bytes(head + b"B")
    (root / "c.bin").write_bytes(head + b"A")
    samples = [Sample(image=str(root / n), expression=0, split=s) for n, s in
               (("a.bin", "train"), ("b.bin", "test"), ("c.bin", "train"))]
    index = DatasetIndex(samples, LabelSpace(("neutral",)))
    assert find_leaks(index) == [f"{root / 'c.bin'} (train): duplicate, the same image as {root / 'a.bin'} (train)"]
    assert find_leaks(index, across_parts_only=True) == []  # what training checks: a and c are both in train
