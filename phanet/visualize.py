"""Pictures of what the model does: attention heat-maps over faces, and boxes with labels.

:func:`overlay_attention` blends an attention map (any resolution; PhaNet's per-scale maps are
``[h_s, w_s]``) over an image with a matplotlib colormap; training reports use it on aligned crops.
:func:`paste_attention` maps a crop-space attention map back onto the original photo through the
alignment transform, so annotated outputs show the heat-map on the face where it was found.
:func:`draw_predictions` draws boxes and labels; :func:`annotate` does both for ``phanet predict``.

Only PIL, numpy and matplotlib are used (core dependencies), so reports work without OpenCV.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BOX_COLOR = (255, 214, 0)
TEXT_COLOR = (0, 0, 0)


def _resize_map(attention: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of a float ``[h, w]`` map to ``[height, width]``."""
    attention = np.asarray(attention, dtype=np.float32)
    if attention.shape == (height, width):
        return attention
    resized = Image.fromarray(attention, mode="F").resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def overlay_attention(
    image: np.ndarray,
    attention: np.ndarray,
    alpha: float = 0.5,
    cmap: str = "jet",
    mask: np.ndarray | None = None,
    normalize: bool = True,
) -> np.ndarray:
    """Blend a colour-mapped attention map over ``image``.

    image: ``[H, W, 3]`` uint8 RGB.
    attention: ``[h, w]`` float, resized to ``[H, W]``; min-max normalised when ``normalize``, else
        taken as already in [0, 1] (clipped).
    alpha: opacity of the heat-map where it applies.
    mask: optional ``[H, W]`` float in [0, 1] limiting where the heat-map is drawn (e.g. a face).
    Returns ``[H, W, 3]`` uint8.
    """
    import matplotlib

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected an [H, W, 3] uint8 image, got {image.dtype} {image.shape}")
    attention = np.asarray(attention, dtype=np.float32)
    while attention.ndim > 2 and attention.shape[0] == 1:  # [1, h, w] -> [h, w]; keeps a 1x1 map 2-D
        attention = attention[0]
    if attention.ndim != 2:
        raise ValueError(f"expected an [h, w] attention map, got shape {attention.shape}")
    h, w = image.shape[:2]
    heat = _resize_map(attention, w, h)
    if normalize:
        low, high = float(heat.min()), float(heat.max())
        heat = (heat - low) / (high - low) if high > low else np.zeros_like(heat)
    heat = np.clip(heat, 0.0, 1.0)
    lut = (matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, 256))[:, :3] * 255.0).astype(np.float32)
    colors = lut[np.round(heat * 255.0).astype(np.intp)]  # [H, W, 3]
    weight = np.full((h, w), alpha, dtype=np.float32)
    if mask is not None:
        weight = weight * np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)
    blended = image.astype(np.float32) * (1.0 - weight[..., None]) + colors * weight[..., None]
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def paste_attention(
    attention: np.ndarray, matrix: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Map a crop-space ``[s, s]`` attention map onto a ``width x height`` image.

    matrix: ``[2, 3]`` similarity mapping image pixels to crop pixels (as the predictor returns it).
    Returns ``(heat [height, width], mask [height, width])``, both float; mask is 1 on the crop's
    footprint and 0 elsewhere.
    """
    attention = np.asarray(attention, dtype=np.float32)
    # PIL's affine transform takes, per output pixel, the input position: exactly image -> crop.
    data = tuple(float(v) for v in np.asarray(matrix, dtype=np.float64).reshape(-1))
    heat = Image.fromarray(attention, mode="F").transform(
        (width, height), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR, fillcolor=0.0
    )
    footprint = Image.fromarray(np.ones_like(attention), mode="F").transform(
        (width, height), Image.Transform.AFFINE, data, resample=Image.Resampling.BILINEAR, fillcolor=0.0
    )
    return np.asarray(heat, dtype=np.float32), np.asarray(footprint, dtype=np.float32)


def _field(face: Any, name: str, default=None):
    if isinstance(face, Mapping):
        return face.get(name, default)
    return getattr(face, name, default)


def face_label(face: Any) -> str:
    """``"happy 0.87 | yaw-30"``: expression with its probability, then the pose bin if any, then ``retried`` for a
    face the detector found only in its looser passes (a less certain face)."""
    expression = _field(face, "expression")
    probability = (_field(face, "probabilities") or {}).get(expression)
    parts = [expression if probability is None else f"{expression} {probability:.2f}", _field(face, "pose")]
    return " | ".join(part for part in [*parts, "retried" if _field(face, "retried") else None] if part)


def draw_predictions(image: np.ndarray, faces: Sequence[Any]) -> np.ndarray:
    """Draw each face's box and label on a copy of ``image [H, W, 3]`` uint8; returns the copy.

    faces: :class:`~phanet.inference.predictor.FacePrediction` s or their JSON dicts (``box``,
    ``expression``, ``probabilities``, ``pose``).
    """
    canvas = Image.fromarray(np.asarray(image, dtype=np.uint8))
    draw = ImageDraw.Draw(canvas)
    h, w = canvas.height, canvas.width
    line = max(1, round(max(h, w) / 300))
    font = ImageFont.load_default(size=max(10, round(max(h, w) / 40)))
    for face in faces:
        x0, y0, x1, y1 = (float(v) for v in _field(face, "box"))
        draw.rectangle((x0, y0, x1, y1), outline=BOX_COLOR, width=line)
        label = face_label(face)
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        tw, th = right - left, bottom - top
        ty = y0 - th - 2 * line - 2 if y0 - th - 2 * line - 2 >= 0 else y1 + line
        tx = min(max(0.0, x0), max(0.0, w - tw - 4))
        draw.rectangle((tx, ty, tx + tw + 4, ty + th + 2 * line + 2), fill=BOX_COLOR)
        draw.text((tx + 2 - left, ty + line + 1 - top), label, fill=TEXT_COLOR, font=font)
    return np.asarray(canvas)


def annotate(image: np.ndarray, faces: Sequence[Any], alpha: float = 0.45) -> np.ndarray:
    """The attention heat-map of every face that has one (pasted back on the photo), then boxes and labels."""
    h, w = image.shape[:2]
    heat = np.zeros((h, w), dtype=np.float32)
    mask = np.zeros((h, w), dtype=np.float32)
    for face in faces:
        attention, matrix = _field(face, "attention"), _field(face, "matrix")
        if attention is None or matrix is None:
            continue
        face_heat, footprint = paste_attention(attention, matrix, w, h)
        heat = np.where(footprint > mask, face_heat, heat)
        mask = np.maximum(mask, footprint)
    out = np.array(image, dtype=np.uint8)
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    if len(rows):
        # Blend only the faces' bounding region (cheap on huge photos). Each face's map is already
        # normalised to [0, 1]; no re-normalising keeps faces comparable.
        region = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        out[region] = overlay_attention(out[region], heat[region], alpha=alpha, mask=mask[region], normalize=False)
    return draw_predictions(out, faces)
