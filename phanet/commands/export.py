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


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("export", help="export a checkpoint (ONNX)", description="Export a checkpoint.")
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
