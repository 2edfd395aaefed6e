"""Inference speed of `phanet predict`: images/s for detection + alignment + PhaNet, and each stage's share.

The images are 640x640 with one face each: the London sample photos (../shared/data/london-sample,
Face Research Lab London Set, DeBruine & Jones 2017, doi:10.6084/m9.figshare.5047666.v5, CC BY 4.0)
scaled to 640, or scikit-image's astronaut when those are absent. They are processed the way
:meth:`phanet.inference.Predictor.predict_items` does it: ``--batch-size`` images per step, MTCNN
on the step's images, one similarity warp per face, then one batched model call. A random-init
model is used with ``--model``; by default the bundled model runs, as in `phanet predict`. Each
``--min-face-size`` setting is measured in the same run (ratios are what to compare on a shared CPU),
in memory stage by stage and end to end over JPEG files as `phanet predict DIR -o FILE` processes them.

    python benchmarks/predict_speed.py --threads 2 --images 64
    python benchmarks/predict_speed.py --min-face-size 0 --video 30 --every 3   # + a 30 s 720p video
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

LONDON = Path(__file__).resolve().parents[2] / "shared" / "data" / "london-sample"
SIZE = 640


def face_images(count: int) -> tuple[list[np.ndarray], str]:
    """``count`` 640x640 uint8 RGB images with one face each, and where they came from."""
    photos = sorted(LONDON.glob("*/*.jpg")) if LONDON.is_dir() else []
    if photos:
        from phanet.data.base import load_rgb

        base = [load_rgb(p) for p in photos]
        source = f"{len(photos)} London sample photos (CC BY 4.0) scaled to {SIZE}x{SIZE}"
    else:
        import skimage.data

        base = [skimage.data.astronaut()]
        source = f"scikit-image astronaut scaled to {SIZE}x{SIZE}"
    base = [np.asarray(Image.fromarray(im).resize((SIZE, SIZE), Image.Resampling.BILINEAR)) for im in base]
    return [base[i % len(base)] for i in range(count)], source


def build_predictor(args: argparse.Namespace, min_face_size: int | None):
    import phanet
    from phanet.data.base import SEVEN_EXPRESSIONS, LabelSpace, PoseBin
    from phanet.inference import Predictor, create_detector

    detector = create_detector("mtcnn", device=args.device, min_face_size=min_face_size)
    if not args.model:  # what `phanet predict` runs: --checkpoint, else the bundled model
        return Predictor.from_checkpoint(args.checkpoint, device=args.device, detector=detector,
                                         batch_size=args.batch_size)
    poses = tuple(PoseBin(f"yaw{y:+d}", float(y)) for y in (-90, -45, 0, 45, 90))
    space = LabelSpace(SEVEN_EXPRESSIONS, poses)
    model = phanet.create_model(args.model, label_space=space, input_size=args.input_size)
    meta = {"label_space": space.to_json(), **model.data_config.to_meta()}
    return Predictor(model, meta, detector, device=args.device, batch_size=args.batch_size)


def end_to_end(predictor, folder: Path, images_per_step: int) -> tuple[float, int]:
    """Seconds for `phanet predict FOLDER -o FILE` after start-up: decode, detect, align, classify, write."""
    from phanet.inference.records import RecordWriter, result_record
    from phanet.inference.sources import expand_paths, iter_files

    faces = 0
    start = time.perf_counter()
    with open(folder / "predictions.jsonl", "w", encoding="utf-8") as stream:
        writer = RecordWriter(stream, "jsonl", predictor.label_space, predictor.num_scales)
        for result in predictor.predict_items(iter_files(expand_paths([folder / "images"])), images_per_step):
            writer.write(result_record(result))
            faces += len(result.faces)
    return time.perf_counter() - start, faces


def run_pipeline(predictor, images: list[np.ndarray], step: int) -> dict[str, float]:
    """Seconds spent in each stage over all ``images``, processed ``step`` images at a time."""
    from phanet.inference.align import align_face

    seconds = {"detection": 0.0, "alignment": 0.0, "model": 0.0}
    faces_found = 0
    for start in range(0, len(images), step):
        chunk = images[start : start + step]
        t0 = time.perf_counter()
        detections = predictor.detector.detect_batch(chunk)
        t1 = time.perf_counter()
        crops = [
            align_face(image, predictor.input_size, face.landmarks, face.box, predictor.align_padding,
                       predictor.align_fit)[0]
            for image, faces in zip(chunk, detections)
            for face in faces
        ]
        t2 = time.perf_counter()
        predictor.classify(np.stack(crops) if crops else None)
        if predictor.device.type == "cuda":
            torch.cuda.synchronize()
        t3 = time.perf_counter()
        seconds["detection"] += t1 - t0
        seconds["alignment"] += t2 - t1
        seconds["model"] += t3 - t2
        faces_found += len(crops)
    seconds["faces"] = faces_found
    return seconds


def write_video(path: Path, faces: list[np.ndarray], seconds: int, fps: int = 30) -> None:
    """A 1280x720 MP4 of ``seconds``: the face photos one after another, each drifting sideways for a second."""
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (1280, 720))
    try:
        for second in range(seconds):
            face = cv2.resize(faces[second % len(faces)], (560, 560))
            for frame in range(fps):
                canvas = np.full((720, 1280, 3), 90, np.uint8)
                x = 200 + 10 * frame
                canvas[80:640, x : x + 560] = face
                writer.write(cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()


def video_seconds(predictor, path: Path, every: int, images_per_step: int) -> tuple[float, int, int]:
    """(seconds, frames processed, faces) for `phanet predict VIDEO --every N -o FILE` after start-up."""
    from phanet.inference.records import RecordWriter, result_record
    from phanet.inference.sources import expand_paths, iter_files

    frames = faces = 0
    start = time.perf_counter()
    with open(path.with_suffix(".jsonl"), "w", encoding="utf-8") as stream:
        writer = RecordWriter(stream, "jsonl", predictor.label_space, predictor.num_scales)
        for result in predictor.predict_items(iter_files(expand_paths([path]), every), images_per_step):
            writer.write(result_record(result))
            frames += 1
            faces += len(result.faces)
    return time.perf_counter() - start, frames, faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64, help="images timed (default: 64)")
    parser.add_argument("--warmup", type=int, default=8, help="images run first, not timed (default: 8)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per step / faces per model call")
    parser.add_argument("--checkpoint", default=None, help="checkpoint to run (default: the bundled model)")
    parser.add_argument("--model", default=None, help="a random-init registered model instead of a checkpoint")
    parser.add_argument("--input-size", type=int, default=112, help="input side of --model (default: 112)")
    parser.add_argument("--min-face-size", type=int, nargs="+", default=[None, 20], metavar="PX",
                        help="MTCNN smallest face(s) to compare side by side, 0 meaning the derived default "
                        "(default: 0 20)")
    parser.add_argument("--detector-layouts", nargs="+", choices=["channels_last", "nchw"], default=["channels_last"],
                        help="memory layout of MTCNN's nets: channels_last (phanet's default) and/or nchw "
                        "(facenet-pytorch's own), each timed in turn")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--video", type=int, default=0, metavar="SECONDS",
                        help="also time a 720p, 30 fps video of this length with --every (default: none)")
    parser.add_argument("--every", type=int, default=3, help="video frames: every N-th (default: 3)")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    images, source = face_images(args.images + args.warmup)
    print(f"images: {args.images} x {SIZE}x{SIZE}, {source}; device {args.device}, "
          f"torch threads {torch.get_num_threads()}, {args.batch_size} images per step")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "images").mkdir()
        for i, image in enumerate(images[args.warmup :]):
            Image.fromarray(image).save(folder / "images" / f"{i:04d}.jpg", quality=92)
        runs = [(setting, layout) for setting in args.min_face_size for layout in args.detector_layouts]
        for setting, layout in runs:
            min_face = setting or None
            predictor = build_predictor(args, min_face)
            if layout == "nchw":  # MTCNN's nets as facenet-pytorch builds them (before phanet's channels-last)
                mtcnn = predictor.detector.mtcnn
                for net in (mtcnn.pnet, mtcnn.rnet, mtcnn.onet):
                    net.to(memory_format=torch.contiguous_format)
            run_pipeline(predictor, images[: args.warmup], args.batch_size)
            seconds = run_pipeline(predictor, images[args.warmup :], args.batch_size)
            total = seconds["detection"] + seconds["alignment"] + seconds["model"]
            wall, faces = end_to_end(predictor, folder, args.batch_size)
            if min_face:
                label = f"{min_face} px"
            else:
                factor = predictor.detector.detection_factor((SIZE, SIZE))
                side = round(SIZE * factor)
                smallest = round(predictor.detector.smallest_face((side, side)) / factor)
                label = f"derived: faces from {smallest} px, detected on a {side}x{side} copy"
            print(f"\nMTCNN ({layout}) smallest face {label}; model {args.model or args.checkpoint or 'bundled'}, "
                  f"input {predictor.input_size}x{predictor.input_size}")
            print(f"  end to end (decode, detect, align, classify, write JSONL): {args.images / wall:.1f} photos/s, "
                  f"{faces} faces")
            print(f"  in-memory stages: {args.images / total:.1f} images/s ({seconds['faces']} faces)")
            for stage in ("detection", "alignment", "model"):
                print(f"    {stage:<10} {100 * seconds[stage] / total:5.1f}%  "
                      f"({1000 * seconds[stage] / args.images:.1f} ms/image)")
            if args.video:
                video = folder / "clip.mp4"
                if not video.exists():
                    write_video(video, images[args.warmup :], args.video)
                spent, frames, faces = video_seconds(predictor, video, args.every, args.batch_size)
                print(f"  video: {args.video} s of 1280x720 at 30 fps, --every {args.every}: {frames} frames, "
                      f"{faces} faces in {spent:.1f} s ({args.video / spent:.2f}x real time)")


if __name__ == "__main__":
    main()
