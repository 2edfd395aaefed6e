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
