"""Face detection (MTCNN and the detector interface) and alignment onto the model's crop.

Real photos: the London sample of ../shared/data (Face Research Lab London Set, DeBruine & Jones
2017, doi:10.6084/m9.figshare.5047666.v5, CC BY 4.0; downscaled to 512x512) and scikit-image's
astronaut (Eileen Collins, NASA, public domain).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("facenet_pytorch")
pytest.importorskip("cv2")

from phanet.data.base import load_rgb  # noqa: E402
from phanet.inference.align import align_face, estimate_similarity, template_points  # noqa: E402
from phanet.inference.detect import (  # noqa: E402
    DetectedFace,
    FaceDetector,
    create_detector,
    list_detectors,
    register_detector,
)
from tests.conftest import SHARED_DATA  # noqa: E402

LONDON = SHARED_DATA / "london-sample"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def mtcnn():
    return create_detector("mtcnn", device="cpu")


@pytest.fixture(scope="module")
def astronaut():
    skimage_data = pytest.importorskip("skimage.data")
    return skimage_data.astronaut()


def london_photos() -> list[Path]:
    if not LONDON.is_dir():
        pytest.skip(f"{LONDON} is absent (the shared test data lives in ../shared next to the repository)")
    photos = sorted(LONDON.glob("*/*.jpg"))
    assert len(photos) == 20, f"expected the 20 London sample photos, found {len(photos)}"
    return photos


def test_mtcnn_finds_exactly_one_face_in_each_london_sample_photo(mtcnn):
    for path in london_photos():
        image = load_rgb(path)
        faces = mtcnn.detect(image)
        assert len(faces) == 1, f"{path.name}: {len(faces)} faces"
        face = faces[0]
        x0, y0, x1, y1 = face.box
        assert face.score > 0.95
        assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]
        assert face.landmarks.shape == (5, 2)
        # Eyes above nose above mouth, left eye left of right eye, all inside the box.
        left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
        assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
        assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
        assert np.all((face.landmarks >= [x0, y0]) & (face.landmarks <= [x1, y1]))


def test_derived_face_size_finds_the_same_london_faces_as_a_20_pixel_search_on_a_small_copy(mtcnn):
    assert mtcnn.min_face_size is None  # the default derives the smallest face from each image
    assert mtcnn.detection_factor((512, 512)) == pytest.approx(240 / 512) and mtcnn.smallest_face((240, 240)) == 20
    exhaustive = create_detector("mtcnn", device="cpu", min_face_size=20)
    assert exhaustive.detection_factor((512, 512)) == 1.0
    for path in london_photos()[:6]:
        image = load_rgb(path)
        derived, full = mtcnn.detect(image), exhaustive.detect(image)
        assert len(derived) == len(full) == 1, path.name
        width = full[0].box[2] - full[0].box[0]
        assert np.abs(derived[0].landmarks - full[0].landmarks).max() < 0.05 * width, path.name


def test_faces_below_a_twelfth_of_the_image_need_an_explicit_min_face_size(mtcnn, astronaut):
    from PIL import Image

    canvas = np.full((1024, 1024, 3), 128, np.uint8)
    canvas[400:528, 400:528] = np.asarray(Image.fromarray(astronaut).resize((128, 128)))  # a ~23-pixel face
    assert mtcnn.detect(canvas) == []
    small = create_detector("mtcnn", device="cpu", min_face_size=16).detect(canvas)
    assert len(small) == 1 and 400 < small[0].box[0] < small[0].box[2] < 528


def test_mtcnn_finds_the_astronauts_face(mtcnn, astronaut):
    faces = mtcnn.detect(astronaut)
    assert len(faces) == 1
    x0, y0, x1, y1 = faces[0].box
    # Her face is in the upper middle of the 512x512 photo, about 90 pixels wide.
    assert 150 < x0 < x1 < 300 and 40 < y0 < y1 < 200 and 60 < x1 - x0 < 130


def test_mtcnn_finds_no_face_in_blank_or_noise_images(mtcnn):
    rng = np.random.default_rng(0)
    assert mtcnn.detect(np.zeros((240, 320, 3), np.uint8)) == []
    assert mtcnn.detect(np.full((240, 320, 3), 200, np.uint8)) == []
    assert mtcnn.detect(rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)) == []


def test_images_too_small_to_hold_a_face_give_no_face_rather_than_an_error(mtcnn):
    for shape in [(1, 1, 3), (12, 12, 3), (13, 40, 3), (1, 3000, 3)]:
        assert mtcnn.detect(np.zeros(shape, np.uint8)) == []


def test_detect_batch_gives_the_same_faces_as_one_image_at_a_time(mtcnn, astronaut):
    shifted = np.roll(astronaut, 40, axis=1)
    small = astronaut[:300, 100:400].copy()
    batch = mtcnn.detect_batch([astronaut, shifted, small])
    singles = [mtcnn.detect(image) for image in (astronaut, shifted, small)]
    for got, want in zip(batch, singles):
        assert len(got) == len(want) == 1
        np.testing.assert_allclose(got[0].box, want[0].box, atol=1.0)
    np.testing.assert_allclose(batch[1][0].box[[0, 2]], batch[0][0].box[[0, 2]] + 40, atol=6.0)


class RecordingDetector(FaceDetector):
    """A fake backend that reports one face at a fixed place of whatever image it is given."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.seen_shapes: list[tuple[int, ...]] = []

    def detect_scaled(self, images):
        self.seen_shapes.extend(image.shape for image in images)
        results = []
        for image in images:
            h, w = image.shape[:2]
            box = np.array([0.25 * w, 0.25 * h, 0.75 * w, 0.75 * h])
            results.append([DetectedFace(box, 0.99), DetectedFace(box / 2, 0.5)])
        return results


def test_huge_images_are_detected_on_a_downscaled_copy_and_mapped_back():
    detector = RecordingDetector(max_side=500, min_score=0.9)
    image = np.zeros((3000, 2000, 3), np.uint8)
    faces = detector.detect(image)
    assert detector.seen_shapes == [(500, 333, 3)]
    assert len(faces) == 1, "the low-score face is dropped"
    np.testing.assert_allclose(faces[0].box, [500, 750, 1500, 2250], rtol=0.01)


class RetryingDetector(FaceDetector):
    """A fake backend whose first pass finds a confident face only in wide images, and whose second pass
    finds one everywhere at score 0.8 (at a different place, so the two can be told apart)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.retried_shapes: list[tuple[int, ...]] = []

    def detect_scaled(self, images):
        return [[DetectedFace(np.array([0.0, 0.0, 10.0, 10.0]), 0.95 if image.shape[1] > image.shape[0] else 0.85)]
                for image in images]

    def detect_scaled_again(self, images):
        self.retried_shapes.extend(image.shape for image in images)
        return [[DetectedFace(np.array([20.0, 20.0, 40.0, 40.0]), 0.8, np.full((5, 2), 30.0)),
                 DetectedFace(np.array([0.0, 0.0, 5.0, 5.0]), 0.6)] for _ in images]


def test_the_second_pass_runs_only_on_images_without_a_face_and_its_faces_are_marked():
    wide, tall, huge_tall = (np.zeros(shape, np.uint8) for shape in [(100, 200, 3), (200, 100, 3), (2000, 1000, 3)])
    detector = RetryingDetector(max_side=1000, min_score=0.9, retry_min_score=0.7)
    found = detector.detect_batch([wide, tall, huge_tall])
    assert detector.retried_shapes == [(200, 100, 3), (1000, 500, 3)], "the second pass sees only the images missed"
    assert [len(faces) for faces in found] == [1, 1, 1], "faces under retry_min_score are dropped"
    assert not found[0][0].retried and found[0][0].score == 0.95
    assert found[1][0].retried and found[1][0].score == 0.8
    np.testing.assert_allclose(found[1][0].box, [20, 20, 40, 40])
    np.testing.assert_allclose(found[2][0].box, [40, 40, 80, 80])  # mapped back from the downscaled copy
    np.testing.assert_allclose(found[2][0].landmarks, np.full((5, 2), 60.0))

    off = RetryingDetector(min_score=0.9)  # retry_min_score None: no second pass
    assert off.detect_batch([wide, tall])[1] == [] and off.retried_shapes == []
    with pytest.raises(ValueError, match="retry_min_score"):
        RetryingDetector(retry_min_score=1.5)


def turned_render(subject: int, yaw: float):
    """A synthetic face of a training identity of the bundled recipe, turned ``yaw`` degrees, on a 288-px canvas
    (as benchmarks/photo_path.py draws them), and its five exact landmarks."""
    from phanet.inference.realign import CANVAS, CANVAS_PADDING
    from phanet.synth.render import RenderSettings, render_capture

    randomize = ("age", "blends", "brows", "clutter", "glasses", "lips", "shading", "skin", "subtle", "teeth")
    settings = RenderSettings(CANVAS, True, CANVAS_PADDING, "lsq5", randomize)
    return render_capture(7, subject, 0, yaw, 0.0, settings, return_landmarks=True)


def assert_found_where_its_landmarks_are(face, landmarks):
    assert face.retried and face.score >= 0.7
    x0, y0, x1, y1 = face.box
    assert x0 < landmarks[:, 0].mean() < x1 and y0 < landmarks[:, 1].mean() < y1


def test_mtcnn_retry_finds_a_turned_face_its_first_pass_misses():
    """At 75 degrees: the first pass finds nothing, the looser second pass finds the face."""
    image, landmarks = turned_render(0, 75.0)
    assert create_detector("mtcnn", device="cpu", retry_thresholds=None).detect(image) == []
    (face,) = create_detector("mtcnn", device="cpu").detect(image)
    assert_found_where_its_landmarks_are(face, landmarks)
    with pytest.raises(ValueError, match="retry_thresholds"):
        create_detector("mtcnn", device="cpu", retry_thresholds=(0.5, 0.5))


def test_mtcnn_finds_a_profile_on_a_stretched_copy_where_both_passes_miss_it():
    """At 90 degrees (another identity): neither pass finds the face; on a copy 1.3x wider the second does (an
    option: it also finds false faces in textures)."""
    from phanet.inference.detect import RETRY_STRETCH

    image, landmarks = turned_render(1, 90.0)
    assert create_detector("mtcnn", device="cpu").detect(image) == []
    (face,) = create_detector("mtcnn", device="cpu", retry_stretch=RETRY_STRETCH).detect(image)
    assert_found_where_its_landmarks_are(face, landmarks)
    with pytest.raises(ValueError, match="retry_stretch"):
        create_detector("mtcnn", device="cpu", retry_stretch=0.8)


def test_a_face_found_on_a_stretched_copy_maps_back_to_the_original():
    face = DetectedFace(np.array([13.0, 4.0, 26.0, 10.0]), 0.9, np.array([[13.0, 5.0]] * 5), retried=True)
    back = face.narrowed(1.3)
    np.testing.assert_allclose(back.box, [10, 4, 20, 10])
    np.testing.assert_allclose(back.landmarks, [[10, 5]] * 5)
    assert back.retried and back.score == 0.9


def test_detectors_register_by_name_and_unknown_names_fail_clearly():
    assert "mtcnn" in list_detectors()
    register_detector("recording-test")(RecordingDetector)
    assert isinstance(create_detector("recording-test"), RecordingDetector)
    with pytest.raises(ValueError, match="already registered"):
        register_detector("recording-test")(RecordingDetector)
    with pytest.raises(KeyError, match="unknown face detector"):
        create_detector("no-such-detector")


def test_detector_rejects_images_that_are_not_rgb_uint8(mtcnn):
    with pytest.raises(ValueError, match=r"\[H, W, 3\] uint8"):
        mtcnn.detect(np.zeros((64, 64), np.uint8))


def test_similarity_estimate_recovers_a_known_rotation_scale_and_shift():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -5.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ (scale * rotation).T + shift
    matrix = estimate_similarity(src, dst)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-9)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)


def test_alignment_maps_landmarks_that_are_a_similar_copy_of_the_template_exactly_onto_it():
    template = template_points(64, 0.1)
    angle = 0.4
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = template @ (3.0 * rotation).T + [200.0, 80.0]
    image = np.zeros((600, 600, 3), np.uint8)
    _, matrix = align_face(image, 64, landmarks, padding=0.1)
    np.testing.assert_allclose(np.c_[landmarks, np.ones(5)] @ matrix.T, template, atol=1e-9)


@pytest.mark.parametrize("fit", ["lsq5", "eye_mouth"])
def test_alignment_puts_the_detected_landmarks_on_the_template(mtcnn, astronaut, fit):
    face = mtcnn.detect(astronaut)[0]
    crop, matrix = align_face(astronaut, 64, face.landmarks, face.box, padding=0.1, fit=fit)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    mapped = np.c_[face.landmarks, np.ones(5)] @ matrix.T
    template = template_points(64, 0.1)
    # A similarity cannot fit 5 points exactly (her smile is narrower than the template's mouth):
    # least squares puts the eyes within 1.5 px of theirs on a 64 px crop, all five within 3 px on
    # average; the eye_mouth fit puts the middle between eyes and mouth exactly on the template's
    # and the eyes within 2 px (measured 1.50 and 1.49).
    distances = np.linalg.norm(mapped - template, axis=1)
    assert distances[:2].max() < (1.5 if fit == "lsq5" else 2.0) and distances.mean() < 3.0
    if fit == "eye_mouth":
        centre = lambda p: (p[:2].mean(0) + p[3:].mean(0)) / 2  # noqa: E731
        np.testing.assert_allclose(centre(mapped), centre(template), atol=1e-9)
    # The crop is the face: detecting again finds it filling the crop.
    again = create_detector("mtcnn", device="cpu", min_score=0.5).detect(
        align_face(astronaut, 160, face.landmarks, padding=0.1)[0]
    )
    assert len(again) == 1 and again[0].box[2] - again[0].box[0] > 60


def test_alignment_of_a_huge_image_matches_alignment_at_normal_size(mtcnn, astronaut):
    from PIL import Image

    huge = np.asarray(Image.fromarray(astronaut).resize((3072, 3072), Image.Resampling.BICUBIC))
    face = mtcnn.detect(astronaut)[0]
    crop, _ = align_face(astronaut, 64, face.landmarks)
    crop_huge, matrix = align_face(huge, 64, face.landmarks * 6.0)
    assert np.sqrt(abs(np.linalg.det(matrix[:, :2]))) < 0.5, "the face is strongly reduced"
    assert np.abs(crop.astype(int) - crop_huge.astype(int)).mean() < 12


def test_faces_without_landmarks_are_cropped_square_around_their_box(astronaut):
    crop, matrix = align_face(astronaut, 32, box=np.array([100.0, 100.0, 200.0, 150.0]))
    assert crop.shape == (32, 32, 3)
    centre = matrix @ np.array([150.0, 125.0, 1.0])
    np.testing.assert_allclose(centre, [16, 16], atol=1e-9)
