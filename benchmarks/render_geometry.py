"""Does expression *geometry* transfer from the renders to photos, where their appearance does not?

The bundled model reads the renders' expressions well and real faces' poorly (``docs/bundled_model_study.md``).
This probe takes appearance out: a landmark model trained on real faces (MediaPipe's FaceMesh, 478 points in 3D,
its model inside the ``mediapipe`` wheel) measures the recipe's renders, a plain classifier learns the seven
expressions from the shapes alone (each face similarity-aligned in 3D onto the training mean shape, standardised,
multinomial logistic regression, its L2 strength chosen on the validation identities), and is then tested on the
unseen test identities and, as a check that chooses nothing, on photos. With ``--canonical`` it also classifies
MediaPipe's canonical face model (the mean neutral face of its face-geometry module, 468 vertices; read from a
local copy of ``mediapipe/modules/face_geometry/data/canonical_face_model.obj``, which this repository does not
ship) and compares a few part measures of that real mean face with the renders' neutral faces.

Two steps in two environments, because the FaceMesh solution whose model ships in the wheel needs numpy < 2:

    python benchmarks/render_geometry.py render /tmp/geom                 # phanet's environment: the renders
    python -m venv /tmp/mp && /tmp/mp/bin/pip install --no-deps mediapipe==0.10.14 && /tmp/mp/bin/pip install \\
        absl-py attrs flatbuffers "protobuf>=4.25.3,<5" "numpy<2" "opencv-python-headless<4.11" "matplotlib<3.10" \\
        "scikit-learn<1.6" tqdm
    /tmp/mp/bin/python benchmarks/render_geometry.py measure /tmp/geom [--canonical canonical_face_model.obj] \\
        [--photos ../shared/data/london-sample]

The ``measure`` step imports neither torch nor phanet. Renders: the recipe's (``configs/synthetic_general.yaml``)
switches, each face rendered again on the wide canvas of ``photo_path.py`` (the camera pulled back, as a photo
shows a face), poses with |yaw| <= 30 only (FaceMesh is a frontal-face model; the check photos are frontal).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np

EXPRESSIONS = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")
MESH_POINTS = 468  # FaceMesh's face mesh; 478 with the ten iris points of ``refine_landmarks``
L2_STRENGTHS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
# FaceMesh indices (the subject's right eye is the image's left): outer eye corners, the middle of each upper and
# lower lid, three points of each brow's upper edge, mouth corners, the middle of the lips, forehead top and chin.
OUTER_EYE_CORNERS = (33, 263)
UPPER_LIDS, LOWER_LIDS = (159, 386), (145, 374)
BROWS = ((105, 66, 107), (334, 296, 336))
MOUTH_CORNERS, LIP_MIDDLE = (61, 291), (13, 14)
FOREHEAD, CHIN = 10, 152
# FaceMesh's counterparts of the renderer's five landmarks (phanet.crop.LANDMARK_NAMES): iris centres (of the
# refined 478 points), nose tip, mouth corners; each pair is put in image order (left first) before comparing.
IRIS_CENTRES, NOSE_TIP = (468, 473), 1
PART_MEASURES = ("brow above upper lid", "eye opening", "mouth width", "mouth-corner lift", "forehead to chin")
PHOTO_LABELS = {"neutral": "neutral", "smiling": "happy", "happy": "happy"}  # London-set folder -> expression


# --- step 1: renders (phanet's environment) -------------------------------------------------------------------

def probe_samples(train_subjects: int = 40, max_yaw: float = 30.0, recipe: Path | None = None,
                  add: tuple[str, ...] = ()) -> list:
    """``(dataset index, sample)`` of the probe: the recipe's first ``train_subjects`` training identities (in the
    recipe's subject order), all its validation and test identities, poses with ``|yaw| <= max_yaw``; rendered
    with the recipe's switches and those in ``add``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from detail_robustness import RECIPE

    from phanet.config import load_config
    from phanet.data.registry import load_dataset

    config = load_config(recipe or RECIPE)
    options = dict(config.data.options, randomize=[*config.data.options["randomize"], *add])
    index = load_dataset(config.data.dataset, None, **options)
    kept_training = set(config.data.options["subjects"][:train_subjects])
    return [(i, s) for i, s in enumerate(index.samples) if abs(s.yaw) <= max_yaw
            and (s.split != "train" or s.extra["generator_id"] in kept_training)]


def _capture(sample) -> tuple:
    """One probe face on the wide canvas: image, exact landmarks, and its identity's resting eye opening as drawn
    (the painted lids' gap at the eye's middle over the outer eye corners' distance; ``paint._eyes``)."""
    from phanet.inference.realign import wide_capture
    from phanet.synth.render import capture_identity

    image, landmarks = wide_capture(sample.image)
    ident = capture_identity(sample.image.seed, sample.image.subject, sample.image.render.randomize)
    drawn = (ident.eye_open + ident.eye_low - 0.02) / (2 * (ident.eye_x + ident.eye_w))
    return image, landmarks, drawn


def render(out: Path, samples: list, processes: int = 1, progress: bool = True) -> Path:
    """Each sample rendered on the wide canvas as ``out/<split>/<index>.png``, listed in ``out/renders.csv`` with
    the renderer's exact landmarks (:data:`phanet.crop.LANDMARK_NAMES`, pixels) and the drawn resting eye opening
    (without an expression's action units, as a neutral face shows it), to check FaceMesh against."""
    from concurrent.futures import ProcessPoolExecutor

    from PIL import Image
    from tqdm import tqdm

    for stale in out.glob("landmarks_*.npz"):  # the measure step's caches of earlier renders in this folder
        stale.unlink()
    listing = out / "renders.csv"
    with open(listing, "w", newline="") as file, ProcessPoolExecutor(processes) as pool:
        writer = csv.writer(file)
        writer.writerow(["index", "split", "subject", "expression", "yaw", "pitch", "file", "landmarks",
                         "drawn_eye_opening"])
        captures = pool.map(_capture, [sample for _, sample in samples], chunksize=8)
        for (i, sample), (image, landmarks, drawn) in tqdm(zip(samples, captures), total=len(samples),
                                                           desc="render", disable=not progress):
            name = f"{sample.split}/{i}.png"
            (out / sample.split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(out / name)
            writer.writerow([i, sample.split, sample.subject, sample.expression, sample.yaw, sample.pitch, name,
                             json.dumps(np.round(landmarks, 2).tolist()), round(float(drawn), 4)])
    return listing


# The camera distances (cm from the head's pivot) of the frontal neutral faces rendered without jitter: the
# renderer's own (70) and one far enough to be near-orthographic, as the canonical face model is. Perspective alone
# lifts the mouth corners of a face seen from its eye level (they lie deeper than the lips' middle).
VIEW_DISTANCES = (70.0, 2000.0)


def _frontal_view(job: tuple) -> tuple:
    """A probe sample's face, frontal and without jitter, from ``distance`` cm: image, exact landmarks."""
    import dataclasses

    from phanet.inference.realign import CANVAS, CANVAS_PADDING
    from phanet.synth.render import View, render_capture

    image, distance = job
    settings = dataclasses.replace(image.render, size=CANVAS, align_padding=CANVAS_PADDING)
    return render_capture(image.seed, image.subject, image.expression, 0.0, 0.0, settings, variant=image.variant,
                          return_landmarks=True, view=View(distance=distance))


def render_views(out: Path, samples: list, processes: int = 1, distances=VIEW_DISTANCES) -> Path:
    """The frontal neutral faces of the training and test identities again, without jitter, from each of
    ``distances``: ``out/views/<distance>_<index>.png``, listed in ``out/views.csv``."""
    from concurrent.futures import ProcessPoolExecutor

    from PIL import Image

    chosen = [(i, s) for i, s in samples if s.expression == 0 and s.yaw == 0 and s.pitch == 0 and s.split != "val"]
    rows = [(i, sample, distance) for distance in distances for i, sample in chosen]
    (out / "views").mkdir(parents=True, exist_ok=True)
    listing = out / "views.csv"
    with open(listing, "w", newline="") as file, ProcessPoolExecutor(processes) as pool:
        writer = csv.writer(file)
        writer.writerow(["index", "split", "distance", "file"])
        images = pool.map(_frontal_view, [(sample.image, distance) for _, sample, distance in rows], chunksize=4)
        for (i, sample, distance), (image, _) in zip(rows, images):
            name = f"views/{distance:g}_{i}.png"
            Image.fromarray(image).save(out / name)
            writer.writerow([i, sample.split, distance, name])
    return listing


# --- shapes (numpy only) --------------------------------------------------------------------------------------

def similarity_align(points: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``points`` ``[n, 3]`` moved by the scale, rotation and shift that bring them closest to ``reference``
    (least squares; Umeyama 1991), so that only shape remains. A reflection is never used."""
    moved, target = points - points.mean(0), reference - reference.mean(0)
    u, singular, vt = np.linalg.svd(moved.T @ target)
    signs = np.array([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ np.diag(signs) @ vt
    scale = (singular * signs).sum() / (moved**2).sum()
    return scale * moved @ rotation + reference.mean(0)


def mean_shape(shapes: np.ndarray, rounds: int = 3) -> np.ndarray:
    """Generalised Procrustes mean of ``shapes`` ``[m, n, 3]``, centred, unit size."""
    reference = shapes[0] - shapes[0].mean(0)
    for _ in range(rounds):
        reference = np.mean([similarity_align(shape, reference) for shape in shapes], 0)
        reference = reference - reference.mean(0)
        reference /= np.linalg.norm(reference)
    return reference


def shape_features(landmarks: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(features [m, n * 3], found [m])``: each face aligned onto ``reference`` and flattened; faces FaceMesh
    missed (NaN landmarks) get zeros and ``found`` False."""
    found = ~np.isnan(landmarks[:, 0, 0])
    features = np.zeros((len(landmarks), landmarks.shape[1] * 3), np.float32)
    for k in np.flatnonzero(found):
        features[k] = similarity_align(landmarks[k], reference).ravel()
    return features, found


def part_measures(points: np.ndarray) -> np.ndarray:
    """:data:`PART_MEASURES` of one face's points (image axes: y down), in outer-eye-corner distances."""
    y = points[:, 1]
    scale = np.linalg.norm(points[OUTER_EYE_CORNERS[0], :2] - points[OUTER_EYE_CORNERS[1], :2])
    brow = np.mean([y[lid] - y[list(brow)].mean() for lid, brow in zip(UPPER_LIDS, BROWS)])
    eye = np.mean([y[low] - y[up] for up, low in zip(UPPER_LIDS, LOWER_LIDS)])
    width = np.linalg.norm(points[MOUTH_CORNERS[0], :2] - points[MOUTH_CORNERS[1], :2])
    lift = y[list(LIP_MIDDLE)].mean() - y[list(MOUTH_CORNERS)].mean()
    return np.array([brow, eye, width, lift, y[CHIN] - y[FOREHEAD]]) / scale


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """``[m, 5, 2]``: FaceMesh's counterparts of the renderer's five landmarks, pairs in image order."""
    def ordered(pair):
        a, b = landmarks[:, pair[0], :2], landmarks[:, pair[1], :2]
        left = (a[:, :1] <= b[:, :1])
        return np.where(left, a, b), np.where(left, b, a)

    eyes, mouth = ordered(IRIS_CENTRES), ordered(MOUTH_CORNERS)
    return np.stack([eyes[0], eyes[1], landmarks[:, NOSE_TIP, :2], mouth[0], mouth[1]], 1)


def landmark_offsets(found_points: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """``[m, 5, 2]`` FaceMesh minus exact, in each face's eye-to-mouth distance (the unit of ``photo_path.py``)."""
    scale = np.linalg.norm(exact[:, 3:].mean(1) - exact[:, :2].mean(1), axis=1)
    return (found_points - exact) / scale[:, None, None]


def obj_vertices(path: Path) -> np.ndarray:
    """The ``v x y z`` lines of a Wavefront OBJ file, ``[n, 3]``."""
    rows = [line.split()[1:4] for line in Path(path).read_text().splitlines() if line.startswith("v ")]
    if not rows:
        raise ValueError(f"{path}: no vertex ('v x y z') lines; expected MediaPipe's canonical_face_model.obj")
    return np.array(rows, dtype=np.float64)


def canonical_in_image_axes(vertices: np.ndarray) -> np.ndarray:
    """The canonical model (y up, z towards the camera) in FaceMesh's image axes (y down, z away): a rotation."""
    if len(vertices) < MESH_POINTS:
        raise ValueError(f"the canonical face has {len(vertices)} vertices; FaceMesh's mesh has {MESH_POINTS}")
    return vertices[:MESH_POINTS] * np.array([1.0, -1.0, -1.0])


# --- step 2: landmarks and classifier (the MediaPipe environment) ---------------------------------------------

def facemesh_landmarks(paths: list[Path], progress: bool = True) -> np.ndarray:
    """``[m, 478, 3]`` FaceMesh landmarks in pixels (z in x's scale), NaN where no face is found."""
    import cv2
    import mediapipe as mp
    from tqdm import tqdm

    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True)
    out = np.full((len(paths), MESH_POINTS + 10, 3), np.nan, np.float32)
    for k, path in enumerate(tqdm(paths, desc="FaceMesh", disable=not progress)):
        image = cv2.imread(str(path))
        if image is None:
            print(f"warning: {path} is not a readable image; counted as no face", file=sys.stderr)
            continue
        height, width = image.shape[:2]
        found = mesh.process(np.ascontiguousarray(image[:, :, ::-1])).multi_face_landmarks
        if found:
            out[k] = [(p.x * width, p.y * height, p.z * width) for p in found[0].landmark]
    return out


class ShapeClassifier:
    """Standardised aligned shapes -> multinomial logistic regression, L2 strength chosen on validation."""

    def __init__(self, train_landmarks, train_labels, val_landmarks, val_labels, strengths=L2_STRENGTHS):
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        found = ~np.isnan(train_landmarks[:, 0, 0])
        self.reference = mean_shape(train_landmarks[found])
        features, _ = shape_features(train_landmarks[found], self.reference)
        labels = np.asarray(train_labels)[found]
        self.scaler = StandardScaler().fit(features)
        features = self.scaler.transform(features)

        def fit(strength):  # sklearn's C is the inverse of the summed (not mean) loss's L2 weight
            return LogisticRegression(C=1.0 / strength / len(labels), max_iter=3000).fit(features, labels)

        self.validation = {}
        for strength in strengths:
            self.model = fit(strength)
            self.validation[strength] = accuracy(self.predict(val_landmarks), val_labels)
        self.strength = max(self.validation, key=self.validation.get)
        self.model = fit(self.strength)

    def probabilities(self, landmarks: np.ndarray) -> np.ndarray:
        """``[m, 7]``; all zeros for a face FaceMesh missed."""
        features, found = shape_features(landmarks, self.reference)
        out = np.zeros((len(landmarks), len(EXPRESSIONS)))
        if found.any():
            out[found] = self.model.predict_proba(self.scaler.transform(features[found]))
        return out

    def predict(self, landmarks: np.ndarray) -> np.ndarray:
        """Expression index per face, -1 (always wrong) where FaceMesh found none."""
        found = ~np.isnan(landmarks[:, 0, 0])
        return np.where(found, self.probabilities(landmarks).argmax(1), -1)


def accuracy(predicted, labels) -> float:
    return float(np.mean(np.asarray(predicted) == np.asarray(labels)))


def photo_rows(folder: Path) -> list[tuple[Path, int]]:
    """``(photo, expression index)`` of a folder in the London sample's layout (``neutral/``, ``smiling/``)."""
    rows = [(path, EXPRESSIONS.index(PHOTO_LABELS[path.parent.name]))
            for path in sorted(Path(folder).glob("*/*")) if path.parent.name in PHOTO_LABELS
            and path.suffix.lower() in (".jpg", ".jpeg", ".png")]
    if not rows:
        raise SystemExit(f"error: {folder} holds no photos in neutral/ or smiling/ subfolders")
    return rows


def photo_report(names, labels, probabilities) -> list[str]:
    """Per photo, then the balanced accuracies of ``real_faces.py`` (happy-vs-neutral: p(happy) > p(neutral); 7-way;
    a photo without a face is wrong in both), with the per-class accuracies."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from real_faces import balanced_accuracies  # no torch at import

    found = probabilities.sum(1) > 0
    rows = [{"label": EXPRESSIONS[label], "expression": EXPRESSIONS[row.argmax()] if ok else None,
             "p_happy": float(row[1]), "p_neutral": float(row[0])}
            for label, row, ok in zip(labels, probabilities, found)]
    lines = [f"{'photo':24s} {'true':8s} {'predicted':10s} p(happy) p(neutral)"]
    lines += [f"{name:24s} {row['label']:8s} {row['expression'] or 'no face':10s} {row['p_happy']:8.3f} "
              f"{row['p_neutral']:10.3f}" for name, row in zip(names, rows)]
    numbers = balanced_accuracies(rows)

    def line(title, key):
        per = ", ".join(f"{label} {100 * value:.0f}" for label, value in numbers[f"{key}_per_class"].items())
        return f"balanced {title} accuracy: {100 * numbers[key]:.1f}% [{per}]"

    return lines + [f"faces found: {found.sum()} / {len(found)}", line("happy-vs-neutral", "happy_vs_neutral"),
                    line("7-way", "n_way")]


def load_renders(out: Path, progress: bool = True) -> dict[str, dict]:
    """Per split: FaceMesh landmarks (cached in ``out/landmarks_<split>.npz``), labels, yaw and pitch."""
    rows = list(csv.DictReader(open(out / "renders.csv")))
    data = {}
    for split in ("train", "val", "test"):
        mine = [row for row in rows if row["split"] == split]
        cache = out / f"landmarks_{split}.npz"
        if cache.exists():
            landmarks = np.load(cache)["landmarks"]
        else:
            landmarks = facemesh_landmarks([out / row["file"] for row in mine], progress)
            np.savez(cache, landmarks=landmarks)
        data[split] = {"landmarks": landmarks, "labels": np.array([int(row["expression"]) for row in mine]),
                       "yaw": np.array([float(row["yaw"]) for row in mine]),
                       "pitch": np.array([float(row["pitch"]) for row in mine]),
                       "exact": np.array([json.loads(row["landmarks"]) for row in mine]).reshape(-1, 5, 2),
                       "drawn_eye_opening": np.array([float(row["drawn_eye_opening"]) for row in mine])}
    return data


def measure(out: Path, canonical: Path | None = None, photos: Path | None = None, progress: bool = True) -> dict:
    """The probe's numbers; see the module docstring."""
    data = load_renders(out, progress)
    train, val, test = data["train"], data["val"], data["test"]
    classifier = ShapeClassifier(train["landmarks"], train["labels"], val["landmarks"], val["labels"])
    predicted = classifier.predict(test["landmarks"])
    confusion = np.zeros((7, 7), int)
    for label, answer in zip(test["labels"], predicted):
        if answer >= 0:  # a face FaceMesh missed is wrong, in no column
            confusion[label, answer] += 1
    result = {"images": {split: len(d["labels"]) for split, d in data.items()},
              "found": {split: int((~np.isnan(d["landmarks"][:, 0, 0])).sum()) for split, d in data.items()},
              "validation": {str(k): v for k, v in classifier.validation.items()}, "l2": classifier.strength,
              "test_accuracy": accuracy(predicted, test["labels"]),
              "per_expression": {name: accuracy(predicted[test["labels"] == e], e)
                                 for e, name in enumerate(EXPRESSIONS)},
              "confusion": confusion.tolist()}
    # how well FaceMesh measures a render at all: its five counterpart points against the renderer's landmarks
    found = ~np.isnan(test["landmarks"][:, 0, 0])
    offsets = landmark_offsets(five_points(test["landmarks"][found]), test["exact"][found])
    frontal = ((test["yaw"] == 0) & (test["pitch"] == 0))[found]
    result["landmark_error"] = {"all": np.linalg.norm(offsets, axis=2).mean(0).tolist(),
                                "frontal": np.linalg.norm(offsets[frontal], axis=2).mean(0).tolist(),
                                "frontal_signed": offsets[frontal].mean(0).tolist()}
    if photos is not None:
        listed = photo_rows(photos)
        landmarks = facemesh_landmarks([path for path, _ in listed], progress)
        names = [f"{path.parent.name}/{path.name}" for path, _ in listed]
        result["photos"] = photo_report(names, [label for _, label in listed], classifier.probabilities(landmarks))
    if canonical is not None:
        result["canonical"] = canonical_report(canonical, data, out, progress)
    return result


def canonical_report(path: Path, data: dict, out: Path, progress: bool = True) -> dict:
    """The canonical face classified by a 468-point refit of the same procedure, and part measures of it against
    the renders' frontal faces (mean and standard deviation over identities; with ``out/views.csv``, also the
    neutral ones rendered without jitter from each camera distance of :func:`render_views`)."""
    face = canonical_in_image_axes(obj_vertices(path))
    mesh = {split: d["landmarks"][:, :MESH_POINTS] for split, d in data.items()}
    classifier = ShapeClassifier(mesh["train"], data["train"]["labels"], mesh["val"], data["val"]["labels"])
    frontal = {split: (d["yaw"] == 0) & (d["pitch"] == 0) for split, d in data.items()}
    neutral_test = frontal["test"] & (data["test"]["labels"] == 0)
    # Part measures in each face's own frontal view (the canonical model's axes; the frontal renders' image), not
    # after the alignment: the mean shape it aligns onto is not frontal, and projected heights change with its tilt.
    rows = {"canonical face (real mean neutral face)": [part_measures(face)]}
    for split, expression in (("train", 0), ("test", 0), ("train", 1), ("train", 6)):
        chosen = frontal[split] & (data[split]["labels"] == expression)
        rows[f"renders, {split} ids: {EXPRESSIONS[expression]}, frontal"] = [
            part_measures(points) for points in mesh[split][chosen] if not np.isnan(points[0, 0])]
    # the same neutral faces without jitter from the renderer's camera distance and from far away (near-orthographic)
    views = out / "views.csv"
    if views.is_file():
        listed = list(csv.DictReader(open(views)))
        landmarks = facemesh_landmarks([out / row["file"] for row in listed], progress)[:, :MESH_POINTS]
        distances = np.array([float(row["distance"]) for row in listed])
        for distance in sorted(set(distances.tolist())):
            rows[f"renders, neutral, no jitter, camera {distance:g} cm"] = [
                part_measures(points) for points in landmarks[distances == distance] if not np.isnan(points[0, 0])]
    # the instrument on the renders: FaceMesh's eye opening of each frontal neutral face against the one drawn
    eye = PART_MEASURES.index("eye opening")
    neutral = {split: frontal[split] & (data[split]["labels"] == 0) for split in ("train", "test")}
    read = np.concatenate([[part_measures(points)[eye] for points in mesh[split][neutral[split]]]
                           for split in ("train", "test")])
    drawn = np.concatenate([data[split]["drawn_eye_opening"][neutral[split]] for split in ("train", "test")])
    return {"eye_opening_read_vs_drawn": {"read": float(np.mean(read)), "drawn": float(np.mean(drawn)),
                                          "ratio": float(np.mean(read / drawn)), "n": len(read)},
            "l2": classifier.strength, "validation": {str(k): v for k, v in classifier.validation.items()},
            "test_accuracy": accuracy(classifier.predict(mesh["test"]), data["test"]["labels"]),
            "canonical_probabilities": dict(zip(EXPRESSIONS, classifier.probabilities(face[None])[0].tolist())),
            "neutral_test_probabilities": dict(zip(EXPRESSIONS, classifier.probabilities(
                mesh["test"][neutral_test]).mean(0).tolist())),
            "part_measures": {name: {"mean": np.mean(v, 0).tolist(), "std": np.std(v, 0).tolist(), "n": len(v)}
                              for name, v in rows.items()}}


def report(result: dict) -> str:
    lines = [f"renders: {result['images']}; FaceMesh found {result['found']}",
             "validation accuracy per L2 strength: "
             + ", ".join(f"{k} {100 * v:.1f}" for k, v in result["validation"].items()) + f"; chosen {result['l2']}",
             "test accuracy (unseen identities, |yaw| <= 30, a miss counts wrong): "
             f"{100 * result['test_accuracy']:.1f}%",
             "per expression: " + ", ".join(f"{k} {100 * v:.1f}" for k, v in result["per_expression"].items()),
             "confusion (rows true, columns predicted, in " + " ".join(EXPRESSIONS) + "):"]
    lines += ["  " + " ".join(f"{n:4d}" for n in row) for row in result["confusion"]]
    error = result["landmark_error"]
    names = ("left eye", "right eye", "nose", "mouth left", "mouth right")
    lines += ["FaceMesh's iris centres, nose tip and mouth corners against the renderer's exact landmarks "
              "(test renders; eye-to-mouth distances):",
              "  mean error, all / frontal: " + ", ".join(f"{n} {a:.3f} / {f:.3f}" for n, a, f in
                                                     zip(names, error["all"], error["frontal"])),
              "  frontal signed offset (x right, y down): " + ", ".join(f"{n} ({x:+.3f}, {y:+.3f})" for n, (x, y) in
                                                                       zip(names, error["frontal_signed"]))]
    if "photos" in result:
        lines += ["", "== photos (a check; it chooses nothing) =="] + result["photos"]
    if "canonical" in result:
        c = result["canonical"]
        lines += ["", f"== canonical face; 468-point refit: L2 {c['l2']}, test {100 * c['test_accuracy']:.1f}% ==",
                  "canonical face called: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in c["canonical_probabilities"].items()),
                  "frontal neutral test renders (mean): "
                  + ", ".join(f"{k} {v:.3f}" for k, v in c["neutral_test_probabilities"].items()),
                  "part measures in outer-eye-corner distances, each face in its frontal view (mean ± std over faces):",
                  f"{'':44s}" + "".join(f"{name:>22s}" for name in PART_MEASURES)]
        for name, v in c["part_measures"].items():
            cells = "".join(f"{m:>14.3f} ± {s:5.3f}" for m, s in zip(v["mean"], v["std"]))
            lines.append(f"{name:44s}{cells}   (n={v['n']})")
        eye = c["eye_opening_read_vs_drawn"]
        lines.append(f"eye opening of the frontal neutral renders (train and test ids, n={eye['n']}): FaceMesh reads "
                     f"{eye['read']:.3f}, the renderer drew {eye['drawn']:.3f} (read / drawn {eye['ratio']:.2f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    steps = parser.add_subparsers(dest="step", required=True)
    first = steps.add_parser("render", help="render the probe's faces (phanet's environment)")
    first.add_argument("out", type=Path, help="folder for the renders and their list")
    first.add_argument("--train-subjects", type=int, default=40, help="training identities to render (default 40)")
    first.add_argument("--max-yaw", type=float, default=30.0, help="largest |yaw| rendered (default 30)")
    first.add_argument("--add", default="", metavar="LIST",
                       help="generator switches to render with besides the recipe's, e.g. rest_shape")
    first.add_argument("--processes", type=int, default=os.cpu_count() or 1,
                       help="rendering processes (default: one per core)")
    second = steps.add_parser("measure", help="FaceMesh, classifier and report (the MediaPipe environment)")
    second.add_argument("out", type=Path, help="the render step's folder")
    second.add_argument("--canonical", type=Path, help="a local copy of MediaPipe's canonical_face_model.obj")
    second.add_argument("--photos", type=Path, help="photos in neutral/ and smiling/ subfolders (a check)")
    second.add_argument("--json", type=Path, help="also write the numbers here")
    for step in (first, second):
        step.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    if args.step == "render":
        args.out.mkdir(parents=True, exist_ok=True)
        add = tuple(part.strip() for part in args.add.split(",") if part.strip())
        samples = probe_samples(args.train_subjects, args.max_yaw, add=add)
        listing = render(args.out, samples, args.processes, not args.no_progress)
        views = render_views(args.out, samples, args.processes)
        print(f"wrote {listing} and {views}")
        return 0
    if not (args.out / "renders.csv").is_file():
        parser.error(f"{args.out / 'renders.csv'} does not exist: run the render step first")
    result = measure(args.out, args.canonical, args.photos, not args.no_progress)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
