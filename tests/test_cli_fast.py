"""The command line starts instantly and behaves on a shared CPU (issue 12).

`phanet --help`, `phanet <cmd> --help` and argument errors must not import torch, timm or cv2; the
entry point sets OMP_WAIT_POLICY=PASSIVE before torch loads unless the user set it; `--threads N`
reaches torch.set_num_threads; progress bars only on a terminal.
"""

import io
import json
import logging
import os
import subprocess
import sys

import pytest
import torch

from phanet.cli import build_parser, main
from phanet.commands.common import show_progress

HEAVY = ("torch", "timm", "cv2")
COMMANDS = ("demo", "train", "evaluate", "cv", "synth", "data", "predict", "export", "info")


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environ, timeout=120)


def test_help_and_argument_errors_do_not_import_torch_timm_or_cv2():
    code = f"""
import json, sys
import phanet.cli
from phanet.cli import build_parser, main
build_parser()
exits = []
for argv in [["--help"], *[[c, "--help"] for c in {COMMANDS!r}], ["data", "check", "--help"],
             ["export", "onnx", "--help"], ["train", "--epochs", "x"], ["demo", "--threads", "0"], ["nosuchcommand"]]:
    try:
        main(argv)
    except SystemExit as stop:
        exits.append(stop.code)
print(json.dumps({{"heavy": [m for m in {HEAVY!r} if m in sys.modules], "exits": exits}}))
"""
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["exits"] == [0] * (3 + len(COMMANDS)) + [2, 2, 2]


def test_the_package_still_exports_its_public_names():
    import phanet
    from phanet import PhaNetOutput, create_model, list_models, load_checkpoint, load_model, save_checkpoint

    assert "phanet_r18" in list_models()
    assert callable(create_model) and callable(load_model) and callable(load_checkpoint)
    assert callable(save_checkpoint) and PhaNetOutput._fields[0] == "expression_logits"
    assert set(phanet.__all__) <= set(dir(phanet))
    with pytest.raises(AttributeError, match="no_such_name"):
        phanet.no_such_name  # noqa: B018


def test_entry_point_sets_a_passive_omp_wait_policy_before_torch_unless_the_user_set_one():
    code = "import os, sys; import phanet.cli; print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    assert run_python(code).stdout.split() == ["PASSIVE", "False"]
    assert run_python(code, OMP_WAIT_POLICY="ACTIVE").stdout.split() == ["ACTIVE", "False"]
    # `python -m phanet` (what torchrun runs) goes through the same module
    code = """
import os, runpy, sys
sys.argv = ["phanet", "--help"]
try:
    runpy.run_module("phanet", run_name="__main__")
except SystemExit:
    pass
print(os.environ.get("OMP_WAIT_POLICY"), "torch" in sys.modules)
"""
    assert run_python(code).stdout.split()[-2:] == ["PASSIVE", "False"]


@pytest.mark.parametrize("argv", [
    ["train", "--dataset", "kdef"], ["cv", "--dataset", "kdef"], ["demo"],
    ["evaluate", "--checkpoint", "x", "--dataset", "kdef"], ["predict", "photo.jpg", "--checkpoint", "x"],
])
def test_threads_flag_is_parsed_on_the_commands_that_compute(argv):
    parser = build_parser()
    assert parser.parse_args([*argv, "--threads", "3"]).threads == 3
    assert parser.parse_args(argv).threads is None  # default: torch's own choice
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args([*argv, "--threads", bad])


@pytest.mark.parametrize("argv", [
    ["evaluate", "--checkpoint", "x", "--dataset", "kdef"], ["predict", "photo.jpg", "--checkpoint", "x"],
])
def test_class_prior_flag_is_taken_by_the_commands_that_answer_expressions_and_is_off_by_default(argv):
    parser = build_parser()
    assert parser.parse_args(argv).class_prior is None
    assert parser.parse_args([*argv, "--class-prior", "fer2013"]).class_prior == "fer2013"


def test_predict_estimates_a_class_prior_only_when_asked():
    parser = build_parser()
    args = parser.parse_args(["predict", "photos/"])
    assert args.estimate_prior is False and args.prior_images == 1000
    args = parser.parse_args(["predict", "photos/", "--estimate-prior", "--prior-images", "50"])
    assert args.estimate_prior is True and args.prior_images == 50
    with pytest.raises(SystemExit):
        parser.parse_args(["predict", "photos/", "--estimate-prior", "--prior-images", "0"])


@pytest.mark.parametrize("argv", [
    ["train", "--dataset", "no_such_dataset", "--root", "{tmp}"],
    ["cv", "--dataset", "no_such_dataset", "--root", "{tmp}"],
    ["evaluate", "--checkpoint", "{tmp}/missing", "--dataset", "no_such_dataset", "--root", "{tmp}"],
    ["predict", "{tmp}/missing.jpg", "--checkpoint", "{tmp}/missing", "--no-detect"],
    ["demo", "--resume", "--out", "{tmp}/no_demo_here"],
])
def test_threads_flag_reaches_torch_set_num_threads_first(argv, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.chdir(tmp_path)  # train/cv without --out make their run folder under ./runs
    argv = [a.format(tmp=tmp_path) for a in argv]
    try:  # every one of these fails on its missing input, after applying --threads
        main([*argv, "--threads", "1"])
    except Exception:  # how a failure is reported is not what this test checks
        pass
    assert calls == [1]


def test_progress_bars_only_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    args = build_parser().parse_args(["train"])
    assert not show_progress(args)  # pytest's captured stderr is not a terminal
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert show_progress(args)
    assert not show_progress(build_parser().parse_args(["train", "--no-progress"]))


def test_train_into_a_log_has_no_carriage_return_redraws(tmp_path, capsys, caplog):
    from tests.test_cli_engine import write_generic_tree

    root = write_generic_tree(tmp_path / "data", subjects=3)
    common = ["--dataset", "generic", "--model", "baseline_r18", "--no-pretrained", "--input-size", "32",
              "--batch-size", "8", "--workers", "0", "--folds", "3"]  # no --no-progress: stderr decides
    caplog.set_level(logging.INFO)
    assert main(["train", "--root", str(root), "--epochs", "1", "--out", str(tmp_path / "run"), *common]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err
    assert "epoch 1/1" in caplog.text  # the log line that stands in for the bars


def test_predict_detection_passes_are_chosen_on_the_command_line():
    from phanet.commands.predict import detector_options
    from phanet.inference.detect import RETRY_STRETCH

    def options(*flags):
        return detector_options(build_parser().parse_args(["predict", "x.jpg", *flags]))

    assert "retry_thresholds" not in options() and "retry_stretch" not in options()  # the looser pass: the default
    assert options("--no-retry")["retry_thresholds"] is None
    assert options("--search-profiles")["retry_stretch"] == RETRY_STRETCH
    assert options("--search-profiles", "--no-retry") == options("--no-retry")  # no later pass at all


def test_randomize_help_names_every_generator_switch(capsys):
    from phanet.commands.common import RANDOMIZE_SWITCHES
    from phanet.synth import RANDOMIZATIONS

    named = RANDOMIZE_SWITCHES.split(", ")
    assert sorted(named) == sorted(RANDOMIZATIONS) and len(named) == len(set(named))
    for command in ("synth", "demo"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "lashes, mid_face, clutter, camera" in " ".join(capsys.readouterr().out.split())
