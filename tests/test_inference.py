"""Predictor API, robust input decoding, and `phanet predict` on folders and videos.

Checkpoints are random-init models at 64x64 (offline, fast): these tests check the plumbing
(detection -> alignment -> batched model -> records), not accuracy. Face photos: scikit-image's
astronaut (NASA, public domain) and one London sample photo when ../shared is present (Face
Research Lab London Set, DeBruine & Jones 2017, doi:10.6084/m9.figshare.5047666.v5, CC BY 4.0).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("facenet_pytorch")
cv2 = pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")

import phanet  # noqa: E402
from phanet.cli import main  # noqa: E402
from phanet.data.base import SEVEN_EXPRESSIONS, LabelSpace, PoseBin  # noqa: E402
from phanet.inference import Predictor, iter_inputs, to_rgb_array  # noqa: E402
from tests.conftest import SHARED_DATA  # noqa: E402

LONDON = SHARED_DATA / "london-sample"
POSES = tuple(PoseBin(f"yaw{yaw:+d}", float(yaw), 0.0) for yaw in (-90, -45, 0, 45, 90))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A full PhaNet and a baseline (no pose branch, no attention) checkpoint, random init, 64x64."""
    root = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    full = phanet.create_model("phanet_r18", label_space=LabelSpace(SEVEN_EXPRESSIONS, POSES), input_size=64)
    phanet.save_checkpoint(root / "phanet", full)
    baseline = phanet.create_model("baseline_r18", label_space=LabelSpace(SEVEN_EXPRESSIONS), input_size=64)
    phanet.save_checkpoint(root / "baseline", baseline)
    return {"phanet": root / "phanet", "baseline": root / "baseline"}


@pytest.fixture(scope="module")
def predictor(checkpoints) -> Predictor:
    return Predictor.from_checkpoint(checkpoints["phanet"], device="cpu")


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()


@pytest.fixture(scope="module")
def astronaut_box(predictor, astronaut) -> np.ndarray:
    faces = predictor.predict(astronaut)
    assert len(faces) == 1
    return np.array(faces[0].box)


# --- Python API ---------------------------------------------------------------------------------


def test_predictor_reports_box_expression_pose_and_scale_weights_for_each_face(predictor, astronaut):
    (face,) = predictor.predict(astronaut)
    assert face.expression in SEVEN_EXPRESSIONS
    assert set(face.probabilities) == set(SEVEN_EXPRESSIONS)
    assert sum(face.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert face.probabilities[face.expression] == max(face.probabilities.values())
    assert face.pose in {p.name for p in POSES} and face.yaw == dict((p.name, p.yaw) for p in POSES)[face.pose]
    assert sum(face.pose_probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert len(face.scale_weights) == 3 and sum(face.scale_weights) == pytest.approx(1.0, abs=1e-4)
    assert 0.9 < face.score <= 1.0
    record = face.to_json()
    assert json.loads(json.dumps(record)) == record


def test_predictor_accepts_paths_pil_images_and_arrays_alike(predictor, astronaut, tmp_path):
    path = tmp_path / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    from_array = predictor.predict(astronaut)[0]
    for image in (path, str(path), Image.open(path)):
        face = predictor.predict(image)[0]
        assert face.probabilities == from_array.probabilities and face.box == from_array.box


def test_predict_batch_classifies_faces_of_several_images_together_with_the_same_results(predictor, astronaut):
    blank = np.zeros((200, 300, 3), np.uint8)
    shifted = np.roll(astronaut, 30, axis=0)
    batched = predictor.predict_batch([astronaut, blank, shifted])
    assert [len(faces) for faces in batched] == [1, 0, 1]
    single = predictor.predict(shifted)[0]
    # equal up to float noise: MTCNN's R- and O-nets see one crop per candidate in a batch of another
    # size, and the landmarks found on the detection copy are mapped back (x2.1 for this image)
    for name, p in single.probabilities.items():
        assert batched[2][0].probabilities[name] == pytest.approx(p, abs=1e-4)


def test_without_detection_the_whole_image_is_the_face(checkpoints, astronaut):
    predictor = Predictor.from_checkpoint(checkpoints["phanet"], device="cpu", detector=None)
    crop = astronaut[60:180, 170:280]
    (face,) = predictor.predict(crop)
    assert face.box == (0.0, 0.0, 110.0, 120.0) and face.score is None


def test_a_baseline_model_without_pose_branch_predicts_expressions_only(checkpoints, astronaut):
    predictor = Predictor.from_checkpoint(checkpoints["baseline"], device="cpu")
    (face,) = predictor.predict(astronaut, return_attention=True)
    assert face.expression in SEVEN_EXPRESSIONS
    assert face.pose is None and face.yaw is None and face.pose_probabilities is None
    assert face.scale_weights is None and face.attention is None


def test_attention_is_returned_on_the_crop_when_asked(predictor, astronaut):
    (face,) = predictor.predict(astronaut, return_attention=True)
    assert face.attention.shape == (64, 64) and face.crop.shape == (64, 64, 3)
    assert 0.0 <= face.attention.min() and face.attention.max() <= 1.0 + 1e-6


# --- robust input -------------------------------------------------------------------------------


def save_with_exif_rotation(image: np.ndarray, path: Path) -> None:
    """Store ``image`` rotated a quarter turn, with the EXIF tag (Orientation=6) that undoes it."""
    stored = Image.fromarray(image).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, exif=exif, quality=95)


@pytest.fixture(scope="module")
def odd_inputs(tmp_path_factory, astronaut) -> Path:
    """One file per robust-input case, named after it."""
    root = tmp_path_factory.mktemp("odd")
    gray = (astronaut.astype(np.float64) @ [0.299, 0.587, 0.114]).astype(np.uint8)
    Image.fromarray(gray).save(root / "grayscale.png")
    Image.fromarray(np.dstack([astronaut, np.full(gray.shape, 255, np.uint8)])).save(root / "rgba.png")
    Image.fromarray(astronaut).convert("P", palette=Image.Palette.ADAPTIVE).save(root / "palette.png")
    Image.fromarray(gray.astype(np.uint16) * 257).save(root / "gray16.png")
    cv2.imwrite(str(root / "rgb16.png"), (astronaut[..., ::-1].astype(np.uint16) * 257))
    save_with_exif_rotation(astronaut[:, 56:456], root / "exif-rotated.jpg")
    Image.fromarray(astronaut).resize((3000, 3000), Image.Resampling.BILINEAR).save(root / "huge.jpg", quality=85)
    Image.fromarray(np.full((300, 400, 3), 180, np.uint8)).save(root / "no-face.png")
    Image.fromarray(astronaut).save(root / "truncated.jpg", quality=90)
    data = (root / "truncated.jpg").read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "not-an-image.jpg").write_text("this is text, not a JPEG\n")
    (root / "notes.txt").write_text("ignored: not an image extension\n")
    return root


@pytest.mark.parametrize("name", ["grayscale.png", "rgba.png", "palette.png", "gray16.png", "rgb16.png"])
def test_unusual_image_modes_decode_to_rgb_and_the_face_is_found(predictor, odd_inputs, astronaut_box, name):
    (item,) = iter_inputs([odd_inputs / name])
    assert item.error is None and item.image.shape == (512, 512, 3) and item.image.dtype == np.uint8
    faces = predictor.predict(item.image)
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].box, astronaut_box, atol=8)


def test_exif_rotation_is_honoured(predictor, odd_inputs, astronaut_box):
    (item,) = iter_inputs([odd_inputs / "exif-rotated.jpg"])
    assert item.image.shape == (512, 400, 3), "upright again after EXIF transpose"
    (face,) = predictor.predict(item.image)
    np.testing.assert_allclose(face.box, astronaut_box - [56, 0, 56, 0], atol=8)


def test_huge_images_are_detected_on_a_downscaled_copy_and_reported_in_full_resolution(
    predictor, odd_inputs, astronaut_box
):
    (face,) = predictor.predict(odd_inputs / "huge.jpg")
    np.testing.assert_allclose(face.box, astronaut_box * 3000 / 512, rtol=0.05, atol=25)


def test_bad_files_become_error_items_instead_of_exceptions(odd_inputs, tmp_path):
    items = {Path(i.file).name: i for i in iter_inputs([odd_inputs / "truncated.jpg",
                                                         odd_inputs / "not-an-image.jpg",
                                                         tmp_path / "missing.png"])}
    assert "truncated" in items["truncated.jpg"].error
    assert "cannot identify image" in items["not-an-image.jpg"].error
    assert "no such file" in items["missing.png"].error
    assert all(item.image is None for item in items.values())


def test_arrays_of_any_common_layout_become_rgb_uint8():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert to_rgb_array(gray).shape == (3, 4, 3)
    assert to_rgb_array(np.full((3, 4, 4), 7, np.uint8)).shape == (3, 4, 3)
    assert to_rgb_array(np.full((2, 2, 3), 65535, np.uint16)).max() == 255
    assert to_rgb_array(np.full((2, 2, 3), 0.5)).max() == 127
    with pytest.raises(ValueError, match="shape"):
        to_rgb_array(np.zeros((2, 2, 5), np.uint8))


# --- `phanet predict` ---------------------------------------------------------------------------


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_on_a_folder_reports_every_file_and_lists_failures_at_the_end(
    checkpoints, odd_inputs, capsys, tmp_path
):
    annotated = tmp_path / "annotated"
    code, out, err = run_cli(
        ["predict", str(odd_inputs), "--checkpoint", str(checkpoints["phanet"]), "--no-progress",
         "--save-annotated", str(annotated)],
        capsys,
    )
    assert code == 0
    records = {Path(r["file"]).name: r for r in map(json.loads, out.splitlines())}
    assert "notes.txt" not in records
    assert len(records) == 10
    for name in ("grayscale.png", "rgba.png", "palette.png", "gray16.png", "rgb16.png", "exif-rotated.jpg",
                 "huge.jpg"):
        assert records[name]["status"] == "ok" and len(records[name]["faces"]) == 1, name
    assert records["no-face.png"] == {"file": str(odd_inputs / "no-face.png"), "frame": None,
                                      "status": "no_face", "error": None, "faces": []}
    for name in ("truncated.jpg", "not-an-image.jpg"):
        assert records[name]["status"] == "error" and records[name]["error"]
        assert name in err
    assert "failed (2)" in err
    written = sorted(p.name for p in (annotated / odd_inputs.name).iterdir())
    assert written == sorted(n for n, r in records.items() if r["status"] != "error")
    drawn = np.asarray(Image.open(annotated / odd_inputs.name / "rgba.png"))
    assert drawn.shape == (512, 512, 3) and np.any(drawn != np.asarray(Image.open(odd_inputs / "rgba.png"))[..., :3])


def test_predict_writes_csv_with_one_row_per_face_and_per_faceless_file(checkpoints, odd_inputs, capsys, tmp_path):
    out_file = tmp_path / "out.csv"
    inputs = [odd_inputs / "grayscale.png", odd_inputs / "no-face.png", odd_inputs / "not-an-image.jpg"]
    code, out, _ = run_cli(
        ["predict", *map(str, inputs), "--checkpoint", str(checkpoints["phanet"]), "--format", "csv",
         "--output", str(out_file), "--no-progress"],
        capsys,
    )
    assert code == 0 and out == ""
    rows = list(csv.DictReader(io.StringIO(out_file.read_text())))
    assert [r["status"] for r in rows] == ["ok", "no_face", "error"]
    assert rows[0]["expression"] in SEVEN_EXPRESSIONS and float(rows[0]["p_" + rows[0]["expression"]]) > 0
    assert rows[0]["pose"] and rows[0]["scale_weight_2"] and rows[0]["pose_p_yaw+0"]
    assert rows[0]["realigned"] == "False"  # the checkpoint has no profile re-alignment table
    assert rows[0]["retried"] in ("False", "True")
    assert rows[1]["expression"] == "" and rows[2]["error"].startswith("cannot read image")


def test_predict_exits_nonzero_when_every_input_fails_or_any_fails_under_strict(
    checkpoints, odd_inputs, capsys
):
    ckpt = str(checkpoints["phanet"])
    code, _, err = run_cli(["predict", str(odd_inputs / "not-an-image.jpg"), "--checkpoint", ckpt,
                            "--no-progress"], capsys)
    assert code == 1 and "failed (1)" in err
    mixed = [str(odd_inputs / "no-face.png"), str(odd_inputs / "truncated.jpg")]
    assert run_cli(["predict", *mixed, "--checkpoint", ckpt, "--no-progress"], capsys)[0] == 0
    assert run_cli(["predict", *mixed, "--checkpoint", ckpt, "--no-progress", "--strict"], capsys)[0] == 1


def test_predict_on_london_sample_photos_finds_one_face_each(checkpoints, capsys):
    if not LONDON.is_dir():
        pytest.skip(f"{LONDON} is absent (the shared test data lives in ../shared next to the repository)")
    code, out, _ = run_cli(["predict", str(LONDON / "smiling"), "--checkpoint", str(checkpoints["baseline"]),
                            "--no-progress"], capsys)
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(records) == 10
    assert all(r["status"] == "ok" and len(r["faces"]) == 1 and r["faces"][0]["pose"] is None for r in records)


@pytest.fixture(scope="module")
def short_video(tmp_path_factory, astronaut) -> Path:
    """Six 320x320 frames: the astronaut drifting right (frames 0-4), then an empty frame (5)."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    face = cv2.resize(astronaut[:400, 56:456, ::-1], (320, 320))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (320, 320))
    assert writer.isOpened()
    for i in range(5):
        writer.write(np.ascontiguousarray(np.roll(face, 8 * i, axis=1)))
    writer.write(np.zeros_like(face))
    writer.release()
    return path


def test_predict_on_a_video_gives_one_record_per_frame_and_an_annotated_video(
    checkpoints, short_video, capsys, tmp_path
):
    annotated = tmp_path / "annotated"
    code, out, _ = run_cli(["predict", str(short_video), "--checkpoint", str(checkpoints["phanet"]),
                            "--no-progress", "--save-annotated", str(annotated)], capsys)
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [r["frame"] for r in records] == [0, 1, 2, 3, 4, 5]
    assert [r["status"] for r in records] == ["ok"] * 5 + ["no_face"]
    x0 = [r["faces"][0]["box"][0] for r in records[:5]]
    assert all(b > a for a, b in zip(x0, x0[1:])), f"the face drifts right: {x0}"
    capture = cv2.VideoCapture(str(annotated / "clip.annotated.mp4"))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    assert len(frames) == 6 and frames[0].shape == (320, 320, 3)


def test_predict_every_nth_frame_skips_the_others(checkpoints, short_video, capsys):
    code, out, _ = run_cli(["predict", str(short_video), "--checkpoint", str(checkpoints["baseline"]),
                            "--every", "2", "--no-progress"], capsys)
    assert code == 0 and [json.loads(line)["frame"] for line in out.splitlines()] == [0, 2, 4]


def test_predict_on_an_unreadable_video_reports_an_error(checkpoints, tmp_path, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    code, out, err = run_cli(["predict", str(bad), "--checkpoint", str(checkpoints["phanet"]),
                              "--no-progress"], capsys)
    (record,) = map(json.loads, out.splitlines())
    assert code == 1 and record["status"] == "error" and record["frame"] is None and "broken.mp4" in err
