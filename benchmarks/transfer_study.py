"""Which parts of the synthetic recipe move accuracy on real photos? A small, side-by-side study.

Trains the bundled model's recipe (``configs/synthetic_general.yaml``) at a reduced size in several
variants that switch its parts off one at a time, then measures every variant on unseen synthetic
subjects (the run's own test split) and on real photos (``benchmarks/real_faces.py``: by default the
20 London-set photos beside the repository, Face Research Lab London Set, DeBruine & Jones (2017),
doi:10.6084/m9.figshare.5047666.v5, CC BY 4.0). Variants (same subjects, seed and budget):

* ``camera``   images framed by the renderer's camera (no crop contract), no generator
               randomisation, ``standard`` augmentation: the recipe of version 0.1;
* ``aligned``  + aligned crops of the face-crop contract (phanet/crop.py);
* ``randomized`` + the generator's randomisations (lips, subtle intensities, blends);
* ``recipe``   + ``photo`` augmentation: the recipe of the bundled model before the detail switches;
* ``details``  + every detail switch of the generator (brows, skin, age, shading, glasses, resting, eyes, teeth,
  smiles, clutter, camera);
* ``+brows``, ``+skin``, ... the recipe plus one detail switch (not in the default list: one run each).

The photos are a check, not a tuning set: the recipe was fixed before this study was run, and the
study changes nothing in it. Few photos and one seed: differences of a photo or two are noise.

    python benchmarks/transfer_study.py --train-subjects 20 --epochs 3 --threads 2
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see benchmarks/README.md

sys.path.insert(0, str(Path(__file__).resolve().parent))
from phanet.synth import DEFAULT_RANDOMIZATIONS, RANDOMIZATIONS  # noqa: E402  (numpy only, no torch)

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "synthetic_general.yaml"
# every switch of the generator beyond the default three, so that a new switch joins the study by itself
DETAILS = tuple(part for part in RANDOMIZATIONS if part not in DEFAULT_RANDOMIZATIONS)
VARIANTS: dict[str, dict] = {
    "camera": {"align_padding": None, "randomize": [], "augment": "standard"},
    "aligned": {"align_padding": 0.1, "randomize": [], "augment": "standard"},
    "randomized": {"align_padding": 0.1, "randomize": ["lips", "subtle", "blends"], "augment": "standard"},
    "recipe": {"align_padding": 0.1, "randomize": ["lips", "subtle", "blends"], "augment": "photo"},
    "details": {"align_padding": 0.1, "randomize": ["lips", "subtle", "blends", *DETAILS], "augment": "photo"},
}
VARIANTS.update({f"+{part}": {"align_padding": 0.1, "randomize": ["lips", "subtle", "blends", part], "augment": "photo"}
                 for part in DETAILS})
DEFAULT_VARIANTS = ("camera", "aligned", "randomized", "recipe", "details")


def variant_config(name: str, train_subjects: int, epochs: int, recipe: Path = RECIPE):
    """The recipe's config with ``name``'s switches and the study's size."""
    from phanet.config import load_config

    config = load_config(recipe)
    switches = VARIANTS[name]
    options = copy.deepcopy(config.data.options)
    splits = dict(options["splits"])
    splits["train"] = train_subjects
    options.update(splits=splits, subjects=sum(splits.values()), align_padding=switches["align_padding"],
                   randomize=list(switches["randomize"]))
    config.data.options = options
    config.train.augment = switches["augment"]
    config.train.epochs = epochs
    return config


def run_variant(name: str, out: Path, photos, train_subjects: int, epochs: int, detector) -> dict:
    """Train (or reuse) one variant and measure it on its synthetic test split and on the photos."""
    import real_faces

    from phanet.engine import fit
    from phanet.inference.predictor import Predictor

    run_dir = out / name
    metrics_file = run_dir / "metrics.json"
    if metrics_file.is_file():
        synthetic = json.loads(metrics_file.read_text())
    else:
        synthetic = fit(variant_config(name, train_subjects, epochs), run_dir, progress=False, overwrite=True)
    predictor = Predictor.from_checkpoint(run_dir / "best", device="cpu", detector=detector)
    real = real_faces.evaluate_checkpoint(predictor, photos, name)
    return {"variant": name, "switches": VARIANTS[name], "synthetic_accuracy": synthetic["accuracy"],
            "synthetic_per_pose": synthetic.get("per_pose_accuracy"), "real": real}


def table(results: list[dict]) -> str:
    """One markdown row per variant: synthetic test accuracy and the real-photo numbers."""
    rows = ["| variant | synthetic test | happy-vs-neutral (balanced) | 7-way (balanced) | frontal pose |",
            "|---|---|---|---|---|"]
    for r in results:
        accuracy, frontal = r["real"]["accuracy"], r["real"].get("frontal") or {}
        rate = "n/a" if frontal.get("rate") is None else f"{100 * frontal['rate']:.0f}"
        rows.append(f"| {r['variant']} | {100 * r['synthetic_accuracy']:.1f} | {_pct(accuracy['happy_vs_neutral'])} | "
                    f"{_pct(accuracy['n_way'])} | {rate} |")
    return "\n".join(rows)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def main(argv: list[str] | None = None) -> int:
    import real_faces
    import torch

    from phanet.inference.detect import create_detector

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=list(VARIANTS),
                        help=f"which variants to train (default: {' '.join(DEFAULT_VARIANTS)})")
    parser.add_argument("--train-subjects", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--photos", type=Path, default=real_faces.LONDON)
    parser.add_argument("--out", type=Path, default=Path("runs/transfer_study"),
                        help="run folders (finished variants are reused)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.photos.is_dir():
        print(f"photo folder {args.photos} not found (default: ../shared/data/london-sample)", file=sys.stderr)
        return 2
    photos = real_faces.list_photos(args.photos)
    detector = create_detector("mtcnn", device="cpu")
    print(real_faces.header(args.photos, photos))
    results = []
    for name in args.variants:
        results.append(run_variant(name, args.out, photos, args.train_subjects, args.epochs, detector))
        print(f"{name}: synthetic {100 * results[-1]['synthetic_accuracy']:.1f}%", flush=True)
    print(f"\n{args.train_subjects} training subjects, {args.epochs} epochs, recipe {RECIPE.name}\n")
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
