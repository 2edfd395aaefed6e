"""The 3D head: a deformable parametric surface with facial features, ears and action-unit motion.

The head is one closed surface sampled on a grid of azimuth ``θ`` (columns, 0 = straight ahead,
positive towards the subject's left) by elevation ``φ`` (rows, from the bottom of the neck to the
crown). Its *base* is a star-shaped smooth union of ellipsoids (cranium, a forward-tilted face mass
that tapers to the jaw, chin) and a neck, found analytically as the distance at which a ray from the
head centre leaves each solid (combined with a smooth maximum, so the junctions blend).
Features (brow ridge, eye sockets and eyeballs, nose, cheekbones, lips, chin, hair volume) are smooth
displacements of that base; action units (:mod:`.expressions`) are further displacement fields
around the landmarks of :class:`~.identity.Identity`.

The mouth is a real opening: three grid rows lie on the lip line (the upper lip's edge, a middle
row and the lower lip's edge). At rest they coincide, so the triangles between them have no area;
when the jaw drops (AU 26/27), the lips part (AU 25) or the upper lip rises (AU 10), the rows separate
and those triangles become the mouth interior, with the middle row pushed back into the head so it
reads as a cavity. Everything else -- eyes, brows, lips, wrinkles, hair colour -- is painted per
pixel by :mod:`.paint` in *rest coordinates* (each vertex's position on the base surface), which the
rasteriser interpolates, so paint follows the skin as it moves. Ears are separate flattened
ellipsoids (hidden under long hair).

Lengths are centimetres in the head frame of :mod:`.identity` (x: subject's left, y: up, z: out of
the face). The grid is mirror-symmetric about the midline (and so is its triangulation), so that a
symmetric face renders as an exact mirror image at yaw ``-θ``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from phanet.synth.expressions import AU_INDEX
from phanet.synth.identity import Identity
from phanet.synth.maths import gauss2, sided, smoothstep

N_THETA = 96  # grid columns (around the head)
N_LO = 30  # rows from the bottom of the neck up to just below the lip line
N_HI = 42  # rows from just above the lip line up to the crown
GAP_LO, GAP_MID, GAP_UP = N_LO, N_LO + 1, N_LO + 2  # the three lip-line rows
N_ROWS = N_LO + 3 + N_HI
EAR_U, EAR_V = 14, 12  # ear ellipsoid grid (around, pole to pole)

KIND_SKIN, KIND_MOUTH, KIND_EAR = 0, 1, 2

# Attribute channels interpolated per pixel (see Mesh.vertex_data).
ATTR_X, ATTR_Y, ATTR_Z, ATTR_GAP, ATTR_OPEN = range(5)
NUM_ATTRS = 5


@dataclass(frozen=True)
class Mesh:
    """A triangle mesh ready to render.

    ``positions``: ``[V, 3]`` float32 in the head frame; ``triangles``: ``[T, 3]`` int32, wound so that
    a triangle facing the camera has positive area in image coordinates (y down); ``kind``: ``[T]``
    uint8 (KIND_SKIN, KIND_MOUTH, KIND_EAR); ``vertex_data``: ``[V, NUM_ATTRS + 3]`` float32, the
    attributes interpolated per pixel -- rest position (x, y, z; for ear vertices the ear's own
    unit-ellipsoid coordinates), depth below the upper lip inside the mouth and the mouth's opening
    at that column (both 0 elsewhere) -- then the unit normal.
    """

    positions: np.ndarray
    triangles: np.ndarray
    kind: np.ndarray
    vertex_data: np.ndarray


# ----------------------------------------------------------------------------------------- grid layout


@lru_cache(maxsize=1)
def grid_columns() -> np.ndarray:
    """Column azimuths ``[N_THETA]`` in radians, dense over the face and sparse at the back.

    Symmetric: the set contains 0 and -pi and, with every ``θ``, also ``-θ``.
    """
    s = np.arange(N_THETA) * (2.0 / N_THETA) - 1.0  # [-1, 1)
    return np.pi * (0.42 * s + 0.58 * s**3)


@lru_cache(maxsize=1)
def _canonical_rows() -> tuple[np.ndarray, np.ndarray, float]:
    """Row elevations (degrees) below and above a canonical lip line, from a density profile."""
    knots = np.array([-90, -72, -60, -50, -20, -5, 15, 30, 50, 90], dtype=float)
    density = np.array([0.2, 0.25, 0.45, 1.0, 0.9, 0.95, 0.8, 0.5, 0.3, 0.25])  # rows per degree
    phi = np.linspace(-90, 90, 1801)
    cum = np.concatenate([[0], np.cumsum(np.interp(phi, knots, density)[:-1] * 0.1)])
    lip = -37.0
    c_lip = np.interp(lip, phi, cum)
    lower = np.interp(np.linspace(0, c_lip, N_LO + 1)[:-1], cum, phi)
    upper = np.interp(np.linspace(c_lip, cum[-1], N_HI + 1)[1:], cum, phi)
    return lower, upper, lip


@lru_cache(maxsize=1)
def head_topology() -> tuple[np.ndarray, np.ndarray]:
    """Triangles ``[T, 3]`` of the head grid and their kind ``[T]``.

    Vertex ``(row, col)`` has index ``row * N_THETA + col``. Each quad is split along the diagonal
    that mirrors the split of its mirror-image quad, so the mesh is symmetric.
    """
    theta = grid_columns()
    r, c = np.meshgrid(np.arange(N_ROWS - 1), np.arange(N_THETA), indexing="ij")
    c1 = (c + 1) % N_THETA
    v00, v01 = r * N_THETA + c, r * N_THETA + c1
    v10, v11 = (r + 1) * N_THETA + c, (r + 1) * N_THETA + c1
    right_side = (theta[c] >= 0)[..., None]
    tri_a = np.where(right_side, np.stack([v00, v10, v01], -1), np.stack([v00, v10, v11], -1))
    tri_b = np.where(right_side, np.stack([v10, v11, v01], -1), np.stack([v00, v11, v01], -1))
    tris = np.stack([tri_a, tri_b], 2).reshape(-1, 3)
    row = np.repeat(r.reshape(-1), 2)
    kind = np.where((row == GAP_LO) | (row == GAP_MID), KIND_MOUTH, KIND_SKIN).astype(np.uint8)
    return tris.astype(np.int32), kind


@lru_cache(maxsize=1)
def ear_topology() -> np.ndarray:
    """Triangles ``[T, 3]`` of one ear's ellipsoid grid (``EAR_V`` rows incl. poles x ``EAR_U``)."""
    r, c = np.meshgrid(np.arange(EAR_V - 1), np.arange(EAR_U), indexing="ij")
    c1 = (c + 1) % EAR_U
    v00, v01 = r * EAR_U + c, r * EAR_U + c1
    v10, v11 = (r + 1) * EAR_U + c, (r + 1) * EAR_U + c1
    tris = np.stack([np.stack([v00, v10, v01], -1), np.stack([v10, v11, v01], -1)], 2).reshape(-1, 3)
    return tris.astype(np.int32)


# ----------------------------------------------------------------------------------------- base shape


def _ellipsoid_exit(d: np.ndarray, centre, axes, tilt: float = 0.0) -> np.ndarray:
    """Distance along unit rays ``d [N, 3]`` from the origin to where they leave an ellipsoid (0: miss).

    ``tilt`` (degrees) turns the ellipsoid about the x axis, its front end downwards.
    """
    centre = np.asarray(centre, dtype=float)
    dx, dy, dz = d[:, 0], d[:, 1], d[:, 2]
    if tilt:
        a = np.radians(tilt)
        ca, sa = np.cos(a), np.sin(a)
        dy, dz = ca * dy + sa * dz, ca * dz - sa * dy
        centre = np.array([centre[0], ca * centre[1] + sa * centre[2], ca * centre[2] - sa * centre[1]])
    ax, ay, az = axes
    cx, cy, cz = centre / np.asarray(axes)
    qx, qy, qz = dx / ax, dy / ay, dz / az
    a = qx * qx + qy * qy + qz * qz
    b = -2.0 * (qx * cx + qy * cy + qz * cz)
    c0 = cx * cx + cy * cy + cz * cz - 1.0
    disc = b * b - 4 * a * c0
    t = (-b + np.sqrt(np.maximum(disc, 0.0))) / (2 * a)
    return np.where(disc > 0, np.maximum(t, 0.0), 0.0)


def _neck_exit(d: np.ndarray, radius: float, z0: float, y_top: float, y_bottom: float) -> np.ndarray:
    """Exit distance from the neck: a vertical elliptic cylinder from ``y_bottom`` up to ``y_top``,
    closed at the top by a half-ellipsoid so that the exit distance has no step where rays leave
    through the top instead of the wall."""
    rx, rz = radius, radius * 1.08
    a = (d[:, 0] / rx) ** 2 + (d[:, 2] / rz) ** 2
    b = -2.0 * d[:, 2] * z0 / rz**2
    c0 = (z0 / rz) ** 2 - 1.0
    disc = np.maximum(b * b - 4 * a * c0, 0.0)
    t_wall = (-b + np.sqrt(disc)) / (2 * np.maximum(a, 1e-9))
    t_bottom = y_bottom / np.minimum(d[:, 1], -1e-6)
    t_cap = _ellipsoid_exit(d, (0.0, y_top, z0), (rx, 0.6 * rx, rz))
    through_wall = (t_wall * d[:, 1] < y_top) & (d[:, 1] < 0)
    return np.where(through_wall, np.minimum(t_wall, t_bottom), t_cap)


def _smax(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth maximum with blend width ``k``."""
    h = np.maximum(k - np.abs(a - b), 0.0) / k
    return np.maximum(a, b) + h * h * k * 0.25


def base_radius(ident: Identity, d: np.ndarray) -> np.ndarray:
    """Radial distance ``[N]`` of the base head surface along unit directions ``d [N, 3]``."""
    fw, fh, fz = ident.face
    cz = ident.chin[2]
    r = _ellipsoid_exit(d, (0.0, 2.5, -0.5), ident.cranium)
    r = _smax(r, _ellipsoid_exit(d, (0.0, ident.eye_y - 3.0, 9.0 - fz), (fw, fh, fz), tilt=14.0), 1.5)
    r = _smax(r, _ellipsoid_exit(d, (0.0, ident.chin_y + ident.chin[1], 8.1 - cz), ident.chin), 1.6)
    r = _smax(r, _neck_exit(d, ident.neck_radius, -1.8, -5.0, -30.0), 2.5)
    return r


def _directions(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    cp = np.cos(phi)
    return np.stack([cp * np.sin(theta), np.sin(phi), cp * np.cos(theta)], -1)


def _lip_line_elevation(ident: Identity, theta: np.ndarray) -> np.ndarray:
    """Per column, the elevation (rad) at which the base surface passes the lip line's height.

    The height along each column falls monotonically with elevation; it is sampled coarsely for all
    columns at once, interpolated at the lip height and refined by one secant step.
    """
    phi = np.radians(np.linspace(-80.0, -5.0, 48))
    th, ph = np.meshgrid(theta, phi, indexing="ij")  # [C, S]
    y = base_radius(ident, _directions(th.reshape(-1), ph.reshape(-1))).reshape(th.shape) * np.sin(ph)
    above = y > ident.mouth_y
    i = np.clip(np.argmax(above, axis=1), 1, len(phi) - 1)  # first sample above the lip line
    rows = np.arange(len(theta))
    y0, y1, p0, p1 = y[rows, i - 1], y[rows, i], phi[i - 1], phi[i]
    guess = p0 + (ident.mouth_y - y0) * (p1 - p0) / np.where(y1 > y0, y1 - y0, 1.0)
    y_guess = base_radius(ident, _directions(theta, guess)) * np.sin(guess)
    left = y_guess > ident.mouth_y  # secant step on the side of the bracket that holds the root
    pa, ya = np.where(left, p0, guess), np.where(left, y0, y_guess)
    pb, yb = np.where(left, guess, p1), np.where(left, y_guess, y1)
    return pa + (ident.mouth_y - ya) * (pb - pa) / np.where(yb > ya, yb - ya, 1.0)


def hair_boundary(ident: Identity, theta: np.ndarray) -> np.ndarray:
    """Height (cm) below which there is no hair, per azimuth ``θ`` (rad) of the head surface."""
    ey = ident.eye_y
    front = ey + ident.hairline - ident.fringe * (ident.hairline - ident.brow_y - 0.9)
    deg = np.abs(np.degrees(theta + 0.12 * ident.parting * np.cos(theta)))
    if ident.hair_long:  # a curtain from the temples down past the jaw, over the ears
        low = ident.chin_y - 3.0
        knots = [0, 30, 50, 64, 74, 140, 180]
        heights = [front, front - 0.3, ey + 3.2, ey + 1.5, low, low - 2.0, low - 2.0]
    else:
        knots = [0, 30, 52, 70, 78, 84, 95, 112, 140, 180]
        heights = [front, front - 0.3, ey + 3.0, ey + 1.0, ey - 1.2, ey + 1.2, ey + 1.8, ey - 0.5,
                   ident.hair_back, ident.hair_back]
    wave = 0.25 * ident.fringe * np.sin(theta * 30.0) * (deg < 40)
    return np.interp(deg, knots, heights) + wave


@dataclass(frozen=True)
class RestHead:
    """The neutral head of one identity, with everything an expression does not change precomputed.

    ``positions`` ``[V, 3]`` float32: grid vertices (``V = N_ROWS * N_THETA``, row-major) then both
    ears, features included. ``rest`` ``[N_ROWS * N_THETA, 3]``: base-surface points (the paint
    coordinates). ``vertex_data`` ``[V, NUM_ATTRS + 3]`` float32: the attributes of :class:`Mesh`
    followed by the neutral normals. Expressions only move the face window: grid rows
    ``rows[0]:rows[1]`` by columns ``cols[0]:cols[1]``.
    """

    positions: np.ndarray
    rest: np.ndarray
    radial: np.ndarray
    vertex_data: np.ndarray
    rows: tuple[int, int]
    cols: tuple[int, int]


def _feature_offsets(ident: Identity, x: np.ndarray, y: np.ndarray, z: np.ndarray, radial: np.ndarray):
    """Rest displacements ``[N, 3]`` of the facial features, from base-surface points (cm)."""
    front = smoothstep(1.0, 5.0, z)
    ax = np.abs(x)
    ey, ex = ident.eye_y, ident.eye_x
    by = ey + ident.brow_y
    # radial bumps: brow ridge, sockets and eyeballs, cheekbones, muzzle, chin; lip cushions
    out = 0.45 * gauss2(ax - 2.9, y - (by - 0.5), 2.3, 0.75) + 0.25 * gauss2(x, y - (ey + 1.3), 1.2, 0.8)
    out -= 0.75 * gauss2(ax - ex, y - ey - 0.1, 1.55, 1.0)
    out += 0.55 * gauss2(ax - ex, y - ey, 1.05, 0.62)
    out += ident.cheekbone * gauss2(ax - (ex + 1.2), y - (ey - 1.7), 1.7, 1.3)
    my, mw = ident.mouth_y, ident.mouth_w
    out += 0.3 * gauss2(x, y - my, 2.8, 2.0)
    lip_span = np.clip(1.0 - (x / (mw * 1.05)) ** 2, 0.0, 1.0) ** 0.7
    out += 0.35 * lip_span * gauss2(0.0, y - (my + 0.28 * ident.lip_up + 0.1), 1.0, 0.32)
    out += 0.4 * lip_span * gauss2(0.0, y - (my - 0.45 * ident.lip_lo), 1.0, 0.38)
    out -= 0.3 * gauss2(x, y - (my - ident.lip_lo - 0.45), 1.8, 0.35)  # groove below the lower lip
    out += 0.55 * gauss2(x, y - (ident.chin_y + 1.4), 1.7, 1.1)
    out *= front
    # nose: a ridge along +z from the nasion to the tip, widening to the wings
    ny = ident.nose_y
    top = ey + 0.4
    t = (top - y) / (top - ny)  # 0 at the nasion, 1 at the tip
    along = np.where(t < 1.0, 0.22 + 0.78 * np.clip(t, 0, 1) ** 1.6, 1.0 - smoothstep(1.0, 1.0 + 0.75 / (top - ny), t))
    along *= smoothstep(-0.25, 0.08, t)
    width = 0.6 + 0.45 * np.clip(t, 0, 1.2) ** 2
    across = np.clip(1.0 - (x / width) ** 2, 0.0, 1.0) ** 1.5
    tip = gauss2(x, y - (ny + 0.15), 0.55, 0.5) * 0.25
    wings = 0.55 * gauss2(ax - ident.nose_w * 0.62, y - (ny - 0.35), 0.42, 0.38)
    nose = ident.nose_proj * (along * across + tip) + wings * ident.nose_proj * 0.5
    nose *= smoothstep(0.0, 3.0, z)
    # hair volume: outward on the scalp, growing in from the hairline
    theta = np.arctan2(x, z)
    edge = hair_boundary(ident, theta)
    taper = 2.0 + 3.0 * np.abs(theta) / np.pi  # hair thins out gently at the nape
    hair = ident.hair_volume * np.clip((y - edge + 0.2) / taper, 0.0, 1.0) ** 1.5
    offsets = radial * (out + hair)[:, None]
    offsets[:, 2] += nose
    return offsets


def _left_ear(ident: Identity, head_x: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The subject's left ear as a flattened ellipsoid: positions, normals, unit coordinates.

    Each ``[EAR_V * EAR_U, 3]``. Unit coordinates: ``u`` outward (away from the head), ``v`` up,
    ``w`` forward; the painter draws the concha where ``u > 0``. The ear leans back at the top and
    its back rim stands off the head, as real ears do.
    """
    s = ident.ear_size
    pol = np.linspace(0, np.pi, EAR_V)
    azi = np.arange(EAR_U) * (2 * np.pi / EAR_U)
    p, a = np.meshgrid(pol, azi, indexing="ij")
    unit = np.stack([np.sin(p) * np.cos(a), np.cos(p), np.sin(p) * np.sin(a)], -1).reshape(-1, 3)
    axes = np.array([0.5, 3.0 * s, 1.75 * s])
    local = unit * axes
    normals = unit / axes
    tilt, flare = np.radians(-16.0), np.radians(-30.0)
    rx = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    ry = np.array([[np.cos(flare), 0, np.sin(flare)], [0, 1, 0], [-np.sin(flare), 0, np.cos(flare)]])
    rot = ry @ rx
    local = local @ rot.T + np.array([head_x + 0.2, ident.eye_y - 1.7, -0.5])
    normals = normals @ rot.T
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    return local, normals, unit


@lru_cache(maxsize=128)
def rest_head(ident: Identity) -> RestHead:
    """The neutral head of ``ident`` (cached, about 0.5 MB each: identities recur across images)."""
    theta = grid_columns()
    lower, upper, lip = _canonical_rows()
    lip_phi = np.degrees(_lip_line_elevation(ident, theta))  # [N_THETA]
    # remap the canonical rows so that the lip line lands on each column's lip elevation
    lo_rows = -90 + (lower[:, None] + 90) * (lip_phi[None, :] + 90) / (lip + 90)
    hi_rows = 90 - (90 - upper[:, None]) * (90 - lip_phi[None, :]) / (90 - lip)
    phi = np.concatenate([lo_rows, np.repeat(lip_phi[None, :], 3, 0), hi_rows], 0)  # [N_ROWS, N_THETA]
    phi = np.radians(np.clip(phi, -89.9, 89.9))
    th = np.broadcast_to(theta[None, :], phi.shape)
    radial = _directions(th.reshape(-1), phi.reshape(-1))
    rest = radial * base_radius(ident, radial)[:, None]
    x, y, z = rest.T
    grid = rest + _feature_offsets(ident, x, y, z, radial)
    if ident.asymmetry:
        grid[:, 1] += 0.12 * ident.asymmetry * np.tanh(x / 2.0) * smoothstep(1.0, 5.0, z)
    # the ear stands on the side of the head as built (hair volume included), behind the jaw joint
    near = (np.abs(y - (ident.eye_y - 1.7)) < 2.5) & (np.abs(z + 0.5) < 1.5) & (x > 0)
    head_x = float(grid[near, 0].max()) if near.any() else float(ident.cranium[0])
    ear, ear_normals, ear_unit = _left_ear(ident, head_x)
    if ident.hair_long:  # the ears are under the hair: shrink them to a point inside the head
        ear = ear.mean(0) + 0.01 * (ear - ear.mean(0)) - np.array([2.0, 0.0, 0.0])
    mirror = np.array([-1.0, 1.0, 1.0])
    n_ear = len(ear)
    data = np.zeros((len(grid) + 2 * n_ear, NUM_ATTRS + 3), dtype=np.float32)
    data[: len(grid), :3] = rest
    data[: len(grid), NUM_ATTRS:] = grid_normals(grid.reshape(N_ROWS, N_THETA, 3)).reshape(-1, 3)
    data[len(grid):, :3] = np.concatenate([ear_unit, ear_unit])
    data[len(grid):, NUM_ATTRS:] = np.concatenate([ear_normals, ear_normals * mirror])
    # the face window: every vertex an action unit can move (front of the head, brow to below the chin)
    y_grid, z_grid = y.reshape(N_ROWS, N_THETA), z.reshape(N_ROWS, N_THETA)
    moving = (z_grid > -1.5) & (y_grid > ident.chin_y - 4.6) & (y_grid < ident.eye_y + ident.brow_y + 5.6)
    rows = np.nonzero(moving.any(1))[0]
    cols = np.nonzero(moving.any(0))[0]
    f32 = np.float32
    return RestHead(
        positions=np.concatenate([grid, ear, ear * mirror]).astype(f32),
        rest=rest.astype(f32),
        radial=radial.astype(f32),
        vertex_data=data,
        rows=(int(rows[0]), int(rows[-1]) + 1),
        cols=(int(cols[0]), int(cols[-1]) + 1),
    )


# ----------------------------------------------------------------------------------------- expressions


class _Sided:
    """Per-vertex intensity of an AU, blending the right (x<0) and left (x>0) values smoothly."""

    def __init__(self, aus: np.ndarray, x: np.ndarray):
        self.aus = aus
        self.blend = np.tanh(x)

    def __call__(self, au: int) -> np.ndarray | float:
        right, left = self.aus[AU_INDEX[au]]
        if right == left:
            return float(right)
        return sided(right, left, self.blend)


# How far AU 10 at full intensity lifts the middle of the upper lip (cm); the painter bares the upper teeth
# by the same amount when a smile lifts the lip (the "smiles" detail), so both read it from here.
UPPER_LIP_LIFT = 0.6


def expression_offsets(ident: Identity, rest: np.ndarray, lower: np.ndarray, aus: np.ndarray) -> np.ndarray:
    """Displacements ``[N, 3]`` of head vertices at rest positions ``rest [N, 3]``.

    ``aus`` is ``[NUM_AUS, 2]``. Each action unit is a smooth field around the landmarks it moves,
    vanishing away from the face; lower-face fields use ``lower [N]`` (the vertex is on or below the
    lower lip's edge row) rather than height, so the lips can part.
    """
    x, y, z = rest.T
    ax = np.abs(x)
    sx = np.sign(x)
    front = smoothstep(1.0, 5.0, z)
    ey, ex = ident.eye_y, ident.eye_x
    by = ey + ident.brow_y
    my, mw = ident.mouth_y, ident.mouth_w
    off = np.zeros_like(rest)
    au = _Sided(aus, x)

    # --- brows and forehead: the skin above the upper lid moves; the lid region stretches
    lift = smoothstep(ey + 0.55, by - 0.2, y) * (1.0 - smoothstep(by + 1.0, by + 5.5, y)) * front
    off[:, 1] += 1.0 * au(1) * lift * gauss2(ax - 1.4, 0.0, 1.5, 1.0)
    off[:, 1] += 0.9 * au(2) * lift * gauss2(ax - (ex + 1.4), 0.0, 1.7, 1.0)
    brow4 = au(4) * lift * gauss2(ax - 1.9, 0.0, 2.0, 1.0)
    off[:, 1] -= 1.0 * brow4
    off[:, 0] -= 0.5 * sx * brow4
    off[:, 2] += 0.25 * brow4
    # --- eyes and cheeks
    off[:, 1] += 0.15 * au(5) * gauss2(ax - ex, y - (ey + 0.9), 1.5, 0.5) * front
    cheek = gauss2(ax - (ex + 0.4), y - (ey - 2.0), 1.7, 1.2) * front
    off[:, 1] += 0.5 * au(6) * cheek
    off[:, 2] += 0.35 * au(6) * cheek
    off[:, 1] += 0.2 * au(7) * gauss2(ax - ex, y - (ey - 0.6), 1.2, 0.45) * front
    # --- nose wrinkler: wings and sides of the nose up, inner brows down
    nose9 = au(9)
    off[:, 1] += 0.4 * nose9 * gauss2(ax - ident.nose_w * 0.6, y - (ident.nose_y - 0.2), 0.9, 1.0) * front
    off[:, 1] -= 0.35 * nose9 * lift * gauss2(ax - 1.2, 0.0, 1.4, 1.0)
    # --- lips: corner fields act on both lip rows alike; upper/lower fields by side of the mouth
    corner = gauss2(ax - mw, y - my, 1.3, 1.3) * front
    a12, a15, a20, a23 = au(12), au(15), au(20), au(23)
    a26 = au(26)
    off[:, 0] += sx * corner * (ident.smile_out * a12 + 0.15 * a15 + 0.8 * a20 - 0.45 * a23 - 0.3 * a26)
    off[:, 1] += corner * (ident.smile_up * a12 - 0.9 * a15 - 0.15 * a20 - 0.35 * a26)
    off[:, 2] += corner * (-0.35 * a12 - 0.2 * a20 + 0.1 * a23)
    cheek12 = gauss2(ax - (mw + 0.9), y - (my + 1.9), 1.2, 1.3) * front
    off[:, 2] += 0.45 * a12 * cheek12
    off[:, 1] += 0.3 * a12 * cheek12
    lens = np.clip(1.0 - (x / (mw * 1.05)) ** 2, 0.0, 1.0)
    upper_lip = (~lower) & (y >= my - 0.01) & (z > 0)
    raise_up = lens**0.4 * np.exp(-np.maximum(y - my, 0.0) / 1.4) * upper_lip
    lip10 = au(10) + ident.smile_lip * a12  # the "smiles" detail: some smiles lift the upper lip too
    off[:, 1] += raise_up * (UPPER_LIP_LIFT * lip10 + 0.25 * nose9 + 0.15 * au(17))
    off[:, 2] += raise_up * 0.15 * lip10
    below = np.maximum(my - y, 0.0)
    lower_lip = lens**0.6 * np.exp(-below / 1.1) * lower * (z > 0)
    off[:, 1] -= lower_lip * (0.3 * au(25) + 0.45 * au(16))
    off[:, 2] += lower_lip * 0.12 * au(16)
    press = gauss2(x / mw, y - my, 0.8, 0.6) * front
    off[:, 1] += press * 0.12 * au(24) * np.where(lower, 1.0, -1.0)
    off[:, 2] += press * (0.18 * au(23) - 0.12 * au(24))
    chin = gauss2(x, y - (ident.chin_y + 1.6), 1.9, 1.6) * lower * front
    off[:, 1] += chin * 0.45 * au(17) + lower_lip * 0.2 * au(17)
    off[:, 2] += chin * 0.25 * au(17) + lower_lip * 0.15 * au(17)
    # --- jaw: the lower face swings down and back, fading towards the ears and the neck
    jaw = 2.0 * a26 + 3.2 * au(27) + 0.15 * au(25)
    width = mw + 1.3 * below
    cone = np.clip(1.0 - (x / width) ** 2, 0.0, 1.0) ** 0.6
    cone *= smoothstep(-1.5, 5.0, z) * (1.0 - smoothstep(ident.chin_y - 0.5, ident.chin_y - 4.5, y))
    off[:, 1] -= jaw * cone * lower
    off[:, 2] -= 0.35 * jaw * cone * lower
    off[:, 0] -= sx * lens * front * 0.35 * au(27) * (np.abs(y - my) < 1.5)
    return off


def build_mesh(ident: Identity, aus: np.ndarray) -> Mesh:
    """The head of ``ident`` with expression ``aus [NUM_AUS, 2]``, as a :class:`Mesh`."""
    head = rest_head(ident)
    (r0, r1), (c0, c1) = head.rows, head.cols
    positions = head.positions.copy()
    grid = positions[: N_ROWS * N_THETA].reshape(N_ROWS, N_THETA, 3)
    rest = head.rest.reshape(N_ROWS, N_THETA, 3)[r0:r1, c0:c1].reshape(-1, 3)
    lower = np.repeat(np.arange(r0, r1) <= GAP_LO, c1 - c0)
    grid[r0:r1, c0:c1] += expression_offsets(ident, rest, lower, aus).reshape(r1 - r0, c1 - c0, 3)
    # keep the lips from crossing, then hang the mouth interior between them, set back into the head
    lo, up = grid[GAP_LO, c0:c1], grid[GAP_UP, c0:c1]
    lo[:, 1] = np.minimum(lo[:, 1], up[:, 1])
    opening = np.maximum(up[:, 1] - lo[:, 1], 0.0)  # [c1 - c0]
    depth = np.minimum(0.8 * opening + 2.0 * np.sqrt(opening), 2.2)
    radial = head.radial.reshape(N_ROWS, N_THETA, 3)[GAP_MID, c0:c1]
    grid[GAP_MID, c0:c1] = 0.5 * (lo + up) - radial * depth[:, None]
    data = head.vertex_data.copy()
    attrs = data[: N_ROWS * N_THETA].reshape(N_ROWS, N_THETA, -1)
    attrs[GAP_MID, c0:c1, ATTR_GAP] = 0.5 * opening
    attrs[GAP_LO, c0:c1, ATTR_GAP] = opening
    attrs[GAP_LO:GAP_UP + 1, c0:c1, ATTR_OPEN] = opening
    # normals change only inside the face window (plus its one-vertex border)
    rr = slice(max(r0 - 1, 0), min(r1 + 1, N_ROWS))
    cc = slice(max(c0 - 1, 0), min(c1 + 1, N_THETA))
    attrs[rr, cc, NUM_ATTRS:] = grid_normals(grid, rr, cc)
    tris, kind = mesh_topology()
    return Mesh(
        positions=positions,
        triangles=tris,
        kind=kind,
        vertex_data=data,
    )


@lru_cache(maxsize=1)
def mesh_topology() -> tuple[np.ndarray, np.ndarray]:
    """Triangles ``[T, 3]`` and kinds ``[T]`` of the whole mesh: head grid, left ear, right ear."""
    tris, kind = head_topology()
    ear_tris = ear_topology()
    n_head, n_ear = N_ROWS * N_THETA, EAR_U * EAR_V
    right_ear = ear_tris[:, ::-1] + n_head + n_ear  # the mirrored ear: reverse the winding
    return (
        np.concatenate([tris, ear_tris + n_head, right_ear]).astype(np.int32),
        np.concatenate([kind, np.full(2 * len(ear_tris), KIND_EAR, np.uint8)]),
    )


@lru_cache(maxsize=1)
def _row_neighbours() -> tuple[np.ndarray, np.ndarray]:
    """For normals: the rows below/above each row; the lip edges look only at their own lip."""
    down = np.maximum(np.arange(N_ROWS) - 1, 0)
    up = np.minimum(np.arange(N_ROWS) + 1, N_ROWS - 1)
    down[GAP_UP], up[GAP_LO] = GAP_UP, GAP_LO
    down[GAP_MID], up[GAP_MID] = GAP_LO, GAP_UP
    return down, up


def grid_normals(grid: np.ndarray, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
    """Outward unit normals of the ``[N_ROWS, N_THETA, 3]`` grid surface, for a window of it.

    Returns ``[len(rows), len(cols), 3]``; columns wrap around the head.
    """
    down, up = _row_neighbours()
    r = np.arange(N_ROWS)[rows]
    c = np.arange(N_THETA)[cols]
    if c[0] > 0 and c[-1] < N_THETA - 1:  # no wrap-around: plain slices
        band = grid[r]
        d_theta = band[:, c[0] + 1:c[-1] + 2] - band[:, c[0] - 1:c[-1]]
        d_phi = grid[up[r], c[0]:c[-1] + 1] - grid[down[r], c[0]:c[-1] + 1]
    else:
        d_theta = grid[r][:, (c + 1) % N_THETA] - grid[r][:, (c - 1) % N_THETA]
        d_phi = grid[up[r]][:, c] - grid[down[r]][:, c]
    tx, ty, tz = d_theta[..., 0], d_theta[..., 1], d_theta[..., 2]
    px, py, pz = d_phi[..., 0], d_phi[..., 1], d_phi[..., 2]
    n = np.stack([ty * pz - tz * py, tz * px - tx * pz, tx * py - ty * px], -1)
    length = np.sqrt(n[..., 0] ** 2 + n[..., 1] ** 2 + n[..., 2] ** 2)[..., None]
    fallback = grid[r][:, c]  # at the poles: away from the head centre
    n = np.where(length > 1e-9, n / np.maximum(length, 1e-12), fallback)
    return n / np.sqrt(n[..., 0] ** 2 + n[..., 1] ** 2 + n[..., 2] ** 2)[..., None]


# ----------------------------------------------------------------------------------------- landmarks


def face_landmarks(ident: Identity, mesh: Mesh) -> np.ndarray:
    """The five crop landmarks of the posed head, ``[5, 3]`` cm in the head frame (expression applied).

    Order as in :mod:`phanet.crop` for a frontal view: the eye on the image's left (the subject's
    right, ``x < 0``), the other eye, the nose tip, the mouth corner on the image's left, the other.
    Each is the deformed position of the surface point whose rest coordinates are the identity's
    landmark, so a smile moves the mouth corners exactly as it moves the skin that is drawn there.
    """
    n_grid = N_ROWS * N_THETA
    grid = mesh.positions[:n_grid].reshape(N_ROWS, N_THETA, 3)
    rest = mesh.vertex_data[:n_grid, :3].reshape(N_ROWS, N_THETA, 3)
    front = rest[..., 2] > 0
    front_rest, front_pos = rest[front], grid[front]

    def surface_point(x: float, y: float) -> np.ndarray:
        # inverse-distance weights over the 4 nearest front vertices, in rest (x, y)
        dist = np.hypot(front_rest[:, 0] - x, front_rest[:, 1] - y)
        near = np.argpartition(dist, 4)[:4]
        w = 1.0 / np.maximum(dist[near], 1e-4)
        return (front_pos[near] * w[:, None]).sum(0) / w.sum()

    # the lip line: the corners lie where its two lip edges meet, between the nearest two columns
    lip = 0.5 * (grid[GAP_LO] + grid[GAP_UP])
    lip_x = rest[GAP_UP, :, 0]
    cols = np.nonzero(front[GAP_UP])[0]
    order = cols[np.argsort(lip_x[cols])]

    def mouth_corner(x: float) -> np.ndarray:
        return np.stack([np.interp(x, lip_x[order], lip[order, k]) for k in range(3)])

    return np.stack([
        surface_point(-ident.eye_x, ident.eye_y),
        surface_point(ident.eye_x, ident.eye_y),
        surface_point(0.0, ident.nose_y),
        mouth_corner(-ident.mouth_w),
        mouth_corner(ident.mouth_w),
    ]).astype(np.float64)
