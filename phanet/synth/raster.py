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

_WINDOWS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 128, 256, 512, 1024, 2048, 4096)


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
    # group triangles by the window (from _WINDOWS) that holds their bounding box
    windows = np.asarray(_WINDOWS)
    kx = np.searchsorted(windows, x_hi[keep] - x_lo[keep] + 1)
    ky = np.searchsorted(windows, y_hi[keep] - y_lo[keep] + 1)
    group_key = kx * len(windows) + ky
    order = np.argsort(group_key, kind="stable")
    keep = keep[order]
    bounds = np.flatnonzero(np.diff(group_key[order])) + 1
    # in float64 relative to each triangle's first pixel centre, for exact edge tests
    x0, y0 = x_lo[keep], y_lo[keep]
    ax, bx, cx = (v[keep].astype(np.float64) - (x0 + 0.5) for v in (ax, bx, cx))
    ay, by, cy = (v[keep].astype(np.float64) - (y0 + 0.5) for v in (ay, by, cy))
    inv_area = 1.0 / ((bx - ax) * (cy - ay) - (by - ay) * (cx - ax))
    # barycentric weight of each vertex, linear in the pixel offset (dx, dy) from the window corner
    coef_x = np.stack([by - cy, cy - ay, ay - by]) * inv_area  # [3, T]
    coef_y = np.stack([cx - bx, ax - cx, bx - ax]) * inv_area
    start = np.stack([bx * cy - by * cx, cx * ay - cy * ax, ax * by - ay * bx]) * inv_area
    c32x, c32y, s32 = coef_x.astype(np.float32), coef_y.astype(np.float32), start.astype(np.float32)
    found_t, found_y, found_x = [], [], []
    for lo, hi in zip(np.concatenate([[0], bounds]), np.concatenate([bounds, [len(keep)]])):
        wx, wy = windows[kx[order[lo]]], windows[ky[order[lo]]]
        dx = np.arange(wx, dtype=np.float32)
        dy = np.arange(wy, dtype=np.float32)[:, None]
        w = s32[:, lo:hi, None, None] + c32y[:, lo:hi, None, None] * dy + c32x[:, lo:hi, None, None] * dx
        g, iy, ix = np.nonzero(np.minimum(np.minimum(w[0], w[1]), w[2]) >= 0)
        found_t.append(g + lo)
        found_y.append(iy)
        found_x.append(ix)
    t = np.concatenate(found_t)
    px = x0[t].astype(np.int64) + np.concatenate(found_x)
    py = y0[t].astype(np.int64) + np.concatenate(found_y)
    inside_image = (px < width) & (py < height)
    if not inside_image.all():
        t, px, py = t[inside_image], px[inside_image], py[inside_image]
    pix = py * width + px
    # perspective depth test on inverse depth, which is linear in screen space
    dx, dy = px - x0[t], py - y0[t]
    w = s32[:, t] + c32x[:, t] * dx.astype(np.float32) + c32y[:, t] * dy.astype(np.float32)  # [3, N]
    vert = triangles[keep[t]]
    inv_depth = (1.0 / depth).astype(np.float32)
    inv_z = w[0] * inv_depth[vert[:, 0]] + w[1] * inv_depth[vert[:, 1]] + w[2] * inv_depth[vert[:, 2]]
    # nearest surface per pixel: smallest key = largest inverse depth, ties to the first candidate
    lo, hi = inv_z.min(), inv_z.max()
    q = ((hi - inv_z) * ((2**30 - 1) / max(float(hi - lo), 1e-12))).astype(np.int64)
    key = (q << 32) | np.arange(len(t), dtype=np.int64)
    empty = np.iinfo(np.int64).max
    buf = np.full(width * height, empty, dtype=np.int64)
    np.minimum.at(buf, pix, key)
    won = buf[buf != empty] & 0xFFFFFFFF
    return Fragments(pixel=pix[won], triangle=keep[t[won]], bary=np.ascontiguousarray(w[:, won].T, dtype=np.float32))
