"""Profile re-alignment (phanet.inference.realign): the crop correction's geometry, its table in a checkpoint's
JSON, the Predictor's second crop of turned faces, and the measuring command on renders."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

import phanet
from phanet.crop import alignment_matrix, template_points
from phanet.data.base import SEVEN_EXPRESSIONS, LabelSpace, PoseBin
from phanet.inference.detect import DetectedFace, FaceDetector
from phanet.inference.realign import Correction, Realignment, measure_corrections

pytestmark = pytest.mark.usefixtures("one_torch_thread")

POSES = tuple(PoseBin(f"yaw{yaw:+d}_pitch+0", float(yaw), 0.0) for yaw in (-90, -45, 0, 45, 90))


def similarity(angle: float, scale: float, shift) -> np.ndarray:
    a, b = scale * np.cos(np.radians(angle)), scale * np.sin(np.radians(angle))
    return np.array([[a, -b, shift[0]], [b, a, shift[1]]])


def values(correction: Correction) -> tuple[float, ...]:
    return correction.scale, correction.angle, correction.dx, correction.dy


def moved(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


FACE = template_points(120.0, 0.3) + np.array([40.0, 25.0])  # five landmarks of a face in a 200 px image


@pytest.mark.parametrize("fit", ["lsq5", "eye_mouth"])
def test_a_correction_carries_the_detectors_crop_onto_the_exact_one(fit):
    detected = moved(FACE, similarity(9.0, 1.08, (-14.0, 6.0)))  # turned, larger and shifted, as at yaw 75
    correction = Correction.between(detected, FACE, 96, 0.1, fit)
    to_3x3 = lambda m: np.vstack([m, [0.0, 0.0, 1.0]])  # noqa: E731
    corrected = correction.matrix(96) @ to_3x3(alignment_matrix(detected, 96, 0.1, fit))
    np.testing.assert_allclose(corrected[:2], alignment_matrix(FACE, 96, 0.1, fit), atol=1e-9)
    assert correction.scale == pytest.approx(1.08) and correction.angle == pytest.approx(9.0)
    # the same face in a crop of another size needs the same correction: it is stated in crop sides
    assert values(Correction.between(detected, FACE, 224, 0.1, fit)) == pytest.approx(values(correction))


def test_the_mirror_images_correction_is_the_mirrored_correction():
    width = 200.0

    def flip(points):  # a horizontal flip swaps left and right landmarks
        return (np.array([width - 1, 0.0]) + points * np.array([-1.0, 1.0]))[[1, 0, 2, 4, 3]]

    detected = moved(FACE, similarity(-12.0, 0.9, (5.0, -3.0)))
    correction = Correction.between(detected, FACE, 96, 0.1, "lsq5")
    flipped = Correction.between(flip(detected), flip(FACE), 96, 0.1, "lsq5")
    # exactly so for the angle and scale; the shifts within 0.01 crop sides, as the ArcFace template itself is
    # not quite symmetric (its eyes' midpoint sits 0.001 left of its mouth's, in crop sides)
    assert values(flipped)[:2] == pytest.approx(values(correction.mirrored())[:2], abs=1e-9)
    assert values(flipped)[2:] == pytest.approx(values(correction.mirrored())[2:], abs=0.01)


def test_the_table_round_trips_through_json_and_a_malformed_one_is_refused():
    table = Realignment("mtcnn", {"yaw+90_pitch+0": Correction(0.86, 19.9, -0.047, -0.016)},
                        {"yaw+90_pitch+0": 40}, {"faces": 88})
    again = Realignment.from_meta(json.loads(json.dumps({"realign": table.to_json()})))
    assert again.detector == "mtcnn" and again.counts == {"yaw+90_pitch+0": 40}
    assert values(again.corrections["yaw+90_pitch+0"]) == pytest.approx((0.86, 19.9, -0.047, -0.016))
    assert again.matrix("yaw+0_pitch+0", 96) is None and again.matrix("yaw+90_pitch+0", 96).shape == (3, 3)
    assert Realignment.from_meta({}) is None
    with pytest.raises(ValueError, match="realign"):
        Realignment.from_meta({"realign": {"detector": "mtcnn", "corrections": {"yaw+90": [1.0, 2.0]}}})


class ShiftedDetector(FaceDetector):
    """Finds one face per image whose landmarks are ``landmarks`` moved by ``error`` (or none, if told)."""

    registered_name = "shifted"

    def __init__(self, landmarks: np.ndarray, error: np.ndarray, missing: bool = False):
        super().__init__(max_side=4096, min_score=0.0)
        self.landmarks, self.error, self.missing = landmarks, error, missing

    def detect_scaled(self, images):
        if self.missing:
            return [[] for _ in images]
        points = moved(self.landmarks, self.error)
        box = np.array([*points.min(0) - 20, *points.max(0) + 20])
        return [[DetectedFace(box, 0.99, points)] for _ in images]


def test_measuring_pools_each_bin_with_its_mirror_and_counts_missed_faces():
    error = similarity(10.0, 1.05, (3.0, -2.0))
    image = np.zeros((200, 200, 3), np.uint8)
    samples = [(image, FACE, "yaw+90", "yaw-90"), (image, FACE, "yaw+90", "yaw-90")]
    corrections, counts, missed = measure_corrections(samples, ShiftedDetector(FACE, error), 96, 0.1, "lsq5")
    assert counts == {"yaw+90": 2, "yaw-90": 2} and missed == 0
    assert values(corrections["yaw-90"]) == pytest.approx(values(corrections["yaw+90"].mirrored()))
    # the detector's points turned by 10 degrees turn its crop's content by -10: the correction turns it back
    assert corrections["yaw+90"].angle == pytest.approx(10.0) and corrections["yaw+90"].scale == pytest.approx(1.05)
    _, counts, missed = measure_corrections(samples, ShiftedDetector(FACE, error, missing=True), 96, 0.1, "lsq5")
    assert counts == {} and missed == 2


def save_model_with_table(path, corrections: dict[str, Correction]):
    """A random PhaNet (64 px, five yaw bins, seed 0) whose JSON has a table for the detector below."""
    torch.manual_seed(0)
    model = phanet.create_model("phanet_r18", label_space=LabelSpace(SEVEN_EXPRESSIONS, POSES), input_size=64,
                                pretrained=False)
    phanet.save_checkpoint(path, model, extra={"realign": Realignment("shifted", corrections).to_json()})
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Every bin corrected, so that whatever pose a random model answers, its face is cut again."""
    folder = tmp_path_factory.mktemp("realign")
    return save_model_with_table(folder / "m", {pose.name: Correction(1.1, 12.0, 0.02, -0.01) for pose in POSES})


def predictor_for(checkpoint, detector, **kwargs):
    from phanet.inference import Predictor

    return Predictor.from_checkpoint(checkpoint, device="cpu", detector=detector, **kwargs)


IMAGE = (np.random.default_rng(0).random((200, 200, 3)) * 255).astype(np.uint8)
EXACT_DETECTOR = ShiftedDetector(FACE, similarity(0.0, 1.0, (0.0, 0.0)))


def test_the_predictor_cuts_faces_answered_as_turned_again_and_answers_on_the_second_crop(checkpoint):
    plain = predictor_for(checkpoint, EXACT_DETECTOR, realign=False)
    assert plain.realignment is None
    (first,) = plain.predict(IMAGE)
    assert not first.realigned
    realigning = predictor_for(checkpoint, EXACT_DETECTOR)
    (face,) = realigning.predict(IMAGE, return_attention=True)
    correction = realigning.realignment.matrix(first.pose, 64)
    want = (correction @ np.vstack([alignment_matrix(FACE, 64, 0.1, "lsq5"), [0, 0, 1]]))[:2]
    assert face.realigned and face.to_json()["realigned"] is True
    np.testing.assert_allclose(face.matrix, want, atol=1e-9)
    second = plain.classify(face.crop[None])  # the answers are the second crop's
    assert face.probabilities["happy"] == pytest.approx(float(second["expression"][0, 1]), abs=1e-5)
    assert face.probabilities != first.probabilities


def test_faces_answered_as_a_bin_without_a_correction_keep_their_first_crop(checkpoint, tmp_path):
    (first,) = predictor_for(checkpoint, EXACT_DETECTOR, realign=False).predict(IMAGE)
    others = {pose.name: Correction(1.1, 12.0, 0.02, -0.01) for pose in POSES if pose.name != first.pose}
    (face,) = predictor_for(save_model_with_table(tmp_path / "m", others), EXACT_DETECTOR).predict(IMAGE)
    assert not face.realigned and face.probabilities == first.probabilities
    np.testing.assert_allclose(face.matrix, alignment_matrix(FACE, 64, 0.1, "lsq5"))


def test_the_table_is_used_only_with_the_detector_it_was_measured_for(checkpoint, caplog):
    class Other(ShiftedDetector):
        registered_name = "other"

    with caplog.at_level(logging.WARNING, logger="phanet.inference.predictor"):
        predictor = predictor_for(checkpoint, Other(FACE, similarity(0.0, 1.0, (0.0, 0.0))))
    assert predictor.realignment is None and "measured for the shifted detector" in caplog.text
    assert predictor_for(checkpoint, None).realignment is None  # --no-detect: whole images, no landmarks


def test_the_measuring_command_refuses_a_checkpoint_not_trained_on_synthetic_faces(checkpoint, capsys):
    from phanet.inference.realign import main

    with pytest.raises(SystemExit):
        main([str(checkpoint), "--no-progress"])
    assert "not on synthetic faces" in capsys.readouterr().err


def test_the_measuring_command_writes_a_table_for_the_turned_bins_of_a_synthetic_recipe(tmp_path, capsys):
    """End to end on renders: one training identity of a small synthetic recipe, MTCNN, --write."""
    pytest.importorskip("facenet_pytorch")
    from phanet.data.datasets.synthetic import synthetic_label_space
    from phanet.inference.realign import main

    model = phanet.create_model("baseline_mbv2", label_space=synthetic_label_space("kdef5"), input_size=32,
                                pretrained=False)
    data = {"dataset": "synthetic", "options": {"subjects": 3, "splits": {"train": 1, "val": 1, "test": 1},
                                                "poses": "kdef5", "size": 32}}
    phanet.save_checkpoint(tmp_path / "m", model, config={"data": data})
    assert main([str(tmp_path / "m"), "--subjects", "1", "--no-progress", "--write"]) == 0
    table = Realignment.from_meta(json.loads((tmp_path / "m.json").read_text()))
    turned = {pose.name for pose in synthetic_label_space("kdef5").poses if abs(pose.yaw) >= 45}
    assert table.detector == "mtcnn" and set(table.corrections) <= turned
    assert table.measured_on["faces"] == 4 * 7  # four turned poses, seven expressions
    assert sum(table.counts.values()) == 2 * (28 - table.measured_on["missed"])  # each face also as its mirror
    assert "wrote the table" in capsys.readouterr().out


class SecondPassDetector(ShiftedDetector):
    """Misses every face in its first pass and finds it in its second (as MTCNN does many profiles)."""

    def __init__(self):
        super().__init__(FACE, similarity(0.0, 1.0, (0.0, 0.0)), missing=True)
        self.retry_min_score = 0.5

    def detect_scaled_again(self, images):
        self.missing = False
        try:
            return self.detect_scaled(images)
        finally:
            self.missing = True


def test_faces_of_the_detectors_second_pass_are_marked_and_realigned_like_any_other(checkpoint):
    (face,) = predictor_for(checkpoint, SecondPassDetector()).predict(IMAGE)
    (first,) = predictor_for(checkpoint, EXACT_DETECTOR).predict(IMAGE)
    assert face.retried and face.to_json()["retried"] is True and not first.retried
    assert face.realigned and face.probabilities == first.probabilities
