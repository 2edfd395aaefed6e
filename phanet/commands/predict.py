"""`phanet predict`: expression, pose and attention for every face in photos, folders and videos.

A thin wrapper over :class:`phanet.inference.Predictor`: inputs stream through detection, alignment
and batched model calls; one record per image or video frame goes to stdout or ``--output`` as JSON
lines or CSV; failures are listed on stderr at the end instead of stopping the run.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

from phanet.commands.common import (
    add_adapt_bn_flags,
    add_class_prior_flag,
    add_estimate_prior_flags,
    add_threads_flag,
    add_tta_flag,
    apply_threads,
    check_adapt_bn_flags,
    check_prior_flags,
)

DESCRIPTION = """\
Find the faces in images, folders (searched recursively) and video files, align each one, and run a
PhaNet checkpoint on it. For each input (image, or video frame) one record is written:
file, frame, status (ok | no_face | error), error, and per face its box, detector score, expression
with probabilities, pose bin with its yaw and probabilities, the pose-adaptive scale weights, and whether
the face was cut again as a profile (realigned) or found by the detector's second, looser pass (retried).

Unreadable files never stop the run: they get status "error" and are listed on stderr at the end.
The exit code is 0 unless every input failed (or any did, with --strict).
"""

EXAMPLES = """\
examples:
  phanet predict photos/                                         # the bundled model, JSON lines on stdout
  phanet predict photos/ --checkpoint runs/kdef/best
  phanet predict clip.mp4 --checkpoint best --every 5 --format csv -o clip.csv
  phanet predict crops/ --checkpoint best --no-detect --save-annotated annotated/
  phanet predict portraits/ --adapt-bn                            # batch-norm statistics of these photos
  phanet predict portraits/ --estimate-prior                      # how often each expression occurs here
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="expressions and pose of the faces in photos, folders and videos",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders and video files")
    parser.add_argument("--checkpoint", default=None, metavar="CKPT",
                        help="checkpoint (NAME, NAME.safetensors or NAME.json); default: the general model "
                        "bundled with phanet, trained on synthetic faces only")
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl",
                        help="jsonl: one JSON record per input; csv: one row per face (default: jsonl)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write records to FILE instead of stdout")
    parser.add_argument("--save-annotated", metavar="DIR",
                        help="write images (and for videos an .annotated.mp4) with boxes, labels and "
                        "attention heat-maps under DIR")
    parser.add_argument("--no-detect", action="store_true",
                        help="inputs are face crops already: skip detection, use the whole image")
    parser.add_argument("--detector", default="mtcnn", help="face detector backend (default: mtcnn)")
    parser.add_argument("--min-score", type=float, default=0.9,
                        help="drop detections less confident than this (default: 0.9)")
    parser.add_argument("--no-retry", action="store_true",
                        help="mtcnn: on an image where no face was found, do not search again (by default a second "
                        "pass with looser thresholds keeps faces from score 0.7 there: it finds many of the turned "
                        "faces the first pass misses; records mark those faces 'retried'; an image without a face "
                        "costs ~2x the detection time)")
    parser.add_argument("--search-profiles", action="store_true",
                        help="mtcnn: where the looser pass finds no face either, run it again on a 1.3x wider copy "
                        "of the image: finds more faces turned 75-90 degrees, but also false faces in some textures "
                        "(grass, coins) in images without a face")
    parser.add_argument("--max-side", type=int, default=1280,
                        help="detect on a copy downscaled to this longest side (default: 1280)")
    parser.add_argument("--min-face-size", type=int, default=None, metavar="PX",
                        help="smallest face searched for, in pixels of the copy downscaled to --max-side; "
                        "smaller is slower (default for mtcnn: faces from 1/12 of the image's shorter side up, "
                        "searched on a 240-pixel copy)")
    parser.add_argument("--align-padding", type=float, default=None,
                        help="crop margin around the landmark template, as a fraction of the crop side "
                        "(default: the checkpoint's, else 0.1)")
    parser.add_argument("--no-realign", action="store_true",
                        help="keep the detector's crop of turned faces; by default a face answered as turned "
                        "45 degrees or more is cut again with the checkpoint's correction for that pose, where "
                        "its JSON has one (the bundled model's: measured on renders; python -m "
                        "phanet.inference.realign --help)")
    parser.add_argument("--every", type=int, default=1, metavar="N",
                        help="in videos, use every N-th frame (default: 1)")
    parser.add_argument("--batch-size", type=int, default=32, help="faces per model call (default: 32)")
    add_tta_flag(parser)
    add_class_prior_flag(parser)
    add_estimate_prior_flags(parser, "inputs (photos or frames)")
    add_adapt_bn_flags(parser, "inputs (photos or frames)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    parser.add_argument("--strict", action="store_true", help="exit with status 1 if any input failed")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_threads_flag(parser)
    parser.set_defaults(func=run)


def detector_options(args: argparse.Namespace) -> dict:
    options = {"min_score": args.min_score, "max_side": args.max_side}
    if args.min_face_size is not None:
        options["min_face_size"] = args.min_face_size
    if args.no_retry and args.detector == "mtcnn":
        options["retry_thresholds"] = None
    elif args.search_profiles and args.detector == "mtcnn":
        from phanet.inference.detect import RETRY_STRETCH

        options["retry_stretch"] = RETRY_STRETCH
    return options


def adapt_to_inputs(predictor, files: list, total: int, args: argparse.Namespace) -> None:
    """``--adapt-bn``: adapt the predictor's batch-norm statistics to up to ``--adapt-images`` of the inputs."""
    from tqdm import tqdm

    from phanet.inference.sources import sample_inputs

    sample = sample_inputs(files, args.every, total, args.adapt_images)
    sample = tqdm(sample, total=min(total, args.adapt_images), unit="img", desc="adapt batch norm",
                  file=sys.stderr, disable=True if args.no_progress else None)
    info = predictor.adapt_batch_norm(sample, args.adapt_bn, args.adapt_images, args.adapt_depth)
    print(f"phanet predict: batch-norm statistics adapted to {info['images']} faces from {info['inputs']} "
          f"inputs (prior {info['prior']:g} images, {info['layers']} of {info['of_layers']} layers)", file=sys.stderr)


def estimate_prior_of_inputs(predictor, files: list, total: int, args: argparse.Namespace) -> None:
    """``--estimate-prior``: estimate the class prior on up to ``--prior-images`` of the inputs and keep it."""
    from tqdm import tqdm

    from phanet.inference.sources import sample_inputs

    sample = sample_inputs(files, args.every, total, args.prior_images)
    sample = tqdm(sample, total=min(total, args.prior_images), unit="img", desc="estimate class prior",
                  file=sys.stderr, disable=True if args.no_progress else None)
    info = predictor.estimate_class_prior(sample)
    shares = ", ".join(f"{name} {share:.3f}" for name, share in info["prior"].items())
    settled = "" if info["converged"] else f", not settled after {info['iterations']} iterations"
    print(f"phanet predict: expression answers reweighted by the class prior estimated on {info['faces']} faces "
          f"from {info['inputs']} inputs ({shares}{settled})", file=sys.stderr)


def fit_to_inputs(predictor, files: list, total: int, args: argparse.Namespace) -> None:
    """What is measured on the inputs before the answers (``--adapt-bn``, then ``--estimate-prior``, which reads
    the adapted answers), and a word on stderr for a given ``--class-prior``."""
    if args.adapt_bn is not None:
        adapt_to_inputs(predictor, files, total, args)
    if args.estimate_prior:
        estimate_prior_of_inputs(predictor, files, total, args)
    elif predictor.class_prior is not None:
        report_class_prior(predictor, args.class_prior)


def load_predictor(args: argparse.Namespace):
    """The checkpoint's (or the bundled model's) Predictor, configured by the command line."""
    from phanet.inference.predictor import Predictor

    return Predictor.from_checkpoint(
        args.checkpoint,
        device=args.device,
        detector=None if args.no_detect else args.detector,
        batch_size=args.batch_size,
        align_padding=args.align_padding,
        tta=args.tta,
        class_prior=args.class_prior,
        realign=not args.no_realign,
        **({} if args.no_detect else detector_options(args)),
    )


def report_class_prior(predictor, spec: str) -> None:
    """Say on stderr that the answers are reweighted, and by which shares (``--class-prior``)."""
    shares = ", ".join(f"{name} {share:.3f}" for name, share in predictor.class_prior.items())
    print(f"phanet predict: expression answers reweighted by the class prior {spec} ({shares})", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from phanet.inference.annotated import AnnotatedWriter
    from phanet.inference.records import RecordWriter, result_record
    from phanet.inference.sources import count_inputs, expand_paths, iter_files

    apply_threads(args)
    if args.every < 1 or args.batch_size < 1:
        raise ValueError("--every and --batch-size must be at least 1")
    check_adapt_bn_flags(args)
    check_prior_flags(args)
    try:
        predictor = load_predictor(args)
    except ImportError as err:
        print(f"phanet predict: error: {err}", file=sys.stderr)
        return 1
    files = expand_paths(args.paths)
    total = count_inputs(files, args.every)
    if total == 0:
        raise FileNotFoundError(f"no images or videos found under {' '.join(args.paths)}")

    fit_to_inputs(predictor, files, total, args)

    stream = open(args.output, "w", newline="", encoding="utf-8") if args.output else sys.stdout
    annotated = AnnotatedWriter(args.save_annotated, every=args.every) if args.save_annotated else None
    counts: Counter[str] = Counter()
    faces = realigned = retried = 0
    failures: list[str] = []
    try:
        writer = RecordWriter(stream, args.format, predictor.label_space, predictor.num_scales)
        results = predictor.predict_items(
            iter_files(files, args.every),
            images_per_step=args.batch_size,
            return_attention=annotated is not None,
        )
        progress = tqdm(total=total, unit="img", desc="predict", file=sys.stderr,
                        disable=True if args.no_progress else None)
        with progress:
            for result in results:
                writer.write(result_record(result))
                counts[result.status] += 1
                faces += len(result.faces)
                realigned += sum(face.realigned for face in result.faces)
                retried += sum(face.retried for face in result.faces)
                where = result.item.file if result.item.frame is None else f"{result.item.file}#{result.item.frame}"
                if result.error is not None:
                    failures.append(f"{where}: {result.error}")
                elif annotated is not None:
                    try:
                        annotated.write(result)
                    except Exception as err:  # an output problem must not stop the run either
                        failures.append(f"{where}: cannot write annotated output: {err}")
                progress.update(1)
    finally:
        if annotated is not None:
            annotated.close()
        if stream is not sys.stdout:
            stream.close()

    done = sum(counts.values())
    notes = [f"{realigned} of them turned and cut again" if realigned else "",
             f"{retried} found by the looser detection passes" if retried else ""]
    print(
        f"phanet predict: {done} inputs: {counts['ok']} with faces ({faces} faces"
        f"{''.join(f', {note}' for note in notes if note)}), "
        f"{counts['no_face']} without a face, {counts['error']} failed",
        file=sys.stderr,
    )
    if failures:
        print(f"failed ({len(failures)}):", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
    if counts["error"] == done or (args.strict and failures):
        return 1
    return 0
