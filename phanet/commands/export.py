"""`phanet export onnx`: a checkpoint to ONNX, checked against PyTorch in onnxruntime."""

from __future__ import annotations

import argparse
import json

ONNX_DESCRIPTION = """\
Export a checkpoint to ONNX with a dynamic batch axis. Input "image" [N, 3, S, S] float32, normalised
with the checkpoint's mean/std; outputs expression_logits [N, E] and, where the model has them,
pose_logits [N, P] and scale_weights [N, S]. Class names and preprocessing go into the ONNX metadata.
Unless --no-check, onnxruntime and PyTorch are run on the same random batch and the export fails if
any output differs by more than --atol.
"""


FP16_DESCRIPTION = """\
Write a copy of a checkpoint whose floating-point tensors are fp16: half the file size, outputs equal
to the fp32 model's up to fp16 rounding. Loading it (phanet predict, load_model) fills the model's
fp32 parameters. The JSON keeps the source's metadata and adds "dtype", the source path, the test
metrics of its run folder (metrics.json, if there is one) and, with --recipe, the config file's text
and the git commit it was trained at.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export a checkpoint (ONNX, fp16)",
                                   description="Export a checkpoint.")
    formats = parser.add_subparsers(dest="export_format", metavar="FORMAT", required=True)
    onnx = formats.add_parser(
        "onnx",
        help="ONNX with dynamic batch and a parity check in onnxruntime",
        description=ONNX_DESCRIPTION,
        epilog="example:\n  phanet export onnx --checkpoint runs/kdef/best --out phanet.onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    onnx.add_argument("--checkpoint", required=True, metavar="CKPT",
                      help="checkpoint (NAME, NAME.safetensors or NAME.json)")
    onnx.add_argument("--out", required=True, metavar="FILE", help="where to write the .onnx file")
    onnx.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    onnx.add_argument("--atol", type=float, default=1e-4,
                      help="largest allowed |onnxruntime - PyTorch| on any output (default: 1e-4)")
    onnx.add_argument("--no-check", action="store_true", help="skip the onnxruntime parity check")
    onnx.set_defaults(func=run_onnx)

    half = formats.add_parser(
        "fp16",
        help="a half-precision copy of a checkpoint (half the size, for shipping)",
        description=FP16_DESCRIPTION,
        epilog="example (the bundled model):\n  phanet export fp16 --checkpoint runs/synthetic_general/best "
               "--out phanet/weights/phanet_synthetic --recipe configs/synthetic_general.yaml",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    half.add_argument("--checkpoint", required=True, metavar="CKPT",
                      help="checkpoint (NAME, NAME.safetensors or NAME.json)")
    half.add_argument("--out", required=True, metavar="NAME", help="output checkpoint (NAME.safetensors + NAME.json)")
    half.add_argument("--recipe", metavar="YAML", help="the config file the model was trained with, recorded "
                      "verbatim in the JSON with the git commit of this checkout")
    half.set_defaults(func=run_fp16)


def run_onnx(args: argparse.Namespace) -> int:
    import sys

    from phanet.export import export_onnx

    try:
        result = export_onnx(args.checkpoint, args.out, opset=args.opset, check=not args.no_check, atol=args.atol)
    except (ImportError, RuntimeError) as err:
        print(f"phanet export onnx: error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


def run_fp16(args: argparse.Namespace) -> int:
    from pathlib import Path

    from phanet.checkpoint import checkpoint_paths, read_meta, save_half_precision

    source = Path(args.checkpoint)
    # the JSON ships with the copy: name the source, and a fine-tuned model's start, relative to the
    # working directory (the repository, for the bundled model) where they lie under it, not by this
    # machine's absolute paths
    extra: dict = {"source": _under_cwd(checkpoint_paths(source)[0])}
    extra.update(_relative_init_from(read_meta(source)))
    metrics = checkpoint_paths(source)[0].parent / "metrics.json"
    if metrics.is_file():
        summary = json.loads(metrics.read_text(encoding="utf-8"))
        extra["test_metrics"] = {k: summary[k] for k in ("accuracy", "macro_f1", "per_pose_accuracy",
                                                         "pose_accuracy", "num_samples") if k in summary}
    if args.recipe:
        extra["recipe"] = {"file": args.recipe, "text": Path(args.recipe).read_text(encoding="utf-8"),
                           "commit": _git_commit()}
    weights = save_half_precision(source, args.out, extra)
    print(json.dumps({"weights": str(weights), "bytes": weights.stat().st_size}))
    return 0


def _under_cwd(path) -> str:
    """``path`` relative to the working directory when it is an absolute path under it, else as given."""
    from pathlib import Path

    path = Path(path)
    if path.is_absolute() and path.is_relative_to(Path.cwd()):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def _relative_init_from(meta: dict) -> dict:
    """The ``config`` and ``training`` sections of ``meta`` with the fine-tuning start (``train.init_from``,
    ``training.init_from.checkpoint``) named by :func:`_under_cwd`; {} for a model not fine-tuned."""
    out: dict = {}
    train = (meta.get("config") or {}).get("train") or {}
    if isinstance(train.get("init_from"), str):
        out["config"] = {**meta["config"], "train": {**train, "init_from": _under_cwd(train["init_from"])}}
    record = (meta.get("training") or {}).get("init_from")
    if isinstance(record, dict) and isinstance(record.get("checkpoint"), str):
        out["training"] = {**meta["training"], "init_from": {**record, "checkpoint": _under_cwd(record["checkpoint"])}}
    return out


def _git_commit() -> str | None:
    """The commit of the checkout this runs from (None outside a git checkout)."""
    import subprocess
    from pathlib import Path

    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                              cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None
