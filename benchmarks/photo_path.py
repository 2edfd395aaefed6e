"""Does the face-crop contract hold on the photo path? Renders run through the detector, against exact landmarks.

A model trained on synthetic faces sees, in training, crops the renderer aligned with the exact projected
landmarks of each face; ``phanet predict`` cuts its crops from photos with MTCNN's five landmarks. If MTCNN put
its eye centres or mouth corners elsewhere than the renderer's landmarks are (a systematic offset), every real
face would reach the model shifted or scaled against its training crops. This measures it on the recipe's
unseen test subjects (``configs/synthetic_general.yaml``, rendered as the recipe says): each face is rendered
again on a wider canvas (the camera pulled back: same face, expression, pose, light and background), then

- **exact**: cut from the wide render with the renderer's own landmarks (the same similarity warp as photos
  get, so this row shows what resampling alone costs);
- **detector**: cut with the landmarks MTCNN finds on the wide render (the photo path, as ``Predictor`` runs it);
- **realigned**: the detector's crop, then for a face answered as turned 45 degrees or more cut again with the
  checkpoint's profile correction (``phanet.inference.realign``; what ``phanet predict`` does by default; the same
  as **detector** for a checkpoint without a table);

and classified, beside the native renders (the training crops). Per yaw (pitched poses with their yaw):
faces found, MTCNN's landmark error (mean distance from the exact landmarks, in eye-to-mouth distances: that
distance barely changes with yaw, unlike the distance between the eyes), and accuracy on the three crops. For the
frontal faces also each landmark's mean signed offset (x right, y down), the systematic part.

With ``--face-free N`` it also counts the faces MTCNN reports on N face-free images (the renderer's cluttered
backdrops, no head), and with ``--face-free-photos`` on real photos without a face (scikit-image's sample photos and
crops of them), with its first pass alone and with the later, looser passes it can run where the first finds no
face (``phanet.inference.detect``): the false alarms those add, and their cost.

No photo of a face is involved.

    python benchmarks/photo_path.py                                   # the bundled model
    python benchmarks/photo_path.py --checkpoint runs/x/best --subjects 2 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads; see benchmarks/README.md

sys.path.insert(0, str(Path(__file__).resolve().parent))
from detail_robustness import RECIPE, test_index  # noqa: E402

from phanet.crop import LANDMARK_NAMES as LANDMARKS  # noqa: E402  (numpy only, no torch)
from phanet.inference.realign import CANVAS, CANVAS_PADDING  # noqa: E402  (numpy only)

CROPS = ("native", "exact", "detector", "realigned")


def eye_mouth_distance(landmarks):
    """Distance from the eyes' midpoint to the mouth corners' midpoint."""
    import numpy as np

    return float(np.linalg.norm(landmarks[3:].mean(0) - landmarks[:2].mean(0)))


def measure(predictor, samples, canvas: int = CANVAS, padding: float = CANVAS_PADDING, chunk: int = 32,
            progress: bool = True) -> dict:
    """Per sample: label, yaw, pitch, found, landmark offsets (``[5, 2]`` in eye-to-mouth distances, or None)
    and the predicted class on each of :data:`CROPS` (None for ``detector`` and ``realigned`` when no face was
    found)."""
    import numpy as np
    from tqdm import tqdm

    from phanet.inference.align import align_face
    from phanet.inference.realign import wide_capture

    size = predictor.input_size
    rows = []
    for start in tqdm(range(0, len(samples), chunk), desc="render, detect, classify", disable=not progress):
        part = samples[start : start + chunk]
        natives = [sample.image() for sample in part]
        wide = [wide_capture(sample.image, canvas, padding) for sample in part]
        images = [image for image, _ in wide]
        located = [faces[:1] for faces in predictor.locate_faces(images)]  # the most confident; a render holds one
        exact = [align_face(image, size, landmarks, None, predictor.align_padding, predictor.align_fit)[0]
                 for image, landmarks in wide]
        detected = [faces[0].crop for faces in located if faces]
        answers = {name: predictor.classify(np.stack(crops))["expression"].argmax(1) if crops else []
                   for name, crops in (("native", natives), ("exact", exact))}
        outputs = predictor.classify(np.stack(detected)) if detected else {}
        answers["detector"] = outputs["expression"].argmax(1) if detected else []
        if predictor.realignment is not None and "pose" in outputs:
            outputs = {name: values.copy() for name, values in outputs.items()}
            predictor.realign_faces(images, located, outputs)
        answers["realigned"] = outputs["expression"].argmax(1) if detected else []
        k = 0
        for i, (sample, (_, landmarks), faces) in enumerate(zip(part, wide, located)):
            row = {"expression": sample.expression, "yaw": float(sample.yaw), "pitch": float(sample.pitch),
                   "found": bool(faces), "native": int(answers["native"][i]), "exact": int(answers["exact"][i]),
                   "detector": None, "realigned": None, "offsets": None, "retried": False}
            if faces:
                row["retried"] = bool(faces[0].retried)
                row["offsets"] = ((faces[0].landmarks - landmarks) / eye_mouth_distance(landmarks)).tolist()
                row["detector"], row["realigned"] = int(answers["detector"][k]), int(answers["realigned"][k])
                k += 1
            rows.append(row)
    return {"rows": rows}


def detector_passes() -> dict[str, dict]:
    """MTCNN's options as phanet predict can run it: its first pass alone (--no-retry), with the looser second pass
    where the first finds no face (the default), and with that pass also on a wider copy (--search-profiles)."""
    from phanet.inference.detect import RETRY_STRETCH

    return {"first pass": {"retry_thresholds": None}, "+ looser pass": {"retry_stretch": None},
            "+ wider copy": {"retry_stretch": RETRY_STRETCH}}


# scikit-image's bundled sample photos without a face (the cat's is an animal's face, kept as a hard case)
FACE_FREE_PHOTOS = ("chelsea", "coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "brick",
                    "grass", "gravel", "horse", "coins", "moon", "cell", "clock", "colorwheel", "text", "page")


def face_free_backdrops(count: int, canvas: int = CANVAS):
    """``count`` of the renderer's cluttered backdrops without a head, ``[canvas, canvas, 3]`` uint8."""
    import numpy as np

    from phanet.synth.render import background, sample_scene

    for i in range(count):
        scene = sample_scene(0, 100_000 + i, i % 7, 0, clutter=True)  # identities far beyond any recipe's
        yield (np.clip(background(scene, canvas), 0, 1) * 255).round().astype(np.uint8)


def face_free_photos(views: int = 16, canvas: int = CANVAS):
    """Real photos without a face: each of :data:`FACE_FREE_PHOTOS` whole and as ``views - 1`` random square crops
    (a third of its shorter side to all of it, seed 0), resized to ``canvas``; grey ones as RGB."""
    import numpy as np
    from PIL import Image

    try:
        import skimage.data
    except ImportError as err:
        raise SystemExit("--face-free-photos needs scikit-image (pip install 'phanet[dev]')") from err
    rng = np.random.default_rng(0)
    for name in FACE_FREE_PHOTOS:
        image = getattr(skimage.data, name)()
        image = np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3]
        image = image if image.dtype == np.uint8 else (np.clip(image, 0, 1) * 255).astype(np.uint8)
        h, w = image.shape[:2]
        yield np.ascontiguousarray(image)
        for _ in range(views - 1):
            side = int(rng.integers(min(h, w) // 3, min(h, w) + 1))
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            yield np.asarray(Image.fromarray(image[y : y + side, x : x + side]).resize((canvas, canvas)))


def face_free_alarms(images, total: int | None = None, progress: bool = True) -> dict:
    """Per :func:`detector_passes` setting: how many of ``images`` (face-free) it reports a face in, the scores
    of the faces it reports, and its detection seconds (on a face-free image every later pass runs: their cost,
    measured side by side)."""
    import time

    from tqdm import tqdm

    from phanet.inference.detect import create_detector

    detectors = {name: create_detector("mtcnn", device="cpu", **options)
                 for name, options in detector_passes().items()}
    alarms = {name: {"images": 0, "with_a_face": 0, "scores": [], "seconds": 0.0} for name in detectors}
    for image in tqdm(images, total=total, desc="face-free images", disable=not progress):
        for name, detector in detectors.items():
            start = time.perf_counter()
            faces = detector.detect(image)
            entry = alarms[name]
            entry["seconds"] += time.perf_counter() - start
            entry["images"] += 1
            entry["with_a_face"] += bool(faces)
            entry["scores"] += [round(face.score, 3) for face in faces]
    return alarms


def alarms_report(title: str, alarms: dict) -> str:
    first = max(alarms["first pass"]["seconds"], 1e-9)
    lines = [f"\n{title}: images in which MTCNN reports a face (all are face-free), and detection time",
             "| passes | images with a face | scores | time vs the first pass |", "|---|---|---|---|"]
    for name, entry in alarms.items():
        lines.append(f"| {name} | {entry['with_a_face']} / {entry['images']} | "
                     f"{', '.join(map(str, entry['scores'])) or '-'} | {entry['seconds'] / first:.2f}x |")
    return "\n".join(lines)


def summarise(rows: list[dict], names) -> dict:
    """Per |yaw| (pitched poses with their yaw) and overall: found, landmark error and accuracy per crop."""
    import numpy as np

    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(f"{abs(row['yaw']):g}", []).append(row)
    ordered = sorted(groups.items(), key=lambda item: float(item[0]))
    table = {}
    for name, members in [*ordered, ("all", rows)]:
        found = [row for row in members if row["found"]]
        errors = [np.linalg.norm(np.array(row["offsets"]), axis=1).mean() for row in found]
        entry = {"images": len(members), "found": len(found), "retried": sum(row["retried"] for row in found),
                 "landmark_error": float(np.mean(errors)) if errors else None}
        for crop in CROPS:
            # accuracy over every image; a face the detector misses counts as wrong, as in real_faces.py
            entry[crop] = float(np.mean([row[crop] == row["expression"] for row in members]))
        # the same three crops on the detected faces only, so the detector's misses do not hide its crops' cost
        for crop in CROPS:
            entry[f"{crop}_on_found"] = (float(np.mean([row[crop] == row["expression"] for row in found]))
                                         if found else None)
        table[name] = entry
    frontal = [row for row in rows if row["found"] and row["yaw"] == 0 and row["pitch"] == 0]
    bias = None
    if frontal:
        offsets = np.array([row["offsets"] for row in frontal])
        bias = {"images": len(frontal),
                "mean": dict(zip(LANDMARKS, offsets.mean(0).round(4).tolist())),
                "sd": dict(zip(LANDMARKS, offsets.std(0).round(4).tolist()))}
    confusion = {}
    for row in rows:  # where the detector's crops move answers the native crops got right
        if row["native"] == row["expression"] and row["detector"] not in (None, row["expression"]):
            key = f"{names[row['expression']]} -> {names[row['detector']]}"
            confusion[key] = confusion.get(key, 0) + 1
    return {"by_yaw": table, "frontal_bias": bias,
            "right_on_native_wrong_on_detector": dict(sorted(confusion.items(), key=lambda kv: -kv[1]))}



def report(summary: dict) -> str:
    def pct(value):
        return "" if value is None else f"{100 * value:.1f}"

    lines = ["| abs(yaw) | images | faces found (retried) | landmark error (eye-to-mouth) | native | exact | detector "
             "| realigned | on found faces: native / exact / detector / realigned |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, entry in summary["by_yaw"].items():
        error = "" if entry["landmark_error"] is None else f"{entry['landmark_error']:.3f}"
        lines.append(f"| {name} | {entry['images']} | {entry['found']} ({entry['retried']}) | {error} | "
                     f"{pct(entry['native'])} | {pct(entry['exact'])} | {pct(entry['detector'])} | "
                     f"{pct(entry['realigned'])} | "
                     f"{pct(entry['native_on_found'])} / {pct(entry['exact_on_found'])} / "
                     f"{pct(entry['detector_on_found'])} / {pct(entry['realigned_on_found'])} |")
    bias = summary["frontal_bias"]
    if bias:
        lines.append(f"\nfrontal faces ({bias['images']}): MTCNN minus exact landmark, mean (sd), in eye-to-mouth "
                     "distances, x right, y down:")
        for name in LANDMARKS:
            (mx, my), (sx, sy) = bias["mean"][name], bias["sd"][name]
            lines.append(f"  {name:12s} x {mx:+.3f} ({sx:.3f})  y {my:+.3f} ({sy:.3f})")
    moved = summary["right_on_native_wrong_on_detector"]
    lines.append("\nright on the native render, wrong on the detector's crop: "
                 + (", ".join(f"{key} {count}" for key, count in moved.items()) or "none"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    parser.add_argument("--checkpoint", type=Path, help="NAME (.safetensors + .json); default: the bundled model")
    parser.add_argument("--subjects", type=int, default=None, help="only the first N test identities")
    parser.add_argument("--poses", choices=("frontal", "all"), default="all",
                        help="all 23 poses of the recipe (default), or yaw 0 and pitch 0 only")
    parser.add_argument("--canvas", type=int, default=CANVAS, help=f"pixels of the wide render (default {CANVAS})")
    parser.add_argument("--canvas-padding", type=float, default=CANVAS_PADDING,
                        help=f"the crop template's padding on the wide canvas (default {CANVAS_PADDING:g}: the "
                             "face spans 1 / (1 + 2 x padding) of it)")
    parser.add_argument("--no-retry", action="store_true",
                        help="MTCNN's first pass only, without the second, looser one on images where it found no face")
    parser.add_argument("--search-profiles", action="store_true",
                        help="also run the looser pass on a 1.3x wider copy where it finds no face (phanet predict "
                        "--search-profiles)")
    parser.add_argument("--face-free", type=int, default=0, metavar="N",
                        help="also count MTCNN's false alarms on N face-free cluttered backdrops (each set of passes)")
    parser.add_argument("--face-free-photos", action="store_true",
                        help=f"also count them on {len(FACE_FREE_PHOTOS)} real photos without a face (scikit-image's "
                        "samples), 16 views of each")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args(argv)

    from phanet.commands.common import refuse_checkpoint_meta_as_output

    refuse_checkpoint_meta_as_output(parser, args.json)
    if args.canvas_padding < 0.2:
        parser.error(f"--canvas-padding {args.canvas_padding:g}: expected at least 0.2, so that the detector sees "
                     "the whole head and some background")

    import torch

    from phanet.config import load_config
    from phanet.inference import Predictor

    if args.threads:
        torch.set_num_threads(args.threads)
    passes = detector_passes()
    options = passes["first pass"] if args.no_retry else passes["+ wider copy"] if args.search_profiles else {}
    predictor = Predictor.from_checkpoint(args.checkpoint, device="cpu", **options)
    randomize = list(load_config(RECIPE).data.options["randomize"])
    index, test = test_index(randomize, subjects=args.subjects)
    samples = [index.samples[i] for i in test]
    if args.poses == "frontal":
        samples = [sample for sample in samples if sample.yaw == 0 and sample.pitch == 0]
    print(f"checkpoint {args.checkpoint or 'bundled'} (crop fit {predictor.align_fit}, padding "
          f"{predictor.align_padding:g}); {len(samples)} test renders of {RECIPE.name} ({','.join(randomize)}), "
          f"{args.poses} poses; wide canvas {args.canvas} px, padding {args.canvas_padding:g}; detector MTCNN "
          f"({'first pass only' if args.no_retry else 'with the looser pass where the first finds no face'}"
          f"{', and on a 1.3x wider copy' if args.search_profiles and not args.no_retry else ''}); "
          f"profile re-alignment table: {'yes' if predictor.realignment else 'none'}\n")
    measured = measure(predictor, samples, args.canvas, args.canvas_padding, progress=not args.no_progress)
    summary = summarise(measured["rows"], index.label_space.expressions)
    print(report(summary))
    print("\n(accuracy in %: native = the training crop; exact = cut from the wide render with the renderer's "
          "landmarks; detector = cut with MTCNN's, a missed face counting as wrong; realigned = the detector's crop, "
          "turned faces cut again with the checkpoint's correction, as phanet predict does)")
    alarms = {}
    if args.face_free:
        alarms["backdrops"] = face_free_alarms(face_free_backdrops(args.face_free, args.canvas), args.face_free,
                                               progress=not args.no_progress)
        print(alarms_report(f"face-free cluttered backdrops ({args.canvas} px)", alarms["backdrops"]))
    if args.face_free_photos:
        alarms["photos"] = face_free_alarms(face_free_photos(16, args.canvas), 16 * len(FACE_FREE_PHOTOS),
                                            progress=not args.no_progress)
        print(alarms_report(f"real photos without a face (scikit-image's {', '.join(FACE_FREE_PHOTOS)}; each whole "
                            f"and as 15 random crops at {args.canvas} px)", alarms["photos"]))
    if args.json:
        args.json.write_text(json.dumps({"checkpoint": str(args.checkpoint or "bundled"), "canvas": args.canvas,
                                         "canvas_padding": args.canvas_padding, "face_free": alarms, **summary,
                                         **measured}, indent=1))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
