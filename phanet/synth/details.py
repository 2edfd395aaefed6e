"""Optional appearance details painted on the skin: texture, freckles, moles, make-up, socket shading,
the nose base and glasses (the static age lines live with the other folds in :func:`.paint._creases`).

Each painter reads fields of :class:`.identity.Identity` whose defaults paint nothing, so a face drawn
without these details (``sample_identity(..., details=())``) is painted exactly as before. Like the
rest of the paint, everything is placed in rest coordinates (cm), so it moves with the skin and turns
with the head. ``p`` is the painter's per-pixel state (:class:`.paint._Pixels`): coordinates ``x``,
``y``, ``ax = |x|``, the identity and the anti-aliased ``edge``/``line`` helpers.
"""

from __future__ import annotations

import numpy as np

from phanet.synth.maths import gauss, gauss2, mix_into, smoothstep, value_noise

F32 = np.float32


def _noise(p, z: np.ndarray, idx: np.ndarray, frequency: float, key: int) -> np.ndarray:
    """Value noise in [-0.5, 0.5) at pixels ``idx``, faded out once its wavelength nears a pixel
    (finer detail than the image can show would only alias into random speckle)."""
    fade = float(np.clip(0.5 / (frequency * p.pixel_cm) - 1.0, 0.0, 1.0))
    if fade == 0.0:
        return np.zeros(len(idx), dtype=F32)
    points = np.stack([p.x[idx], p.y[idx], z[idx]], axis=1)
    return fade * (value_noise(points, frequency, key) - F32(0.5))


def skin_texture(p, z: np.ndarray, col: np.ndarray) -> None:
    """Mottling at three scales (blotches, patches, pores) and a slow red/yellow variation."""
    amp = p.ident.skin_texture
    if amp <= 0:
        return
    idx = np.arange(len(col))
    value = 0.5 * _noise(p, z, idx, 0.6, 1) + 0.3 * _noise(p, z, idx, 2.0, 2) + 0.35 * _noise(p, z, idx, 6.0, 3)
    red = _noise(p, z, idx, 0.35, 4)
    col *= (1.0 + 2.0 * amp * value)[:, None]
    col *= 1.0 + (1.5 * amp * red)[:, None] * np.array([0.5, -0.3, -0.4], dtype=F32)


def freckles_and_moles(p, z: np.ndarray, face: np.ndarray, col: np.ndarray) -> None:
    """Freckles over the nose and cheeks; a few small dark moles anywhere on the face."""
    ident = p.ident
    if ident.freckles > 0:
        area = gauss2(p.ax[face] - 1.6, p.y[face] - (ident.eye_y - 2.0), 2.6, 1.6)
        spots = smoothstep(0.38 - 0.12 * ident.freckles, 0.46 - 0.1 * ident.freckles, _noise(p, z, face, 3.0, 5))
        mix_into(col, face, np.asarray(ident.skin, dtype=F32) * F32(0.72), 0.6 * area * spots)
    for mx, my, radius in ident.moles:
        near = face[(np.abs(p.x[face] - mx) < radius + 0.5) & (np.abs(p.y[face] - my) < radius + 0.5)]
        if len(near):
            alpha = p.edge(np.hypot(p.x[near] - mx, p.y[near] - my) - radius, 0.03)
            mix_into(col, near, (0.28, 0.18, 0.13), 0.85 * alpha)


def make_up(p, face: np.ndarray, col: np.ndarray) -> None:
    """Blush on the cheekbones and eye shadow on the upper lids (painted before the eyes)."""
    ident = p.ident
    ax, y = p.ax[face], p.y[face]
    if ident.blush > 0:
        cheeks = gauss2(ax - (ident.eye_x + 0.4), y - (ident.eye_y - 2.6), 1.5, 1.1)
        col[face] *= 1.0 + (ident.blush * cheeks)[:, None] * np.array([0.25, -0.3, -0.15], dtype=F32)
    if ident.eye_shadow > 0:
        lid = gauss2(ax - ident.eye_x, y - (ident.eye_y + 0.75), ident.eye_w * 0.9, 0.55)
        mix_into(col, face, ident.eye_shadow_colour, ident.eye_shadow * lid)


def socket_shading(p, z: np.ndarray, col: np.ndarray) -> None:
    """Darken what a brow ridge, nose, lower lip and jaw shade under a top light: the eye sockets
    (most at the inner upper corner), the sides of the nose bridge, under the nose, under the lower
    lip, and the neck under the chin."""
    ident = p.ident
    if ident.socket_shade <= 0:
        return
    ax, y = p.ax, p.y
    ey, ex, ew = ident.eye_y, ident.eye_x, ident.eye_w
    front = smoothstep(0.0, 2.0, z)
    shade = 0.8 * gauss2(ax - (ex - 0.2), y - (ey + 0.45), ew * 1.05, 0.8)
    shade += 0.7 * gauss2(ax - (ex - ew), y - (ey + 0.55), 0.55, 0.6)
    shade += 0.35 * gauss(ax - 0.75 * ident.nose_w, 0.35) * smoothstep(ident.nose_y + 0.5, ey - 0.5, y) * (y < ey + 0.5)
    shade += 0.8 * gauss2(p.x, y - (ident.nose_y - 0.75), 0.8 * ident.nose_w, 0.3)
    shade += 0.6 * gauss2(p.x, y - (ident.mouth_y - ident.lip_lo - 0.5), 0.7 * ident.mouth_w, 0.35)
    chin = ident.chin_y
    neck = smoothstep(chin + 0.3, chin - 1.2, y) * (1 - smoothstep(chin - 5.0, chin - 8.0, y))
    shade = shade * front + 0.9 * neck * smoothstep(-3.0, 1.0, z)
    col *= (1.0 - np.clip(ident.socket_shade * shade, 0.0, 0.6))[:, None]


def nose_base(p, face: np.ndarray, col: np.ndarray) -> None:
    """The resting nose base as photos show it: the groove round each nose wing (the alar crease, a
    crescent over and outside the wing, open where the nostril is), the wings and the skin under the tip
    shaded, the tip lit. Placed on the wing bump of :func:`.geometry._feature_offsets`."""
    ident = p.ident
    if ident.alar_crease <= 0 and ident.nose_shade <= 0:
        return
    ny, nw = ident.nose_y, ident.nose_w
    idx = face[(p.ax[face] < nw + 0.5) & (p.y[face] < ny + 1.0) & (p.y[face] > ny - 1.2)]
    if not len(idx):
        return
    ax, y = p.ax[idx], p.y[idx]
    cx, cy, rx, ry = 0.55 * nw, ny - 0.3, 0.45 * nw + 0.1, 0.65
    radius = np.hypot((ax - cx) / rx, (y - cy) / ry)
    angle = np.arctan2(y - cy, ax - cx)  # 0 outwards, pi/2 up; the crease: from below-outside up round the wing
    crescent = smoothstep(-1.5, -0.9, angle) * (1.0 - smoothstep(1.5, 2.1, angle))
    dark = ident.alar_crease * p.line((radius - 1.0) * min(rx, ry), 0.06) * crescent
    shade = gauss2(p.x[idx], y - (ny - 0.62), 0.45 * nw, 0.2) + 0.5 * gauss2(ax - cx, y - cy, 0.3 * nw, 0.32)
    dark += ident.nose_shade * (shade - 0.6 * gauss2(p.x[idx], y - (ny + 0.25), 0.35, 0.3))
    col[idx] *= np.clip(1.0 - dark, 0.4, 1.3)[:, None]


def glasses(p, z: np.ndarray, col: np.ndarray, spec: np.ndarray) -> None:
    """Spectacles: two superellipse rims round the eyes, a bridge over the nose, arms back to the ears,
    slightly tinted, reflective lenses. They lie on the skin (no depth of their own), which is close
    enough at the sizes the network sees."""
    ident = p.ident
    if ident.glasses <= 0:
        return
    half_w, half_h = ident.glasses_size
    n, width = ident.glasses_round, ident.glasses
    ey, ex = ident.eye_y - 0.1, ident.eye_x
    idx = np.nonzero((z > -2.5) & (np.abs(p.y - ey) < half_h + 1.0))[0]
    if not len(idx):
        return
    ax, y, zs = p.ax[idx], p.y[idx], z[idx]
    front = zs > 1.5
    u, v = (ax - ex) / half_w, (y - ey) / half_h
    radius = (np.abs(u) ** n + np.abs(v) ** n) ** (1.0 / n)
    rim = p.edge(np.abs(radius - 1.0) * min(half_w, half_h) - 0.5 * width) * front
    lens = (1.0 - smoothstep(0.97, 1.0, radius)) * front
    bridge_y = ey + 0.35 * half_h
    bridge = p.edge(np.maximum(np.abs(y - bridge_y) - 0.35 * width, ax - (ex - half_w + 0.2))) * front
    arm_y = ey + 0.45 * half_h
    arm = p.edge(np.maximum(np.abs(y - arm_y) - 0.3 * width, (ex + half_w - 0.2) - ax)) * (zs > -2.0)
    mix_into(col, idx, (0.72, 0.78, 0.82), 0.08 * lens)
    spec[idx] = np.maximum(spec[idx], 0.25 * lens)
    frame = np.clip(np.maximum(np.maximum(rim, bridge), arm), 0.0, 1.0)
    mix_into(col, idx, ident.glasses_colour, frame)
    spec[idx] = spec[idx] * (1 - frame) + 0.35 * frame
