"""Which part of the face does a model read each expression from? Occlusion by face band.

Runs a checkpoint on the unseen test subjects of the bundled recipe (``configs/synthetic_general.yaml``,
rendered as the recipe says; frontal poses by default) with one horizontal band of the aligned face
crop painted mid-grey at a time: brows and forehead, eyes, nose, mouth. The bands are placed on the
crop contract's landmark template (``phanet.crop.template_points`` at the checkpoint's input size and
padding), so they cover the same features in every aligned face, rendered or photographed.

``--fill blur`` hides a band by blurring it instead: its creases, nostrils and teeth edges go, its shading
stays, and no grey edge is drawn across the face (a grey band is itself a shape the model may read).

A class that keeps its accuracy with a band hidden is not read from that band; one that collapses is
read from it alone. For a model trained on synthetic faces this says which rendered feature carries each
expression, the feature that has to look like a photo's for the model to transfer.

``--nose-parts`` adds two regions that split the nose band by columns: its middle (the nose: tip, nostrils,
wings, the columns within :data:`NOSE_HALF_WIDTH` interocular distances of the nose tip) and its sides (the
nasolabial folds beside the wings, the cheeks), to tell which of them a class is read from. The blur of
``--fill blur`` reaches about 2 sigma (6 px at 96) across the split, so the two overlap at their edges.

``--photos DIR`` (default: the check photos in ``../shared/data/london-sample`` when present, as
``benchmarks/real_faces.py`` lays them out: ``neutral/``, ``smiling/`` = happy, or a folder per
expression) runs the same bands on the detected, aligned faces of real photos, as a check: those photos
are not for tuning.

    python benchmarks/occlusion_cues.py                                  # the bundled model
    python benchmarks/occlusion_cues.py --checkpoint runs/x/best --poses all --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see benchmarks/README.md

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detail_robustness import RECIPE, test_index  # noqa: E402
from real_faces import LONDON, list_photos  # noqa: E402

# half-width of the nose's middle for --nose-parts, in interocular distances: the nose wings span about 35 of
# the 63 mm between the pupils (0.28 each side); the nasolabial folds start just outside them
NOSE_HALF_WIDTH = 0.28
FILL = 128  # mid-grey, the value the model's normalisation maps close to 0
BLUR_SIGMA = 3.0  # pixels at the model's input size: removes creases, nostrils and teeth edges, keeps shading


def band_rows(size: int, padding: float) -> dict[str, tuple[int, int]]:
    """Pixel rows ``[first, last)`` of each band (:data:`phanet.crop.FACE_BANDS`) in a ``size`` crop of the
    contract with ``padding``."""
    from phanet.crop import face_band_rows

    return face_band_rows(size, padding)


def nose_parts(size: int, padding: float, rows: tuple[int, int], half_width: float = NOSE_HALF_WIDTH) -> dict:
    """The nose band's ``rows`` split by columns (``--nose-parts``): ``{name: [S, S] bool mask}`` for its
    middle, within ``half_width`` interocular distances of the template's nose tip, and its sides."""
    import numpy as np

    from phanet.crop import template_points

    points = template_points(size, padding)
    half = half_width * float(np.hypot(*(points[1] - points[0])))
    columns = np.arange(size)
    middle_columns = np.abs(columns + 0.5 - float(points[2, 0])) < half
    band = np.zeros((size, size), bool)
    band[rows[0]:rows[1]] = True
    return {"nose middle": band & middle_columns[None, :], "nose sides": band & ~middle_columns[None, :]}


def masked(crops, region, fill: str = "grey"):
    """``crops [N, S, S, 3]`` uint8 with ``region`` hidden (a copy). ``region``: rows ``(first, last)``, an
    ``[S, S]`` bool mask, or None (nothing hidden). Hidden pixels are painted :data:`FILL` (``grey``), or
    replaced by the same pixels of the crop blurred by :data:`BLUR_SIGMA` (``blur``: the region's fine detail
    goes, its light and colour stay, so no new edge is drawn where the region ends)."""
    import numpy as np
    from PIL import Image, ImageFilter

    out = crops.copy()
    if region is None:
        return out
    if isinstance(region, tuple):
        mask = np.zeros(crops.shape[1:3], bool)
        mask[region[0]:region[1]] = True
    else:
        mask = np.asarray(region, bool)
    if fill == "grey":
        out[:, mask] = FILL
    elif fill == "blur":
        for i, crop in enumerate(crops):
            blurred = np.asarray(Image.fromarray(crop).filter(ImageFilter.GaussianBlur(BLUR_SIGMA)))
            out[i, mask] = blurred[mask]
    else:
        raise ValueError(f"fill={fill!r}; expected 'grey' or 'blur'")
    return out


def occlusion_table(predictor, crops, labels: Sequence[str], bands: dict, fill: str = "grey") -> dict:
    """Per band (``none`` first) and per true class: images, accuracy and mean probability of the true class."""
    import numpy as np

    names = list(predictor.label_space.expressions)
    truth = np.array([names.index(label) for label in labels])
    table = {}
    for band, rows in [("none", None), *bands.items()]:
        probs = predictor.classify(masked(crops, rows, fill))["expression"]
        predicted = probs.argmax(1)
        per_class = {}
        for k, name in enumerate(names):
            keep = truth == k
            if not keep.any():
                continue
            called = np.bincount(predicted[keep], minlength=len(names))
            per_class[name] = {
                "images": int(keep.sum()),
                "accuracy": float((predicted[keep] == k).mean()),
                "p_true": float(probs[keep, k].mean()),
                "called": {names[j]: int(n) for j, n in enumerate(called) if n},
            }
        table[band] = per_class
    return table


def synthetic_crops(predictor, poses: str, subjects: int | None):
    """The recipe's test renders (frontal only unless ``poses == 'all'``) at the model's input size."""
    import numpy as np
    from PIL import Image

    from phanet.config import load_config
    from phanet.data.base import FaceDataset

    randomize = list(load_config(RECIPE).data.options["randomize"])
    index, test = test_index(randomize, subjects=subjects)
    reader = FaceDataset(index.samples, index.label_space)  # decodes paths, arrays and renderers alike
    names = index.label_space.expressions
    size = predictor.input_size
    crops, labels = [], []
    for i in test:
        sample = index.samples[i]
        if poses != "all" and ((sample.yaw or 0) != 0 or (sample.pitch or 0) != 0):
            continue
        image = reader.read_image(sample)
        if image.shape[:2] != (size, size):
            image = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
        crops.append(image)
        labels.append(names[sample.expression])
    return np.stack(crops), labels, randomize


def photo_crops(predictor, photos_dir: Path):
    """Aligned crops of the most confident face in each photo, with the true labels (faceless photos skipped)."""
    import numpy as np

    from phanet.data.base import load_rgb

    crops, labels, missed = [], [], []
    for path, label in list_photos(photos_dir, predictor.label_space.expressions):
        faces = predictor.locate_faces([load_rgb(path)])[0]
        if not faces:
            missed.append(path.name)
            continue
        crops.append(faces[0].crop)
        labels.append(label)
    return (np.stack(crops) if crops else None), labels, missed


def _column_runs(columns) -> list[str]:
    """``"first-last"`` (end exclusive, as the band rows are printed) for each run of True in ``columns``."""
    runs, start = [], None
    for i, on in enumerate([*map(bool, columns), False]):
        if on and start is None:
            start = i
        elif not on and start is not None:
            runs.append(f"{start}-{i}")
            start = None
    return runs


def report(title: str, table: dict) -> str:
    bands = list(table)
    classes = list(table["none"])
    lines = [title, "", "| true class | images | " + " | ".join(f"{b} hidden" if b != "none" else "nothing hidden"
                                                         for b in bands) + " |",
             "|---|---|" + "---|" * len(bands)]
    for name in classes:
        cells = [f"{100 * table[b][name]['accuracy']:.0f} ({table[b][name]['p_true']:.2f})" for b in bands]
        lines.append(f"| {name} | {table['none'][name]['images']} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("cells: accuracy % (mean probability of the true class); where each class went with its band hidden:")
    for band in bands[1:]:
        went = "; ".join(f"{name} -> " + ", ".join(f"{k} {n}" for k, n in sorted(
            table[band][name]["called"].items(), key=lambda kv: -kv[1])) for name in classes)
        lines.append(f"  {band}: {went}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--checkpoint", type=Path, help="NAME (.safetensors + .json); default: the bundled model")
    parser.add_argument("--poses", choices=("frontal", "all"), default="frontal",
                        help="test renders at yaw 0 and pitch 0 only (default), or at all 23 poses")
    parser.add_argument("--subjects", type=int, default=None, help="only the first N test identities")
    parser.add_argument("--fill", choices=("grey", "blur"), default="grey",
                        help=f"hide a band by painting it mid-grey (default), or by blurring it "
                             f"(sigma {BLUR_SIGMA:g} px)")
    parser.add_argument("--nose-parts", action="store_true",
                        help="also hide the nose band's middle (the nose) and its sides (cheeks, nasolabial folds) "
                             "one at a time")
    parser.add_argument("--nose-half-width", type=float, default=NOSE_HALF_WIDTH, metavar="F",
                        help=f"with --nose-parts: the middle's half-width in interocular distances "
                             f"(default {NOSE_HALF_WIDTH:g}, the nose wings)")
    parser.add_argument("--photos", type=Path, default=LONDON,
                        help="photos to check the same bands on (default: the London sample when present)")
    parser.add_argument("--no-photos", action="store_true", help="synthetic renders only")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args(argv)

    from phanet.commands.common import refuse_checkpoint_meta_as_output

    refuse_checkpoint_meta_as_output(parser, args.json)
    if not 0 < args.nose_half_width < 1:
        parser.error(f"--nose-half-width {args.nose_half_width:g}: expected a share of the interocular "
                     "distance between 0 and 1")

    import torch

    from phanet.inference import Predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    predictor = Predictor.from_checkpoint(args.checkpoint, device="cpu")
    bands = band_rows(predictor.input_size, predictor.align_padding)
    hidden = f"grey {FILL}" if args.fill == "grey" else f"a blur of sigma {BLUR_SIGMA:g} px"
    print(f"checkpoint {args.checkpoint or 'bundled'}; input {predictor.input_size} px, bands (pixel rows): "
          + ", ".join(f"{name} {a}-{b}" for name, (a, b) in bands.items()) + f"; hidden by {hidden}\n")
    results: dict = {"checkpoint": str(args.checkpoint or "bundled"), "bands": bands, "fill": args.fill}
    if args.nose_parts:
        parts = nose_parts(predictor.input_size, predictor.align_padding, bands["nose"], args.nose_half_width)
        results["nose_parts"] = {name: _column_runs(mask.any(0)) for name, mask in parts.items()}
        print("nose parts (rows of the nose band): " + ", ".join(
            f"{name} columns {', '.join(runs)}" for name, runs in results["nose_parts"].items()) + "\n")
        bands = {**bands, **parts}

    crops, labels, randomize = synthetic_crops(predictor, args.poses, args.subjects)
    results["synthetic"] = occlusion_table(predictor, crops, labels, bands, args.fill)
    print(report(f"test subjects of {RECIPE.name} ({args.poses} poses, rendered with {','.join(randomize)})",
                 results["synthetic"]))
    if not args.no_photos:
        if not args.photos.is_dir():
            print(f"\nphotos: {args.photos} not found; skipped (--no-photos to silence)")
        else:
            crops, labels, missed = photo_crops(predictor, args.photos)
            if crops is not None:
                results["photos"] = occlusion_table(predictor, crops, labels, bands, args.fill)
                print()
                print(report(f"photos in {args.photos} (a check, not for tuning; no face found in "
                             f"{len(missed)})", results["photos"]))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
