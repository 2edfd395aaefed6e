"""Procedural skin, eyes, brows, lips, mouth interior, wrinkles and hair, painted per pixel.

The rasteriser gives every visible pixel the *rest coordinates* of the surface point it sees (where
that point sits on the neutral base head, in cm, see :mod:`.geometry`). Features are closed-form
shapes in those coordinates, placed at the identity's landmarks; expression-dependent parts (lid
openings, lip thinning, forehead, glabella, nose, crow's-feet and nasolabial lines, chin dimpling)
take the action-unit intensities. Because the paint is attached to the rest coordinates it moves and
stretches with the skin, and it is as sharp as the pixel grid whatever the mesh resolution.

The output is an albedo (sRGB, 0..1) plus per-pixel specular strength and ambient occlusion for the
shading in :mod:`.render`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phanet.data.synthetic.expressions import AU_INDEX
from phanet.data.synthetic.geometry import (
    ATTR_GAP,
    ATTR_OPEN,
    KIND_EAR,
    KIND_MOUTH,
    KIND_SKIN,
    hair_boundary,
)
from phanet.data.synthetic.identity import Identity


@dataclass
class Surface:
    """Per-pixel material: ``albedo [N, 3]``, ``specular [N]`` strength, ``occlusion [N]`` (ambient scale)."""

    albedo: np.ndarray
    specular: np.ndarray
    occlusion: np.ndarray


def _ss(e0, e1, x):
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _g(d, s):
    return np.exp(-0.5 * (d / s) ** 2)


def _mix(target: np.ndarray, idx: np.ndarray, colour, alpha: np.ndarray) -> None:
    """``target[idx] = (1 - alpha) * target[idx] + alpha * colour`` (colour ``[3]`` or ``[n, 3]``)."""
    a = alpha[:, None]
    target[idx] = target[idx] * (1.0 - a) + np.asarray(colour) * a


class _Sided:
    """AU intensities per pixel, blending the subject's right (x<0) and left (x>0) smoothly."""

    def __init__(self, aus: np.ndarray, x: np.ndarray):
        self.aus, self.x = aus, x

    def __call__(self, au: int, idx: np.ndarray | None = None) -> np.ndarray | float:
        right, left = self.aus[AU_INDEX[au]]
        if right == 0.0 and left == 0.0:
            return 0.0
        x = self.x if idx is None else self.x[idx]
        return 0.5 * (left + right) + 0.5 * (left - right) * np.tanh(x)


def paint(ident: Identity, aus: np.ndarray, gaze: tuple[float, float], kind: np.ndarray, attrs: np.ndarray) -> Surface:
    """Materials for ``N`` pixels given their triangle ``kind [N]`` and interpolated ``attrs [N, A]``."""
    n = len(kind)
    albedo = np.empty((n, 3), dtype=np.float32)
    specular = np.full(n, 0.1, dtype=np.float32)
    occlusion = np.ones(n, dtype=np.float32)
    skin = np.nonzero(kind == KIND_SKIN)[0]
    _paint_skin(ident, aus, gaze, attrs[skin], albedo, specular, skin)
    ear = np.nonzero(kind == KIND_EAR)[0]
    albedo[ear] = _ear_colour(ident, attrs[ear])
    mouth = np.nonzero(kind == KIND_MOUTH)[0]
    albedo[mouth], specular[mouth], occlusion[mouth] = _mouth_interior(ident, aus, attrs[mouth])
    return Surface(albedo, specular, occlusion)


def _paint_skin(ident, aus, gaze, attrs, albedo, specular, where) -> None:
    x, y, z = attrs[:, 0], attrs[:, 1], attrs[:, 2]
    ax = np.abs(x)
    au = _Sided(aus, x)
    col = np.empty((len(x), 3), dtype=np.float32)
    col[:] = ident.skin
    spec = np.full(len(x), 0.12, dtype=np.float32)
    ey, ex, my, mw = ident.eye_y, ident.eye_x, ident.mouth_y, ident.mouth_w
    by = ey + ident.brow_y
    face = z > 1.0
    # tint: warmer cheeks and lips surround, slightly darker round the eyes
    cheeks = _g(ax - (ex + 0.6), 1.3) * _g(y - (ey - 2.4), 1.2) * face
    col *= (1.0 + 0.09 * cheeks[:, None] * np.array([0.6, -0.5, -0.4], dtype=np.float32))
    col *= (1.0 - 0.07 * _g(ax - ex, 1.3) * _g(y - (ey - 0.2), 0.7) * face)[:, None]
    _stubble(ident, x, y, z, col)
    col *= (1.0 - _creases(ident, au, x, y, face))[:, None]
    _lips(ident, au, x, y, face, col, spec)
    _nostrils(ident, x, y, face, col)
    _brows(ident, x, y, by, face, col)
    _eyes(ident, au, gaze, x, y, face, col, spec)
    _hair(ident, x, y, z, col, spec)
    albedo[where] = col
    specular[where] = spec


def _stubble(ident, x, y, z, col) -> None:
    if ident.stubble <= 0:
        return
    idx = np.nonzero((y < ident.nose_y - 0.5) & (y > ident.chin_y - 3.5) & (z > -2.0))[0]
    xs, ys = x[idx], y[idx]
    lips = (np.abs(ys - ident.mouth_y) < 0.8) & (np.abs(xs) < ident.mouth_w + 0.1)
    cover = _ss(ident.nose_y - 0.5, ident.nose_y - 1.1, ys) * (1 - _ss(ident.chin_y - 1.5, ident.chin_y - 3.5, ys))
    cover *= ~lips
    grain = 0.75 + 0.25 * np.sin(xs * 41.0) * np.sin(ys * 37.0)
    tone = 0.55 * np.asarray(ident.hair_colour) + 0.45 * np.asarray(ident.skin) * 0.6
    _mix(col, idx, tone, 0.55 * ident.stubble * cover * grain)


def _creases(ident, au, x, y, face) -> np.ndarray:
    """Darkening ``[N]`` from static folds and expression wrinkles."""
    ax = np.abs(x)
    ey, ex, my, mw = ident.eye_y, ident.eye_x, ident.mouth_y, ident.mouth_w
    by = ey + ident.brow_y
    dark = np.zeros(len(x), dtype=np.float32)
    # forehead lines (AU 1 centrally, AU 2 laterally)
    idx = np.nonzero(face & (y > by + 0.6) & (y < by + 4.8) & (ax < 5.5))[0]
    if len(idx):
        a1, a2 = au(1, idx), au(2, idx)
        xs, ys = ax[idx], y[idx]
        w = a1 * _g(xs, 2.4) + a2 * _g(xs - 3.3, 1.6)
        lines = np.maximum(np.sin(2 * np.pi * (ys - by - 0.6) / 0.85 - 0.4 * np.cos(xs * 0.6)), 0) ** 4
        dark[idx] += 0.32 * w * lines * _ss(by + 0.6, by + 1.2, ys) * (1 - _ss(by + 3.8, by + 4.8, ys))
    # glabella (AU 4): vertical furrows between the brows; nose bridge (AU 9): horizontal wrinkles
    idx = np.nonzero(face & (ax < 1.1) & (y > ey - 1.5) & (y < by + 1.2))[0]
    if len(idx):
        xs, ys = ax[idx], y[idx]
        a4, a9 = au(4, idx), au(9, idx)
        band = _ss(by - 1.2, by - 0.6, ys) * (1 - _ss(by + 0.6, by + 1.2, ys))
        dark[idx] += 0.45 * a4 * _g(xs - 0.38, 0.08) * band
        nose_lines = np.maximum(np.sin(2 * np.pi * ys / 0.34), 0) ** 3 * _g(xs, 0.7)
        dark[idx] += 0.45 * a9 * nose_lines * _ss(ey - 1.5, ey - 1.0, ys) * (1 - _ss(ey + 0.3, ey + 0.8, ys))
    # crow's feet (AU 6) and the lower-lid fold (AU 6, AU 7)
    ew = ident.eye_w
    idx = np.nonzero(face & (ax > ex - ew - 0.3) & (ax < ex + ew + 1.8) & (np.abs(y - ey + 0.5) < 1.4))[0]
    if len(idx):
        xs, ys = ax[idx], y[idx]
        a6, a7 = au(6, idx), au(7, idx)
        ang = np.arctan2(ys - ey, xs - (ex + ew - 0.3))
        rays = np.maximum(np.sin(ang * 10.0), 0) ** 4 * _ss(ex + ew, ex + ew + 0.3, xs)
        rays *= 1 - _ss(ex + ew + 1.0, ex + ew + 1.8, xs)
        dark[idx] += 0.4 * a6 * rays
        u = (xs - ex) / ew
        lid = ey - 0.3 - 0.45 + 0.2 * (a6 + a7)
        fold = _g(ys - (lid - 0.1 * u**2), 0.07) * (np.abs(u) < 1.0)
        dark[idx] += (0.1 + 0.3 * np.maximum(a6, a7) + 0.1 * ident.wrinkle) * fold
    # nasolabial folds: deepen with smiling, lip raising and nose wrinkling
    y_top, y_bot = ident.nose_y - 0.2, my - 1.3
    idx = np.nonzero(face & (y < y_top) & (y > y_bot) & (ax < mw + 1.5) & (ax > ident.nose_w * 0.7))[0]
    if len(idx):
        xs, ys = ax[idx], y[idx]
        t = (y_top - ys) / (y_top - y_bot)
        fold_x = ident.nose_w * 0.9 + (mw + 0.5 - ident.nose_w * 0.9) * t**0.85
        act = np.clip(au(12, idx) + 0.8 * au(10, idx) + 0.5 * au(9, idx) + 0.3 * au(6, idx), 0, 1.2)
        depth = 0.08 + 0.2 * ident.wrinkle + 0.45 * act
        dark[idx] += depth * (_g(xs - fold_x, 0.09) + 0.35 * _g(xs - fold_x + 0.25, 0.25))
    # marionette lines (AU 15), chin dimpling (AU 17), mentolabial sulcus
    idx = np.nonzero(face & (y < my) & (y > ident.chin_y - 0.5) & (ax < mw + 1.0))[0]
    if len(idx):
        xs, ys = ax[idx], y[idx]
        a15, a17 = au(15, idx), au(17, idx)
        fold_x = mw + 0.1 - 0.2 * (my - ys)
        dark[idx] += 0.35 * a15 * _g(xs - fold_x, 0.1) * (1 - _ss(1.5, 2.5, my - ys))
        dimples = (np.sin(xs * 9.0) * np.sin(ys * 11.0)) ** 2 * _g(xs, 1.3) * _g(ys - (ident.chin_y + 1.4), 0.9)
        dark[idx] += 0.4 * a17 * dimples
        sulcus = my - ident.lip_lo - 0.45
        dark[idx] += 0.12 * _g(ys - sulcus, 0.12) * _g(xs, 1.2)
    # philtrum edges
    idx = np.nonzero(face & (ax < 0.7) & (y > my + 0.2) & (y < ident.nose_y - 0.6))[0]
    if len(idx):
        dark[idx] += 0.07 * _g(ax[idx] - 0.32, 0.08)
    return np.clip(dark, 0.0, 0.8)


def _lips(ident, au, x, y, face, col, spec) -> None:
    my, mw = ident.mouth_y, ident.mouth_w
    idx = np.nonzero(face & (np.abs(x) < mw + 0.3) & (y > my - ident.lip_lo - 0.3) & (y < my + ident.lip_up + 0.3))[0]
    if not len(idx):
        return
    xs, ys = x[idx], y[idx]
    thin = np.clip(1.0 - 0.65 * au(24, idx) - 0.45 * au(23, idx) - 0.35 * au(20, idx) - 0.3 * au(27, idx)
                   - 0.2 * au(12, idx), 0.2, 1.0)
    span = np.clip(1.0 - (xs / mw) ** 2, 0.0, 1.0)
    bow = 1.0 + 0.22 * _g(np.abs(xs) - 0.42, 0.22) - 0.18 * _g(xs, 0.16)
    h_up = ident.lip_up * span**0.45 * bow * thin
    h_lo = ident.lip_lo * span**0.6 * thin
    d = np.where(ys >= my, (ys - my) - h_up, (my - ys) - h_lo)  # < 0 inside the red of the lips
    alpha = 1.0 - _ss(-0.05, 0.04, d)
    lip = np.asarray(ident.lip_colour, dtype=np.float32) * np.where(ys < my, 1.06, 0.95)[:, None]
    _mix(col, idx, lip, alpha)
    line = _g(ys - my, 0.035) * np.clip(span * 4, 0, 1)
    col[idx] *= (1.0 - 0.55 * line)[:, None]
    spec[idx] = 0.12 + 0.18 * alpha


def _nostrils(ident, x, y, face, col) -> None:
    ny = ident.nose_y
    idx = np.nonzero(face & (np.abs(x) < ident.nose_w) & (y < ny) & (y > ny - 1.0))[0]
    if not len(idx):
        return
    nx = 0.52 * ident.nose_w / 1.75
    r = ((np.abs(x[idx]) - nx) / 0.33) ** 2 + ((y[idx] - (ny - 0.47)) / 0.15) ** 2
    col[idx] *= (1.0 - 0.8 * (1 - _ss(0.6, 1.1, r)))[:, None]


def _brows(ident, x, y, by, face, col) -> None:
    ax = np.abs(x)
    start = 0.85
    idx = np.nonzero(face & (ax > start - 0.3) & (ax < start + ident.brow_len + 0.3) & (np.abs(y - by) < 1.3))[0]
    if not len(idx):
        return
    xs, ys = ax[idx], y[idx]
    t = (xs - start) / ident.brow_len
    tc = np.clip(t, 0.0, 1.0)
    centre = by + ident.brow_arch * np.sin(np.pi * tc**0.8) - 0.35 * tc**2
    half = 0.5 * ident.brow_thick * (1.15 - 0.7 * tc)
    d = np.abs(ys - centre) - half
    d = np.maximum(d, np.maximum(-t, t - 1.0) * ident.brow_len)  # rounded-off ends
    alpha = (1.0 - _ss(-0.06, 0.06, d)) * (0.8 + 0.2 * np.sin(xs * 31.0 + ys * 17.0))
    _mix(col, idx, np.asarray(ident.brow_colour, dtype=np.float32), np.clip(alpha, 0, 1))


def _eyes(ident, au, gaze, x, y, face, col, spec) -> None:
    ey, ex, ew = ident.eye_y, ident.eye_x, ident.eye_w
    ax = np.abs(x)
    idx = np.nonzero(face & (np.abs(ax - ex) < ew + 0.35) & (y > ey - 1.0) & (y < ey + 1.4))[0]
    if not len(idx):
        return
    xs, ys, xa = x[idx], y[idx], ax[idx]
    a4, a5, a6, a7, a9 = (au(k, idx) for k in (4, 5, 6, 7, 9))
    u = (xa - ex) / ew  # -1 inner corner, +1 outer corner
    v = ys - ey - 0.09 * u  # slight upward tilt towards the outer corner
    up_open = np.maximum(ident.eye_open * (1 + 1.0 * a5 - 0.4 * a7 - 0.3 * a4 - 0.2 * a6 - 0.25 * a9), 0.05)
    lo_open = np.maximum(0.27 * (1 + 0.3 * a5 - 0.6 * a7 - 0.65 * a6), 0.03)
    uc = np.clip(u, -1, 1)
    upper = up_open * (1 - uc**2) ** 0.55 * (1 - 0.12 * uc) - 0.02
    lower = -lo_open * (1 - uc**2) ** 0.8
    inside = np.minimum(upper - v, v - lower)
    inside = np.where(np.abs(u) < 1, inside, -np.abs(u) + 1 - 0.01)
    open_alpha = _ss(-0.015, 0.025, inside)
    # eyeball: sclera, iris, pupil; shadowed under the upper lid and towards the corners
    cx = np.sign(xs) * ex + gaze[0]
    cy = ey + gaze[1] - 0.02
    r_iris = 0.55 * ew / 1.45
    r = np.hypot(xs - cx, ys - cy) / r_iris
    sclera = np.array([0.94, 0.91, 0.87], dtype=np.float32) * (0.72 + 0.28 * (1 - uc**2))[:, None]
    iris = np.asarray(ident.eye_colour, dtype=np.float32) * (0.65 + 0.55 * r)[:, None]
    iris *= (1 - 0.55 * _ss(0.8, 1.0, r))[:, None]
    ball = np.where((r < 1.0)[:, None], iris, sclera)
    ball = np.where((r < 0.38)[:, None], np.float32(0.03), ball)
    ball *= (1 - 0.45 * _g(upper - v, 0.09))[:, None]
    _mix(col, idx, ball, open_alpha)
    spec[idx] = spec[idx] * (1 - open_alpha) + 0.9 * open_alpha
    # lash lines, lid crease
    lash = np.asarray(ident.brow_colour, dtype=np.float32) * 0.4
    up_lash = (v > upper - 0.01) & (v < upper + 0.1 + 0.04 * (1 - uc**2)) & (u > -1.0) & (u < 1.12)
    _mix(col, idx, lash, 0.85 * up_lash * (1 - open_alpha))
    lo_lash = (v < lower + 0.01) & (v > lower - 0.045) & (np.abs(u) < 1.0)
    _mix(col, idx, lash, 0.35 * lo_lash * (1 - open_alpha))
    crease = upper + 0.36 + 0.1 * (1 - uc**2) + 0.1 * a5
    col[idx] *= (1 - 0.22 * _g(v - crease, 0.06) * (np.abs(u) < 1.05) * (1 - 0.6 * a5))[:, None]


def _hair(ident, x, y, z, col, spec) -> None:
    theta = np.arctan2(x, z)
    edge = hair_boundary(ident, theta)
    idx = np.nonzero(y > edge - 0.3)[0]
    if not len(idx):
        return
    th, ys = theta[idx], y[idx]
    alpha = _ss(edge[idx] - 0.2, edge[idx] + 0.35, ys)
    strands = (0.82 + 0.18 * np.sin(th * 40.0 + 2.0 * np.sin(ys * 0.9))) * (0.9 + 0.1 * np.sin(ys * 3.0 + th * 9))
    hair = np.asarray(ident.hair_colour, dtype=np.float32) * strands[:, None].astype(np.float32)
    _mix(col, idx, hair, alpha)
    spec[idx] = spec[idx] * (1 - alpha) + 0.18 * alpha


def _ear_colour(ident, attrs) -> np.ndarray:
    u, v, w = attrs[:, 0], attrs[:, 1], attrs[:, 2]
    col = np.empty((len(u), 3), dtype=np.float32)
    col[:] = np.asarray(ident.skin) * np.array([1.0, 0.93, 0.92])
    concha = (u > 0) * (1 - _ss(0.35, 0.6, (v / 0.75) ** 2 + (w / 0.7) ** 2))
    col *= (1 - 0.4 * concha)[:, None]
    return col


def _mouth_interior(ident, aus, attrs):
    """Mouth cavity: upper and lower teeth near the lips, a dark throat, the tongue below."""
    x = attrs[:, 0]
    g, opening = attrs[:, ATTR_GAP], np.maximum(attrs[:, ATTR_OPEN], 1e-3)
    ax = np.abs(x)
    n = len(x)
    col = np.empty((n, 3), dtype=np.float32)
    col[:] = (0.16, 0.05, 0.05)
    depth = np.minimum(g, opening - g)
    col *= (1.0 - 0.5 * _ss(0.0, 0.6, depth))[:, None]
    tongue = (opening - g < 0.45 * opening) & (opening > 0.8)
    col[tongue] = np.array([0.45, 0.16, 0.17], dtype=np.float32) * np.clip(opening[tongue] - 0.6, 0, 1)[:, None]
    lower16 = float(aus[AU_INDEX[16]].mean())
    lateral = np.clip(1 - (ax / (ident.mouth_w * 1.05)) ** 2, 0, 1)
    teeth_up = (g < 0.75) & (ax < ident.mouth_w * 0.95) & (opening > 0.12)
    teeth_lo = (opening - g < 0.22 + 0.35 * lower16) & (ax < ident.mouth_w * 0.8) & ~teeth_up & (opening > 0.4)
    tooth_edge = np.abs(np.mod(ax + 0.21, 0.42) - 0.21)
    gaps = 1 - 0.45 * _g(tooth_edge, 0.025)
    teeth = np.array([0.93, 0.9, 0.82], dtype=np.float32)[None, :] * (0.45 + 0.55 * lateral**0.7 * gaps)[:, None]
    col[teeth_up] = teeth[teeth_up] * (1 - 0.35 * _ss(0.55, 0.75, g[teeth_up]))[:, None]
    col[teeth_lo] = teeth[teeth_lo] * 0.8
    specular = np.where(teeth_up | teeth_lo, 0.3, 0.05).astype(np.float32)
    occlusion = np.where(teeth_up | teeth_lo, 0.85, 0.5).astype(np.float32)
    return col, specular, occlusion
