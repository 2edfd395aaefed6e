"""Profile re-alignment: crops of turned faces cut as the training crops were, though a detector found them.

A model trained on synthetic faces learnt from crops aligned with the renderer's exact landmarks; ``phanet
predict`` cuts its crops with a detector's. For frontal faces the two agree within ~2 px (MTCNN's landmarks
are 0.06 eye-to-mouth distances from the exact ones, and accuracy is the same), but as a face turns MTCNN
places its five points elsewhere, and always in the same direction: at yaw 60 degrees the crop it gives is
turned 1-7 degrees and scaled by 0.95-1.11 against the training crop (by pitch), at 90 degrees turned 16 degrees and
scaled by 0.83 (``python -m phanet.inference.realign CKPT`` prints the table). The bundled model, right on
93 % of exact crops at 60 degrees, is right on 87 % of the detector's there (``benchmarks/photo_path.py``).

The fix is measured, not guessed. On the *training* identities of the checkpoint's own synthetic recipe,
each turned face is rendered on a wider canvas (as a photo shows it), the detector runs on it, and the
similarity that carries the detector's crop onto the exact one is recorded, per pose bin of the model,
pooled with its mirror image (a horizontal flip maps yaw to -yaw). Stored in the checkpoint's JSON
(``"realign"``), it is used by :class:`~phanet.inference.Predictor`: a face that the model's first answer
puts in a bin of the table (``|yaw|`` of at least :data:`MIN_YAW` degrees) is cut again with that bin's
correction and classified again; every other face is classified once, as before. The table is measured on the
faces of MTCNN's first pass; those its later, looser passes find (``retried``) take the same corrections, which
suit them less (a table of their own suited them no better: ``benchmarks/results/realign_retried_table.txt``).

What it is not: a correction for models whose training crops were cut with a detector's landmarks
themselves (real datasets prepared with ``phanet data prepare``): those need none, and the measuring
command refuses checkpoints not trained on synthetic faces. It is measured on renders; how MTCNN places
its points on real profile photos is not known here (no labelled real profiles), so ``--no-realign`` turns
it off.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from phanet.crop import alignment_matrix

MIN_YAW = 45.0  # bins turned less than this keep the detector's crop: below it the two crops agree
CANVAS = 288  # pixels of the wide render a detector runs on: a face of ~130 px
CANVAS_PADDING = 0.6  # the crop template's padding on the wide canvas: the face spans 1 / 2.2 of it


def homogeneous(matrix: np.ndarray) -> np.ndarray:
    """A ``[2, 3]`` affine matrix as ``[3, 3]``, so that matrices compose by ``@``."""
    return np.vstack([matrix, [0.0, 0.0, 1.0]])


@dataclass(frozen=True)
class Correction:
    """A similarity of the crop about its centre: ``scale``, ``angle`` (degrees, image axes: x right, y down,
    positive turns x towards y) and a shift ``(dx, dy)`` in crop sides, applied after the detector's crop."""

    scale: float
    angle: float
    dx: float
    dy: float

    def matrix(self, size: int) -> np.ndarray:
        """``[3, 3]``: crop pixels of the detector's crop -> crop pixels of the corrected one."""
        centre = size / 2.0  # the template scales with the crop side about this point (phanet.crop)
        a = self.scale * np.cos(np.radians(self.angle))
        b = self.scale * np.sin(np.radians(self.angle))
        rotate = np.array([[a, -b], [b, a]])
        shift = centre - rotate @ np.array([centre, centre]) + np.array([self.dx, self.dy]) * size
        return np.vstack([np.column_stack([rotate, shift]), [0.0, 0.0, 1.0]])

    def mirrored(self) -> Correction:
        """The correction of the mirror image (a horizontal flip negates the angle and the x shift)."""
        return Correction(self.scale, -self.angle, -self.dx, self.dy)

    @classmethod
    def between(cls, detected: np.ndarray, exact: np.ndarray, size: int, padding: float, fit: str) -> Correction:
        """The correction that carries the crop of landmarks ``detected`` onto the crop of ``exact``."""
        relative = homogeneous(alignment_matrix(exact, size, padding, fit)) @ np.linalg.inv(
            homogeneous(alignment_matrix(detected, size, padding, fit)))
        a, b = relative[0, 0], relative[1, 0]
        centre = size / 2.0
        moved = relative[:2, :2] @ np.array([centre, centre]) + relative[:2, 2] - centre
        return cls(float(np.hypot(a, b)), float(np.degrees(np.arctan2(b, a))), *(float(v) / size for v in moved))

    @classmethod
    def mean(cls, corrections: list[Correction]) -> Correction:
        values = np.array([[c.scale, c.angle, c.dx, c.dy] for c in corrections])
        return cls(*(float(v) for v in values.mean(axis=0)))


@dataclass(frozen=True)
class Realignment:
    """Per pose bin (name), the :class:`Correction` of a detector's crops, and how it was measured."""

    detector: str
    corrections: dict[str, Correction]
    counts: dict[str, int] = field(default_factory=dict)  # faces measured per bin, mirror images included
    measured_on: dict = field(default_factory=dict)

    def matrix(self, pose: str, size: int) -> np.ndarray | None:
        """``[3, 3]`` correction for faces answered as ``pose``, or None for bins that keep their crop."""
        correction = self.corrections.get(pose)
        return None if correction is None else correction.matrix(size)

    def to_json(self) -> dict:
        return {
            "detector": self.detector,
            "min_yaw": MIN_YAW,
            "corrections": {name: [round(v, 5) for v in (c.scale, c.angle, c.dx, c.dy)]
                            for name, c in self.corrections.items()},
            "counts": dict(self.counts),
            "measured_on": dict(self.measured_on),
        }

    @classmethod
    def from_json(cls, data: dict) -> Realignment:
        try:
            corrections = {str(name): Correction(*(float(v) for v in values))
                           for name, values in data["corrections"].items()}
            return cls(str(data["detector"]), corrections, dict(data.get("counts", {})),
                       dict(data.get("measured_on", {})))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"malformed 'realign' entry in checkpoint metadata: {err!r}") from None

    @classmethod
    def from_meta(cls, meta: dict) -> Realignment | None:
        """The checkpoint's re-alignment table, or None when it has none."""
        data = meta.get("realign")
        return None if data is None else cls.from_json(data)


def measure_corrections(samples: Iterable[tuple[np.ndarray, np.ndarray, str, str | None]], detector,
                        size: int, padding: float, fit: str) -> tuple[dict[str, Correction], dict[str, int], int]:
    """Mean corrections per bin from ``(wide image, exact landmarks, bin, mirror bin or None)`` samples.

    Each face found adds its correction to its bin and the mirrored one to the mirror bin. Returns the
    corrections, the faces behind each, and how many faces the detector missed (they add nothing).
    """
    found: dict[str, list[Correction]] = {}
    missed = 0
    for image, exact, pose, mirror in samples:
        faces = detector.detect(image)
        if not faces:
            missed += 1
            continue
        correction = Correction.between(faces[0].landmarks, exact, size, padding, fit)  # the most confident face
        found.setdefault(pose, []).append(correction)
        if mirror is not None:
            found.setdefault(mirror, []).append(correction.mirrored())
    corrections = {pose: Correction.mean(values) for pose, values in sorted(found.items())}
    return corrections, {pose: len(values) for pose, values in sorted(found.items())}, missed


def wide_capture(image, canvas: int = CANVAS, padding: float = CANVAS_PADDING) -> tuple[np.ndarray, np.ndarray]:
    """``(image [canvas, canvas, 3], landmarks [5, 2])``: a synthetic face (a dataset's
    :class:`~phanet.data.datasets.synthetic.SyntheticImage`) rendered with the camera pulled back, as a photo
    shows it: same face, expression, pose, light and background, and its exact landmarks."""
    import dataclasses

    from phanet.synth.render import render_capture

    settings = dataclasses.replace(image.render, size=canvas, align_padding=padding)
    return render_capture(image.seed, image.subject, image.expression, image.yaw, image.pitch, settings,
                          variant=image.variant, return_landmarks=True)


def training_samples(meta: dict, subjects: int):
    """The turned faces (``|yaw| >= MIN_YAW``) of the first ``subjects`` training identities of the
    checkpoint's synthetic recipe, with each one's pose bin name and its mirror bin's (or None)."""
    from phanet.config import config_from_dict
    from phanet.data.registry import load_dataset

    data = meta.get("config", {}).get("data", {})
    if data.get("dataset") != "synthetic":
        raise ValueError(f"the checkpoint was trained on {data.get('dataset')!r}, not on synthetic faces: its "
                         "training crops were cut as a detector cuts them, so they need no re-alignment")
    config = config_from_dict(meta["config"], "checkpoint config")
    index = load_dataset(config.data.dataset, None, **config.data.options)
    bins = {(pose.yaw, pose.pitch): pose.name for pose in index.label_space.poses}
    keep = sorted({s.subject for s in index.samples if s.split == "train"}, key=str)[:subjects]
    for sample in index.samples:
        if sample.split == "train" and sample.subject in keep and abs(sample.yaw) >= MIN_YAW:
            yield sample, bins[(sample.yaw, sample.pitch)], bins.get((-sample.yaw, sample.pitch))


def measure_realignment(meta: dict, detector, detector_name: str = "mtcnn", subjects: int = 8,
                        progress: bool = True) -> Realignment:
    """The re-alignment table of a checkpoint trained on synthetic faces (its JSON ``meta``), for ``detector``."""
    from tqdm import tqdm

    from phanet.crop import fit_from_meta, padding_from_meta

    samples = list(training_samples(meta, subjects))
    wide = ((*wide_capture(sample.image), pose, mirror)
            for sample, pose, mirror in tqdm(samples, desc="render and detect", disable=not progress))
    size, padding, fit = int(meta["input_size"]), padding_from_meta(meta), fit_from_meta(meta)
    corrections, counts, missed = measure_corrections(wide, detector, size, padding, fit)
    identities = len({sample.subject for sample, _, _ in samples})  # fewer than asked if the recipe has fewer
    measured_on = {"training_identities": identities, "faces": len(samples), "missed": missed,
                   "canvas": CANVAS, "canvas_padding": CANVAS_PADDING}
    return Realignment(detector_name, corrections, counts, measured_on)


def report(table: Realignment) -> str:
    lines = [f"detector {table.detector}; {table.measured_on.get('faces')} turned faces of "
             f"{table.measured_on.get('training_identities')} training identities, "
             f"{table.measured_on.get('missed')} not found",
             "", "| pose bin | faces | scale | angle (deg) | dx (crop sides) | dy |", "|---|---|---|---|---|---|"]
    for name, c in table.corrections.items():
        lines.append(f"| {name} | {table.counts.get(name, '')} | {c.scale:.3f} | {c.angle:+.1f} | {c.dx:+.3f} | "
                     f"{c.dy:+.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m phanet.inference.realign",
        description="Measure how a face detector's crops of turned faces differ from the training crops of a "
                    "checkpoint trained on synthetic faces, and (with --write) store the correction in its JSON, "
                    "where phanet predict uses it. " + __doc__.split("\n\n")[1].replace("\n", " "))
    parser.add_argument("checkpoint", help="NAME, NAME.safetensors or NAME.json of a checkpoint trained on "
                                           "synthetic faces ('bundled': the model shipped with phanet)")
    parser.add_argument("--subjects", type=int, default=8, help="training identities rendered (default 8)")
    parser.add_argument("--detector", default="mtcnn", help="face detector backend (default: mtcnn)")
    parser.add_argument("--write", action="store_true", help="store the table in the checkpoint's JSON")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.subjects < 1:
        parser.error(f"--subjects {args.subjects}: expected at least 1")

    import torch

    from phanet.checkpoint import bundled_checkpoint, checkpoint_paths, read_meta
    from phanet.inference.detect import create_detector

    if args.threads:
        torch.set_num_threads(args.threads)
    path = bundled_checkpoint() if args.checkpoint == "bundled" else args.checkpoint
    meta = read_meta(path)
    try:
        # first-pass faces only: the later, looser passes' landmarks on profiles stray too far and too variably for
        # one mean correction per bin (a table of their own did worse: benchmarks/results/realign_retried_table.txt)
        options = {"retry_thresholds": None} if args.detector == "mtcnn" else {}
        table = measure_realignment(meta, create_detector(args.detector, device="cpu", **options), args.detector,
                                    args.subjects, progress=not args.no_progress)
    except ValueError as err:
        parser.error(str(err))
    table.measured_on["command"] = (f"python -m phanet.inference.realign {args.checkpoint} --subjects {args.subjects} "
                                    f"--detector {args.detector} --write")
    print(report(table))
    if args.write:
        meta_path = checkpoint_paths(path)[1]
        meta["realign"] = table.to_json()
        meta_path.write_text(json.dumps(meta, indent=2))
        print(f"\nwrote the table into {meta_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
