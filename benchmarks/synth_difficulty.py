"""How hard are the synthetic faces? A HOG + logistic-regression probe, subject-independent, per pose.

Run by hand (about 1-3 minutes on 2 cores):

    python benchmarks/synth_difficulty.py                          # kdef5, 30 train / 15 test subjects
    python benchmarks/synth_difficulty.py --poses multipie13 --train-subjects 30 --workers 4
    python benchmarks/synth_difficulty.py --features pixels        # raw 32x32 grey pixels instead of HOG

It renders the seven expressions at every pose of the preset for ``--train-subjects`` identities
(``--per-cell`` captures each) and for ``--test-subjects`` *other* identities (one capture each),
describes each image by HOG (scikit-image, a dev dependency; grey image at 112 x 112) or by raw
pixels, trains one multinomial logistic regression over all poses (L2, L-BFGS, in torch) and prints
test accuracy per pose, per expression and overall.

Expected shape: far above chance (1/7 = 14 %) on frontal views, lower towards profile. A probe this
simple is a lower bound on what a CNN learns; the point is that expressions are learnable from the
images, not trivially separable, and that pose makes them harder.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import torch

from phanet.data.datasets.synthetic import SyntheticImage, synthetic_index
from phanet.synth import RenderSettings


def _features(task: tuple[SyntheticImage, str]) -> np.ndarray:
    """HOG of the grey image at 112 x 112 (8 px cells, 9 orientations, per-cell normalisation: 1764 values),
    or 32 x 32 grey pixels."""
    from PIL import Image

    recipe, kind = task
    grey = Image.fromarray(recipe()).convert("L")
    if kind == "pixels":
        return np.asarray(grey.resize((32, 32), Image.BILINEAR), dtype=np.float32).ravel() / 255.0
    from skimage.feature import hog

    image = np.asarray(grey.resize((112, 112), Image.BILINEAR), dtype=np.float32) / 255.0
    return hog(image, orientations=9, pixels_per_cell=(8, 8), cells_per_block=(1, 1)).astype(np.float32)


def featurise(index, kind: str, workers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Features ``[N, D]``, expression labels ``[N]`` and pose labels ``[N]`` of an index."""
    tasks = [(s.image, kind) for s in index.samples]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            feats = list(pool.map(_features, tasks, chunksize=32))
    else:
        feats = [_features(t) for t in tasks]
    return (np.stack(feats), np.array([s.expression for s in index.samples]),
            np.array([s.pose for s in index.samples]))


def train_logistic(x: np.ndarray, y: np.ndarray, classes: int, l2: float, steps: int) -> torch.nn.Linear:
    """Multinomial logistic regression on standardised features (the scaler is folded into the layer)."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    xt = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(y).long()
    model = torch.nn.Linear(x.shape[1], classes)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=steps, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(xt), yt) + l2 * model.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():  # fold the standardisation into the layer
        model.weight /= torch.from_numpy(std)
        model.bias -= model.weight @ torch.from_numpy(mean)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--poses", default="kdef5", help="pose preset or yaw:pitch list (default kdef5)")
    parser.add_argument("--train-subjects", type=int, default=30)
    parser.add_argument("--test-subjects", type=int, default=15)
    parser.add_argument("--per-cell", type=int, default=2, help="captures per training cell (default 2)")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--features", choices=("hog", "pixels"), default="hog")
    parser.add_argument("--l2", type=float, default=1e-3, help="L2 penalty on the weights (default 1e-3)")
    parser.add_argument("--steps", type=int, default=150, help="L-BFGS iterations (default 150)")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes (default 2)")
    args = parser.parse_args()

    start = time.perf_counter()
    n_train = args.train_subjects
    render = RenderSettings(args.size)
    train = synthetic_index(range(n_train), args.poses, render, args.seed, args.per_cell)
    test = synthetic_index(range(n_train, n_train + args.test_subjects), args.poses, render, args.seed, 1)
    x_train, y_train, _ = featurise(train, args.features, args.workers)
    x_test, y_test, p_test = featurise(test, args.features, args.workers)
    rendered = time.perf_counter() - start
    model = train_logistic(x_train, y_train, 7, args.l2, args.steps)
    with torch.no_grad():
        pred = model(torch.from_numpy(x_test)).argmax(1).numpy()
        train_acc = (model(torch.from_numpy(x_train)).argmax(1).numpy() == y_train).mean()
    correct = pred == y_test
    space = test.label_space

    print(f"synthetic difficulty: {args.features.upper()} + logistic regression, {args.size}px, poses {args.poses}, "
          f"seed {args.seed}")
    print(f"train: subjects 0-{n_train - 1} x {args.per_cell} captures ({len(y_train)} images, "
          f"train accuracy {train_acc:.1%}); test: subjects {n_train}-{n_train + args.test_subjects - 1} "
          f"({len(y_test)} images); chance 14.3%")
    print(f"\n{'pose':<18}{'yaw':>6}{'pitch':>7}{'accuracy':>10}")
    for i, pose in enumerate(space.poses):
        print(f"{pose.name:<18}{pose.yaw:>6g}{pose.pitch:>7g}{correct[p_test == i].mean():>10.1%}")
    print(f"{'all poses':<31}{correct.mean():>10.1%}")
    print(f"\n{'expression':<12}{'accuracy':>10}")
    for e, name in enumerate(space.expressions):
        print(f"{name:<12}{correct[y_test == e].mean():>10.1%}")
    frontal = [i for i, p in enumerate(space.poses) if p.yaw == 0 and (p.pitch or 0) == 0]
    if frontal:
        sel = p_test == frontal[0]
        confusion = np.zeros((7, 7), dtype=int)
        np.add.at(confusion, (y_test[sel], pred[sel]), 1)
        print("\nconfusion at yaw 0 (rows: true, columns: predicted)")
        print(" " * 10 + "".join(f"{n[:6]:>8}" for n in space.expressions))
        for e, name in enumerate(space.expressions):
            print(f"{name:<10}" + "".join(f"{v:>8d}" for v in confusion[e]))
    print(f"\n{time.perf_counter() - start:.0f} s ({rendered:.0f} s rendering and features)")


if __name__ == "__main__":
    main()
