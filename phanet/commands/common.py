"""Flags shared by `phanet train`, `phanet cv` and `phanet evaluate`, and the config they build."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

# The generator's switches for `--randomize` help (phanet.synth.RANDOMIZATIONS, written out because the parsers
# must not import numpy; tests/test_cli_fast.py keeps the two the same).
RANDOMIZE_SWITCHES = ("lips, subtle, blends, brows, skin, age, shading, glasses, resting, eyes, teeth, smiles, "
                      "broad_smiles, nose, rest_shape, rest_spread, lashes, mid_face, clutter, camera")


def add_run_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that override the YAML config (each one beats the file; unset flags leave it alone)."""
    parser.add_argument("--config", metavar="FILE", help="YAML config (see configs/); flags below override it")
    parser.add_argument("--dataset", help="dataset name (see `phanet data list`), e.g. kdef, multipie, generic")
    parser.add_argument("--root", metavar="DIR", help="the dataset's root folder, as distributed")
    parser.add_argument("--model", help="registered model (see `phanet info`), e.g. phanet_r18, baseline_r18")
    parser.add_argument("--protocol", choices=["subject_kfold", "official"],
                        help="evaluation protocol (default: the dataset's own)")
    parser.add_argument("--folds", type=int, help="number of subject-independent folds")
    parser.add_argument("--fold-file", metavar="FILE", help="fold JSON to reuse/write (default: <out>/folds.json)")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float, help="peak learning rate of AdamW")
    parser.add_argument("--input-size", type=int, help="face crop side in pixels (112 multi-view, 224 in-the-wild)")
    parser.add_argument("--workers", type=int, help="DataLoader worker processes")
    parser.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--cache-dir", metavar="DIR", help="cache resized face crops here (see `phanet data prepare`)")
    parser.add_argument("--pretrained", action=argparse.BooleanOptionalAction, default=None,
                        help="start from ImageNet weights (timm download; packaged for phanet_effl0)")
    parser.add_argument("--strict", action="store_true", default=None, help="fail on an unreadable image")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="any config value, e.g. --set train.augment=strong --set model.options.top_k=2")
    parser.add_argument("--out", metavar="DIR", help="run folder (default: a new folder under runs/)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing run in --out (its files are removed first)")
    parser.add_argument("--allow-leaks", action="store_true", default=None,
                        help="train even when the data has duplicates, train/test leaks or paths outside the "
                        "root (data.allow_leaks)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars, log lines only (the default when stderr is not a terminal)")
    parser.add_argument("--keep-resume", action="store_true", default=None,
                        help="keep resume.pt after the run completes (default: deleted; train.keep_resume)")
    add_threads_flag(parser)


def add_init_from_flag(parser: argparse.ArgumentParser) -> None:
    """``--init-from``: fine-tune from a checkpoint (train.init_from; phanet.finetune)."""
    parser.add_argument("--init-from", metavar="CHECKPOINT",
                        help="fine-tune: start from this checkpoint's weights ('bundled': the model inside the "
                        "package) instead of ImageNet weights and fresh heads; classifier rows are matched by "
                        "class name, pose layers kept only when the pose bins are the same (train.init_from)")


THREADS_HELP = ("torch CPU threads (default: torch's choice, one per CPU core, or OMP_NUM_THREADS when set); "
                "on a CPU shared with other jobs, fewer threads than cores can be faster")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def add_threads_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--threads", type=positive_int, metavar="N", help=THREADS_HELP)


# phanet.inference.tta.TTA_MODES, spelled out here so that building the parsers does not import torch
TTA_CHOICES = ("none", "flip")


def add_tta_flag(parser: argparse.ArgumentParser, unit: str = "face") -> None:
    """``--tta``: test-time augmentation of the model's answers (phanet.inference.tta)."""
    parser.add_argument("--tta", choices=TTA_CHOICES, default="none",
                        help=f"test-time augmentation: none, or flip (each {unit}'s answer averaged with its mirror "
                        "image's; twice the model compute; default: none)")


def add_class_prior_flag(parser: argparse.ArgumentParser) -> None:
    """``--class-prior SPEC``: a deployment class prior for the expression answers (phanet.inference.prior)."""
    parser.add_argument("--class-prior", default=None, metavar="SPEC",
                        help="reweight the expression answers by how often each class occurs where the model is "
                        "used: a preset (fer2013: FER2013's training classes) or NAME=SHARE,... (classes not named "
                        "share the rest); off by default, since it trades rare classes' recall for common ones'")


PRIOR_IMAGES = 1000


def add_estimate_prior_flags(parser: argparse.ArgumentParser, unit: str = "inputs") -> None:
    """``--estimate-prior``, ``--prior-images K``: the class prior estimated from the inputs themselves
    (phanet.inference.prior.estimate_prior); refused together with ``--class-prior``."""
    parser.add_argument("--estimate-prior", action="store_true",
                        help=f"estimate how often each expression occurs among the {unit} from the model's own "
                        "answers on them (EM, Saerens et al. 2002; unlabelled) and reweight the answers by it, as "
                        "--class-prior does with a known prior: a first pass over up to --prior-images of them, "
                        "then the prediction. Answers then depend on which inputs are run together, and a model "
                        "that misreads the inputs pulls the estimate towards its mistakes. Default: off")
    parser.add_argument("--prior-images", type=positive_int, default=PRIOR_IMAGES, metavar="K",
                        help=f"with --estimate-prior: estimate on at most K inputs, evenly spaced (default: "
                        f"{PRIOR_IMAGES})")


def check_prior_flags(args: argparse.Namespace) -> None:
    """Raises ValueError when a class prior is both given (``--class-prior``) and estimated."""
    if args.estimate_prior and args.class_prior is not None:
        raise ValueError("--estimate-prior estimates the class prior that --class-prior gives: use one of them")


ADAPT_BN_PRIOR = 16.0  # = phanet.inference.adapt_bn.DEFAULT_PRIOR (that module imports torch)
ADAPT_BN_IMAGES = 256  # = phanet.inference.adapt_bn.DEFAULT_MAX_IMAGES


def add_adapt_bn_flags(parser: argparse.ArgumentParser, unit: str = "photos") -> None:
    """``--adapt-bn [PRIOR]``, ``--adapt-images K``, ``--adapt-depth F``: test-time batch-norm adaptation
    (phanet.inference.adapt_bn)."""
    parser.add_argument("--adapt-bn", type=float, nargs="?", const=ADAPT_BN_PRIOR, default=None, metavar="PRIOR",
                        help=f"test-time batch-norm adaptation: before predicting, re-measure the model's batch-norm "
                        f"statistics on the {unit} (unlabelled) and mix them with the trained ones, PRIOR "
                        f"counting as that many images (default PRIOR {ADAPT_BN_PRIOR:g}; 0: theirs only). "
                        "Answers then depend on which inputs are run together: use it for many inputs from "
                        "one source. Default: off")
    parser.add_argument("--adapt-images", type=int, default=ADAPT_BN_IMAGES, metavar="K",
                        help=f"with --adapt-bn: adapt on at most K inputs, evenly spaced, in one forward pass "
                        f"(memory grows with K; default: {ADAPT_BN_IMAGES})")
    parser.add_argument("--adapt-depth", type=float, default=1.0, metavar="F",
                        help="with --adapt-bn: adapt only this share of the batch-norm layers, counted from the "
                        "input (the early ones see colour, texture and noise; default: 1, all)")


def check_adapt_bn_flags(args: argparse.Namespace) -> None:
    """Raises ValueError on a negative ``--adapt-bn`` prior, ``--adapt-images`` below 1 or an
    ``--adapt-depth`` outside (0, 1]."""
    if args.adapt_bn is not None and args.adapt_bn < 0:
        raise ValueError(f"--adapt-bn PRIOR must be >= 0 (0: the inputs' statistics only), got {args.adapt_bn:g}")
    if args.adapt_images < 1:
        raise ValueError(f"--adapt-images must be at least 1, got {args.adapt_images}")
    if not 0 < args.adapt_depth <= 1:
        raise ValueError(f"--adapt-depth must be in (0, 1], got {args.adapt_depth:g}")


def refuse_checkpoint_meta_as_output(parser: argparse.ArgumentParser, json_path: Path | None) -> None:
    """A ``--json`` output that is a checkpoint's metadata file is a usage error: writing numbers there
    would destroy that checkpoint (its weights would no longer load)."""
    from phanet.checkpoint import is_checkpoint_meta  # torch; only once the arguments are parsed

    if json_path and is_checkpoint_meta(json_path):
        parser.error(f"--json {json_path} is a checkpoint's metadata; writing the numbers there would destroy "
                     "that checkpoint (give another file name)")


def show_progress(args) -> bool:
    """Progress bars only on a terminal: in a log file or pipe their carriage-return redraws are noise
    (the engine logs one line per epoch either way); ``--no-progress`` turns them off everywhere."""
    import sys

    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


def apply_threads(args) -> None:
    """``torch.set_num_threads(args.threads)`` when ``--threads`` was given (call first in a run function)."""
    threads = getattr(args, "threads", None)
    if threads:
        import torch

        torch.set_num_threads(threads)


def interrupted_message(stop) -> str:
    """What `phanet train` and `phanet cv` print for a :class:`phanet.engine.TrainingInterrupted` from
    ``fit``: when training stopped and the command that continues the run."""
    if stop.out_dir is None:
        return str(stop)
    if stop.saved:
        return f"{stop.where}; resume with `phanet train --resume --out {stop.out_dir}`"
    from phanet.resume import RESUME_FILE

    return f"{stop.where}; run again (with --resume if {stop.out_dir / RESUME_FILE} exists)"


def build_config(args):
    from phanet.config import apply_overrides, load_config, parse_key_values

    config = load_config(args.config)
    apply_overrides(config, {
        "data.allow_leaks": getattr(args, "allow_leaks", None),
        "data.dataset": args.dataset, "data.root": args.root, "model.name": args.model,
        "data.protocol": args.protocol, "data.folds": args.folds, "data.fold_file": args.fold_file,
        "train.epochs": args.epochs, "train.batch_size": args.batch_size, "train.lr": args.lr,
        "model.input_size": args.input_size, "train.workers": args.workers, "train.device": args.device,
        "data.cache_dir": args.cache_dir, "model.pretrained": args.pretrained, "train.strict": args.strict,
        "data.fold": getattr(args, "fold", None), "train.keep_resume": getattr(args, "keep_resume", None),
        "train.init_from": getattr(args, "init_from", None),
    })
    apply_overrides(config, parse_key_values(args.overrides, "--set", "section.key=value"))
    from phanet.config import validate_config
    from phanet.models import check_model_options

    validate_config(config, "command line")
    check_model_options(config.model.name, config.model.options)
    return config


def default_out(config, kind: str) -> Path:
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{config.data.dataset}-{config.model.name}"
