"""How a checkpoint does on real photos: happy vs neutral, and is the pose read as frontal?

By default the 20 photos of ../shared/data/london-sample (beside the repository): 10 adults, each
once neutral (``neutral/<id>_03.jpg``) and once smiling (``smiling/<id>_08.jpg``), all frontal.
They are from the Face Research Lab London Set, DeBruine & Jones (2017),
doi:10.6084/m9.figshare.5047666.v5, CC BY 4.0 (downscaled to 512x512; see ../shared/data/README.md).

Each checkpoint runs through :class:`phanet.inference.Predictor` (MTCNN detection, alignment, the
model); the most confident face of each photo counts. Printed per checkpoint: faces found, one row
per photo, the confusion counts (true label -> predicted expression) and

* balanced happy-vs-neutral accuracy: a photo is called happy iff p(happy) > p(neutral); the mean of
  the accuracy on the neutral photos and the accuracy on the happy photos;
* balanced N-way accuracy: per true class, the fraction whose most probable expression (over all the
  model's expressions) is that class; the mean over the true classes (neutral, happy);
* happy-vs-neutral ranking: the chance that a happy photo outranks a neutral one by p(happy) alone
  (the area under the ROC curve; ties count half): how well the model orders the two classes, whatever
  the line between them (between the study's recipes it moved far less than the accuracies did:
  docs/bundled_model_study.md, candidates 49-54);
* frontal pose rate: the fraction of faces whose predicted pose bin has |yaw| <= 22.5 (and
  |pitch| <= 22.5 where the bin has a pitch); the photos are all frontal.

A photo with no face found counts as wrong in both accuracies. ``--photos DIR`` takes any folder with
subfolders named by label: ``neutral/``, ``smiling/`` (= happy), or any of the model's expression
names. With no ``--checkpoint`` the model bundled in the package is used. ``--peer`` also runs the
``fer`` package (``FER(mtcnn=True)``) on the same photos, when it is installed.

    python benchmarks/real_faces.py --checkpoint runs/demo/phanet_effl0/best --threads 2 --json real.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

# Set before torch loads OpenMP: idle OpenMP threads then sleep instead of spinning (see
# benchmarks/README.md, "Contention"); an explicit OMP_WAIT_POLICY in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

LONDON = Path(__file__).resolve().parents[2] / "shared" / "data" / "london-sample"
ATTRIBUTION = ("Face Research Lab London Set, DeBruine & Jones (2017), doi:10.6084/m9.figshare.5047666.v5, "
               "CC BY 4.0")
# Folder names that are not expression names; any folder named like one of the model's expressions counts too.
FOLDER_LABELS = {"neutral": "neutral", "smiling": "happy"}
DEFAULT_EXPRESSIONS = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
FRONTAL_DEGREES = 22.5
NO_FACE = "(no face)"
# The fer package's emotion keys -> phanet's canonical expression names.
FER_NAMES = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happy", "sad": "sad",
             "surprise": "surprise", "neutral": "neutral"}


# --- photos -------------------------------------------------------------------------------------------


def list_photos(root: str | Path, expressions: Iterable[str] = DEFAULT_EXPRESSIONS) -> list[tuple[Path, str]]:
    """``(photo, true label)`` for every image in ``root``'s label subfolders, sorted.

    ``neutral/`` and ``smiling/`` (label ``happy``) are always taken, as is any subfolder named like
    one of ``expressions``; other subfolders are ignored.
    """
    from phanet.inference.sources import IMAGE_EXTENSIONS

    labels = {**{name.lower(): name for name in expressions}, **FOLDER_LABELS}
    photos = []
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        label = labels.get(folder.name.lower())
        if label is None:
            continue
        photos.extend((p, label) for p in sorted(folder.iterdir())
                      if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith("."))
    return photos


def ignored_folders(root: str | Path, expressions: Iterable[str] = DEFAULT_EXPRESSIONS) -> list[str]:
    """Subfolders of ``root`` that :func:`list_photos` does not take."""
    known = {name.lower() for name in expressions} | set(FOLDER_LABELS)
    return sorted(p.name for p in Path(root).iterdir() if p.is_dir() and p.name.lower() not in known)


def photo_name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


# --- numbers ------------------------------------------------------------------------------------------


def balanced_accuracies(rows: Sequence[dict]) -> dict:
    """Balanced accuracies of per-photo rows (``label``, ``expression``, ``p_happy``, ``p_neutral``).

    A row whose ``expression`` is None had no face and counts as wrong. ``happy_vs_neutral``: over the
    photos labelled neutral or happy, predicted happy iff ``p_happy > p_neutral``, mean of the two
    per-class accuracies (None when neither class has photos or the model lacks one of them).
    ``n_way``: per true class present, the fraction predicted exactly that class; mean over those classes.
    Each comes with a 95 % bootstrap interval (``*_interval``, :func:`balanced_interval`): a few photos
    per class move a balanced accuracy by many points, and the interval says how many.
    """
    by_class: dict[str, list[dict]] = {}
    for row in rows:
        by_class.setdefault(row["label"], []).append(row)

    n_way_hits = {label: [r["expression"] == label for r in members] for label, members in by_class.items()}
    two = {label: by_class[label] for label in ("neutral", "happy") if label in by_class}
    defined = all(r["p_happy"] is not None and r["p_neutral"] is not None
                  for members in two.values() for r in members if r["expression"] is not None)
    hv_hits: dict[str, list[bool]] = {}
    if two and defined:
        for label, members in two.items():
            # no face: wrong; otherwise called happy iff p(happy) > p(neutral)
            hv_hits[label] = [r["expression"] is not None and (r["p_happy"] > r["p_neutral"]) == (label == "happy")
                              for r in members]

    def per_class(hits: dict[str, list[bool]]) -> dict[str, float]:
        return {label: sum(h) / len(h) for label, h in hits.items()}

    def mean(values):
        return sum(values) / len(values) if values else None

    return {
        "happy_ranking": happy_ranking(two) if len(two) == 2 and defined else None,
        "happy_vs_neutral": mean(list(per_class(hv_hits).values())) if hv_hits else None,
        "happy_vs_neutral_per_class": per_class(hv_hits),
        "happy_vs_neutral_interval": balanced_interval(hv_hits) if hv_hits else None,
        "n_way": mean(list(per_class(n_way_hits).values())),
        "n_way_per_class": per_class(n_way_hits),
        "n_way_interval": balanced_interval(n_way_hits),
        "photos_per_class": {label: len(members) for label, members in by_class.items()},
        "no_face": sum(r["expression"] is None for r in rows),
    }


def happy_ranking(by_class: dict[str, list[dict]]) -> float:
    """The chance that a happy photo's p(happy) is above a neutral photo's, over every (happy, neutral) pair;
    ties count half. A photo with no face ranks wrong: a happy one below every neutral photo, a neutral one
    above every happy photo."""
    def score(row: dict, missing: float) -> float:
        return missing if row["expression"] is None else row["p_happy"]

    happy = [score(r, -math.inf) for r in by_class["happy"]]
    neutral = [score(r, math.inf) for r in by_class["neutral"]]
    wins = sum((h > n) + 0.5 * (h == n) for h in happy for n in neutral)
    return wins / (len(happy) * len(neutral))


def balanced_interval(hits: dict[str, list[bool]], level: float = 0.95, resamples: int = 4000,
                      seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap interval of a balanced accuracy: the photos of each class are resampled
    with replacement (the class sizes kept), ``resamples`` times; deterministic for one ``seed``."""
    import numpy as np

    hits = {label: h for label, h in hits.items() if h}
    if not hits:
        return None
    rng = np.random.default_rng(seed)
    total = np.zeros(resamples)
    for h in hits.values():
        h = np.asarray(h, dtype=float)
        total += h[rng.integers(0, len(h), size=(resamples, len(h)))].mean(axis=1)
    balanced = total / len(hits)
    tail = (1 - level) / 2
    return float(np.quantile(balanced, tail)), float(np.quantile(balanced, 1 - tail))


def is_frontal(yaw: float | None, pitch: float | None) -> bool:
    """A pose bin within 22.5 degrees of frontal; a bin without a yaw is never called frontal."""
    return yaw is not None and abs(yaw) <= FRONTAL_DEGREES and (pitch is None or abs(pitch) <= FRONTAL_DEGREES)


def frontal_rate(rows: Sequence[dict], poses: Sequence) -> dict | None:
    """Fraction of faces whose predicted pose bin is frontal; None when the model has no (angled) pose bins."""
    if not poses or all(p.yaw is None for p in poses):
        return None
    faces = [r for r in rows if r["expression"] is not None and r["pose"] is not None]
    frontal = sum(is_frontal(r["yaw"], r["pitch"]) for r in faces)
    return {
        "frontal": frontal,
        "faces": len(faces),
        "rate": frontal / len(faces) if faces else None,
        "frontal_bins": [p.name for p in poses if is_frontal(p.yaw, p.pitch)],
    }


def confusion(rows: Sequence[dict]) -> dict[str, dict[str, int]]:
    """``{true label: {predicted expression or "(no face)": count}}``."""
    counts: dict[str, Counter] = {}
    for row in rows:
        counts.setdefault(row["label"], Counter())[row["expression"] or NO_FACE] += 1
    return {label: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for label, c in counts.items()}


def summarise(name: str, rows: list[dict], expressions: Sequence[str], poses: Sequence = ()) -> dict:
    """The result dict of one model: counts, accuracies, confusion, frontal rate and the rows."""
    return {
        "name": name,
        "expressions": list(expressions),
        "poses": [{"name": p.name, "yaw": p.yaw, "pitch": p.pitch} for p in poses],
        "photos": len(rows),
        "faces_found": sum(r["expression"] is not None for r in rows),
        "no_face": [r["file"] for r in rows if r["expression"] is None],
        "accuracy": balanced_accuracies(rows),
        "frontal": frontal_rate(rows, poses),
        "confusion": confusion(rows),
        "rows": rows,
    }


# --- models -------------------------------------------------------------------------------------------


def evaluate_checkpoint(predictor, photos: Sequence[tuple[Path, str]], name: str = "model") -> dict:
    """Run ``predictor`` on every photo; the most confident face of each counts. See :func:`summarise`."""
    from phanet.inference.sources import read_image_item

    items = [read_image_item(Path(path)) for path, _ in photos]
    t0 = time.perf_counter()
    results = list(predictor.predict_items(items))
    seconds = time.perf_counter() - t0
    rows = []
    for (path, label), result in zip(photos, results):
        row = {"file": photo_name(Path(path)), "label": label, "expression": None, "p_happy": None,
               "p_neutral": None, "pose": None, "yaw": None, "pitch": None, "score": None,
               "probabilities": None, "error": result.error}
        if result.faces:
            face = max(result.faces, key=lambda f: -1.0 if f.score is None else f.score)
            row.update(expression=face.expression, p_happy=face.probabilities.get("happy"),
                       p_neutral=face.probabilities.get("neutral"), pose=face.pose, yaw=face.yaw,
                       pitch=face.pitch, score=face.score, probabilities=face.probabilities)
        rows.append(row)
    result = summarise(name, rows, predictor.label_space.expressions, predictor.label_space.poses)
    result["seconds"] = round(seconds, 2)
    return result


def evaluate_fer(photos: Sequence[tuple[Path, str]], detector=None) -> dict:
    """The ``fer`` package's ``FER(mtcnn=True)`` on the same photos (largest face per photo)."""
    from phanet.data.base import load_rgb

    if detector is None:
        from fer import FER

        detector = FER(mtcnn=True)
    rows = []
    t0 = time.perf_counter()
    for path, label in photos:
        row = {"file": photo_name(Path(path)), "label": label, "expression": None, "p_happy": None,
               "p_neutral": None, "pose": None, "yaw": None, "pitch": None, "score": None,
               "probabilities": None, "error": None}
        try:
            bgr = load_rgb(path)[:, :, ::-1].copy()  # fer works on OpenCV's BGR order
            faces = detector.detect_emotions(bgr)
        except Exception as err:  # one bad photo must not stop the comparison
            row["error"] = f"{type(err).__name__}: {err}"
            faces = []
        if faces:
            face = max(faces, key=lambda f: f["box"][2] * f["box"][3])
            probs = {FER_NAMES.get(k, k): float(v) for k, v in face["emotions"].items()}
            row.update(expression=max(probs, key=probs.get), p_happy=probs.get("happy"),
                       p_neutral=probs.get("neutral"), probabilities=probs)
        rows.append(row)
    result = summarise("fer (FER(mtcnn=True))", rows, list(FER_NAMES.values()))
    result["seconds"] = round(time.perf_counter() - t0, 2)
    return result


# --- text ---------------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _interval(bounds: Sequence[float] | None) -> str:
    return "" if bounds is None else f" ({_pct(bounds[0])} to {_pct(bounds[1])})"


def _prob(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def header(photos_dir: Path, photos: Sequence[tuple[Path, str]]) -> str:
    counts = Counter(label for _, label in photos)
    per_label = ", ".join(f"{label} {n}" for label, n in sorted(counts.items()))
    if Path(photos_dir).resolve() == LONDON.resolve():
        source = f"Photos: {photos_dir}, {ATTRIBUTION}"
    else:
        source = (f"Photos: {photos_dir} (the default set, ../shared/data/london-sample, is the {ATTRIBUTION})")
    return f"{source}\n{len(photos)} photos: {per_label}"


def report(result: dict) -> str:
    """The printed block of one model's result."""
    expressions = result["expressions"]
    acc = result["accuracy"]
    lines = [f"== {result['name']} =="]
    lines.append(f"faces found: {result['faces_found']} / {result['photos']} photos"
                 + (f" ({result['seconds']} s)" if "seconds" in result else ""))
    if result["no_face"]:
        lines.append(f"no face found in: {', '.join(result['no_face'])} (counted as wrong below)")
    estimate = result.get("prior_estimate")
    if estimate:
        shares = ", ".join(f"{name} {share:.3f}" for name, share in estimate["prior"].items())
        lines.append(f"class prior estimated on {estimate['faces']} faces of {estimate['inputs']} photos "
                     f"(pseudo-count {estimate['pseudo_count']:g}, {estimate['iterations']} iterations): {shares}")
    width = max([len("photo")] + [len(r["file"]) for r in result["rows"]])
    lines.append("")
    lines.append(f"{'photo':<{width}}  {'true':<8} {'predicted':<10} {'p(happy)':>8} {'p(neutral)':>10}  "
                 f"{'pose':<16} {'yaw':>6}")
    for r in result["rows"]:
        predicted = r["expression"] or NO_FACE
        pose = r["pose"] or "-"
        yaw = "-" if r["yaw"] is None else f"{r['yaw']:+.0f}"
        lines.append(f"{r['file']:<{width}}  {r['label']:<8} {predicted:<10} {_prob(r['p_happy']):>8} "
                     f"{_prob(r['p_neutral']):>10}  {pose:<16} {yaw:>6}")
    lines.append("")
    lines.append("confusion (true label -> predicted expression: count):")
    for label, counts in result["confusion"].items():
        lines.append(f"  {label:<8} -> " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    lines.append("")
    no_face_note = " (photos with no face count as wrong)"
    per_class = ", ".join(f"{label} {_pct(v)}" for label, v in acc["happy_vs_neutral_per_class"].items())
    lines.append(f"balanced happy-vs-neutral accuracy (happy iff p(happy) > p(neutral)): "
                 f"{_pct(acc['happy_vs_neutral'])}{_interval(acc.get('happy_vs_neutral_interval'))}"
                 + (f"  [{per_class}]" if per_class else "") + no_face_note)
    if acc.get("happy_ranking") is not None:
        lines.append(f"happy-vs-neutral ranking (chance that a happy photo outranks a neutral one by p(happy); "
                     f"no threshold): {acc['happy_ranking']:.3f}")
    per_class = ", ".join(f"{label} {_pct(v)}" for label, v in acc["n_way_per_class"].items())
    lines.append(f"balanced {len(expressions)}-way accuracy (argmax over all expressions): "
                 f"{_pct(acc['n_way'])}{_interval(acc.get('n_way_interval'))}  [{per_class}]" + no_face_note)
    if acc.get("n_way_interval") is not None:
        lines.append("(in parentheses: 95% bootstrap interval, photos resampled within each true class)")
    frontal = result["frontal"]
    if frontal is None:
        lines.append("frontal pose rate: n/a (no pose bins with angles)")
    else:
        lines.append(f"frontal pose rate (|yaw| <= {FRONTAL_DEGREES:g}, |pitch| <= {FRONTAL_DEGREES:g}; bins "
                     f"{', '.join(frontal['frontal_bins']) or 'none'}): {_pct(frontal['rate'])} "
                     f"({frontal['frontal']} / {frontal['faces']} faces)")
    return "\n".join(lines)


# --- command line -------------------------------------------------------------------------------------


def load_predictor(checkpoint: str | None, detector, device: str | None, tta: str | None = None,
                   class_prior: str | None = None):
    """A Predictor, or ``(None, one-line error)`` when the checkpoint (or the bundled model) cannot load."""
    from phanet.inference import Predictor

    try:
        return Predictor.from_checkpoint(checkpoint, device=device, detector=detector, tta=tta,
                                         class_prior=class_prior), None
    except Exception as err:  # any failure to load is reported in one line, not a traceback
        if checkpoint is None:
            return None, f"no bundled model in this install; pass --checkpoint ({type(err).__name__}: {err})"
        return None, f"cannot load checkpoint {checkpoint}: {type(err).__name__}: {err}"


def main(argv: Sequence[str] | None = None) -> int:
    from phanet.commands.common import (
        add_adapt_bn_flags,
        add_class_prior_flag,
        add_estimate_prior_flags,
        add_tta_flag,
        check_adapt_bn_flags,
        check_prior_flags,
        refuse_checkpoint_meta_as_output,
    )

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", action="append", default=None,
                        help="checkpoint to measure (repeatable; default: the model bundled in the package)")
    parser.add_argument("--photos", type=Path, default=LONDON,
                        help="folder with neutral/ and smiling/ (or expression-named) subfolders "
                             "(default: ../shared/data/london-sample)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--json", type=Path, default=None, help="write all numbers to this JSON file")
    parser.add_argument("--peer", action="store_true", help="also run the fer package's FER(mtcnn=True), if installed")
    add_tta_flag(parser)
    add_class_prior_flag(parser)
    add_estimate_prior_flags(parser, "photos measured")
    add_adapt_bn_flags(parser, "photos measured")
    args = parser.parse_args(argv)
    refuse_checkpoint_meta_as_output(parser, args.json)
    try:
        check_adapt_bn_flags(args)
        check_prior_flags(args)
    except ValueError as err:
        parser.error(str(err))

    if not args.photos.is_dir():
        print(f"photo folder {args.photos} not found (the default is ../shared/data/london-sample, beside the "
              "repository; or pass --photos DIR)", file=sys.stderr)
        return 2

    import torch

    from phanet.inference import create_detector

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    detector = create_detector("mtcnn", device=device)
    checkpoints = args.checkpoint or [None]
    predictors = []
    for checkpoint in checkpoints:
        predictor, error = load_predictor(checkpoint, detector, device, args.tta, args.class_prior)
        if error:
            print(error, file=sys.stderr)
            return 2
        predictors.append((checkpoint or "bundled model", predictor))

    expressions = dict.fromkeys(DEFAULT_EXPRESSIONS)
    for _, predictor in predictors:
        expressions.update(dict.fromkeys(predictor.label_space.expressions))
    photos = list_photos(args.photos, expressions)
    if not photos:
        print(f"no photos in {args.photos}: expected subfolders neutral/, smiling/ or named by expression",
              file=sys.stderr)
        return 2
    print(header(args.photos, photos))
    ignored = ignored_folders(args.photos, expressions)
    if ignored:
        print(f"ignored subfolders (not a label): {', '.join(ignored)}")
    print(f"device {device}, torch threads {torch.get_num_threads()}, detector MTCNN (most confident face per photo), "
          f"test-time augmentation {args.tta}, class prior "
          f"{'estimated on the photos measured' if args.estimate_prior else args.class_prior or 'none'}, "
          "batch-norm adaptation "
          + ("off" if args.adapt_bn is None else f"to the photos measured (prior {args.adapt_bn:g} images, depth "
                                             f"{args.adapt_depth:g})"))

    results = []
    for name, predictor in predictors:
        if args.adapt_bn is not None:
            from phanet.inference.sources import read_image_item

            items = (read_image_item(Path(path)) for path, _ in photos)  # labels unused
            predictor.adapt_batch_norm(items, args.adapt_bn, args.adapt_images, args.adapt_depth)
        if args.estimate_prior:  # after the adaptation, as phanet predict does: the answers it reweights
            from phanet.inference.sources import evenly_spaced, read_image_item

            picked = evenly_spaced(len(photos), args.prior_images)
            predictor.estimate_class_prior(read_image_item(Path(photos[i][0])) for i in picked)  # labels unused
        result = evaluate_checkpoint(predictor, photos, name=name)
        result["batch_norm_adaptation"] = predictor.adaptation
        result["class_prior"] = predictor.class_prior
        result["prior_estimate"] = predictor.prior_estimate
        results.append(result)
        print()
        print(report(result))

    peer: dict = {"skipped": "not asked (--peer)"}
    if args.peer:
        print()
        try:
            import fer  # noqa: F401
        except ImportError:
            peer = {"skipped": "the fer package is not installed"}
            print("peer: the fer package is not installed (pip install fer); skipped")
        else:
            peer = evaluate_fer(photos)
            print(report(peer))

    if args.json:
        data = {"photos_dir": str(args.photos), "attribution": ATTRIBUTION,
                "photos": [[photo_name(p), label] for p, label in photos], "device": device,
                "torch_threads": torch.get_num_threads(), "checkpoints": results, "peer": peer}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(data, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
