"""Rendering speed of the built-in synthetic faces on ONE CPU core.

Run by hand:

    python benchmarks/synth_speed.py                     # 112 px, 300 images per scenario
    python benchmarks/synth_speed.py --size 64 --images 500

numpy/torch are pinned to one thread (environment set before numpy loads) and the process to one
core. Three access orders, each over the kdef5 poses and all seven expressions:

* ``capture``  -- subject after subject, as ``phanet synth`` writes them (each identity's neutral head
  is built once and cached);
* ``shuffled`` -- random samples of a 30-subject :class:`SyntheticFaces`, as a shuffling DataLoader
  reads them (all identities fit the per-process cache after the first pass, which is excluded);
* ``cold``     -- every image a never-seen identity (cache cleared before each image): the worst case.

Both wall-clock and process CPU time are reported; on a machine shared with other jobs, CPU time per
image is the fair single-core figure (wall time also counts time the core spent on other processes).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from phanet.data.datasets.synthetic import POSE_PRESETS, SyntheticFaces  # noqa: E402
from phanet.synth import render_face  # noqa: E402
from phanet.synth.geometry import rest_head  # noqa: E402


def _timed(fn, n: int) -> tuple[float, float]:
    """(images/s by wall clock, images/s by process CPU time) over ``n`` calls of ``fn(i)``."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, n / cpu


def run(size: int, images: int) -> dict[str, tuple[float, float]]:
    poses = POSE_PRESETS["kdef5"]
    cells = [(e, p) for e in range(7) for p in poses]

    def capture(i: int) -> None:
        subject, (expression, (yaw, pitch)) = i // len(cells), cells[i % len(cells)]
        render_face(0, subject, expression, yaw, pitch, size)

    faces = SyntheticFaces(30, poses="kdef5", size=size)
    for i in range(len(faces)):  # first pass: fills the identity cache, not timed
        if i % len(cells) == 0:
            faces[i]
    order = np.random.default_rng(0).permutation(len(faces))

    def shuffled(i: int) -> None:
        faces[int(order[i % len(order)])]

    def cold(i: int) -> None:
        rest_head.cache_clear()
        expression, (yaw, pitch) = cells[i % len(cells)]
        render_face(0, 10_000 + i, expression, yaw, pitch, size)

    render_face(0, 0, 0, 0.0, 0.0, size)  # warm-up: imports, topology caches
    return {name: _timed(fn, images) for name, fn in (("capture", capture), ("shuffled", shuffled), ("cold", cold))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=112, help="image side in pixels (default 112)")
    parser.add_argument("--images", type=int, default=300, help="images per scenario (default 300)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    print(f"synthetic faces, {args.size}x{args.size}, one core ({platform.processor() or platform.machine()}), "
          f"numpy {np.__version__}{load}")
    results = run(args.size, args.images)
    print(f"{'order':<10}{'img/s (CPU time)':>18}{'img/s (wall)':>14}{'ms/img (CPU)':>14}")
    for name, (wall, cpu) in results.items():
        print(f"{name:<10}{cpu:>18.1f}{wall:>14.1f}{1000 / cpu:>14.2f}")


if __name__ == "__main__":
    main()
