"""Attention overlays and drawn predictions (pure numpy/PIL/matplotlib; no detector needed)."""

from __future__ import annotations

import numpy as np
import pytest

from phanet.visualize import annotate, draw_predictions, face_label, overlay_attention, paste_attention


def test_overlay_attention_keeps_the_image_shape_and_colours_hot_and_cold_regions_differently():
    image = np.full((40, 60, 3), 128, np.uint8)
    attention = np.zeros((4, 6), np.float32)
    attention[:, 3:] = 1.0  # right half attended
    out = overlay_attention(image, attention, alpha=0.5, cmap="jet")
    assert out.shape == image.shape and out.dtype == np.uint8
    left, right = out[:, :20].reshape(-1, 3).mean(0), out[:, -20:].reshape(-1, 3).mean(0)
    assert left[2] > left[0], "cold (jet blue) on the left"
    assert right[0] > right[2], "hot (jet red) on the right"


def test_overlay_attention_leaves_pixels_outside_the_mask_untouched():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    mask = np.zeros((32, 32), np.float32)
    mask[8:24, 8:24] = 1.0
    out = overlay_attention(image, rng.random((7, 7)), mask=mask)
    np.testing.assert_array_equal(out[mask == 0], image[mask == 0])
    assert np.any(out[mask == 1] != image[mask == 1])


def test_overlay_attention_with_zero_alpha_returns_the_image():
    image = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    np.testing.assert_array_equal(overlay_attention(image, np.ones((2, 2)), alpha=0.0), image)


def test_overlay_attention_rejects_images_that_are_not_rgb_uint8():
    with pytest.raises(ValueError, match="uint8"):
        overlay_attention(np.zeros((8, 8, 3), np.float32), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\[h, w\]"):
        overlay_attention(np.zeros((8, 8, 3), np.uint8), np.zeros((2, 2, 2)))


def test_paste_attention_maps_a_crop_map_back_onto_the_image_through_the_alignment():
    # Crop of side 10 taken from image pixels x in [20, 40), y in [10, 30) at scale 0.5.
    matrix = np.array([[0.5, 0.0, -10.0], [0.0, 0.5, -5.0]])
    attention = np.ones((10, 10), np.float32)
    heat, footprint = paste_attention(attention, matrix, 64, 48)
    assert heat.shape == footprint.shape == (48, 64)
    assert footprint[20, 30] == pytest.approx(1.0) and footprint[5, 5] == 0.0 and footprint[40, 60] == 0.0
    inside = np.argwhere(footprint > 0.5)
    assert inside.min(axis=0).tolist() == [10, 20] and inside.max(axis=0).tolist() == [29, 39]


def test_draw_predictions_draws_boxes_and_labels_from_records_or_objects():
    image = np.zeros((120, 160, 3), np.uint8)
    face = {"box": [40, 40, 100, 110], "expression": "happy", "probabilities": {"happy": 0.87}, "pose": "yaw+0"}
    assert face_label(face) == "happy 0.87 | yaw+0"
    assert face_label(dict(face, retried=True, pose=None)) == "happy 0.87 | retried"
    out = draw_predictions(image, [face])
    assert out.shape == image.shape and image.max() == 0, "the input is not modified"
    assert out[40, 70].tolist() == [255, 214, 0], "box edge"
    assert out[75, 70].tolist() == [0, 0, 0], "inside the box stays untouched"
    assert np.any(out[:40] != 0), "label above the box"


def test_annotate_blends_attention_only_over_faces_that_have_it():
    image = np.full((100, 100, 3), 90, np.uint8)
    matrix = np.array([[1.0, 0.0, -20.0], [0.0, 1.0, -20.0]])  # 32 px crop at (20, 20)
    face = {"box": [20, 20, 52, 52], "expression": "sad", "probabilities": {"sad": 0.5}, "pose": None,
            "attention": np.linspace(0, 1, 32 * 32).reshape(32, 32), "matrix": matrix}
    out = annotate(image, [face])
    assert np.any(out[30:45, 30:45] != 90), "heat-map over the face"
    np.testing.assert_array_equal(out[70:, 70:], image[70:, 70:])
