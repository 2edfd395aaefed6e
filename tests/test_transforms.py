"""Augmentation presets: the ``photo`` preset's camera steps, random convolutions, determinism, flips, preset names."""

import dataclasses

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF

from phanet.config import CHOICES
from phanet.data import transforms
from phanet.data.transforms import AUGMENT_PRESETS, AugmentPreset, FaceTransform

# TF.jpeg goes through torchvision.io, whose codecs torchvision 0.29 marks deprecated on every call
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities:DeprecationWarning")

PHOTO = AUGMENT_PRESETS["photo"]
CAMERA_PROBABILITIES = ("gray_p", "blur_p", "lowres_p", "noise_p", "jpeg_p", "erase_p")


def face_like(side: int = 40, seed: int = 0) -> np.ndarray:
    """A smooth random colour picture (uint8 ``[side, side, 3]``), textured enough for blur and JPEG to show."""
    coarse = torch.from_numpy(np.random.default_rng(seed).integers(0, 255, (3, 6, 6), dtype=np.uint8))
    return TF.resize(coarse, [side, side], antialias=True).permute(1, 2, 0).numpy().copy()


def run(augment: str, seed: int, image: np.ndarray | None = None, size: int = 32):
    transform = FaceTransform(size, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), augment)
    return transform(face_like() if image is None else image, None, torch.Generator().manual_seed(seed))


def test_the_photo_preset_returns_normalised_float_images_of_the_requested_size():
    for size, image in ((32, face_like(40)), (112, face_like(90)), (24, face_like(30)[:, :20].copy())):
        for seed in range(12):
            tensor, flipped = run("photo", seed, image, size)
            assert tensor.shape == (3, size, size) and tensor.dtype == torch.float32
            assert torch.isfinite(tensor).all() and isinstance(flipped, bool)
            assert -2.0 - 1e-6 <= float(tensor.min()) and float(tensor.max()) <= 2.0 + 1e-6  # (0..1 - 0.5) / 0.25


def test_the_photo_preset_is_a_pure_function_of_the_generator_seed():
    for seed in range(8):
        first, flipped = run("photo", seed)
        again, flipped_again = run("photo", seed)
        assert torch.equal(first, again) and flipped == flipped_again
    outputs = [run("photo", seed)[0] for seed in range(8)]
    assert all(not torch.equal(outputs[i], outputs[j]) for i in range(8) for j in range(i))


def test_the_photo_preset_reports_its_horizontal_flips():
    image = np.zeros((32, 32, 3), np.uint8)
    image[:, :10] = 255  # bright on the left
    seen = set()
    for seed in range(40):
        tensor, flipped = run("photo", seed, image)
        left, right = float(tensor[:, :, :8].mean()), float(tensor[:, :, -8:].mean())
        assert (right > left) == flipped, seed
        seen.add(flipped)
    assert seen == {True, False}


@pytest.mark.parametrize("step", [
    dict(jitter=PHOTO.jitter),
    dict(hue=PHOTO.hue),
    dict(white_balance=PHOTO.white_balance),
    dict(gamma=PHOTO.gamma),
    dict(gray_p=1.0),
    dict(blur_p=1.0, blur_sigma=PHOTO.blur_sigma),
    dict(lowres_p=1.0, lowres_factor=PHOTO.lowres_factor),
    dict(noise_p=1.0, noise_std=PHOTO.noise_std),
    dict(jpeg_p=1.0, jpeg_quality=PHOTO.jpeg_quality),
    dict(erase_p=1.0),
], ids=lambda step: next(iter(step)))
def test_each_photo_step_changes_the_image_when_forced(monkeypatch, step):
    # no geometry and no other step; the step's probability, if it has one, forced to 1
    monkeypatch.setitem(AUGMENT_PRESETS, "nothing", AugmentPreset())
    monkeypatch.setitem(AUGMENT_PRESETS, "one_step", AugmentPreset(**step))
    for seed in range(3):
        plain, _ = run("nothing", seed)
        changed, flipped = run("one_step", seed)
        assert not flipped and changed.shape == plain.shape
        assert float((changed - plain).abs().max()) > 0.01, seed


def test_the_photo_preset_sets_each_camera_step_between_never_and_always():
    for name in CAMERA_PROBABILITIES:
        assert 0 < getattr(PHOTO, name) < 1, name
    assert (PHOTO.flip_p, PHOTO.rotation, PHOTO.translate, PHOTO.scale) == (0.5, 10.0, 0.05, (0.9, 1.1))


def test_the_blur_equals_torchvisions_gaussian_blur_with_a_three_sigma_kernel():
    image = torch.rand(3, 20, 27, generator=torch.Generator().manual_seed(0))
    for sigma in (0.3, 0.75, 1.2):
        radius = int(np.ceil(3 * sigma))
        expected = TF.gaussian_blur(image, [2 * radius + 1] * 2, [sigma, sigma])
        torch.testing.assert_close(transforms.gaussian_blur(image, sigma), expected, atol=1e-6, rtol=0)


def test_the_colour_matrix_keeps_greys_grey_and_is_the_identity_at_zero():
    torch.testing.assert_close(transforms.colour_matrix(0.0, (1.0, 1.0, 1.0)), torch.eye(3))
    grey = torch.full((3, 4, 4), 0.4)
    for hue in (-0.03, 0.01, 0.03):
        rotated = transforms.apply_colour_matrix(grey, transforms.colour_matrix(hue, (1.0, 1.0, 1.0)))
        torch.testing.assert_close(rotated, grey)
    tinted = transforms.apply_colour_matrix(grey, transforms.colour_matrix(0.0, (1.08, 1.0, 0.92)))
    assert tinted[0].mean() > tinted[1].mean() > tinted[2].mean()


def test_sensor_noise_uses_the_given_generator_and_keeps_a_grey_image_grey():
    grey = TF.rgb_to_grayscale(torch.rand(3, 16, 16), num_output_channels=3)
    noisy = transforms.sensor_noise(grey, 0.04, torch.Generator().manual_seed(1), monochrome=True)
    assert torch.equal(noisy[0], noisy[1]) and torch.equal(noisy[1], noisy[2]) and not torch.equal(noisy, grey)
    again = transforms.sensor_noise(grey, 0.04, torch.Generator().manual_seed(1), monochrome=True)
    assert torch.equal(noisy, again) and 0.0 <= float(noisy.min()) and float(noisy.max()) <= 1.0


def test_jpeg_and_low_resolution_keep_the_shape_and_the_value_range():
    image = torch.from_numpy(face_like(32)).permute(2, 0, 1).float().div(255.0)
    for out in (transforms.jpeg(image, 30), transforms.low_resolution(image, 0.5)):
        assert out.shape == image.shape and out.dtype == torch.float32
        assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0 and not torch.equal(out, image)


def test_random_convolution_keeps_shape_range_and_brightness_and_follows_the_generator():
    image = torch.from_numpy(face_like(32)).permute(2, 0, 1).float().div(255.0)
    outputs = []
    for seed in range(6):
        out = transforms.random_convolution(image, torch.Generator().manual_seed(seed))
        again = transforms.random_convolution(image, torch.Generator().manual_seed(seed))
        assert torch.equal(out, again) and out.shape == image.shape and out.dtype == torch.float32
        assert 0.0 <= float(out.min()) and float(out.max()) <= 1.0
        # rescaled to the input's mean and spread before the blend and the clip: brightness stays close
        assert abs(float(out.mean()) - float(image.mean())) < 0.1, seed
        outputs.append(out)
    assert all(not torch.equal(outputs[i], outputs[j]) for i in range(6) for j in range(i))
    assert any(float((out - image).abs().mean()) > 0.02 for out in outputs)


def test_random_convolution_keeps_edges_where_they_were():
    # a vertical step edge: whatever the random filter does to colour, the change stays at the step
    image = torch.zeros(3, 24, 24)
    image[:, :, 12:] = 1.0
    for seed in range(8):
        out = transforms.random_convolution(image, torch.Generator().manual_seed(seed), kernels=(3,))
        columns = out.mean(dim=(0, 1))
        jumps = (columns[1:] - columns[:-1]).abs()
        assert int(jumps.argmax()) in (10, 11, 12), seed
        assert float(jumps[:9].max()) < 1e-5 and float(jumps[14:].max()) < 1e-5, seed


def test_random_convolution_rejects_even_kernel_sizes():
    with pytest.raises(ValueError, match="odd and positive; got 4"):
        transforms.random_convolution(torch.rand(3, 8, 8), torch.Generator().manual_seed(0), kernels=(4,))


def test_the_randconv_preset_is_photo_plus_random_convolutions_and_photo_draws_none():
    randconv = AUGMENT_PRESETS["photo_randconv"]
    assert randconv == dataclasses.replace(PHOTO, randconv_p=0.5)
    assert all(AUGMENT_PRESETS[name].randconv_p == 0.0 for name in AUGMENT_PRESETS if name != "photo_randconv")
    for seed in range(6):
        tensor, _ = run("photo_randconv", seed, size=32)
        assert tensor.shape == (3, 32, 32) and torch.isfinite(tensor).all()
    # with the probability forced to 1 and nothing else, the step changes the image; grey stays grey
    only = AugmentPreset(randconv_p=1.0)
    gray_then_randconv = AugmentPreset(gray_p=1.0, randconv_p=1.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(AUGMENT_PRESETS, "nothing", AugmentPreset())
        patch.setitem(AUGMENT_PRESETS, "randconv_only", only)
        patch.setitem(AUGMENT_PRESETS, "gray_randconv", gray_then_randconv)
        for seed in range(3):
            plain, _ = run("nothing", seed)
            changed, _ = run("randconv_only", seed)
            assert float((changed - plain).abs().max()) > 0.01, seed
            grey, _ = run("gray_randconv", seed)
            assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_presets_without_camera_steps_still_unpack_as_the_old_seven_tuple():
    assert tuple(AUGMENT_PRESETS["strong"]) == (0.5, 15.0, 0.1, (0.8, 1.2), 0.4, 0.1, 0.25)
    flip_p, rotation, translate, scale, jitter, gray_p, erase_p = AUGMENT_PRESETS["photo"]
    assert (flip_p, rotation, jitter, gray_p, erase_p) == (0.5, 10.0, 0.3, 0.1, 0.1)
    for name in ("none", "light", "standard", "strong"):
        preset = AUGMENT_PRESETS[name]
        assert preset == dataclasses.replace(preset, **{p: 0.0 for p in CAMERA_PROBABILITIES[1:5]})
        assert (preset.hue, preset.white_balance, preset.gamma) == (0.0, 0.0, (1.0, 1.0))


def test_every_preset_is_a_config_choice_and_unknown_names_are_errors():
    assert set(CHOICES["train", "augment"]) == set(AUGMENT_PRESETS)
    with pytest.raises(ValueError, match="augment='phot'; expected one of .*'photo'"):
        FaceTransform(32, (0.5,) * 3, (0.25,) * 3, "phot")


def test_the_parts_preset_is_photo_plus_one_face_band_blurred_and_needs_the_crop_contract():
    from phanet.crop import face_band_rows

    assert AUGMENT_PRESETS["photo_parts"] == dataclasses.replace(PHOTO, part_blur_p=0.5)
    assert AUGMENT_PRESETS["photo_parts_light"] == dataclasses.replace(PHOTO, part_blur_p=0.25)
    blurring = ("photo_parts", "photo_parts_light")
    assert all(AUGMENT_PRESETS[name].part_blur_p == 0.0 for name in AUGMENT_PRESETS if name not in blurring)
    bands = face_band_rows(48, 0.1)
    # a picture with a sharp vertical stripe per row, so that any blurred row differs from the plain one
    picture = np.zeros((48, 48, 3), dtype=np.uint8)
    picture[:, ::3] = 255
    chosen = set()
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(AUGMENT_PRESETS, "nothing", AugmentPreset())
        patch.setitem(AUGMENT_PRESETS, "part_only", AugmentPreset(part_blur_p=1.0))
        for seed in range(12):
            generator = torch.Generator().manual_seed(seed)
            plain, _ = FaceTransform(48, (0.5,) * 3, (0.25,) * 3, "nothing", 0.1)(picture, None, generator)
            generator = torch.Generator().manual_seed(seed)
            blurred, _ = FaceTransform(48, (0.5,) * 3, (0.25,) * 3, "part_only", 0.1)(picture, None, generator)
            changed_rows = torch.nonzero((blurred - plain).abs().amax(dim=(0, 2)) > 0.01).flatten().tolist()
            band = [name for name, (first, last) in bands.items() if changed_rows == list(range(first, last))]
            assert len(band) == 1, (seed, changed_rows)  # exactly one band's rows, every one of them
            chosen.add(band[0])
        with pytest.raises(ValueError, match="no crop contract"):
            FaceTransform(48, (0.5,) * 3, (0.25,) * 3, "part_only")
    assert chosen == set(bands)  # each part gets its turn
    assert {"photo_parts", "photo_parts_light"} <= set(CHOICES[("train", "augment")])
