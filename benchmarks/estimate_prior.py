"""Does estimating the class prior from the faces at hand help? A synthetic check of ``--estimate-prior``.

A model trained on balanced classes answers as if every expression were equally likely; a folder of portraits
is mostly neutral and smiling faces. ``phanet predict --estimate-prior`` estimates the folder's class shares
from the model's own answers (EM, Saerens et al. 2002; :func:`phanet.inference.prior.estimate_prior`) and
reweights the answers by them. This script measures what that buys on renders whose labels are known: the
checkpoint answers the recipe's unseen test renders (``configs/synthetic_general.yaml``) once per rendering,
then random "folders" are drawn from those answers with a chosen class mix, and each folder is scored

- as the model answers (no prior),
- reweighted by the prior EM estimates on that folder alone,
- reweighted by the folder's true mix (the oracle: what a known prior, ``--class-prior``, would give at best),

with the mean L1 distance between the estimated and the true mix. A rendering the model misreads (e.g.
``R,teeth,rest_shape``, whose neutral faces the bundled model often calls sad) stands in for a domain gap: there
the estimate is pulled towards the model's mistakes. No real photo is involved.

    python benchmarks/estimate_prior.py                              # the bundled model, the default rows
    python benchmarks/estimate_prior.py --checkpoint runs/x/best --sizes 20 100 --folders 50 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see benchmarks/README.md

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detail_robustness import switch_list, test_index  # noqa: E402

RECIPE_ROW = "lips,subtle,blends,brows,skin,age,shading,glasses,clutter,teeth"
DEFAULT_ROWS = (RECIPE_ROW, RECIPE_ROW + ",rest_shape")
# class mixes of a folder, by name: shares by expression (classes not named: 0)
NAMED_MIXES: dict[str, dict[str, float]] = {
    "happy+neutral": {"happy": 0.5, "neutral": 0.5},
    "portraits": {"neutral": 0.6, "happy": 0.3, "sad": 0.02, "surprise": 0.02, "fear": 0.02, "disgust": 0.02,
                  "anger": 0.02},
}
# every mix: all classes equal, FER2013's training shares (phanet.inference.prior.PRESETS), and the named ones
MIXES = ("uniform", "happy+neutral", "fer2013", "portraits")


def mix_shares(name: str, expressions: list[str]) -> np.ndarray:
    """The class shares of mix ``name`` in the order of ``expressions`` (summing to 1)."""
    if name == "uniform":
        shares = np.ones(len(expressions))
    elif name == "fer2013":
        from phanet.inference.prior import PRESETS

        shares = np.array([PRESETS["fer2013"][e] for e in expressions], dtype=np.float64)
    else:
        shares = np.array([NAMED_MIXES[name].get(e, 0.0) for e in expressions], dtype=np.float64)
    return shares / shares.sum()


def model_answers(checkpoint, randomize: list[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The checkpoint's expression probabilities ``[n, C]`` on the recipe's test renders drawn with ``randomize``,
    their true classes ``[n]`` and the class names."""
    import torch

    from phanet.checkpoint import load_checkpoint
    from phanet.data.base import FaceDataset
    from phanet.data.transforms import FaceTransform
    from phanet.distributed import DistInfo, EpochSampler, make_loader
    from phanet.engine import predict

    index, test = test_index(randomize)
    model, _ = load_checkpoint(checkpoint, "cpu")
    if list(model.label_space.expressions) != list(index.label_space.expressions):
        raise ValueError(f"{checkpoint}: its classes {model.label_space.expressions} are not the recipe's "
                         f"{index.label_space.expressions}")
    dataset = FaceDataset([index.samples[i] for i in test], index.label_space,
                          FaceTransform.for_model(model.data_config, "none"))
    sampler = EpochSampler(len(dataset), 0, DistInfo(), shuffle=False)
    arrays = predict(model, make_loader(dataset, batch_size, sampler, 0, torch.device("cpu"), drop_last=False),
                     torch.device("cpu"), amp=False)
    return arrays["probs"], arrays["expression"], list(model.label_space.expressions)


def reweighted(probabilities: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Each row of ``probabilities`` (answers under balanced classes) reweighted by the class ``shares``."""
    adjusted = probabilities * shares
    return adjusted / adjusted.sum(1, keepdims=True)


def folder_scores(probabilities: np.ndarray, labels: np.ndarray, shares: np.ndarray, size: int, folders: int,
                  rng: np.random.Generator) -> dict:
    """Mean accuracy of ``folders`` random folders of ``size`` faces with class mix ``shares`` (each face drawn by
    class, with replacement), as answered, with the EM estimate and with the true mix; and the estimate's error."""
    from phanet.inference.prior import estimate_prior

    by_class = [np.flatnonzero(labels == c) for c in range(len(shares))]
    scores = {"none": [], "estimated": [], "oracle": [], "l1_error": []}
    for _ in range(folders):
        classes = rng.choice(len(shares), size=size, p=shares)
        picks = np.array([rng.choice(by_class[c]) for c in classes])
        p, truth = probabilities[picks], labels[picks]
        estimate = estimate_prior(p).shares
        scores["none"].append((p.argmax(1) == truth).mean())
        scores["estimated"].append((reweighted(p, estimate).argmax(1) == truth).mean())
        scores["oracle"].append((reweighted(p, np.maximum(shares, 1e-12)).argmax(1) == truth).mean())
        scores["l1_error"].append(np.abs(estimate - shares).sum())
    return {key: float(np.mean(values)) for key, values in scores.items()}


def table(results: dict) -> str:
    lines = ["| rendering | mix | faces per folder | as answered | EM estimate | true mix (oracle) | "
             "estimate's L1 error |", "|---|---|---|---|---|---|---|"]
    for row, mixes in results.items():
        for mix, sizes in mixes.items():
            for size, r in sizes.items():
                lines.append(f"| {row} | {mix} | {size} | {100 * r['none']:.1f} | {100 * r['estimated']:.1f} | "
                             f"{100 * r['oracle']:.1f} | {r['l1_error']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="NAME (.safetensors + .json); default: the bundled model")
    parser.add_argument("--render", action="append", type=switch_list, metavar="LIST",
                        help=f"a rendering of the test subjects (comma list of switches; repeatable; default: "
                        f"{' and '.join(DEFAULT_ROWS)})")
    parser.add_argument("--mixes", nargs="+", choices=list(MIXES), default=list(MIXES),
                        help="class mixes of the folders (default: all)")
    parser.add_argument("--sizes", nargs="+", type=int, default=[20, 100, 500], help="faces per folder")
    parser.add_argument("--folders", type=int, default=200, help="random folders per mix and size (default 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args(argv)
    if min(args.sizes) < 1 or args.folders < 1:
        parser.error("--sizes and --folders must be at least 1")
    import torch

    from phanet.checkpoint import bundled_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or bundled_checkpoint()
    rows = args.render or [switch_list(row) for row in DEFAULT_ROWS]
    print(f"checkpoint {checkpoint}; test subjects of the recipe; {args.folders} folders per mix and size, "
          f"seed {args.seed}\n")
    results: dict = {}
    for randomize in rows:
        name = ",".join(randomize)
        probabilities, labels, expressions = model_answers(checkpoint, randomize)
        rng = np.random.default_rng(args.seed)
        print(f"{name}: {len(labels)} renders, {100 * (probabilities.argmax(1) == labels).mean():.1f}% as answered",
              flush=True)
        results[name] = {mix: {size: folder_scores(probabilities, labels, mix_shares(mix, expressions), size,
                                                   args.folders, rng)
                               for size in args.sizes} for mix in args.mixes}
    print()
    print(table(results))
    if args.json:
        args.json.write_text(json.dumps({"checkpoint": str(checkpoint), "folders": args.folders, "seed": args.seed,
                                         "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
