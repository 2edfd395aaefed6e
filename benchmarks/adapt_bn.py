"""Does test-time batch-norm adaptation help a checkpoint on shifted synthetic faces? A proxy study.

`phanet predict --adapt-bn` re-measures a model's batch-norm statistics on the photos it is given
(:mod:`phanet.inference.adapt_bn`). Whether that helps depends on the shift and on what the target set
holds: a folder of frontal portraits with two expressions is not the all-pose, all-expression mix the
statistics were trained on, and adapting to it can move the answers for the wrong reason. This study
measures both effects on synthetic faces, where every label is known, with no real photo involved:

* renderings: the bundled recipe's unseen test subjects (``configs/synthetic_general.yaml``: 8
  identities x 7 expressions x 23 poses) as the recipe renders them, and with every detail switch on
  (brows, skin, ..., camera: a shift the recipe did not train on);
* target sets: all test images; the frontal ones (|yaw|, |pitch| <= 22.5); the frontal neutral and
  happy ones (the make-up of a folder of portraits such as the London set);
* adaptation: off; each ``--priors`` value (the trained statistics' weight, in images) over every
  batch-norm layer; and the first prior over only the first ``--depths`` share of the layers (from
  the input: colour, texture, noise), which the target set's few classes move less.

Printed: the balanced accuracy over the expressions each target set holds (mean per-class accuracy),
which is what ``benchmarks/real_faces.py`` reports on photos. Adaptation uses the target set itself
(unlabelled), at most ``--adapt-images`` of it, evenly spaced.

    python benchmarks/adapt_bn.py --threads 2                     # the bundled model
    python benchmarks/adapt_bn.py --checkpoint runs/x/best --priors 0 16 64 --depths 0.5 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see benchmarks/README.md

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detail_robustness import BASE, DETAILS, test_index  # noqa: E402
from real_faces import is_frontal  # noqa: E402

RENDERINGS = {"recipe": None, "all details": [*BASE, *DETAILS]}  # None: the recipe's own switches
TARGETS = ("all", "frontal", "frontal neutral+happy")


def target_indices(index, test: list[int], target: str) -> list[int]:
    """The test images of ``target`` (one of :data:`TARGETS`)."""
    if target == "all":
        return list(test)
    poses = index.label_space.poses
    names = index.label_space.expressions

    picked = [i for i in test if is_frontal(poses[index.samples[i].pose].yaw, poses[index.samples[i].pose].pitch)]
    if target == "frontal":
        return picked
    if target == "frontal neutral+happy":
        return [i for i in picked if names[index.samples[i].expression] in ("neutral", "happy")]
    raise ValueError(f"unknown target set {target!r}; choose one of {', '.join(TARGETS)}")


def balanced_accuracy(results: dict) -> float:
    """Mean per-class accuracy over the classes the evaluated images hold."""
    values = [v for v in results["per_expression_accuracy"].values() if v is not None]
    return sum(values) / len(values)


def rendered_once(index, test: list[int]):
    """``index`` with its ``test`` images rendered now and held as arrays (~35 MB for 1,288 at 96 px),
    so that every target set and setting evaluates the same pixels without rendering them again."""
    import dataclasses

    from phanet.data.base import load_rgb
    from phanet.data.registry import DatasetIndex

    samples = list(index.samples)
    for i in test:
        image = samples[i].image
        samples[i] = dataclasses.replace(samples[i], image=image() if callable(image) else load_rgb(image))
    return DatasetIndex(samples, index.label_space, index.problems, index.default_protocol, index.name, index.crop)


def recipe_switches() -> list[str]:
    from detail_robustness import RECIPE

    from phanet.config import load_config

    return list(load_config(RECIPE).data.options.get("randomize", BASE))


def main(argv: list[str] | None = None) -> int:
    import torch

    from phanet.checkpoint import bundled_checkpoint
    from phanet.commands.common import ADAPT_BN_IMAGES, refuse_checkpoint_meta_as_output
    from phanet.engine import evaluate_checkpoint

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="NAME (.safetensors + .json); default: the bundled model")
    parser.add_argument("--priors", type=float, nargs="+", default=[16.0, 0.0], metavar="PRIOR",
                        help="adaptation priors to compare with no adaptation (default: 16 0)")
    parser.add_argument("--depths", type=float, nargs="*", default=[0.5, 0.25], metavar="F",
                        help="shares of the batch-norm layers (from the input) to adapt alone, with the first "
                        "prior (default: 0.5 0.25)")
    parser.add_argument("--adapt-images", type=int, default=ADAPT_BN_IMAGES, metavar="K",
                        help=f"adapt on at most K images of each target set (default: {ADAPT_BN_IMAGES})")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args(argv)
    refuse_checkpoint_meta_as_output(parser, args.json)
    if any(prior < 0 for prior in args.priors) or any(not 0 < d <= 1 for d in args.depths) or args.adapt_images < 1:
        parser.error("--priors must be >= 0, --depths in (0, 1] and --adapt-images >= 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or bundled_checkpoint()
    settings = {"off": None, **{f"prior {p:g}": (p, 1.0) for p in args.priors},
                **{f"prior {args.priors[0]:g} depth {d:g}": (args.priors[0], d) for d in args.depths if d != 1}}
    print(f"checkpoint {checkpoint}; test subjects of configs/synthetic_general.yaml; "
          f"adaptation on at most {args.adapt_images} images of each target set\n", flush=True)
    numbers: dict = {}
    lines = []
    for rendering, randomize in RENDERINGS.items():
        index, test = test_index(randomize if randomize is not None else recipe_switches())
        index = rendered_once(index, test)
        for target in TARGETS:
            indices = target_indices(index, test, target)
            row = {}
            for name, setting in settings.items():
                prior, depth = setting or (None, 1.0)
                results = evaluate_checkpoint(checkpoint, index, indices, None, "cpu", 64, 0, progress=False,
                                              adapt_bn=prior, adapt_images=args.adapt_images, adapt_depth=depth)
                row[name] = {
                    "balanced_accuracy": balanced_accuracy(results), "accuracy": results["accuracy"],
                    "per_expression": results["per_expression_accuracy"], "images": results["num_samples"],
                    "adaptation": results["batch_norm_adaptation"]}
            numbers.setdefault(rendering, {})[target] = row
            cells = "  ".join(f"{name} {100 * r['balanced_accuracy']:5.1f}" for name, r in row.items())
            lines.append(f"{rendering:12s} {target:22s} {len(indices):5d}  {cells}")
            print(lines[-1], flush=True)
    print("\nbalanced accuracy (%) over the expressions each target set holds:")
    print(f"{'rendering':12s} {'target set':22s} {'images':>5s}  adaptation")
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"checkpoint": str(checkpoint), "adapt_images": args.adapt_images,
                                         "results": numbers}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
