"""Procedural skin, eyes, brows, lips, mouth interior, wrinkles and hair, painted per pixel.

The rasteriser gives every visible pixel the *rest coordinates* of the surface point it sees (where
that point sits on the neutral base head, in cm, see :mod:`.geometry`). Features are closed-form
shapes in those coordinates, placed at the identity's landmarks; expression-dependent parts (lid
openings, lip thinning, forehead, glabella, nose, crow's-feet and nasolabial lines, chin dimpling)
take the action-unit intensities. Because the paint is attached to the rest coordinates it moves and
stretches with the skin, and it is as sharp as the pixel grid whatever the mesh resolution.

Edges and lines are anti-aliased analytically: every edge is smoothed over about half a pixel
(``pixel_cm``, the size of one pixel on the face), and lines thinner than a pixel are widened and
faded in proportion, so that the image needs no supersampling.

The output is an albedo (sRGB, 0..1) plus per-pixel specular strength and ambient occlusion for the
shading in :mod:`.render`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phanet.synth import details
from phanet.synth.expressions import AU_INDEX
from phanet.synth.geometry import (
    ATTR_GAP,
    ATTR_OPEN,
    KIND_EAR,
    KIND_MOUTH,
    KIND_SKIN,
    UPPER_LIP_LIFT,
    hair_boundary,
)
from phanet.synth.identity import Identity
from phanet.synth.maths import gauss, mix_into, sided, smoothstep

F32 = np.float32
# the "orange peel" of a raised chin (AU 17): soft dimples at these offsets (cm, |x| and from the chin boss)
_CHIN_DIMPLES = ((0.0, 0.3), (0.6, -0.2), (0.5, 0.6), (1.1, 0.2), (0.2, -0.7), (0.9, -0.8))


@dataclass
class Surface:
    """Per-pixel material: ``albedo [N, 3]``, ``specular [N]`` strength, ``occlusion [N]`` (ambient scale)."""

    albedo: np.ndarray
    specular: np.ndarray
    occlusion: np.ndarray


class _Pixels:
    """The pixels being painted: coordinates, AU intensities and the anti-aliasing scale."""

    def __init__(self, ident: Identity, aus: np.ndarray, x: np.ndarray, y: np.ndarray, pixel_cm: float):
        self.ident, self.aus = ident, aus
        self.x, self.y, self.ax = x, y, np.abs(x)
        self.soft = 0.5 * pixel_cm  # half-width of an anti-aliased edge, in cm
        self.pixel_cm = pixel_cm
        self._blend = None

    def au(self, number: int, idx: np.ndarray) -> np.ndarray | float:
        """Intensity of AU ``number`` at pixels ``idx``, blending the two sides of the face."""
        right, left = self.aus[AU_INDEX[number]]
        if right == left:
            return float(right)
        if self._blend is None:
            self._blend = np.tanh(self.x)
        return sided(right, left, self._blend[idx])

    def edge(self, d: np.ndarray, soft: float = 0.0) -> np.ndarray:
        """Coverage of the region ``d < 0`` (``d`` a distance in cm), smoothed over a pixel."""
        s = max(soft, self.soft)
        return 1.0 - smoothstep(-s, s, d)

    def line(self, d: np.ndarray, width: float) -> np.ndarray:
        """A line of Gaussian half-width ``width`` cm; thinner than a pixel it widens and fades."""
        eff = float(np.hypot(width, 0.45 * self.pixel_cm))
        return (width / eff) * np.exp(-0.5 * (d / eff) ** 2)


def paint(
    ident: Identity,
    aus: np.ndarray,
    gaze: tuple[float, float],
    kind: np.ndarray,
    attrs: np.ndarray,
    pixel_cm: float = 0.1,
) -> Surface:
    """Materials for ``N`` pixels given their triangle ``kind [N]`` and interpolated ``attrs [N, A]``.

    ``pixel_cm`` is the size of one image pixel on the face, for anti-aliasing.
    """
    n = len(kind)
    albedo = np.empty((n, 3), dtype=F32)
    specular = np.full(n, 0.1, dtype=F32)
    occlusion = np.ones(n, dtype=F32)
    skin = np.nonzero(kind == KIND_SKIN)[0]
    albedo[skin], specular[skin] = _paint_skin(ident, aus, gaze, attrs[skin], pixel_cm)
    ear = np.nonzero(kind == KIND_EAR)[0]
    albedo[ear] = _ear_colour(ident, attrs[ear])
    mouth = np.nonzero(kind == KIND_MOUTH)[0]
    albedo[mouth], specular[mouth], occlusion[mouth] = _mouth_interior(ident, aus, attrs[mouth], pixel_cm)
    return Surface(albedo, specular, occlusion)


def _paint_skin(ident, aus, gaze, attrs, pixel_cm):
    x, y, z = attrs[:, 0], attrs[:, 1], attrs[:, 2]
    p = _Pixels(ident, aus, x, y, pixel_cm)
    col = np.empty((len(x), 3), dtype=F32)
    col[:] = ident.skin
    spec = np.full(len(x), 0.12, dtype=F32)
    ey, ex = ident.eye_y, ident.eye_x
    face = np.nonzero((z > 1.0) & (y > ident.chin_y - 1.0) & (y < ey + ident.hairline + 1.0))[0]
    fx, fy = p.ax[face], y[face]
    # tint: warmer cheeks, slightly darker round the eyes; then folds and wrinkles
    cheeks = gauss(fx - (ex + 0.6), 1.3) * gauss(fy - (ey - 2.4), 1.2)
    tint = 1.0 + 0.09 * cheeks[:, None] * np.array([0.6, -0.5, -0.4], dtype=F32)
    tint *= (1.0 - 0.07 * gauss(fx - ex, 1.3) * gauss(fy - (ey - 0.2), 0.7) - _creases(p, face))[:, None]
    col[face] *= tint
    details.skin_texture(p, z, col)
    details.freckles_and_moles(p, z, face, col)
    details.socket_shading(p, z, col)
    details.make_up(p, face, col)
    _stubble(p, z, col)
    _lips(p, face, col, spec)
    details.nose_base(p, face, col)
    _nostrils(p, face, col)
    _brows(p, face, col)
    _eyes(p, face, gaze, col, spec)
    details.glasses(p, z, col, spec)
    _hair(p, z, col, spec)
    return col, spec


def _stubble(p: _Pixels, z, col) -> None:
    ident = p.ident
    if ident.stubble <= 0:
        return
    idx = np.nonzero((p.y < ident.nose_y - 0.3) & (p.y > ident.chin_y - 3.5) & (z > -1.0))[0]
    xs, ys = p.ax[idx], p.y[idx]
    # the beard area: below a line from the nose wings to the ear lobes, not on the lips
    top = ident.nose_y - 0.6 - 0.35 * xs
    lips = gauss(ys - ident.mouth_y, 0.55) * (1 - smoothstep(ident.mouth_w - 0.2, ident.mouth_w + 0.4, xs))
    cover = smoothstep(top, top - 1.2, ys) * (1 - smoothstep(ident.chin_y - 1.5, ident.chin_y - 3.5, ys)) * (1 - lips)
    cover *= smoothstep(-1.0, 2.0, z[idx])
    grain = 0.8 + 0.2 * np.sin(xs * 23.0 + 3 * np.sin(ys * 5.0))
    tone = 0.55 * np.asarray(ident.hair_colour) + 0.45 * np.asarray(ident.skin) * 0.6
    mix_into(col, idx, tone, 0.5 * ident.stubble * cover * grain)


def _creases(p: _Pixels, face: np.ndarray) -> np.ndarray:
    """Darkening ``[len(face)]`` from static folds and expression wrinkles at pixels ``face``."""
    ident = p.ident
    ax, y = p.ax[face], p.y[face]
    ey, ex, ew, my, mw = ident.eye_y, ident.eye_x, ident.eye_w, ident.mouth_y, ident.mouth_w
    by = ey + ident.brow_y
    age = ident.age  # static lines of an older face ("age" randomisation; 0 adds exactly nothing)
    dark = np.zeros(len(face), dtype=F32)

    def region(mask):
        sub = np.nonzero(mask)[0]
        return sub, face[sub], ax[sub], y[sub]

    # forehead lines (AU 1 centrally, AU 2 laterally): rows of soft creases
    sub, idx, xs, ys = region((y > by + 0.6) & (y < by + 4.8) & (ax < 5.5))
    if len(sub):
        w = p.au(1, idx) * gauss(xs, 2.4) + p.au(2, idx) * gauss(xs - 3.3, 1.6) + 0.5 * age * gauss(xs, 3.2)
        phase = (ys - by - 0.6) / 0.85 - 0.07 * np.cos(xs * 0.6)
        lines = p.line((phase - np.round(phase)) * 0.85, 0.08)
        dark[sub] += 0.3 * w * lines * smoothstep(by + 0.6, by + 1.2, ys) * (1 - smoothstep(by + 3.8, by + 4.8, ys))
    # glabella (AU 4): vertical furrows between the brows; nose bridge (AU 9): horizontal wrinkles
    sub, idx, xs, ys = region((ax < 1.1) & (y > ey - 1.5) & (y < by + 1.2))
    if len(sub):
        band = smoothstep(by - 1.2, by - 0.6, ys) * (1 - smoothstep(by + 0.6, by + 1.2, ys))
        dark[sub] += 0.45 * (p.au(4, idx) + 0.3 * age) * p.line(xs - 0.38, 0.07) * band
        phase = ys / 0.34
        nose = p.line((phase - np.round(phase)) * 0.34, 0.05) * gauss(xs, 0.7)
        band = smoothstep(ey - 1.5, ey - 1.0, ys) * (1 - smoothstep(ey + 0.3, ey + 0.8, ys))
        dark[sub] += 0.45 * p.au(9, idx) * nose * band
    # crow's feet (AU 6) and the fold under the lower lid (AU 6, AU 7)
    sub, idx, xs, ys = region((ax > ex - ew - 0.3) & (ax < ex + ew + 1.8) & (np.abs(y - ey + 0.5) < 1.4))
    if len(sub):
        a6, a7 = p.au(6, idx), p.au(7, idx)
        ang = np.arctan2(ys - ey, xs - (ex + ew - 0.3)) * (10.0 / (2 * np.pi))
        rays = p.line((ang - np.round(ang)) * 0.6, 0.06)
        rays *= smoothstep(ex + ew, ex + ew + 0.3, xs) * (1 - smoothstep(ex + ew + 1.0, ex + ew + 1.8, xs))
        dark[sub] += 0.4 * (a6 + 0.5 * age) * rays
        u = (xs - ex) / ew
        fold_y = ey - 0.75 + 0.2 * (a6 + a7) - 0.1 * u**2
        fold = p.line(ys - fold_y, 0.06) * (np.abs(u) < 1)
        dark[sub] += (0.08 + 0.25 * np.maximum(a6, a7) + 0.1 * ident.wrinkle + 0.2 * age) * fold
        dark[sub] += 0.12 * age * gauss(ys - (fold_y + 0.3), 0.3) * (np.abs(u) < 1)  # the bag above the fold
    # nasolabial folds: a curve from the nose wing round the mouth corner, deeper when smiling
    y_top, y_bot = ident.nose_y - 0.2, my - 1.4
    sub, idx, xs, ys = region((y < y_top) & (y > y_bot) & (ax < mw + 1.5) & (ax > ident.nose_w * 0.7))
    if len(sub):
        t = (y_top - ys) / (y_top - y_bot)
        fold_x = ident.nose_w * 0.85 + (mw + 0.45 - ident.nose_w * 0.85) * np.sin(t * np.pi / 2) - 0.25 * t**2
        act = np.clip(p.au(12, idx) + 0.8 * p.au(10, idx) + 0.5 * p.au(9, idx) + 0.3 * p.au(6, idx), 0, 1.2)
        # sin(pi) is -9e-8 in float32: clamp, or the square root paints a NaN pixel where t rounds to 1
        along = np.maximum(np.sin(np.clip(t, 0, 1) * np.pi), 0.0) ** 0.5
        depth = (0.05 + 0.15 * ident.wrinkle + 0.2 * age + ident.resting_fold + 0.3 * act) * along
        dark[sub] += depth * (0.7 * p.line(xs - fold_x, 0.07) + 0.3 * gauss(xs - fold_x + 0.2, 0.25))
    # marionette lines (AU 15), chin dimpling (AU 17), the groove under the lower lip
    sub, idx, xs, ys = region((y < my) & (y > ident.chin_y - 0.5) & (ax < mw + 1.0))
    if len(sub):
        fold_x = mw + 0.1 - 0.2 * (my - ys)
        dark[sub] += 0.3 * (p.au(15, idx) + 0.4 * age) * p.line(xs - fold_x, 0.08) * (1 - smoothstep(1.5, 2.5, my - ys))
        cy = ident.chin_y + 1.4
        dimples = sum(gauss(xs - bx, 0.3) * gauss(ys - cy - by, 0.25) for bx, by in _CHIN_DIMPLES)
        dark[sub] += 0.3 * p.au(17, idx) * dimples
        dark[sub] += 0.1 * gauss(ys - (my - ident.lip_lo - 0.45), 0.12) * gauss(xs, 1.2)
    # philtrum edges
    sub, idx, xs, ys = region((ax < 0.7) & (y > my + 0.2) & (y < ident.nose_y - 0.6))
    if len(sub):
        dark[sub] += 0.06 * gauss(xs - 0.32, 0.1)
    return np.clip(dark, 0.0, 0.8)


def _lips(p: _Pixels, face, col, spec) -> None:
    ident = p.ident
    my, mw = ident.mouth_y, ident.mouth_w
    sel = (p.ax[face] < mw + 0.3) & (p.y[face] > my - ident.lip_lo - 0.3) & (p.y[face] < my + ident.lip_up + 0.3)
    idx = face[sel]
    if not len(idx):
        return
    xs, ys = p.x[idx], p.y[idx]
    thin = 1.0 - 0.65 * p.au(24, idx) - 0.45 * p.au(23, idx) - 0.35 * p.au(20, idx) - 0.3 * p.au(27, idx)
    thin = np.clip(thin - 0.2 * p.au(12, idx), 0.2, 1.0)
    span = np.clip(1.0 - (xs / mw) ** 2, 0.0, 1.0)
    bow = 1.0 + 0.22 * gauss(np.abs(xs) - 0.42, 0.22) - 0.18 * gauss(xs, 0.16)
    h_up = ident.lip_up * span**0.45 * bow * thin
    h_lo = ident.lip_lo * span**0.6 * thin
    d = np.where(ys >= my, (ys - my) - h_up, (my - ys) - h_lo)  # < 0 inside the red of the lips
    alpha = p.edge(d, 0.04)
    lip = np.asarray(ident.lip_colour, dtype=F32) * np.where(ys < my, 1.06, 0.95).astype(F32)[:, None]
    mix_into(col, idx, lip, alpha)
    col[idx] *= (1.0 - 0.55 * p.line(ys - my, 0.035) * np.clip(span * 4, 0, 1))[:, None]
    spec[idx] = 0.12 + 0.18 * alpha


def _nostrils(p: _Pixels, face, col) -> None:
    ident = p.ident
    ny = ident.nose_y
    idx = face[(p.ax[face] < ident.nose_w) & (p.y[face] < ny) & (p.y[face] > ny - 1.0)]
    if not len(idx):
        return
    size = ident.nostril_size  # 1 for the base face; larger openings sit a little further out
    nx = 0.52 * ident.nose_w / 1.75 * (1.0 + 0.6 * (size - 1.0))
    r = np.hypot((p.ax[idx] - nx) / (0.33 * size), (p.y[idx] - (ny - 0.47)) / (0.15 * size))
    col[idx] *= (1.0 - 0.8 * p.edge((r - 1.0) * 0.2, 0.04))[:, None]


def _brows(p: _Pixels, face, col) -> None:
    ident = p.ident
    by = ident.eye_y + ident.brow_y
    start, length = 0.85, ident.brow_len
    xf, yf = p.ax[face], p.y[face]
    idx = face[(xf > start - 0.3) & (xf < start + length + 0.3) & (np.abs(yf - by) < 1.3)]
    if not len(idx):
        return
    xs, ys = p.ax[idx], p.y[idx]
    t = (xs - start) / length
    tc = np.clip(t, 0.0, 1.0)
    centre = by + ident.brow_arch * np.sin(np.pi * tc**0.8) - 0.35 * tc**2
    half = 0.5 * ident.brow_thick * (1.15 - 0.7 * tc)
    d = np.maximum(np.abs(ys - centre) - half, np.maximum(-t, t - 1.0) * length)  # rounded-off ends
    alpha = p.edge(d, 0.06) * (0.8 + 0.2 * np.sin(xs * 31.0 + ys * 17.0))
    mix_into(col, idx, np.asarray(ident.brow_colour, dtype=F32), np.clip(alpha, 0, 1))


def _eyes(p: _Pixels, face, gaze, col, spec) -> None:
    ident = p.ident
    ey, ex, ew = ident.eye_y, ident.eye_x, ident.eye_w
    xf, yf = p.ax[face], p.y[face]
    idx = face[(np.abs(xf - ex) < ew + 0.35) & (yf > ey - 1.0) & (yf < ey + 1.4)]
    if not len(idx):
        return
    xs, ys, xa = p.x[idx], p.y[idx], p.ax[idx]
    a4, a5, a6, a7, a9 = (p.au(k, idx) for k in (4, 5, 6, 7, 9))
    u = (xa - ex) / ew  # -1 inner corner, +1 outer corner
    v = ys - ey - 0.09 * u  # slight upward tilt towards the outer corner
    up_open = np.maximum(ident.eye_open * (1 + 1.0 * a5 - 0.4 * a7 - 0.3 * a4 - 0.2 * a6 - 0.25 * a9), 0.05)
    lo_open = np.maximum(ident.eye_low * (1 + 0.3 * a5 - 0.6 * a7 - 0.65 * a6), 0.03)
    uc = np.clip(u, -1, 1)
    upper = up_open * (1 - uc**2) ** 0.55 * (1 - 0.12 * uc) - 0.02
    lower = -lo_open * (1 - uc**2) ** 0.8
    outside = np.where(np.abs(u) < 1, np.maximum(v - upper, lower - v), np.maximum((np.abs(u) - 1) * ew, np.abs(v)))
    open_alpha = p.edge(outside, 0.02)
    # eyeball: sclera, iris, pupil; shadowed under the upper lid and towards the corners
    cx = np.sign(xs) * ex + gaze[0]
    cy = ey + gaze[1] - 0.02
    r_iris = 0.55 * ew / 1.45
    r = np.hypot(xs - cx, ys - cy)
    sclera = np.array([0.94, 0.91, 0.87], dtype=F32) * (0.72 + 0.28 * (1 - uc**2))[:, None]
    iris = np.asarray(ident.eye_colour, dtype=F32) * (0.65 + 0.55 * r / r_iris)[:, None]
    iris *= (1 - 0.55 * smoothstep(0.8 * r_iris, r_iris, r))[:, None]
    in_iris = p.edge(r - r_iris, 0.02)[:, None]
    ball = sclera + (iris - sclera) * in_iris
    ball += (F32(0.03) - ball) * p.edge(r - 0.38 * r_iris, 0.015)[:, None]
    ball *= (1 - 0.45 * gauss(upper - v, 0.09))[:, None]
    mix_into(col, idx, ball, open_alpha)
    spec[idx] = spec[idx] * (1 - open_alpha) + 0.9 * open_alpha
    # lash lines, lid crease
    lash = np.asarray(ident.brow_colour, dtype=F32) * 0.4
    lash_w = 0.1 + 0.04 * (1 - uc**2)
    over = ident.lash_over  # the share of the lash line drawn over the eyeball (the "lashes" detail)
    up_lash = p.edge(np.abs(v - upper - (0.5 - over) * lash_w) - 0.5 * lash_w, 0.02) * (u > -1.0) * (u < 1.12)
    # the base face's line stops at the opening (masked, so its renders stay as they were); a line over the
    # eyeball paints across it
    mix_into(col, idx, lash, 0.85 * up_lash * (1 - open_alpha if over == 0 else 1.0))
    lo_lash = p.line(v - lower + 0.02, 0.025) * (np.abs(u) < 1.0)
    mix_into(col, idx, lash, 0.35 * np.minimum(lo_lash, 1.0) * (1 - open_alpha))
    crease = upper + 0.36 + 0.1 * (1 - uc**2) + 0.1 * a5
    col[idx] *= (1 - 0.22 * p.line(v - crease, 0.06) * (np.abs(u) < 1.05) * (1 - 0.6 * a5))[:, None]


def _hair(p: _Pixels, z, col, spec) -> None:
    ident = p.ident
    theta = np.arctan2(p.x, z)
    edge = hair_boundary(ident, theta)
    idx = np.nonzero(p.y > edge - 0.4)[0]
    if not len(idx):
        return
    th, ys = theta[idx], p.y[idx]
    alpha = smoothstep(edge[idx] - 0.2, edge[idx] + 0.35 + p.soft, ys)
    wave = th * 40.0 + 2.0 * np.sin(ys * 0.9 + th * 3.0)
    strands = 0.9 + 0.05 * np.sin(wave) + 0.04 * np.sin(wave * 2.7 + ys * 2.0)
    strands *= 0.93 + 0.07 * np.sin(ys * 3.0 + th * 9)
    hair = np.asarray(ident.hair_colour, dtype=F32) * strands[:, None].astype(F32)
    mix_into(col, idx, hair, alpha)
    spec[idx] = spec[idx] * (1 - alpha) + 0.18 * alpha


def _ear_colour(ident, attrs) -> np.ndarray:
    u, v, w = attrs[:, 0], attrs[:, 1], attrs[:, 2]
    col = np.empty((len(u), 3), dtype=F32)
    col[:] = np.asarray(ident.skin) * np.array([1.0, 0.93, 0.92])
    concha = (u > 0) * (1 - smoothstep(0.35, 0.6, (v / 0.75) ** 2 + (w / 0.7) ** 2))
    col *= (1 - 0.4 * concha)[:, None]
    return col


def _mouth_interior(ident, aus, attrs, pixel_cm):
    """Mouth cavity: upper and lower teeth near the lips, a dark throat, the tongue below."""
    x = attrs[:, 0]
    g, opening = attrs[:, ATTR_GAP], np.maximum(attrs[:, ATTR_OPEN], 1e-3)
    ax = np.abs(x)
    col = np.empty((len(x), 3), dtype=F32)
    col[:] = (0.16, 0.05, 0.05)
    depth = np.minimum(g, opening - g)
    col *= (1.0 - 0.5 * smoothstep(0.0, 0.6, depth))[:, None]
    tongue = (opening - g < 0.45 * opening) & (opening > 0.8)
    col[tongue] = np.array([0.45, 0.16, 0.17], dtype=F32) * np.clip(opening[tongue] - 0.6, 0, 1)[:, None]
    # the lower teeth show when the lower lip is pulled down or the jaw drops far
    lower_show = 0.1 + 0.3 * aus[AU_INDEX[16]].mean() + 0.15 * (aus[AU_INDEX[26]].mean() + aus[AU_INDEX[27]].mean())
    lateral = np.clip(1 - (ax / (ident.mouth_w * 1.05)) ** 2, 0, 1)
    # a smile that lifts the upper lip ("smiles" detail) bares more of the upper teeth, which stay put
    upper_band = 0.75 + UPPER_LIP_LIFT * ident.smile_lip * aus[AU_INDEX[12]].mean()
    teeth_up = (g < upper_band) & (ax < ident.mouth_w * 0.95) & (opening > 0.12)
    teeth_lo = (opening - g < lower_show) & (ax < ident.mouth_w * 0.8) & ~teeth_up & (opening > 0.6)
    tooth_edge = np.abs(np.mod(ax + 0.21, 0.42) - 0.21)
    gaps = 1 - ident.teeth_gaps * gauss(tooth_edge, max(0.025, 0.3 * pixel_cm)) * min(1.0, 0.025 / (0.3 * pixel_cm))
    shade = (1 - ident.teeth_sides) + ident.teeth_sides * lateral**0.7 * gaps
    teeth = np.minimum(np.array([0.93, 0.9, 0.82], dtype=F32)[None, :] * (ident.teeth_shade * shade)[:, None], 1.0)
    col[teeth_up] = teeth[teeth_up] * (1 - 0.35 * smoothstep(upper_band - 0.2, upper_band, g[teeth_up]))[:, None]
    col[teeth_lo] = teeth[teeth_lo] * 0.8
    specular = np.where(teeth_up | teeth_lo, 0.3, 0.05).astype(F32)
    occlusion = np.where(teeth_up | teeth_lo, 0.85, 0.5).astype(F32)
    return col, specular, occlusion
