"""`phanet synth`: render built-in synthetic multi-view faces to a folder (images + labels.csv)."""

from __future__ import annotations

import argparse
import sys

from phanet.commands.common import RANDOMIZE_SWITCHES

EPILOG = """\
pose presets:
  kdef5       yaw -90, -45, 0, 45, 90
  bu3dfe35    yaw -45..45 x pitch -30..30, 15 degree steps
  multipie7   yaw -45..45, 15 degree steps
  multipie13  yaw -90..90, 15 degree steps
or a list of yaw:pitch in degrees, e.g. --poses=-30:0,0:0,30:0,0:20 (write the "=" when
the list starts with a minus sign).
Positive yaw: the subject turns to their own left (nose towards the image's right);
positive pitch: the subject looks up.

The folder gets images/, labels.csv (image,expression,pose,subject,yaw,pitch,split,intensity) and
labelspace.json -- the generic CSV layout that training reads -- plus preview.png with --preview.
Example: phanet synth --out data/synth --subjects 30 --poses kdef5 --preview
"""


# Built-in training defaults use ids 0..39 (`phanet demo`) and 0..19 (the `synthetic` dataset).
FIRST_SUBJECT = 1000


def _splits(text: str) -> dict[str, int]:
    try:
        pairs = [item.split(":") for item in text.split(",")]
        return {name.strip(): int(count) for name, count in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected name:count,... e.g. train:20,val:5,test:5, got {text!r}") from None


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "synth",
        help="render synthetic multi-view faces with labelled expressions to a folder",
        description="Render procedural 3D faces (7 expressions from FACS action units) at chosen head "
        "poses and write them with their labels. Deterministic: the same arguments give the same files.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--subjects", type=int, default=10, metavar="N", help="number of identities (default 10)")
    parser.add_argument("--first-subject", type=int, default=FIRST_SUBJECT, metavar="ID",
                        help=f"id of the first identity (default {FIRST_SUBJECT}: no built-in training default "
                        "(demo, synthetic dataset) uses ids that high, so the faces are unseen people); use "
                        "disjoint ranges for disjoint splits")
    parser.add_argument("--poses", default="kdef5", metavar="POSES",
                        help="preset name or yaw:pitch list (default kdef5; see below)")
    parser.add_argument("--render-size", "--size", dest="size", type=int, default=112, metavar="PX",
                        help="rendered image side in pixels (default 112)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--per-cell", type=int, default=1, metavar="K",
                        help="images per subject x expression x pose, each a different capture (default 1)")
    parser.add_argument("--splits", type=_splits, default=None, metavar="NAME:N,...",
                        help="label consecutive subjects with splits, e.g. train:20,val:5,test:5")
    parser.add_argument("--randomize", default="default", metavar="LIST",
                        help=f"domain randomisations: a comma list of {RANDOMIZE_SWITCHES}; or default (lips, "
                        "subtle, blends: the default), all, or none")
    parser.add_argument("--camera-framing", action="store_true",
                        help="keep the camera's framing instead of the aligned face crop of the crop contract")
    parser.add_argument("--align-fit", choices=("eye_mouth", "lsq5"), default="eye_mouth",
                        help="how the aligned crop's similarity is fitted (default eye_mouth: turned faces keep "
                        "their size; lsq5: the first contract)")
    parser.add_argument("--preview", action="store_true", help="also write preview.png (expressions x poses)")
    parser.add_argument("--workers", type=int, default=1, help="rendering processes (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="overwrite an existing labels.csv in --out")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from phanet.crop import DEFAULT_PADDING
    from phanet.data.synthetic_writer import write_synthetic_dataset

    if args.subjects < 1:
        raise ValueError(f"--subjects must be >= 1, got {args.subjects}")
    subjects = range(args.first_subject, args.first_subject + args.subjects)
    try:
        out = write_synthetic_dataset(
            args.out, subjects, poses=args.poses, size=args.size, seed=args.seed, per_cell=args.per_cell,
            preview=args.preview, progress=True, workers=args.workers, splits=args.splits,
            overwrite=args.overwrite, randomize=args.randomize,
            align_padding=None if args.camera_framing else DEFAULT_PADDING, align_fit=args.align_fit,
        )
    except FileExistsError as err:
        print(f"phanet synth: error: {err} (--overwrite to replace it)", file=sys.stderr)
        return 1
    print(f"wrote {out / 'labels.csv'}" + (f" and {out / 'preview.png'}" if args.preview else ""))
    return 0
