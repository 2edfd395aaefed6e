"""The face-crop contract: synthetic renders, checkpoints and inference share one aligned crop."""

from __future__ import annotations

import numpy as np
import pytest

from phanet.crop import (
    FITS,
    alignment_matrix,
    apply_similarity,
    crop_spec,
    fit_from_meta,
    padding_from_meta,
    template_points,
)
from phanet.data.base import SEVEN_EXPRESSIONS
from phanet.data.datasets.synthetic import synthetic_index
from phanet.synth import RenderSettings
from phanet.synth.render import render_face

HAPPY, NEUTRAL = SEVEN_EXPRESSIONS.index("happy"), SEVEN_EXPRESSIONS.index("neutral")


def test_rendered_landmarks_lie_on_eyes_nose_and_mouth_in_image_order():
    _, marks = render_face(0, 3, NEUTRAL, 0.0, 0.0, 112, jitter=False, return_landmarks=True)
    left_eye, right_eye, nose, mouth_left, mouth_right = marks
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    assert abs(left_eye[1] - right_eye[1]) < 2.0  # level eyes on a frontal, unrolled view


def test_a_smile_moves_the_rendered_mouth_corners_outwards_and_up():
    _, calm = render_face(0, 3, NEUTRAL, 0.0, 0.0, 112, jitter=False, return_landmarks=True)
    _, smile = render_face(0, 3, HAPPY, 0.0, 0.0, 112, jitter=False, return_landmarks=True)
    width = lambda m: m[4, 0] - m[3, 0]  # noqa: E731
    assert width(smile) > width(calm) + 1.0
    assert smile[3:, 1].mean() < calm[3:, 1].mean()  # image y grows downwards


@pytest.mark.parametrize("fit", FITS)
@pytest.mark.parametrize("yaw, pitch", [(0.0, 0.0), (45.0, 0.0), (-90.0, 0.0), (30.0, 20.0)])
def test_an_aligned_render_is_the_similarity_of_the_camera_render_onto_the_template(yaw, pitch, fit):
    # same face, same jitter: aligning in the camera equals aligning the landmarks afterwards
    _, free = render_face(1, 4, HAPPY, yaw, pitch, 96, variant=2, return_landmarks=True)
    _, aligned = render_face(1, 4, HAPPY, yaw, pitch, 96, variant=2, align_padding=0.1, return_landmarks=True,
                             align_fit=fit)
    expected = apply_similarity(alignment_matrix(free, 96, 0.1, fit), free)
    np.testing.assert_allclose(aligned, expected, atol=1e-2)


@pytest.mark.parametrize("fit", FITS)
def test_both_fits_recover_a_known_rotation_scale_and_shift_exactly(fit):
    template = template_points(112, 0.1)
    angle, scale = 0.4, 2.5
    turn = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    photo = template @ turn.T + [30.0, -12.0]  # the template as a rotated, scaled, shifted face
    np.testing.assert_allclose(apply_similarity(alignment_matrix(photo, 112, 0.1, fit), photo), template, atol=1e-9)
    with pytest.raises(ValueError, match="unknown crop fit"):
        alignment_matrix(photo, 112, 0.1, "procrustes")


def test_the_eye_mouth_fit_keeps_a_profile_at_the_size_of_a_frontal_face_where_least_squares_shrinks_it():
    def eye_to_mouth(marks):
        return float(np.hypot(*(marks[3:].mean(0) - marks[:2].mean(0))))

    template = eye_to_mouth(template_points(96, 0.1))
    sizes = {}
    for fit in FITS:
        _, marks = render_face(0, 3, NEUTRAL, 90.0, 0.0, 96, jitter=False, align_padding=0.1,
                               return_landmarks=True, align_fit=fit)
        sizes[fit] = eye_to_mouth(marks) / template
        centre = (marks[:2].mean(0) + marks[3:].mean(0)) / 2
        if fit == "eye_mouth":  # the face's centre lands on the template's, mid-crop
            np.testing.assert_allclose(centre, (template_points(96, 0.1)[:2].mean(0)
                                                + template_points(96, 0.1)[3:].mean(0)) / 2, atol=1e-6)
    assert sizes["eye_mouth"] == pytest.approx(1.0, abs=1e-6)
    assert sizes["lsq5"] < 0.85  # measured 0.71: the profile shrinks towards a corner


def test_aligned_frontal_renders_put_their_landmarks_near_the_template_whatever_the_jitter():
    template = template_points(64, 0.1)
    for variant in range(4):
        _, marks = render_face(0, 7, variant % 7, 0.0, 0.0, 64, variant=variant, align_padding=0.1,
                               return_landmarks=True)
        assert np.abs(marks - template).max() < 0.08 * 64


def test_synthetic_index_images_are_aligned_crops_and_the_index_says_so():
    index = synthetic_index(1, poses="0:0", render=RenderSettings(48, align_padding=0.2))
    assert index.crop == crop_spec(0.2)
    assert index.samples[0].image.render.align_padding == 0.2
    assert synthetic_index(1, poses="0:0", render=RenderSettings(48, align_padding=None)).crop is None


def test_checkpoint_crop_padding_is_read_from_the_crop_spec_with_older_fallbacks():
    assert padding_from_meta({"crop": crop_spec(0.25)}) == 0.25
    assert padding_from_meta({"align_padding": 0.3}) == 0.3
    assert padding_from_meta({}) == 0.1
    with pytest.raises(ValueError, match="template"):
        padding_from_meta({"crop": {"template": "dlib68", "padding": 0.1}})
    # the fit: recorded since it exists; crops recorded before were fitted by least squares
    assert fit_from_meta({"crop": crop_spec(0.1)}) == "eye_mouth" == crop_spec(0.1)["fit"]
    assert fit_from_meta({"crop": crop_spec(0.1, "lsq5")}) == "lsq5"
    assert fit_from_meta({"crop": {"template": "arcface5", "padding": 0.1}}) == "lsq5" == fit_from_meta({})
    with pytest.raises(ValueError, match="unknown crop fit"):
        crop_spec(0.1, "dlib")


def test_evaluation_names_a_crop_mismatch_between_training_and_evaluated_images():
    from phanet.engine import crop_mismatch

    assert crop_mismatch(crop_spec(0.1), crop_spec(0.1)) is None
    assert crop_mismatch(None, None) is None
    assert "not aligned" in crop_mismatch(crop_spec(0.1), None)
    assert "as their dataset ships them" in crop_mismatch(None, crop_spec(0.1))
    assert "padding 0.1" in crop_mismatch(crop_spec(0.1), crop_spec(0.3))
    assert "fit lsq5" in crop_mismatch(crop_spec(0.1, "lsq5"), crop_spec(0.1))
