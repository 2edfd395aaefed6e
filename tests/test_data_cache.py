"""The crop cache: decoded once, same samples and order, picklable readers, invalidated by a changed dataset."""

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from phanet.data import DatasetIndex, FaceDataset, LabelSpace, Sample, load_rgb
from phanet.data.base import crop_box
from phanet.data.cache import build_cache, decode_crop, load_cached, prepare_cached


def make_index(root: Path, count: int = 5, box=None) -> DatasetIndex:
    samples = []
    for i in range(count):
        path = root / f"img{i}.jpg"
        image = np.zeros((80, 60, 3), np.uint8)
        image[:, :, 0] = 40 * i  # each picture its own red level
        image[20:60, 10:50, 1] = 200  # a green square: the "face"
        Image.fromarray(image).save(path, quality=95)
        samples.append(Sample(image=str(path), expression=i % 2, item_id=f"img{i}.jpg", box=box))
    return DatasetIndex(samples, LabelSpace(("neutral", "happy")), name="toy")


def test_cache_holds_resized_crops_and_reads_back_the_same_order(tmp_path):
    index = make_index(tmp_path, box=(10, 20, 50, 60))
    path = build_cache(index, size=16, cache_dir=tmp_path / "cache", workers=2, progress=False)
    cached = load_cached(index, tmp_path / "cache")
    assert [s.item_id for s in cached.samples] == [s.item_id for s in index.samples]
    assert all(s.box is None for s in cached.samples)
    for i, sample in enumerate(cached.samples):
        crop = sample.image()
        assert crop.shape == (16, 16, 3) and crop.dtype == np.uint8
        assert abs(int(crop[8, 8, 0]) - 40 * i) <= 6 and crop[8, 8, 1] > 180  # inside the green face box
    assert path.name.startswith("toy-16px-")


def test_reduced_scale_jpeg_decoding_matches_full_decoding(tmp_path):
    rng = np.random.default_rng(0)
    coarse = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
    path = tmp_path / "large.jpg"
    coarse.resize((640, 480), Image.BICUBIC).save(path, quality=95)  # a smooth photo-like 640x480
    sample = Sample(image=str(path), expression=0, item_id="large.jpg", box=(100, 80, 420, 400))
    reference = np.asarray(Image.fromarray(crop_box(load_rgb(path), sample.box)).resize((32, 32), Image.BILINEAR))
    cached = decode_crop(sample, 32)
    assert cached.shape == reference.shape == (32, 32, 3)
    # DCT scaling and PIL's bilinear reduction low-pass slightly differently: a few grey levels apart
    assert np.abs(cached.astype(int) - reference.astype(int)).mean() < 5


def test_readers_are_picklable_for_dataloader_workers(tmp_path):
    index = make_index(tmp_path)
    cached = prepare_cached(index, 8, tmp_path / "cache", progress=False)
    reader = pickle.loads(pickle.dumps(cached.samples[3].image))
    assert np.array_equal(reader(), cached.samples[3].image())
    batch = FaceDataset(cached.samples, cached.label_space)[3]
    assert batch["image"].shape == (3, 8, 8)


def test_a_changed_dataset_gets_a_new_cache_and_a_stale_one_is_not_used(tmp_path):
    index = make_index(tmp_path)
    first = build_cache(index, 8, tmp_path / "cache", progress=False)
    assert build_cache(index, 8, tmp_path / "cache", progress=False) == first  # reused
    smaller = DatasetIndex(index.samples[:4], index.label_space, name="toy")
    with pytest.raises(FileNotFoundError, match="no cache of these 4 toy samples"):
        load_cached(smaller, tmp_path / "cache")
    assert build_cache(smaller, 8, tmp_path / "cache", progress=False) != first
    with pytest.raises(ValueError, match="built for other samples"):
        load_cached(smaller, first)


def test_a_corrupt_image_is_recorded_and_skipped_with_a_warning_at_load_time(tmp_path):
    index = make_index(tmp_path)
    Path(index.samples[2].image).write_bytes(b"\xff\xd8\xff not a jpeg")
    cached = prepare_cached(index, 8, tmp_path / "cache", progress=False)
    dataset = FaceDataset(cached.samples, cached.label_space)
    with pytest.warns(UserWarning, match="img2.jpg could not be decoded when the cache was built"):
        assert dataset[2] is None
    assert dataset[1] is not None


def test_in_memory_images_are_cached_too(tmp_path):
    grey = np.full((48, 48, 3), 77, np.uint8)
    index = DatasetIndex([Sample(image=grey, expression=0, item_id="row0")], LabelSpace(("neutral",)), name="mem")
    cached = prepare_cached(index, 12, tmp_path, progress=False)
    assert cached.samples[0].image().shape == (12, 12, 3) and cached.samples[0].image()[0, 0, 0] == 77
