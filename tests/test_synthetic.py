"""Built-in synthetic faces: determinism, shapes, labels, splits, pose geometry, the `phanet synth` CLI."""

import csv
import json
import pickle
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from phanet.cli import main
from phanet.data import SEVEN_EXPRESSIONS, FaceDataset, LabelSpace, load_dataset
from phanet.data.datasets.synthetic import POSE_PRESETS, SyntheticFaces, parse_poses, pose_bins, synthetic_index
from phanet.synth import (
    RenderSettings,
    Scene,
    View,
    prototype_aus,
    render_face,
    render_scene,
    sample_aus,
    sample_identity,
)
from phanet.synth.expressions import AU_INDEX, NUM_AUS
from phanet.synth.geometry import GAP_LO, GAP_UP, N_ROWS, N_THETA, build_mesh

SIZE = 64


def test_same_seed_and_index_render_identical_images():
    a = render_face(3, 5, 2, 45.0, 0.0, SIZE, variant=1)
    b = render_face(3, 5, 2, 45.0, 0.0, SIZE, variant=1)
    assert np.array_equal(a, b)


def test_render_face_returns_uint8_rgb_of_the_requested_size():
    for size in (48, SIZE):
        image = render_face(0, 0, 1, 0.0, 0.0, size)
        assert image.shape == (size, size, 3) and image.dtype == np.uint8
        assert image.std() > 10  # a face, not a blank frame


def test_seed_subject_expression_and_variant_each_change_the_image():
    base = render_face(0, 0, 1, 0.0, 0.0, SIZE)
    for other in (render_face(1, 0, 1, 0.0, 0.0, SIZE), render_face(0, 1, 1, 0.0, 0.0, SIZE),
                  render_face(0, 0, 3, 0.0, 0.0, SIZE), render_face(0, 0, 1, 0.0, 0.0, SIZE, variant=1)):
        assert np.abs(base.astype(int) - other).mean() > 2


def test_changing_yaw_or_pitch_changes_the_image():
    front = render_face(0, 2, 0, 0.0, 0.0, SIZE, jitter=False)
    turned = render_face(0, 2, 0, 30.0, 0.0, SIZE, jitter=False)
    raised = render_face(0, 2, 0, 0.0, 20.0, SIZE, jitter=False)
    assert np.abs(front.astype(int) - turned).mean() > 5
    assert np.abs(front.astype(int) - raised).mean() > 5


def _symmetric_neutral(yaw: float) -> np.ndarray:
    ident = sample_identity(0, 4)
    from dataclasses import replace

    ident = replace(ident, asymmetry=0.0, parting=0.0)
    scene = Scene(light=(0.0, 0.4, 0.9), background=((0.0, 0.8, 0.0), (0.0, 0.6, 0.0)))  # green screen
    return render_scene(ident, np.zeros((NUM_AUS, 2)), View(yaw=yaw), scene, SIZE)


@pytest.mark.parametrize("yaw", [30.0, 90.0])
def test_yaw_and_minus_yaw_of_a_symmetric_neutral_face_are_mirror_images(yaw):
    left, right = _symmetric_neutral(yaw), _symmetric_neutral(-yaw)
    mirrored = right[:, ::-1].astype(int)
    assert np.abs(left.astype(int) - mirrored).mean() < 1.0
    assert np.abs(left.astype(int) - right).mean() > 5  # and the two poses do differ


def test_positive_yaw_turns_the_nose_towards_the_image_right():
    # in profile at yaw +90 the back of the head fills the left of the frame, the face looks right
    image = _symmetric_neutral(90.0).astype(int)
    head = ~((image[..., 1] > 120) & (image[..., 0] < 60) & (image[..., 2] < 60))  # not the green screen
    quarter = SIZE // 4
    assert head[:, :quarter].mean() > head[:, -quarter:].mean() + 0.2


def test_the_far_eye_is_hidden_in_profile():
    # the sclera is the brightest, least saturated paint; in profile only one eye's worth remains
    def sclera_pixels(image):
        im = image.astype(int)
        return int(((im.min(2) > 170) & (im.max(2) - im.min(2) < 40)).sum())

    frontal, profile = sclera_pixels(_symmetric_neutral(0.0)), sclera_pixels(_symmetric_neutral(90.0))
    assert frontal > 0 and profile < 0.75 * frontal


def test_pose_presets_have_the_documented_sizes_and_names():
    sizes = {"kdef5": 5, "bu3dfe35": 35, "multipie7": 7, "multipie13": 13}
    assert {k: len(v) for k, v in POSE_PRESETS.items()} == sizes
    assert [p.name for p in pose_bins("kdef5")] == ["yaw-90", "yaw-45", "yaw+0", "yaw+45", "yaw+90"]
    names = [p.name for p in pose_bins("bu3dfe35")]
    assert "yaw-45_pitch-30" in names and "yaw+45_pitch+30" in names and len(set(names)) == 35


def test_custom_pose_lists_parse_and_bad_ones_are_rejected():
    assert parse_poses("-30:10, 0:0,30") == [(-30.0, 10.0), (0.0, 0.0), (30.0, 0.0)]
    assert parse_poses([(15, 0), (-15, 0)]) == [(15.0, 0.0), (-15.0, 0.0)]
    for bad in ("kdef7", "10:20:30", "0,0", "200:0", ""):
        with pytest.raises(ValueError):
            parse_poses(bad)


def test_flipping_a_synthetic_pose_maps_it_to_the_opposite_yaw():
    space = LabelSpace(tuple(SEVEN_EXPRESSIONS), pose_bins("kdef5"))
    assert space.mirror_pose_index() == [4, 3, 2, 1, 0]


def test_every_subject_has_every_expression_and_pose_per_cell_times():
    index = synthetic_index(3, poses="multipie7", render=RenderSettings(SIZE), per_cell=2)
    assert len(index.samples) == 3 * 7 * 7 * 2
    cells = Counter((s.subject, s.expression, s.pose) for s in index.samples)
    assert set(cells.values()) == {2} and len(cells) == 3 * 7 * 7
    assert Counter(s.expression for s in index.samples) == {e: 3 * 7 * 2 for e in range(7)}
    assert len({s.item_id for s in index.samples}) == len(index.samples)
    assert index.label_space.expressions == tuple(SEVEN_EXPRESSIONS)


def test_disjoint_subject_ranges_give_disjoint_subjects():
    train = synthetic_index(range(0, 4), render=RenderSettings(SIZE))
    test = synthetic_index(range(4, 6), render=RenderSettings(SIZE))
    assert not {s.subject for s in train.samples} & {s.subject for s in test.samples}
    split = synthetic_index(6, render=RenderSettings(SIZE), splits={"train": 4, "val": 1, "test": 1})
    by_split = {name: {s.subject for s in split.samples if s.split == name} for name in ("train", "val", "test")}
    assert [len(v) for v in by_split.values()] == [4, 1, 1]
    assert not (by_split["train"] & by_split["test"]) and split.default_protocol == "official"
    with pytest.raises(ValueError):
        synthetic_index(6, splits={"train": 4})


def test_samples_render_through_the_face_dataset_and_survive_pickling():
    index = synthetic_index([7], poses="0:0,45:0", render=RenderSettings(SIZE))
    dataset = FaceDataset(index.samples, index.label_space)
    item = dataset[3]
    assert item["image"].shape == (3, SIZE, SIZE) and item["image"].dtype == torch.float32
    assert int(item["expression"]) == index.samples[3].expression and int(item["pose"]) == index.samples[3].pose
    recipe = pickle.loads(pickle.dumps(index.samples[3].image))
    assert np.array_equal(recipe(), index.samples[3].image())
    faces = SyntheticFaces([7], poses="0:0,45:0", size=SIZE)
    assert len(faces) == len(index.samples) and torch.equal(faces[3]["image"], item["image"])


def test_synthetic_is_a_registered_dataset_without_a_root():
    index = load_dataset("synthetic", None, subjects=2, poses="kdef5", size=SIZE)
    assert index.name == "synthetic" and len(index.samples) == 2 * 7 * 5
    with pytest.raises(ValueError, match="no root"):
        load_dataset("synthetic", "/some/folder")


def test_expression_prototypes_follow_emfacs():
    def active(name):
        return {n for n, i in AU_INDEX.items() if prototype_aus(name)[i].max() > 0}

    assert {6, 12} <= active("happy")
    assert {1, 4, 15} <= active("sad")
    assert {1, 2, 5, 26} <= active("surprise")
    assert {1, 2, 4, 5, 20} <= active("fear")
    assert 9 in active("disgust") and {4, 7, 23} <= active("anger")
    assert not active("neutral")


def test_random_instances_of_a_class_differ_but_stay_close_to_the_prototype():
    rng = np.random.default_rng(0)
    # the prototype's spread alone: the subtle and blend randomisations are tested on their own below
    draws = [sample_aus(rng, SEVEN_EXPRESSIONS.index("surprise"), subtle=False, blends=False) for _ in range(20)]
    assert len({d.tobytes() for d in draws}) == 20
    for d in draws:
        assert d.shape == (NUM_AUS, 2) and d.min() >= 0 and d.max() <= 1
        assert d[AU_INDEX[2]].min() > 0.4 and d[AU_INDEX[12]].max() < 0.2


def test_the_mouth_opens_for_surprise_and_stays_closed_for_neutral():
    ident = sample_identity(0, 1)

    def opening(aus):
        grid = build_mesh(ident, aus).positions[: N_ROWS * N_THETA].reshape(N_ROWS, N_THETA, 3)
        return float((grid[GAP_UP, :, 1] - grid[GAP_LO, :, 1]).max())

    assert opening(prototype_aus("neutral")) < 1e-6
    assert opening(prototype_aus("surprise")) > 0.8


def test_phanet_synth_writes_images_labels_labelspace_and_preview(tmp_path):
    out = tmp_path / "synth"
    code = main(["synth", "--out", str(out), "--subjects", "2", "--poses=-45:0,0:0,45:0", "--size", "48",
                 "--preview", "--splits", "train:1,test:1"])
    assert code == 0
    with open(out / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["image", "expression", "pose", "subject", "yaw", "pitch", "split", "intensity"]
    assert len(rows) == 2 * 7 * 3
    assert {r["pose"] for r in rows} == {"yaw-45", "yaw+0", "yaw+45"}
    assert {r["split"] for r in rows} == {"train", "test"}
    assert all((out / r["image"]).is_file() for r in rows)
    space = LabelSpace.from_json(json.loads((out / "labelspace.json").read_text()))
    assert space.expressions == tuple(SEVEN_EXPRESSIONS) and [p.yaw for p in space.poses] == [-45, 0, 45]
    assert (out / "preview.png").is_file()
    assert main(["synth", "--out", str(out), "--subjects", "1"]) == 1  # refuses to overwrite
    settings = json.loads((out / "synth_config.json").read_text())
    assert settings["randomize"] == ["blends", "lips", "subtle"] and settings["crop"]["padding"] == 0.1


def test_phanet_synth_randomize_and_camera_framing_flags_reach_the_renderer(tmp_path):
    out = tmp_path / "plain"
    assert main(["synth", "--out", str(out), "--subjects", "1", "--poses=0:0", "--size", "48",
                 "--randomize", "none", "--camera-framing"]) == 0
    settings = json.loads((out / "synth_config.json").read_text())
    assert settings["randomize"] == [] and settings["crop"] is None
    with open(out / "labels.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["expression"] == "happy")
    written = np.asarray(Image.open(out / row["image"]).convert("RGB"))
    expected = render_face(0, int(row["subject"].removeprefix("synth")), 1, 0.0, 0.0, 48, variant=0,
                           align_padding=None, randomize=())
    assert np.array_equal(written, expected)
    assert main(["synth", "--out", str(tmp_path / "bad"), "--randomize", "lipz"]) == 1


def test_each_domain_randomisation_is_a_switch_and_unknown_names_are_errors():
    from phanet.synth.expressions import AU_INDEX, sample_aus
    from phanet.synth.identity import sample_identity

    full = render_face(0, 4, 1, 0.0, 0.0, SIZE)
    plain = render_face(0, 4, 1, 0.0, 0.0, SIZE, randomize=())
    assert not np.array_equal(full, plain)
    # lips: fuller and tinted, the rest of the identity untouched
    a, b = sample_identity(0, 4, lips=False), sample_identity(0, 4, lips=True)
    assert b.lip_up >= a.lip_up and b.lip_lo >= a.lip_lo and b.lip_colour != a.lip_colour
    assert (a.eye_x, a.mouth_w, a.skin) == (b.eye_x, b.mouth_w, b.skin)
    # subtle: happy's lip-corner puller reaches lower intensities than without the switch
    corner = AU_INDEX[12]
    low = min(sample_aus(np.random.default_rng(i), 1, subtle=True, blends=False)[corner].min() for i in range(200))
    high = min(sample_aus(np.random.default_rng(i), 1, subtle=False, blends=False)[corner].min() for i in range(200))
    assert low < 0.45 < high
    # blends: some surprise instances carry the brow lowerer of another expression
    lowered = [sample_aus(np.random.default_rng(i), 3, blends=True)[AU_INDEX[4]].max() for i in range(200)]
    assert max(lowered) > 0.2
    with pytest.raises(ValueError, match="lips, subtle, blends"):
        render_face(0, 4, 1, 0.0, 0.0, SIZE, randomize=("lipz",))


def test_rendering_on_several_processes_gives_the_images_of_one_process():
    from phanet.data.datasets.synthetic import PARALLEL_RENDER_MIN, render_recipes

    index = synthetic_index(range(3), "kdef5", RenderSettings(24), seed=1)  # 105 recipes
    recipes = [sample.image for sample in index.samples]
    assert len(recipes) >= PARALLEL_RENDER_MIN
    parallel = render_recipes(recipes, processes=2)
    serial = render_recipes(recipes, processes=1)
    assert len(parallel) == len(recipes)
    assert all(np.array_equal(a, b) for a, b in zip(parallel, serial))
    assert not np.array_equal(parallel[0], parallel[1])
