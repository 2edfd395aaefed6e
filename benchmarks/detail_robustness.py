"""Which generator details does a model mistake for expressions? A synthetic probe of real-photo errors.

Evaluates a checkpoint on the unseen test subjects of the bundled recipe (``configs/synthetic_general.yaml``:
8 identities x 7 expressions x 23 poses), rendered once as the recipe says and then again with each of
the generator's detail switches added (brows, skin, age, shading, glasses, resting, eyes, teeth, smiles, clutter,
camera: see the README's switch table) and with all of them. The faces, expressions and poses are the same in every
row; only the switched detail changes, so a drop in one class and a rise in another name what the model reads
as expression. No real photo is involved.

Prints, per row: accuracy, neutral accuracy, where the neutral faces went, and per-expression accuracy.

    python benchmarks/detail_robustness.py                       # the bundled model
    python benchmarks/detail_robustness.py --checkpoint runs/x/best --json out.json
    python benchmarks/detail_robustness.py --rows --render lips,subtle,blends,resting   # only that rendering
    python benchmarks/detail_robustness.py --split val ...      # the recipe's validation identities instead,
                                                                # to choose a setting without seeing the test ones
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see benchmarks/README.md

from phanet.synth import DEFAULT_RANDOMIZATIONS, RANDOMIZATIONS  # noqa: E402  (numpy only, no torch)

RECIPE = Path(__file__).resolve().parents[1] / "configs" / "synthetic_general.yaml"
BASE = ("lips", "subtle", "blends")
# every switch of the generator beyond the default three, so that a new switch joins the study by itself
DETAILS = tuple(part for part in RANDOMIZATIONS if part not in DEFAULT_RANDOMIZATIONS)


def rows() -> list[tuple[str, list[str]]]:
    """(row name, randomisations): the base switches, base + each detail, base + every detail."""
    return [("base", list(BASE))] + [(f"+{part}", [*BASE, part]) for part in DETAILS] + [("all", [*BASE, *DETAILS])]


def test_index(randomize: list[str], recipe: Path = RECIPE, subjects: int | None = None, split: str = "test"):
    """The recipe's synthetic dataset rendered with ``randomize``, and the indices of its ``split`` (test, or
    val to choose settings on; the first ``subjects`` identities only, when given: for quick checks)."""
    from phanet.config import load_config
    from phanet.data.registry import load_dataset

    config = load_config(recipe)
    options = dict(config.data.options, randomize=list(randomize))
    index = load_dataset(config.data.dataset, None, **options)
    chosen = [i for i, sample in enumerate(index.samples) if sample.split == split]
    if subjects is not None:
        keep = sorted({index.samples[i].subject for i in chosen})[:subjects]
        chosen = [i for i in chosen if index.samples[i].subject in keep]
    return index, chosen


def probe(checkpoint, randomize: list[str], subjects: int | None = None, batch_size: int = 64,
          tta: str | None = None, adapt_bn: float | None = None, adapt_images: int | None = None,
          adapt_depth: float = 1.0, class_prior: str | None = None, split: str = "test") -> dict:
    """Accuracy, per-expression accuracy and the neutral faces' predictions for one rendering."""
    from phanet.engine import evaluate_checkpoint

    index, test = test_index(randomize, subjects=subjects, split=split)
    results = evaluate_checkpoint(checkpoint, index, test, None, "cpu", batch_size, 0, tta=tta,
                                  adapt_bn=adapt_bn, adapt_images=adapt_images, adapt_depth=adapt_depth,
                                  class_prior=class_prior)
    names = results["class_names"]
    neutral_row = results["confusion_matrix"][names.index("neutral")]
    return {"randomize": list(randomize), "images": results["num_samples"], "accuracy": results["accuracy"],
            "per_expression": results["per_expression_accuracy"],
            "neutral_called": {name: int(n) for name, n in zip(names, neutral_row) if n}}


def report(results: dict[str, dict]) -> str:
    """A table: one row per rendering."""
    names = list(next(iter(results.values()))["per_expression"])
    head = "| rendering | all | " + " | ".join(names) + " | neutral faces called |"
    lines = [head, "|" + "---|" * (len(names) + 3)]
    for row, r in results.items():
        called = ", ".join(f"{k} {v}" for k, v in sorted(r["neutral_called"].items(), key=lambda kv: -kv[1]))
        cells = " | ".join(f"{100 * r['per_expression'][n]:.1f}" for n in names)
        lines.append(f"| {row} | {100 * r['accuracy']:.1f} | {cells} | {called} |")
    return "\n".join(lines)


def switch_list(text: str) -> list[str]:
    """An argparse type: the switches of the comma list ``text``, checked and sorted."""
    from phanet.synth import check_randomize

    try:
        return list(check_randomize(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def main(argv: list[str] | None = None) -> int:
    import torch

    from phanet.checkpoint import bundled_checkpoint
    from phanet.commands.common import (
        add_adapt_bn_flags,
        add_class_prior_flag,
        add_tta_flag,
        check_adapt_bn_flags,
        refuse_checkpoint_meta_as_output,
    )

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="NAME (.safetensors + .json); default: the bundled model")
    parser.add_argument("--rows", nargs="*", choices=[name for name, _ in rows()],
                        help="default: every row; with no names, only the --render rows")
    parser.add_argument("--render", action="append", default=[], metavar="LIST", type=switch_list,
                        help="one more row: the test subjects rendered with this comma list of switches "
                             "(e.g. another recipe's); repeatable")
    parser.add_argument("--split", choices=("test", "val"), default="test",
                        help="the recipe's identities to render: test (default) or val, the validation identities "
                             "on which to choose a setting before the test identities judge it")
    add_tta_flag(parser, "image")
    add_class_prior_flag(parser)
    add_adapt_bn_flags(parser, "row's test images")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args(argv)
    refuse_checkpoint_meta_as_output(parser, args.json)
    try:
        check_adapt_bn_flags(args)
    except ValueError as err:
        parser.error(str(err))
    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or bundled_checkpoint()
    adaptation = "off" if args.adapt_bn is None else (
        f"prior {args.adapt_bn:g}, depth {args.adapt_depth:g}, at most {args.adapt_images} images")
    print(f"checkpoint {checkpoint}; {args.split} subjects of {RECIPE.name}, rendered as each row says; "
          f"test-time augmentation: {args.tta}; class prior: {args.class_prior or 'none'}; "
          f"batch-norm adaptation: {adaptation}\n")
    results = {}
    chosen = [(name, randomize) for name, randomize in rows() if args.rows is None or name in args.rows]
    for name, randomize in chosen + [(",".join(given), given) for given in args.render]:
        results[name] = probe(checkpoint, randomize, tta=args.tta, adapt_bn=args.adapt_bn,
                              adapt_images=args.adapt_images, adapt_depth=args.adapt_depth,
                              class_prior=args.class_prior, split=args.split)
        print(f"{name}: {100 * results[name]['accuracy']:.1f}% over {results[name]['images']} images", flush=True)
    print()
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
