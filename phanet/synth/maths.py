"""Small smooth functions shared by the head geometry (:mod:`.geometry`) and the painter (:mod:`.paint`)."""

from __future__ import annotations

import numpy as np


def smoothstep(e0: float, e1: float, x):
    """0 below ``e0``, 1 above ``e1``, Hermite-smooth in between (``e0 > e1`` runs downhill)."""
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def gauss(d, s):
    """Unnormalised 1-D Gaussian bump of width ``s`` at distance ``d``."""
    return np.exp(-0.5 * (d / s) ** 2)


def gauss2(x, y, sx: float, sy: float):
    """Unnormalised axis-aligned 2-D Gaussian bump, widths ``sx`` and ``sy``."""
    return np.exp(-0.5 * ((x / sx) ** 2 + (y / sy) ** 2))


def sided(right: float, left: float, blend):
    """An action unit whose two sides differ, blended across the face: ``blend`` runs from -1 on the
    subject's right (image x < 0) to +1 on their left, e.g. ``tanh(x)``."""
    return 0.5 * (left + right) + 0.5 * (left - right) * blend


def mix_into(target: np.ndarray, idx: np.ndarray, colour, alpha) -> None:
    """``target[idx] = (1 - alpha) * target[idx] + alpha * colour`` (colour ``[3]`` or ``[n, 3]``)."""
    a = np.asarray(alpha, dtype=np.float32)[:, None]
    target[idx] += (np.asarray(colour, dtype=np.float32) - target[idx]) * a


def value_noise(points: np.ndarray, frequency: float, key: int) -> np.ndarray:
    """Smooth random values in [0, 1) at ``points [N, 3]`` (cm): trilinear value noise on a lattice
    of spacing ``1 / frequency`` cm, hashed from the lattice corners and ``key`` (deterministic)."""
    grid = np.asarray(points, dtype=np.float64) * frequency
    base = np.floor(grid)
    frac = grid - base
    t = frac * frac * (3.0 - 2.0 * frac)
    corner = base.astype(np.int64)
    out = np.zeros(len(grid))
    cx, cy, cz = corner[:, 0], corner[:, 1], corner[:, 2]
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                h = ((cx + dx) * 73856093) ^ ((cy + dy) * 19349663) ^ ((cz + dz) * 83492791)
                h = (h ^ (int(key) * 2654435761)) & 0xFFFFFFFF
                h = ((h ^ (h >> 15)) * 2246822519) & 0xFFFFFFFF
                h = ((h ^ (h >> 13)) * 3266489917) & 0xFFFFFFFF
                value = (h ^ (h >> 16)) / 4294967296.0
                wx, wy, wz = (t[:, k] if on else 1 - t[:, k] for k, on in enumerate((dx, dy, dz)))
                w = wx * wy * wz
                out += w * value
    return out.astype(np.float32)
