"""Render a synthetic face: perspective camera, z-buffer rasterisation, Lambert/Phong shading.

``render_scene`` takes an identity, AU intensities, a :class:`View` (yaw, pitch, roll, scale, shift)
and a :class:`Scene` (lights, background, gaze) and returns an ``[size, size, 3]`` uint8 RGB image.
Pipeline: build the mesh (:mod:`.geometry`), turn and project it, rasterise with a z-buffer
(:mod:`.raster`), interpolate rest coordinates and normals per pixel, paint (:mod:`.paint`), shade,
composite over the backdrop. Painted edges and the outer silhouette are anti-aliased analytically,
so one sample per pixel suffices (``supersample`` renders larger and averages down, for smoother
inner silhouettes at a proportional cost). ``render_face`` draws everything from
``(seed, subject, expression, variant)`` and the pose, deterministically.

Pose convention (the one of :class:`phanet.data.PoseBin`): positive **yaw** turns the head to the
subject's own left, so the nose points to the image's right and the right cheek and ear come into
view; positive **pitch** tilts the head back (the subject looks up). The camera looks at the head
from 70 cm; the light is fixed relative to the camera, as in a studio, so the shading changes with
pose as it does on real multi-view captures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from phanet.crop import DEFAULT_FIT, DEFAULT_PADDING, FITS, alignment_matrix, apply_similarity, crop_spec
from phanet.synth.expressions import AU_INDEX, NUM_AUS, sample_aus, sample_intensity
from phanet.synth.geometry import KIND_EAR, KIND_MOUTH, NUM_ATTRS, build_mesh, face_landmarks
from phanet.synth.identity import IDENTITY_DETAILS, Identity, sample_identity
from phanet.synth.maths import smoothstep, value_noise
from phanet.synth.paint import paint
from phanet.synth.raster import rasterize

# Domain-randomisation switches of the generator (each can be turned off to measure its effect):
# "lips" full and varied lips (identity.sample_identity), "subtle" expression intensities from subtle
# to full and "blends" weak mixtures of two expressions (expressions.sample_aus); the identity details
# "brows", "skin", "age", "shading", "glasses", "resting", "eyes", "teeth", "smiles", "broad_smiles", "nose",
# "rest_shape", "rest_spread", "lashes" and "mid_face"
# (identity._with_details, painted by .details and paint._creases; the resting face added to the AUs by render_scene;
# "teeth" also gives happy the posed smile in expressions.sample_aus; "smiles" and "broad_smiles" move the mouth in
# geometry.expression_offsets);
# "clutter" backgrounds (textures and shapes, sample_scene); "camera" distance and so perspective from a
# selfie to a portrait lens (sample_view). Camera effects
# (colour, blur, noise, JPEG, grayscale, occluders) are train-time augmentation: the `photo` preset.
RANDOMIZATIONS = ("lips", "subtle", "blends") + IDENTITY_DETAILS + ("clutter", "camera")
# What a renderer uses when not told: the switches of version 0.2, so that sets rendered before the
# later switches existed (and the results measured on them) render the same. "all" names every switch.
DEFAULT_RANDOMIZATIONS = ("blends", "lips", "subtle")

CAMERA_DISTANCE = 70.0  # cm from the pivot
FIELD = 23.0  # cm spanned by the image at the pivot's distance (scale 1)
PIVOT = np.array([0.0, -1.3, 0.8])  # the head turns about this point (head frame, cm)
LOOK_AT = np.array([0.0, 0.0, 3.0])  # offset from PIVOT to the head point framed at the image centre


@dataclass(frozen=True)
class View:
    """Head pose (degrees) and framing: ``scale`` multiplies the face size, ``shift`` is in image widths,
    ``distance`` is the camera's from the head's pivot (cm; the focal length follows it, so the face
    keeps its size and only the perspective changes: near cameras enlarge the nose, far ones flatten)."""

    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)
    distance: float = CAMERA_DISTANCE


@dataclass(frozen=True)
class RenderSettings:
    """How a set of faces is rendered: the same for every image of the set.

    ``size``: output pixels (square). ``jitter``: small random pose (±3°), roll (±4°), scale (±6 %)
    and position (±3 %) changes per capture, themselves deterministic. ``align_padding``: None
    frames the head with the camera (:func:`render_face`'s default); a number renders the aligned
    crop of the face-crop contract (:mod:`phanet.crop`) with that padding, fitted as ``align_fit`` says
    (:data:`phanet.crop.FITS`). ``randomize``: the domain randomisations in use
    (:data:`RANDOMIZATIONS`; ``()`` renders the faces of version 0.1, the default
    :data:`DEFAULT_RANDOMIZATIONS` those of version 0.2). Values are checked and
    ``randomize`` normalised (sorted tuple) at construction, so rendering never re-checks them.
    """

    size: int = 112
    jitter: bool = True
    align_padding: float | None = DEFAULT_PADDING
    align_fit: str = DEFAULT_FIT
    randomize: tuple[str, ...] = DEFAULT_RANDOMIZATIONS

    def __post_init__(self):
        if int(self.size) < 8:
            raise ValueError(f"image size must be at least 8 pixels, got {self.size}")
        object.__setattr__(self, "randomize", check_randomize(self.randomize))
        if self.align_padding is not None:
            crop_spec(self.align_padding, self.align_fit)  # refuses an impossible padding or fit
        elif self.align_fit not in FITS:
            raise ValueError(f"unknown crop fit {self.align_fit!r}; known: {', '.join(FITS)}")


@dataclass(frozen=True)
class Scene:
    """Lighting (camera frame: x right, y up, z towards the camera), background and gaze.

    ``light`` points from the face towards the key light. ``background`` is the top and bottom colour
    of a vertical gradient, ``blobs`` adds soft coloured patches ``(x, y, radius, r, g, b, alpha)`` in
    image units. ``clutter`` adds soft-edged boxes ``(x0, y0, x1, y1, r, g, b, alpha, stripes, angle)``
    (image units; ``stripes`` > 0 paints them as stripes of that many periods per image width at
    ``angle`` radians) and ``texture`` ``(amplitude, key)`` a noise texture over the whole backdrop.
    ``gaze`` moves both irises (cm, right/up).
    """

    light: tuple[float, float, float] = (0.0, 0.35, 0.94)
    light_colour: tuple[float, float, float] = (1.0, 0.97, 0.93)
    intensity: float = 0.85
    ambient: float = 0.4
    ambient_colour: tuple[float, float, float] = (0.95, 0.97, 1.0)
    fill: float = 0.15
    background: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0.6, 0.62, 0.65), (0.45, 0.47, 0.5))
    blobs: tuple[tuple[float, ...], ...] = ()
    gaze: tuple[float, float] = (0.0, 0.0)
    clutter: tuple[tuple[float, ...], ...] = ()
    texture: tuple[float, int] = (0.0, 0)


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head-to-camera rotation: yaw about y (nose to +x), then pitch (nose up), then roll."""
    y, p, r = np.radians([yaw, -pitch, roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def background(scene: Scene, size: int) -> np.ndarray:
    """The backdrop ``[size, size, 3]`` float32 in 0..1."""
    t = ((np.arange(size, dtype=np.float32) + 0.5) / size)[:, None, None]
    top, bottom = (np.asarray(c, dtype=np.float32) for c in scene.background)
    img = np.broadcast_to(top * (1 - t) + bottom * t, (size, size, 3)).copy()
    u = (np.arange(size, dtype=np.float32) + 0.5) / size
    for bx, by, radius, r, g, b, alpha in scene.blobs:
        w = alpha * np.outer(np.exp(-((u - by) ** 2) / (2 * radius**2)), np.exp(-((u - bx) ** 2) / (2 * radius**2)))
        img += w[..., None] * (np.array([r, g, b], dtype=np.float32) - img)
    for x0, y0, x1, y1, r, g, b, alpha, stripes, angle in scene.clutter:
        soft = 1.5 / size
        box = np.outer(smoothstep(y0 - soft, y0 + soft, u) * smoothstep(y1 + soft, y1 - soft, u),
                       smoothstep(x0 - soft, x0 + soft, u) * smoothstep(x1 + soft, x1 - soft, u))
        colour = np.broadcast_to(np.array([r, g, b], dtype=np.float32), (size, size, 3))
        if stripes > 0:
            phase = 2 * np.pi * stripes * (np.cos(angle) * u[None, :] + np.sin(angle) * u[:, None])
            colour = colour * (0.55 + 0.45 * np.sin(phase))[..., None]
        img += (alpha * box)[..., None] * (colour - img)
    amplitude, key = scene.texture
    if amplitude > 0:
        yy, xx = np.meshgrid(u, u, indexing="ij")
        points = np.stack([xx.ravel(), yy.ravel(), np.zeros(size * size)], axis=1)
        grain = value_noise(points, 12.0, key) - 0.5 + 0.5 * (value_noise(points, 40.0, key + 1) - 0.5)
        img *= (1.0 + 2.0 * amplitude * grain.reshape(size, size))[..., None]
    return np.clip(img, 0.0, 1.0)


def composite(colour: np.ndarray, cover: np.ndarray, backdrop: np.ndarray) -> np.ndarray:
    """Put the face ``colour [H, W, 3]`` (where ``cover [H, W]`` is 1) over ``backdrop``.

    The silhouette is anti-aliased by giving pixels along it the 3 x 3 average coverage as their
    opacity; pixels just outside take the average colour of their face neighbours.
    """
    h, w = cover.shape
    padded = np.pad(cover, 1, mode="edge")
    rows = padded[:-2] + padded[1:-1] + padded[2:]
    alpha = (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) * (1.0 / 9.0)
    out = np.where(cover[..., None] > 0, colour, backdrop)
    ey, ex = np.nonzero((alpha > 0) & (alpha < 1))
    if len(ey):
        a = alpha[ey, ex][:, None]
        inside = cover[ey, ex] > 0
        # mean face colour of the 3 x 3 neighbourhood, for pixels just outside the face
        total = np.zeros((len(ey), 3), dtype=np.float32)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                yy, xx = np.clip(ey + dy, 0, h - 1), np.clip(ex + dx, 0, w - 1)
                total += colour[yy, xx] * cover[yy, xx][:, None]
        own = np.where(inside[:, None], colour[ey, ex], total / (9.0 * a))
        out[ey, ex] = a * own + (1 - a) * backdrop[ey, ex]
    return out


def _with_resting_face(aus: np.ndarray, ident: Identity) -> np.ndarray:
    """``aus`` plus the identity's resting face (``Identity.resting``), saturating at 1: a person's
    resting features stay under their expressions."""
    if not ident.resting:
        return aus
    rest = np.zeros_like(aus)
    for au, intensity in ident.resting:
        rest[AU_INDEX[au]] += intensity  # one unit may be named twice (``resting`` and ``rest_shape``/``rest_spread``)
    return np.clip(aus + rest, 0.0, 1.0)


def render_scene(
    ident: Identity,
    aus: np.ndarray,
    view: View,
    scene: Scene,
    size: int = 112,
    supersample: int = 1,
    *,
    align_padding: float | None = None,
    return_landmarks: bool = False,
    align_fit: str = DEFAULT_FIT,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Render one face: ``[size, size, 3]`` uint8 RGB (and its landmarks, when asked).

    ``aus`` is ``[NUM_AUS, 2]`` (see :mod:`.expressions`). Painted features and the silhouette are
    anti-aliased analytically; ``supersample > 1`` renders ``supersample``-times larger and
    averages down, for smoother inner edges at ``supersample**2`` times the cost.

    ``align_padding``: None frames the head with the camera of ``view`` (scale, shift, roll as
    given); a number renders the crop of the face-crop contract (:mod:`phanet.crop`) directly: the
    similarity that maps the five projected landmarks onto the template (with that padding, fitted
    as ``align_fit`` says: :data:`phanet.crop.FITS`) is
    folded into the camera (roll about the optical axis, focal length, principal point), so the
    image is exactly the aligned crop with no resampling. ``return_landmarks`` also returns the
    five landmarks ``[5, 2]`` (x, y) in output pixels, projected from 3D (hidden ones included).
    """
    if size < 8:
        raise ValueError(f"image size must be at least 8 pixels, got {size}")
    aus = np.asarray(aus, dtype=np.float64)
    if aus.shape != (NUM_AUS, 2):
        raise ValueError(f"aus must have shape ({NUM_AUS}, 2), got {aus.shape}")
    aus = _with_resting_face(aus, ident)
    mesh = build_mesh(ident, aus)
    big = size * supersample
    rot = _rotation(view.yaw, view.pitch, view.roll).astype(np.float32)
    xy, depth = _project(mesh.positions, rot, view, big)
    marks = _project(face_landmarks(ident, mesh).astype(np.float32), rot, view, big)[0].astype(np.float64)
    pixel_cm = FIELD / (big * view.scale)
    if align_padding is not None:  # fold the alignment into the camera: the image is the aligned crop
        matrix = alignment_matrix(marks, big, align_padding, align_fit)
        xy = apply_similarity(matrix, xy).astype(np.float32)
        marks = apply_similarity(matrix, marks)
        pixel_cm /= float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    frags = rasterize(xy, depth, mesh.triangles, big, big)

    # interpolate rest coordinates, mouth attributes and normals at each visible pixel
    verts = mesh.triangles[frags.triangle]  # [N, 3]
    vd, w = mesh.vertex_data, frags.bary
    data = vd[verts[:, 0]] * w[:, 0:1] + vd[verts[:, 1]] * w[:, 1:2] + vd[verts[:, 2]] * w[:, 2:3]
    attrs = data[:, :NUM_ATTRS]
    normals = data[:, NUM_ATTRS:] @ rot.T
    normals /= np.sqrt(np.maximum(normals[:, 0:1] ** 2 + normals[:, 1:2] ** 2 + normals[:, 2:3] ** 2, 1e-12))
    kind = mesh.kind[frags.triangle]
    # the ear's thin rolled rim would shade to a dark one-pixel outline: bend its normals to the camera
    ear = kind == KIND_EAR
    normals[ear, 2] += 0.8
    normals[ear] /= np.sqrt((normals[ear] ** 2).sum(1, keepdims=True))
    surface = paint(ident, aus, scene.gaze, kind, attrs, pixel_cm)
    colour = _shade(surface, normals, kind, scene)

    image = np.zeros((big * big, 3), dtype=np.float32)
    cover = np.zeros(big * big, dtype=np.float32)
    image[frags.pixel] = colour
    cover[frags.pixel] = 1.0
    image, cover = image.reshape(big, big, 3), cover.reshape(big, big)
    if supersample > 1:
        image = image.reshape(size, supersample, size, supersample, 3).mean(axis=(1, 3))
        cover = cover.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
        image = image + (1.0 - cover)[..., None] * background(scene, size)
    else:
        image = composite(image, cover, background(scene, size))
    image = (_tone(image) * 255.0 + 0.5).astype(np.uint8)
    return (image, marks / supersample) if return_landmarks else image


def _project(points: np.ndarray, rot: np.ndarray, view: View, big: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel positions ``[N, 2]`` and camera depths ``[N]`` of head-frame ``points [N, 3]``.

    The head turns about PIVOT; the turned face centre (PIVOT + LOOK_AT) is framed in the middle.
    """
    centre = (rot @ LOOK_AT.astype(np.float32)) * np.float32([1, 1, 0])
    focal = big * view.distance / FIELD * view.scale
    cam = (points - PIVOT.astype(np.float32)) @ rot.T - centre
    depth = view.distance - cam[:, 2]
    xy = np.empty((len(cam), 2), dtype=np.float32)
    xy[:, 0] = big * (0.5 + view.shift[0]) + focal * cam[:, 0] / depth
    xy[:, 1] = big * (0.5 + view.shift[1]) - focal * cam[:, 1] / depth
    return xy, depth


def _tone(image: np.ndarray) -> np.ndarray:
    """Soft highlight roll-off (1 stays 1, mid-tones lift slightly), so pale skin does not clip."""
    k = np.float32(1.3)
    return np.clip((1.0 - np.exp(-k * np.maximum(image, 0.0))) / (1.0 - np.exp(-k)), 0.0, 1.0)


def _shade(surface, normals: np.ndarray, kind: np.ndarray, scene: Scene) -> np.ndarray:
    """Wrapped Lambert key light + fill + ambient, Blinn-Phong highlights: ``[N, 3]``."""
    light = _unit(scene.light)
    fill_dir = _unit((-light[0], 0.1, 0.8))
    n_dot_l = normals @ light
    diffuse = np.clip((n_dot_l + 0.25) / 1.25, 0.0, 1.0)
    fill = np.clip(normals @ fill_dir, 0.0, 1.0) * scene.fill
    half = _unit(light + np.array([0, 0, 1], dtype=np.float32))
    n_dot_h = np.clip(normals @ half, 0.0, 1.0)
    shininess = np.where(surface.specular > 0.5, 80.0, 14.0)
    spec = surface.specular * n_dot_h**shininess * (n_dot_l > 0)
    spec = np.where(kind == KIND_MOUTH, spec * 0.3, spec)
    light_c = np.asarray(scene.light_colour, dtype=np.float32) * scene.intensity
    amb = np.asarray(scene.ambient_colour, dtype=np.float32) * scene.ambient
    irradiance = (surface.occlusion[:, None] * amb + diffuse[:, None] * light_c + fill[:, None] * light_c)
    return surface.albedo * irradiance + spec[:, None] * light_c


# ----------------------------------------------------------------------------------------- sampling


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in keys])


def _angle_key(angle: float) -> int:
    return int(round((float(angle) + 720.0) * 100))


def sample_scene(seed: int, subject: int, expression: int, variant: int, clutter: bool = False) -> Scene:
    """Random studio lighting, backdrop and gaze for one capture (shared by all its poses).

    ``clutter`` (a domain-randomisation switch): also boxes, stripes and a noise texture in the
    backdrop, as rooms behind real photos have, drawn from their own random stream.
    """
    rng = _rng(seed, subject, expression, variant, 0x5C)
    az, el = np.radians(rng.uniform(-55, 55)), np.radians(rng.uniform(5, 50))
    warm = rng.uniform(-1, 1)
    light_colour = (1.0, 0.96 - 0.03 * warm, 0.92 - 0.1 * warm)
    hue = rng.uniform(0.2, 0.8, 3)
    top = hue * rng.uniform(0.5, 1.0)
    bottom = np.clip(top * rng.uniform(0.6, 1.1) + rng.normal(0, 0.05, 3), 0, 1)
    blobs = tuple(
        (rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.1, 0.35), *rng.uniform(0.1, 0.9, 3), rng.uniform(0.1, 0.4))
        for _ in range(rng.integers(0, 4))
    )
    return Scene(
        light=(float(np.sin(az) * np.cos(el)), float(np.sin(el)), float(np.cos(az) * np.cos(el))),
        light_colour=light_colour,
        intensity=rng.uniform(0.6, 0.85),
        ambient=rng.uniform(0.3, 0.45),
        ambient_colour=tuple(1.0 + rng.normal(0, 0.04, 3)),
        fill=rng.uniform(0.0, 0.3),
        background=(tuple(top), tuple(bottom)),
        blobs=blobs,
        gaze=(rng.uniform(-0.12, 0.12), rng.uniform(-0.08, 0.06)),
        **(_clutter(_rng(seed, subject, expression, variant, 0xC1)) if clutter else {}),
    )


def _clutter(rng: np.random.Generator) -> dict:
    """Scene fields of a cluttered backdrop: 2-7 boxes (40 % striped) and a noise texture."""
    boxes = []
    for _ in range(rng.integers(2, 8)):
        x0, y0 = rng.uniform(-0.2, 1.0, 2)
        w, h = rng.uniform(0.08, 0.7, 2)
        stripes = rng.uniform(3, 25) if rng.random() < 0.4 else 0.0
        boxes.append((x0, y0, x0 + w, y0 + h, *rng.uniform(0.05, 0.95, 3), rng.uniform(0.5, 1.0), stripes,
                      rng.uniform(0, np.pi)))
    return {"clutter": tuple(tuple(float(v) for v in box) for box in boxes),
            "texture": (float(rng.uniform(0.0, 0.15)), int(rng.integers(1 << 30)))}


def sample_view(seed: int, subject: int, expression: int, variant: int, yaw: float, pitch: float, jitter: bool,
                camera: bool = False) -> View:
    """The pose ``(yaw, pitch)`` with, when ``jitter``, small random pose, scale and position changes.

    ``camera`` (a domain-randomisation switch): the camera stands 40 cm (a selfie) to 2 m (a portrait
    lens) from the head, log-uniformly, one distance per capture, from its own random stream.
    """
    distance = CAMERA_DISTANCE
    if camera:
        near, far = np.log([40.0, 200.0])
        distance = float(np.exp(_rng(seed, subject, expression, variant, 0xCA).uniform(near, far)))
    if not jitter:
        return View(yaw=float(yaw), pitch=float(pitch), distance=distance)
    rng = _rng(seed, subject, expression, variant, _angle_key(yaw), _angle_key(pitch), 0x71)
    return View(
        yaw=float(yaw) + rng.uniform(-3, 3),
        pitch=float(pitch) + rng.uniform(-3, 3),
        roll=rng.uniform(-4, 4),
        scale=rng.uniform(0.94, 1.06),
        shift=(rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03)),
        distance=distance,
    )


def render_face(
    seed: int,
    subject: int,
    expression: int,
    yaw: float,
    pitch: float,
    size: int = 112,
    *,
    jitter: bool = True,
    variant: int = 0,
    align_padding: float | None = None,
    return_landmarks: bool = False,
    randomize: tuple[str, ...] | list[str] | str = DEFAULT_RANDOMIZATIONS,
    align_fit: str = DEFAULT_FIT,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """One synthetic face, ``[size, size, 3]`` uint8 RGB, fully determined by the arguments.

    The convenience form of :func:`render_capture` for one image: ``size``, ``jitter``,
    ``align_padding``, ``align_fit`` and ``randomize`` are the fields of :class:`RenderSettings`.
    """
    settings = RenderSettings(size, jitter, align_padding, align_fit, randomize)
    return render_capture(seed, subject, expression, yaw, pitch, settings, variant=variant,
                          return_landmarks=return_landmarks)


def capture_identity(seed: int, subject: int, randomize: tuple[str, ...]) -> Identity:
    """The identity :func:`render_capture` draws for ``subject`` under the switches ``randomize``."""
    return sample_identity(seed, subject, lips="lips" in randomize,
                           details=[part for part in randomize if part in IDENTITY_DETAILS])


def render_capture(
    seed: int,
    subject: int,
    expression: int,
    yaw: float,
    pitch: float,
    settings: RenderSettings,
    *,
    variant: int = 0,
    return_landmarks: bool = False,
    view: View | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """One synthetic face rendered as ``settings`` say (:class:`RenderSettings`).

    ``subject`` fixes the identity; ``(subject, expression, variant)`` fixes the expression
    instance (AU intensities), lighting, background and gaze, shared by every pose of that capture.
    ``expression`` indexes :data:`.expressions.EXPRESSIONS`. ``return_landmarks`` also returns the
    five landmarks as in :func:`render_scene`. With an ``align_padding`` the image is the aligned
    crop, so roll, scale and shift jitter only move it as far as landmark noise does: not at all.
    ``view`` replaces the capture's camera (``yaw``, ``pitch``, its jitter and distance are then unused): the same
    face, expression, light and background seen as a study needs, e.g. without jitter or from far away.
    """
    for name, value in (("seed", seed), ("subject", subject), ("variant", variant)):
        if int(value) < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    parts = settings.randomize
    ident = capture_identity(seed, subject, parts)
    aus = sample_aus(_expression_rng(seed, subject, expression, variant), expression,
                     subtle="subtle" in parts, blends="blends" in parts, posed_smiles="teeth" in parts)
    scene = sample_scene(seed, subject, expression, variant, clutter="clutter" in parts)
    if view is None:
        view = sample_view(seed, subject, expression, variant, yaw, pitch, settings.jitter, camera="camera" in parts)
    return render_scene(ident, aus, view, scene, settings.size, align_padding=settings.align_padding,
                        return_landmarks=return_landmarks, align_fit=settings.align_fit)


def _expression_rng(seed: int, subject: int, expression: int, variant: int) -> np.random.Generator:
    """The generator of a capture's expression instance: one stream, so the intensity a dataset records
    (:func:`capture_intensity`) is the one the render draws."""
    return _rng(seed, subject, expression, variant, 0xE)


def capture_intensity(seed: int, subject: int, expression: int, randomize: tuple[str, ...], *,
                      variant: int = 0) -> float:
    """The expression intensity of the capture :func:`render_capture` draws for these keys (0 for
    neutral; see :func:`.expressions.sample_intensity`), without rendering it."""
    return sample_intensity(_expression_rng(seed, subject, expression, variant), expression,
                            subtle="subtle" in randomize, posed_smiles="teeth" in randomize)


def check_randomize(randomize) -> tuple[str, ...]:
    """``randomize`` as a sorted tuple of known names; an unknown name is a ``ValueError`` listing them.

    A string is a comma-separated list, or ``"all"`` (:data:`RANDOMIZATIONS`), ``"default"``
    (:data:`DEFAULT_RANDOMIZATIONS`) or ``"none"`` (``()``).
    """
    if isinstance(randomize, str):
        named = {"all": RANDOMIZATIONS, "default": DEFAULT_RANDOMIZATIONS, "none": ()}
        randomize = named.get(randomize.strip(), [part for part in randomize.split(",") if part.strip()])
    parts = tuple(sorted({str(part).strip() for part in randomize}))
    unknown = [part for part in parts if part not in RANDOMIZATIONS]
    if unknown:
        known = ", ".join(RANDOMIZATIONS)
        raise ValueError(f"unknown randomisation(s) {unknown}; known: {known} (or all, default, none)")
    return parts


def render_capture_job(job: tuple) -> np.ndarray:
    """``render_capture`` of one ``(seed, subject, expression, yaw, pitch, settings, variant)`` tuple: the
    picklable unit of work of a process pool (its workers import this package only, not torch)."""
    seed, subject, expression, yaw, pitch, settings, variant = job
    return render_capture(seed, subject, expression, yaw, pitch, settings, variant=variant)
