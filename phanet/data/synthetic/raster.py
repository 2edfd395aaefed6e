"""A vectorised numpy triangle rasteriser with a z-buffer.

Triangles are grouped by the size of their pixel bounding box; each group is tested against a
``K x K`` window of pixel centres at once with edge functions, so a mesh of tens of thousands of small
triangles rasterises in a few numpy calls. Hidden surfaces are removed per pixel: every covered
(pixel, triangle) pair gets a key ``inverse depth, candidate index`` packed into one int64, and
``np.minimum.at`` keeps the nearest one. Back-facing triangles are culled by the sign of their area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_WINDOWS = (1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 2048)


@dataclass(frozen=True)
class Fragments:
    """The visible surface: one entry per covered pixel.

    ``pixel`` ``[N]`` int64 flat index ``y * width + x``; ``triangle`` ``[N]`` index into the mesh's
    triangles; ``bary`` ``[N, 3]`` float32 barycentric weights of the triangle's vertices at the
    pixel centre.
    """

    pixel: np.ndarray
    triangle: np.ndarray
    bary: np.ndarray


def rasterize(xy: np.ndarray, depth: np.ndarray, triangles: np.ndarray, width: int, height: int) -> Fragments:
    """Rasterise ``triangles [T, 3]`` over vertices at pixel positions ``xy [V, 2]`` (x right, y down).

    ``depth [V]`` is the distance from the camera (positive). Pixel ``(i, j)`` has its centre at
    ``(i + 0.5, j + 0.5)``; a triangle covers the centres inside it or on its edges. Only triangles
    with positive area (facing the camera, see :class:`~.geometry.Mesh`) are drawn.
    """
    xy = np.asarray(xy, dtype=np.float32)
    tx, ty = xy[:, 0][triangles], xy[:, 1][triangles]  # [T, 3]
    ax, bx, cx = tx[:, 0], tx[:, 1], tx[:, 2]
    ay, by, cy = ty[:, 0], ty[:, 1], ty[:, 2]
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    x_lo = np.maximum(np.ceil(np.minimum(np.minimum(ax, bx), cx) - 0.5), 0)
    x_hi = np.minimum(np.floor(np.maximum(np.maximum(ax, bx), cx) - 0.5), width - 1)
    y_lo = np.maximum(np.ceil(np.minimum(np.minimum(ay, by), cy) - 0.5), 0)
    y_hi = np.minimum(np.floor(np.maximum(np.maximum(ay, by), cy) - 0.5), height - 1)
    keep = np.nonzero((area > 1e-9) & (x_hi >= x_lo) & (y_hi >= y_lo))[0]
    if len(keep) == 0:
        return Fragments(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.float32))
    # from here on in float64 relative to each triangle's first pixel, for exact edge tests
    x_lo, x_hi, y_lo, y_hi = x_lo[keep], x_hi[keep], y_lo[keep], y_hi[keep]
    px0, py0 = x_lo + 0.5, y_lo + 0.5
    ax, bx, cx = (v[keep].astype(np.float64) - px0 for v in (ax, bx, cx))
    ay, by, cy = (v[keep].astype(np.float64) - py0 for v in (ay, by, cy))
    inv_area = 1.0 / ((bx - ax) * (cy - ay) - (by - ay) * (cx - ax))
    # barycentric weight of each vertex, linear in the pixel offset (dx, dy) from the window corner
    coef_x = (np.stack([by - cy, cy - ay, ay - by]) * inv_area).astype(np.float32)  # [3, T]
    coef_y = (np.stack([cx - bx, ax - cx, bx - ax]) * inv_area).astype(np.float32)
    start = (np.stack([bx * cy - by * cx, cx * ay - cy * ax, ax * by - ay * bx]) * inv_area).astype(np.float32)
    windows = np.asarray(_WINDOWS)
    kx = np.searchsorted(windows, x_hi - x_lo + 1)
    ky = np.searchsorted(windows, y_hi - y_lo + 1)
    group_key = kx * len(windows) + ky
    order = np.argsort(group_key, kind="stable")
    bounds = np.flatnonzero(np.diff(group_key[order])) + 1
    tri_parts, pix_parts, w_parts = [], [], []
    for group in np.split(order, bounds):
        wx, wy = windows[kx[group[0]]], windows[ky[group[0]]]
        dx = np.arange(wx, dtype=np.float32)
        dy = np.arange(wy, dtype=np.float32)[:, None]
        w = start[:, group, None, None] + coef_y[:, group, None, None] * dy + coef_x[:, group, None, None] * dx
        inside = np.minimum(np.minimum(w[0], w[1]), w[2]) >= 0  # [G, wy, wx]
        g, iy, ix = np.nonzero(inside)
        t = group[g]
        px = x_lo[t].astype(np.int64) + ix
        py = y_lo[t].astype(np.int64) + iy
        ok = (px <= x_hi[t]) & (py <= y_hi[t])
        tri_parts.append(t[ok])
        pix_parts.append((py * width + px)[ok])
        w_parts.append(w[:, g[ok], iy[ok], ix[ok]])
    tri = np.concatenate(tri_parts)
    pix = np.concatenate(pix_parts)
    bary = np.concatenate(w_parts, axis=1)  # [3, N]
    vert = triangles[keep[tri]]
    inv_depth = (1.0 / depth).astype(np.float32)
    inv_z = bary[0] * inv_depth[vert[:, 0]] + bary[1] * inv_depth[vert[:, 1]] + bary[2] * inv_depth[vert[:, 2]]
    # nearest surface per pixel: smallest key = largest inverse depth, ties to the first candidate
    lo, hi = inv_z.min(), inv_z.max()
    q = ((hi - inv_z) * ((2**30 - 1) / max(float(hi - lo), 1e-12))).astype(np.int64)
    key = (q << 32) | np.arange(len(tri), dtype=np.int64)
    empty = np.iinfo(np.int64).max
    buf = np.full(width * height, empty, dtype=np.int64)
    np.minimum.at(buf, pix, key)
    won = buf[buf != empty] & 0xFFFFFFFF
    return Fragments(pixel=pix[won], triangle=keep[tri[won]], bary=np.ascontiguousarray(bary[:, won].T))
