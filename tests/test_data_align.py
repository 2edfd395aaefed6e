"""Aligned face crops in the cache (`phanet data prepare --align`, data.align_faces): the crop contract
of phanet.crop for datasets without landmarks, with the pose-median and centred-square fallbacks.

Most tests use a fake detector that knows the landmarks of some pictures (told apart by a marker pixel)
and finds nothing in the others; one test runs the real MTCNN on two London sample photos.
"""

import json
import math

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("cv2")

from phanet.config import Config, apply_overrides  # noqa: E402
from phanet.crop import DEFAULT_PADDING, crop_spec, template_points  # noqa: E402
from phanet.data import DatasetIndex, LabelSpace, Sample  # noqa: E402
from phanet.data.base import PoseBin  # noqa: E402
from phanet.data.cache import (  # noqa: E402
    INDEX_FILE,
    build_cache,
    find_cache,
    load_cached,
    pick_landmarks,
    prepare_cached,
)
from phanet.distributed import DistInfo  # noqa: E402
from phanet.inference.detect import DetectedFace  # noqa: E402

SIZE = 64
SPEC = json.loads(json.dumps(crop_spec(DEFAULT_PADDING)))  # as the index JSON stores it
SPACE = LabelSpace(("neutral", "happy"), (PoseBin("yaw+0", 0.0), PoseBin("yaw+90", 90.0)))


class FakeDetector:
    """Returns the registered landmarks of a picture (its marker: the red value of pixel (0, 0))."""

    def __init__(self, faces: dict[int, np.ndarray]):
        self.faces = faces
        self.seen = 0

    def detect_batch(self, images):
        self.seen += len(images)
        found = []
        for image in images:
            landmarks = self.faces.get(int(image[0, 0, 0]))
            found.append([] if landmarks is None else [face_at(landmarks, 0.99)])
        return found


def face_at(landmarks, score, box=None) -> DetectedFace:
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if box is None:
        box = np.concatenate([landmarks.min(axis=0) - 10, landmarks.max(axis=0) + 10])
    return DetectedFace(np.asarray(box, dtype=np.float64), score, landmarks)


def face_points(offset, scale=80.0, angle=0.0) -> np.ndarray:
    """Five integer landmark positions: the template of side ``scale``, rotated by ``angle`` degrees."""
    points = template_points(scale, 0.0) - scale / 2
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    points = points @ np.array([[c, s], [-s, c]])
    return np.round(points + scale / 2 + np.asarray(offset, dtype=np.float64))


def dotted_image(marker: int, points=None, width=160, height=120) -> np.ndarray:
    """A dark picture with a bright 5x5 dot at each landmark and the marker in pixel (0, 0)."""
    image = np.full((height, width, 3), 20, np.uint8)
    for x, y in [] if points is None else points.astype(int):
        image[y - 2 : y + 3, x - 2 : x + 3] = 255
    image[0, 0] = (marker, 20, 20)
    return image


def assert_dots_on_template(crop: np.ndarray, padding: float = DEFAULT_PADDING) -> None:
    assert crop.shape == (SIZE, SIZE, 3)
    for x, y in np.round(template_points(SIZE, padding)).astype(int):
        assert crop[y - 1 : y + 2, x - 1 : x + 2].max() > 150, f"no landmark dot near the template point {(x, y)}"
    assert np.median(crop) < 40  # the rest stays dark: the dots are where they belong, not everywhere


def save(tmp_path, name: str, image: np.ndarray) -> str:
    path = tmp_path / name
    Image.fromarray(image).save(path)  # PNG: the marker survives exactly
    return str(path)


def striped_portrait(width=60, height=100) -> np.ndarray:
    """Red above, green in the middle square, blue below: a squashed whole image shows red and blue."""
    image = np.zeros((height, width, 3), np.uint8)
    band = (height - width) // 2
    image[:band] = (200, 0, 0)
    image[band : height - band] = (0, 200, 0)
    image[height - band :] = (0, 0, 200)
    return image


@pytest.fixture
def studio(tmp_path):
    """Pose 0: three detected pictures and one that is not; pose 1: nothing detected; one unknown pose."""
    offsets = {10: (30, 20), 20: (40, 22), 30: (52, 18)}  # median offset (40, 20)
    faces = {marker: face_points(offset, angle=8.0 * i) for i, (marker, offset) in enumerate(offsets.items())}
    samples = []
    for marker, points in faces.items():
        path = save(tmp_path, f"det{marker}.png", dotted_image(marker, points))
        samples.append(Sample(image=path, expression=0, pose=0, item_id=f"det{marker}.png"))
    # not detected, but its head sits where the median of its pose bin puts it
    median_points = np.median(np.stack([faces[m] / (160, 120) for m in faces]), axis=0) * (160, 120)
    path = save(tmp_path, "median.png", dotted_image(40, median_points))
    samples.append(Sample(image=path, expression=1, pose=0, item_id="median.png"))
    samples.append(Sample(image=save(tmp_path, "profile.png", striped_portrait()), expression=1, pose=1,
                          item_id="profile.png"))
    samples.append(Sample(image=save(tmp_path, "unknown.png", striped_portrait()), expression=0, item_id="unknown.png"))
    index = DatasetIndex(samples, SPACE, name="studio")
    return index, FakeDetector(faces)


def test_detected_faces_are_aligned_onto_the_template(studio, tmp_path):
    index, detector = studio
    cached = prepare_cached(index, SIZE, tmp_path / "cache", progress=False, align=True, detector=detector)
    assert detector.seen == len(index.samples)  # every picture went through detection once
    for sample in cached.samples[:3]:  # rotated by 0, 8 and 16 degrees and shifted: all land on the template
        assert_dots_on_template(sample.image())


def test_an_undetected_face_uses_the_median_landmarks_of_its_pose_bin(studio, tmp_path):
    index, detector = studio
    cached = prepare_cached(index, SIZE, tmp_path / "cache", progress=False, align=True, detector=detector)
    assert_dots_on_template(cached.samples[3].image())


def test_a_pose_bin_without_detections_gets_a_centred_square_not_a_stretched_image(studio, tmp_path):
    index, detector = studio
    cached = prepare_cached(index, SIZE, tmp_path / "cache", progress=False, align=True, detector=detector)
    for crop in (cached.samples[4].image(), cached.samples[5].image()):  # pose 1, and an unknown pose
        inner = crop[2:-2].astype(int)
        assert inner[..., 1].min() > 180 and inner[..., 0].max() < 20 and inner[..., 2].max() < 20  # only green
        assert crop[:, :, 1].mean() > 190  # the whole width is the picture's width (no border replicated)


def test_a_sample_box_centres_the_fallback_and_chooses_among_detected_faces(tmp_path):
    image = np.zeros((100, 200, 3), np.uint8)
    image[30:70, 130:170] = (0, 200, 0)  # the face box: green, elsewhere black
    index = DatasetIndex([Sample(image=image, expression=0, pose=0, item_id="boxed", box=(130, 30, 170, 70))],
                         SPACE, name="boxed")
    cached = prepare_cached(index, SIZE, tmp_path, progress=False, align=True, detector=FakeDetector({}))
    crop = cached.samples[0].image()
    centre = crop[SIZE // 2 - 12 : SIZE // 2 + 12, SIZE // 2 - 12 : SIZE // 2 + 12]
    assert centre[..., 1].min() > 180  # the box is in the middle of the crop, square (1.25 x its side)
    assert crop[2, :, 1].max() < 20 and crop[:, 2, 1].max() < 20  # a margin of background around it

    near, far = face_points((130, 20), scale=40), face_points((10, 20), scale=40)
    faces = [face_at(far, 0.999), face_at(near, 0.95)]
    assert np.array_equal(pick_landmarks(faces), far)  # no box: the most confident face
    assert np.array_equal(pick_landmarks(faces, (130, 30, 170, 70)), near)  # box: the face overlapping it
    assert pick_landmarks(faces[:1], (130, 30, 170, 70)) is None  # no face overlaps the box: a fallback
    assert pick_landmarks([DetectedFace(np.array([0, 0, 9, 9.0]), 0.99)]) is None  # no landmarks


def test_the_index_records_how_each_item_was_aligned_and_the_crop_spec(studio, tmp_path):
    index, detector = studio
    path = build_cache(index, SIZE, tmp_path / "cache", progress=False, align=True, detector=detector)
    meta = json.loads((path / INDEX_FILE).read_text())
    assert meta["aligned_by"] == ["detected"] * 3 + ["pose_median", "centre_square", "centre_square"]
    assert meta["align_counts"] == {"detected": 3, "pose_median": 1, "centre_square": 2}
    assert meta["crop"] == SPEC
    assert load_cached(index, tmp_path / "cache").crop == SPEC
    assert all(s.box is None for s in load_cached(index, path).samples)
    unaligned = prepare_cached(index, SIZE, tmp_path / "cache", progress=False)
    assert unaligned.crop is None  # an unaligned cache leaves crop as it was
    marked = DatasetIndex(index.samples, SPACE, name="studio", crop={"template": "other"})
    assert load_cached(marked, tmp_path / "cache", align=False).crop == {"template": "other"}


def test_aligned_and_unaligned_caches_of_the_same_data_live_apart(studio, tmp_path):
    index, detector = studio
    cache = tmp_path / "cache"
    plain = build_cache(index, SIZE, cache, progress=False)
    aligned = build_cache(index, SIZE, cache, progress=False, align=True, detector=detector)
    wider = build_cache(index, SIZE, cache, progress=False, align=True, padding=0.25, detector=detector)
    assert len({plain, aligned, wider}) == 3
    assert plain.name.startswith("studio-64px-") and "aligned-p0.1" in aligned.name and "p0.25" in wider.name
    seen = detector.seen
    assert build_cache(index, SIZE, cache, progress=False, align=True, detector=detector) == aligned  # reused
    assert detector.seen == seen
    assert find_cache(index, cache, SIZE, align=False) == plain
    assert find_cache(index, cache, SIZE, align=True, padding=0.1) == aligned
    assert load_cached(index, cache, align=True, padding=0.25).crop["padding"] == 0.25
    with pytest.raises(ValueError, match="several caches"):
        load_cached(index, cache, align=True)
    with pytest.raises(ValueError, match="holds unaligned crops"):
        load_cached(index, plain, align=True)
    with pytest.raises(FileNotFoundError, match=r"no aligned \(padding 0.3\) cache.*prepare --align"):
        load_cached(index, cache, align=True, padding=0.3)
    assert not np.array_equal(np.load(plain / "images.npy"), np.load(aligned / "images.npy"))


def kdef_detector(landmarks):
    """KDEF fixture pictures: blue = 40 x angle index, green = 30 x expression index (see make_kdef)."""

    class Detector:
        seen = 0

        def detect_batch(self, images):
            found = []
            for image in images:
                blue, green = image[1:7, 1:5, 2].mean(), image[1:7, 1:5, 1].mean()
                profile_left = blue < 20  # FL: never detected (a centred square)
                fr_neutral = blue > 140 and green < 15  # FR of the first expression: pose median
                found.append([] if profile_left or fr_neutral else [face_at(landmarks, 0.99)])
            return found

    return Detector()


def test_prepare_align_prints_the_counts_and_training_records_the_crop(tmp_path, capsys, monkeypatch):
    from phanet.cli import main
    from phanet.engine import prepare_data
    from tests.test_data_command import make_kdef

    created = []

    def create_detector(name, **kwargs):
        created.append((name, kwargs))
        return kdef_detector(template_points(10, 0.0) + (1, 3))

    monkeypatch.setattr("phanet.inference.detect.create_detector", create_detector)
    root = make_kdef(tmp_path / "kdef", folders=("AF01", "BF01", "AM02", "BM02"))
    cache = tmp_path / "cache"
    args = ["data", "prepare", "--dataset", "kdef", "--root", str(root), "--size", "16", "--cache", str(cache)]
    assert main(args + ["--align"]) == 0
    out = capsys.readouterr().out
    assert "aligned 108 by detection, 4 by the pose median, 28 by a centred square" in out
    assert "cache of 140 kdef aligned face crops (padding 0.1) (16x16)" in out
    assert created == [("mtcnn", {"device": "cpu", "retry_thresholds": None})]  # the first pass only
    assert main(args + ["--padding", "0.2"]) == 1
    assert "--padding applies to aligned crops only" in capsys.readouterr().err

    config = apply_overrides(Config(), ["data.dataset=kdef", f"data.root={root}", "data.folds=2",
                                        "model.input_size=16", "data.align_faces=true"])
    assert config.data.align_faces is True
    with pytest.raises(ValueError, match=r"align_faces=true needs a cache folder \(--cache-dir"):
        prepare_data(config, tmp_path / "run", DistInfo())
    config.data.cache_dir = str(cache)
    prepared = prepare_data(config, tmp_path / "run", DistInfo())  # reuses the cache `prepare --align` made
    assert prepared.index.crop == SPEC and len(created) == 1
    config.data.align_faces = False
    assert prepare_data(config, tmp_path / "run2", DistInfo()).index.crop is None


def test_align_faces_is_a_checked_boolean():
    assert Config().data.align_faces is False
    with pytest.raises(ValueError, match="align_faces=3 should be a bool"):
        apply_overrides(Config(), ["data.align_faces=3"])


def test_real_photos_are_detected_and_aligned_by_mtcnn(london_sample, tmp_path, one_torch_thread):
    pytest.importorskip("facenet_pytorch")
    from phanet.inference.detect import create_detector

    photos = [sorted((london_sample / folder).glob("*.jpg"))[0] for folder in ("neutral", "smiling")]
    samples = [Sample(image=str(p), expression=i, pose=0, item_id=p.name) for i, p in enumerate(photos)]
    index = DatasetIndex(samples, SPACE, name="london")
    path = build_cache(index, 112, tmp_path, progress=False, align=True)  # the default detector: MTCNN
    assert json.loads((path / INDEX_FILE).read_text())["aligned_by"] == ["detected", "detected"]
    cached = load_cached(index, tmp_path, align=True)
    mtcnn = create_detector("mtcnn", device="cpu")
    for sample, photo in zip(cached.samples, photos):
        crop = sample.image()
        assert crop.shape == (112, 112, 3) and crop.std() > 20
        faces = mtcnn.detect(crop)  # the crop's own landmarks sit on the template
        assert faces, f"no face in the aligned crop of {photo.name}"
        error = np.linalg.norm(faces[0].landmarks - template_points(112, DEFAULT_PADDING), axis=1).mean()
        assert error < 4.0, f"{photo.name}: landmarks {error:.1f} px from the template"
