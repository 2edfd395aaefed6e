"""How much the crop cache speeds up an epoch of image loading on CPU, on a KDEF-sized tree.

Builds (once) a synthetic tree in KDEF's exact layout - by default 70 people x 2 sessions x 35 pictures
= 4,900 JPEGs of 562x762 at quality 94, like KDEF - with smooth, photo-like content (not noise, which
JPEG compresses and decodes unlike photos). Then times one pass over every sample through
:class:`phanet.data.FaceDataset` with a transform that resizes to the model's input and makes a
tensor: once decoding the JPEGs, once reading the cache built by :func:`phanet.data.cache.build_cache`.
Prints images/s of both, their ratio, and the one-off cost of building the cache.

    python benchmarks/data_cache_speed.py                      # KDEF size, tree in /tmp
    python benchmarks/data_cache_speed.py --people 10 --size 112 --loader-workers 2

The tree and cache live under --workdir (default /tmp/phanet_data_cache_speed), never in the repo.
"""

from __future__ import annotations

import argparse
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from phanet.data import FaceDataset, collate_skipping_none, load_dataset
from phanet.data.cache import build_cache, load_cached
from phanet.data.datasets.kdef import ANGLES, EXPRESSIONS


def synthetic_picture(seed: int, width: int, height: int) -> Image.Image:
    """A smooth random picture with a bright face-like ellipse: JPEG-compresses like a portrait."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(40, 220, (12, 9, 3), dtype=np.uint8))
    image = np.asarray(coarse.resize((width, height), Image.BICUBIC)).astype(np.int16)
    yy, xx = np.mgrid[:height, :width]
    face = ((xx - width / 2) / (0.3 * width)) ** 2 + ((yy - 0.45 * height) / (0.3 * height)) ** 2 < 1
    image[face] = (image[face] + np.array([210, 170, 150])) // 2
    image += rng.integers(-6, 7, image.shape, dtype=np.int16)  # sensor noise
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def build_tree(root: Path, people: int, width: int, height: int) -> int:
    """Write the KDEF-layout tree unless it is already complete; returns the number of pictures."""
    jobs = []
    for number in range(1, people // 2 + 1):
        for gender in ("F", "M")[: people - 2 * (number - 1)]:
            for session in ("A", "B"):
                folder = f"{session}{gender}{number:02d}"
                jobs += [root / "KDEF" / folder / f"{folder}{e}{a}.JPG" for e in EXPRESSIONS for a in ANGLES]
    missing = [p for p in jobs if not p.exists()]
    if missing:
        print(f"writing {len(missing)} synthetic {width}x{height} JPEGs under {root} ...", flush=True)

        def write(item):
            index, path = item
            path.parent.mkdir(parents=True, exist_ok=True)
            synthetic_picture(index, width, height).save(path, "JPEG", quality=94)

        with ThreadPoolExecutor() as pool:
            list(pool.map(write, enumerate(missing)))
    return len(jobs)


class ResizeToTensor:
    """What a training transform minimally does: resize to ``size x size`` and make a float tensor."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, image: np.ndarray, sample, *_):
        if image.shape[:2] != (self.size, self.size):
            image = np.asarray(Image.fromarray(image).resize((self.size, self.size), Image.BILINEAR))
        return torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div_(255), False


def time_epoch(dataset: FaceDataset, loader_workers: int, batch_size: int = 64) -> float:
    """Seconds for one pass over ``dataset`` (in this process, or through a DataLoader with workers)."""
    start = time.perf_counter()
    if loader_workers == 0:
        for i in range(len(dataset)):
            dataset[i]
    else:
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=loader_workers,
                                             collate_fn=collate_skipping_none)
        for _ in loader:
            pass
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/phanet_data_cache_speed"))
    parser.add_argument("--people", type=int, default=70, help="people (x2 sessions x35 pictures); KDEF: 70")
    parser.add_argument("--width", type=int, default=562)
    parser.add_argument("--height", type=int, default=762)
    parser.add_argument("--size", type=int, default=112, help="model input side (cache crops)")
    parser.add_argument("--cache-workers", type=int, default=None, help="threads building the cache")
    parser.add_argument("--loader-workers", type=int, default=0, help="DataLoader workers (0: in-process)")
    parser.add_argument("--keep-cache", action="store_true", help="reuse a cache from an earlier run")
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    count = build_tree(args.workdir / "tree", args.people, args.width, args.height)
    index = load_dataset("kdef", args.workdir / "tree")
    assert len(index.samples) == count, index.problems[:5]
    transform = ResizeToTensor(args.size)

    from_files = time_epoch(FaceDataset(index.samples, index.label_space, transform), args.loader_workers)

    cache_dir = args.workdir / "cache"
    if not args.keep_cache:
        shutil.rmtree(cache_dir, ignore_errors=True)
    start = time.perf_counter()
    build_cache(index, args.size, cache_dir, workers=args.cache_workers, progress=False)
    build_seconds = time.perf_counter() - start
    cached = load_cached(index, cache_dir, args.size)
    from_cache = time_epoch(FaceDataset(cached.samples, cached.label_space, transform), args.loader_workers)

    print(f"{count} pictures {args.width}x{args.height} -> {args.size}x{args.size}, "
          f"loader workers {args.loader_workers}, torch threads 1")
    print(f"  epoch from JPEG files : {from_files:7.2f} s  {count / from_files:8.0f} images/s")
    print(f"  epoch from the cache  : {from_cache:7.2f} s  {count / from_cache:8.0f} images/s")
    print(f"  speed-up              : {from_files / from_cache:7.1f} x")
    print(f"  building the cache    : {build_seconds:7.2f} s  (once; {count / build_seconds:.0f} images/s, "
          f"= {build_seconds / from_files:.2f} file epochs)")


if __name__ == "__main__":
    main()
