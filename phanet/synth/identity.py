"""Identity of a synthetic subject: head and feature proportions, colours and hair, drawn from a seed.

All lengths are in centimetres in the *head frame*: origin at the ear canals' midpoint, ``x`` towards
the subject's left (the image's right in a frontal view), ``y`` up, ``z`` out of the face. Feature
positions are landmarks on the frontal face (``x, y``); the geometry (:mod:`.geometry`) puts bumps
there and the painter (:mod:`.render`) draws the features at the same landmarks, so the two always
agree. Ranges are loosely those of adult faces; exaggeration is preferred to subtlety because the
images are small (112 px).

Faces are left-right symmetric except for ``asymmetry`` and the hair ``parting``, so that a test can
zero both and check that yaw ``θ`` and ``-θ`` render as mirror images.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace

import numpy as np

# Skin tones from dark to light (sRGB, 0..1); a subject's tone is a random blend of two neighbours.
_SKIN_TONES = np.array(
    [
        (0.42, 0.27, 0.2),
        (0.50, 0.33, 0.24),
        (0.66, 0.46, 0.34),
        (0.78, 0.58, 0.45),
        (0.88, 0.69, 0.57),
        (0.92, 0.74, 0.63),
    ]
)
_EYE_COLOURS = np.array(
    [(0.22, 0.12, 0.06), (0.35, 0.20, 0.10), (0.42, 0.36, 0.18), (0.28, 0.42, 0.30), (0.30, 0.45, 0.62),
     (0.45, 0.50, 0.55)]
)
_HAIR_COLOURS = np.array(
    [(0.05, 0.04, 0.04), (0.16, 0.10, 0.07), (0.30, 0.19, 0.11), (0.50, 0.30, 0.15), (0.72, 0.58, 0.36),
     (0.55, 0.53, 0.52), (0.80, 0.79, 0.77)]
)


@dataclass(frozen=True)
class Identity:
    """Shape and appearance parameters of one subject (lengths in cm, colours sRGB 0..1)."""

    # skull and face masses (semi-axes of the ellipsoids in geometry.base_radius)
    cranium: tuple[float, float, float] = (7.3, 10.0, 9.6)
    face: tuple[float, float, float] = (6.4, 9.0, 6.6)
    chin: tuple[float, float, float] = (3.0, 2.3, 3.0)
    neck_radius: float = 5.3
    # landmarks on the frontal face
    eye_y: float = 1.0
    eye_x: float = 3.15
    eye_w: float = 1.45  # half-width of the eye opening
    eye_open: float = 0.42  # upper-lid height above the eye centre at rest
    eye_low: float = 0.27  # lower-lid depth below the eye centre at rest
    brow_y: float = 2.7  # height of the brow centre line above the eye centre
    brow_thick: float = 0.5
    brow_arch: float = 0.35
    brow_len: float = 4.6
    nose_y: float = -3.4  # nose tip height
    nose_w: float = 1.75  # half-width across the wings
    nose_proj: float = 2.3  # protrusion of the tip
    mouth_y: float = -6.4
    mouth_w: float = 2.5  # half-width of the mouth
    lip_up: float = 0.55  # upper lip red height
    lip_lo: float = 0.7
    chin_y: float = -11.0
    cheekbone: float = 0.5
    ear_size: float = 1.0
    # appearance
    skin: tuple[float, float, float] = (0.88, 0.69, 0.57)
    lip_colour: tuple[float, float, float] = (0.75, 0.38, 0.36)
    eye_colour: tuple[float, float, float] = (0.35, 0.20, 0.10)
    hair_colour: tuple[float, float, float] = (0.16, 0.10, 0.07)
    brow_colour: tuple[float, float, float] = (0.12, 0.08, 0.06)
    hairline: float = 7.0  # forehead hairline height above the eyes
    hair_volume: float = 1.0
    hair_back: float = -7.0  # lowest point of the hair at the back of the head
    hair_long: bool = False  # hair falls to below the jaw at the sides and covers the ears
    fringe: float = 0.0  # 0 none .. 1 full fringe over the forehead
    parting: float = 0.0  # -1 .. 1, side of the parting (0: none); breaks symmetry
    stubble: float = 0.0
    wrinkle: float = 0.3  # depth of the static folds (age)
    asymmetry: float = 0.0  # -1 .. 1; mild left/right difference of feature heights
    # the optional details of phanet.synth.details; their defaults paint nothing (the faces of 0.2)
    age: float = 0.0  # 0 .. 1: static forehead, glabella, crow's-feet, marionette lines and eye bags
    skin_texture: float = 0.0  # relative amplitude of the mottling and pores of the skin
    freckles: float = 0.0  # 0 .. 1: density of freckles over the nose and cheeks
    moles: tuple[tuple[float, float, float], ...] = ()  # (x, y, radius) in cm on the frontal face
    blush: float = 0.0  # make-up-like colour on the cheeks
    eye_shadow: float = 0.0  # make-up-like colour on the upper lids
    eye_shadow_colour: tuple[float, float, float] = (0.45, 0.3, 0.35)
    socket_shade: float = 0.0  # darkening of the eye sockets, under the nose and lip, on the neck
    glasses: float = 0.0  # frame width in cm (0: no glasses)
    glasses_colour: tuple[float, float, float] = (0.08, 0.07, 0.07)
    glasses_size: tuple[float, float] = (1.9, 1.3)  # half-width and half-height of a lens (cm)
    glasses_round: float = 4.0  # superellipse exponent of the lens outline: 2 round .. 8 square
    teeth_shade: float = 1.0  # brightness of the teeth (1: the base colour)
    teeth_gaps: float = 0.45  # darkening of the gaps between teeth, at its deepest
    teeth_sides: float = 0.55  # how much the side teeth brighten from the corner's shadow towards the front
    # how AU 12 moves this subject's mouth corners (cm at full intensity: outwards, upwards) and how far it
    # lifts the upper lip (a share of AU 10's lift); the defaults are the base face's steep smile
    smile_out: float = 0.8
    smile_up: float = 1.3
    smile_lip: float = 0.0
    # the "nose" detail: the resting nose base as photos show it (details.nose_base, paint._nostrils and the
    # resting depth of the nasolabial folds in paint._creases); the defaults paint the base face's nose
    alar_crease: float = 0.0  # darkness of the groove round each nose wing
    nostril_size: float = 1.0  # nostril openings relative to the base face's
    nose_shade: float = 0.0  # shadow under the tip and on the wings, highlight on the tip
    resting_fold: float = 0.0  # extra nasolabial fold depth with no expression
    # the "lashes" detail: the share of the upper lash line drawn over the top of the eyeball (0: all of it on
    # the lid skin above the opening, the base face's; 1: all of it over the eyeball, as real lashes cover it)
    lash_over: float = 0.0
    # the resting face: (FACS number, intensity) pairs that this subject's face shows with no
    # expression, and so under every expression (added to the expression's AUs by render_scene)
    resting: tuple[tuple[int, float], ...] = ()


def _blend(palette: np.ndarray, rng: np.random.Generator, lo: float = 0.0, hi: float | None = None) -> np.ndarray:
    """A random colour on the piecewise-linear path through ``palette`` (restricted to [lo, hi])."""
    hi = len(palette) - 1 if hi is None else hi
    t = rng.uniform(lo, hi)
    i = min(int(t), len(palette) - 2)
    f = t - i
    return (1 - f) * palette[i] + f * palette[i + 1]


# Lip colours as real lips vary: natural to make-up-like (sRGB); the "lips" randomisation mixes one in.
_LIP_TINTS = np.array([(0.72, 0.30, 0.32), (0.60, 0.22, 0.26), (0.82, 0.42, 0.45), (0.55, 0.28, 0.30),
                       (0.78, 0.36, 0.40)])


# The identity details that are domain-randomisation switches (phanet.synth.render.RANDOMIZATIONS).
# A detail's random stream is numbered by its place here: add new details at the end, or every
# later detail of every face changes.
IDENTITY_DETAILS = ("age", "brows", "glasses", "shading", "skin", "resting", "eyes", "teeth", "smiles", "broad_smiles",
                    "nose", "rest_shape", "rest_spread", "lashes", "mid_face")


def sample_identity(seed: int, subject: int, lips: bool = True, details: Collection[str] = ()) -> Identity:
    """The identity of ``subject`` under ``seed``: the same pair always gives the same face.

    ``lips`` (a domain-randomisation switch, see :data:`phanet.synth.RANDOMIZATIONS`):
    lips as real adults have them, from thin to full (red heights up to 1.6x the base range) and
    from skin-toned to make-up-like colours; False keeps the thin, skin-derived lips of version 0.1.
    ``details``: more switches, any of :data:`IDENTITY_DETAILS` (see :func:`_with_details`). Each is
    drawn from its own random stream, so turning one on or off leaves the rest of the face unchanged.
    """
    unknown = sorted(set(details) - set(IDENTITY_DETAILS))
    if unknown:
        raise ValueError(f"unknown identity detail(s) {unknown}; known: {', '.join(IDENTITY_DETAILS)}")
    rng = np.random.default_rng([int(seed), int(subject), 0x1D])
    u = rng.uniform
    scale = u(0.93, 1.07)  # overall head size
    long_face = u(-1, 1)  # long narrow vs short broad faces
    cw = scale * (7.9 - 0.25 * long_face + u(-0.25, 0.25))
    fw = scale * (7.1 - 0.3 * long_face + u(-0.3, 0.3))
    face_h = scale * (9.0 + 0.45 * long_face)
    tone = _blend(_SKIN_TONES, rng)
    lightness = float(tone.mean())
    skin = np.clip(tone * (1 + rng.normal(0, 0.03, 3)), 0, 1)
    # darker skin tends to go with dark eyes and hair; light skin with any
    eye = _blend(_EYE_COLOURS, rng, 0, 1.5 if lightness < 0.55 else 5)
    if rng.random() < 0.1:  # grey or white hair
        hair = _blend(_HAIR_COLOURS, rng, 5, 6)
    else:
        hair = _blend(_HAIR_COLOURS, rng, 0, 1.2 if lightness < 0.55 else 4.3)
    brow = np.minimum(hair * u(0.45, 0.7), 0.35)  # brows are darker than the hair, so they read
    lip = np.clip(skin * np.array([0.92, 0.62, 0.62]) * u(0.85, 1.05), 0, 1)
    mouth_y = -6.4 * scale - 0.4 * long_face + u(-0.3, 0.3)
    ident = Identity(
        cranium=(cw, scale * u(9.6, 10.4), scale * u(9.3, 10.0)),
        face=(fw, face_h, scale * u(6.3, 6.9)),
        chin=(scale * u(3.0, 3.8), scale * u(2.0, 2.5), scale * u(2.2, 2.7)),
        neck_radius=scale * u(4.9, 5.7),
        eye_y=u(0.8, 1.2),
        eye_x=scale * u(2.95, 3.35),
        eye_w=scale * u(1.3, 1.6),
        eye_open=u(0.36, 0.48),
        brow_y=u(2.3, 3.0),
        brow_thick=u(0.45, 0.8),
        brow_arch=u(0.1, 0.55),
        brow_len=scale * u(4.2, 5.0),
        nose_y=mouth_y + u(2.6, 3.3),
        nose_w=scale * u(1.5, 2.0),
        nose_proj=u(1.5, 2.1),
        mouth_y=mouth_y,
        mouth_w=scale * u(2.2, 2.8),
        lip_up=u(0.4, 0.7),
        lip_lo=u(0.5, 0.85),
        chin_y=-scale * (10.6 + 0.5 * long_face),
        cheekbone=u(0.3, 0.7),
        ear_size=scale * u(0.9, 1.1),
        skin=tuple(skin),
        lip_colour=tuple(lip),
        eye_colour=tuple(eye),
        hair_colour=tuple(hair),
        brow_colour=tuple(brow),
        hairline=u(6.3, 7.6),
        hair_volume=u(1.2, 2.4),
        hair_back=u(-12.0, -6.5) if rng.random() < 0.4 else u(-7.5, -6.0),
        hair_long=bool(rng.random() < 0.3),
        fringe=u(0.3, 1.0) if rng.random() < 0.25 else 0.0,
        parting=float(rng.choice([-1.0, 0.0, 1.0])) * u(0.5, 1.0),
        stubble=u(0.2, 0.6) if rng.random() < 0.25 else 0.0,
        wrinkle=u(0.15, 0.6),
        asymmetry=u(-1, 1),
    )
    ident = _varied_lips(ident, rng) if lips else ident
    return _with_details(ident, seed, subject, details)


def _varied_lips(ident: Identity, rng: np.random.Generator) -> Identity:
    """Fuller and more varied lips; drawn after every other field, so the rest of the face is unchanged."""
    fullness = rng.uniform(1.0, 1.6)
    tint = _LIP_TINTS[rng.integers(len(_LIP_TINTS))] * rng.uniform(0.85, 1.1)
    mix = rng.uniform(0.2, 0.8)
    colour = np.clip((1 - mix) * np.asarray(ident.lip_colour) + mix * tint, 0, 1)
    return replace(ident, lip_up=ident.lip_up * fullness, lip_lo=ident.lip_lo * fullness, lip_colour=tuple(colour))


def _with_details(ident: Identity, seed: int, subject: int, details: Collection[str]) -> Identity:
    """``ident`` with the appearance details named in ``details`` drawn (ranges of adult faces):

    - ``brows``: brows as real ones are, thick to thin, low to high, near black for most people
      (the base range draws thin, high brows only, so every real brow looked lowered, as in anger);
    - ``skin``: mottling and pores, freckles for a quarter, a few moles, make-up (blush and eye
      shadow) for a quarter;
    - ``age``: a subject age from young to old, shown as static lines and eye bags that every
      expression of that subject carries (otherwise lines only come with the expressions that fold
      the skin, and any real line reads as anger or disgust);
    - ``shading``: eye sockets, the skin under the nose and the lower lip, and the neck under the
      chin darkened as the brow ridge, nose, lip and jaw shade them under a top light;
    - ``glasses``: frames of random shape, size, width and colour for about a third of the subjects;
    - ``resting``: a resting face for about three quarters of the subjects, one to three weak action
      units (:data:`RESTING_AUS`) that the face shows with no expression: down- or up-turned mouth
      corners, a knitted or raised brow, narrowed eyes, pressed lips, a short upper lip. Real neutral
      faces differ in these ways; a synthetic neutral face without them is a blank that only a
      model-like face matches, and any real resting feature reads as a weak expression;
    - ``eyes``: eye openings as adults' palpebral fissures are, their height 0.26 to 0.40 of their
      width (about 10 of 30 mm on average) with 55 % of it above the eye centre, so that the upper lid
      rests at the top of the iris. The base range draws 0.20 to 0.29, narrower than nearly every real
      adult's, and the widened eye of surprise and fear (AU 5) lies nearer a real resting eye than
      the base face's own does;
    - ``teeth``: teeth as photos show them, from ivory to white with the gaps between them from faint
      to marked (the base face paints every mouth with grey, deeply gapped teeth) and the side teeth
      less shadowed; with the switch the expression sampler also gives a third of the happy faces
      the posed smile, lips parted over closed teeth (:data:`.expressions.POSED_SMILE_FORMS`);
    - ``smiles``: smiles as people's differ (Rubin's 1974 smile types): the direction in which AU 12 pulls
      the mouth corners drawn per subject from 25 to 58 degrees above the horizontal (the base face's
      58 degrees is the steepest, a V-shaped mouth; many people's corners go more outwards, a wide
      smile), the same length of pull, and the upper lip lifted with the corners by 0 to 0.5 of AU 10's
      lift, so that some smiles show the upper teeth up to the gum line as a raised upper lip does;
    - ``broad_smiles``: the upper lip lifted with the corners by 0 to 1.5 of AU 10's lift
      (:data:`BROAD_SMILE_LIP`; with ``smiles`` it replaces that detail's 0 to 0.5), so that most smiles
      are broad and toothy, a tall opening filled by the upper teeth, as people smile for a camera. With
      the base range an open smile is a thin crescent of teeth, and the tall open mouths with bared upper
      teeth are disgust's (AU 10) and surprise's: a model trained on them reads a real toothy smile as one
      of those (``benchmarks/occlusion_cues.py``);
    - ``nose``: the resting nose base as photos show it: a groove round each nose wing, nostrils up to
      1.7 times the base face's, the shadow under the tip and on the wings with a highlight on the tip,
      and nasolabial folds deeper at rest. The base face's nose is a ridge with two small dark ovals, and
      its nose base darkens only when a face wrinkles the nose or raises the upper lip (AU 9, 10: disgust,
      the snarl of anger); every real face has these features at rest, so a model trained without them
      can read any real nose base as an expression (``benchmarks/occlusion_cues.py`` on photos);
    - ``rest_shape``: the resting brow height and mouth line that a landmark model trained on real faces
      (MediaPipe's FaceMesh) reads as it reads a real mean neutral face: the brows :data:`REST_BROW_DROP` lower
      and a weak AU 15 (:data:`REST_CORNER_AU15`) under every expression, so the mouth corners rest level with the
      lips' middle. Without it FaceMesh reads the renders' neutral brows where their anger brows are on a real
      face, and their mouth corners above the lips' middle (``benchmarks/render_geometry.py``). It shifts what the
      other details drew (after ``brows`` and ``resting``), so it draws nothing at random.
    - ``rest_spread``: ``rest_shape`` with a spread: each subject's brow drop is drawn from 0 to twice
      :data:`REST_BROW_DROP` and the resting AU 15 from 0 to twice :data:`REST_CORNER_AU15`, so the resting
      geometry covers both the base face's and the real mean face's, centred on the latter. With the fixed shift
      (or without it) a model reads the absolute resting brow height as expression (candidates 39-42 in
      docs/bundled_model_study.md); real people's resting brows and mouth corners differ. It replaces
      ``rest_shape`` where both are named.
    - ``lashes``: the upper lash line over the lid margin, covering the top of the eyeball (a share
      :data:`LASH_OVER` of its width), as real upper lashes and the margin's shadow do. The base face paints the
      lash line on the lid skin above the opening, so the dark-rimmed eye is taller than the opening drawn, and a
      landmark model trained on real faces reads the renders' eyes as 1.32x as open as drawn
      (``benchmarks/render_geometry.py``): a real resting eye then looks narrowed to a model of the renders. With
      the switch it reads them 1.26x as open (results/render_geometry_lashes.txt): the lash line's place is a fifth
      of that gap at most.
    - ``mid_face``: the nose tip and the mouth raised towards the eyes (:func:`_mid_face_fields`), to the heights
      below the eyes of MediaPipe's canonical (real mean, neutral) face; it draws nothing at random.
    """
    fields: dict = {}
    for name in IDENTITY_DETAILS:
        if name in details:
            fields.update(_detail_fields(name, ident, _detail_rng(seed, subject, name)))
    shift = _resting_shift(seed, subject, details)
    if shift is not None:
        brow_drop, corner_au15 = shift
        fields["brow_y"] = fields.get("brow_y", ident.brow_y) - brow_drop
        fields["resting"] = tuple(fields.get("resting", ident.resting)) + ((15, corner_au15),)
    if "mid_face" in details:
        fields.update(_mid_face_fields(ident))
    return replace(ident, **fields)


def _mid_face_fields(ident: Identity) -> dict:
    """The ``mid_face`` detail: the nose tip and the mouth raised by :data:`MID_FACE_NOSE_RAISE` and
    :data:`MID_FACE_MOUTH_RAISE` of ``ident``'s eye-to-eye distance.

    The base face's nose tip sits 0.72 eye-to-eye distances below the eye line (MediaPipe's canonical face: 0.60;
    ArcFace's alignment template, a mean of real faces: 0.57) and its mouth 1.19 (1.11; 1.16): against a render a
    real nose sits as if raised four times as far as the renders' disgust raises theirs (0.03). Models fine-tuned with
    it (candidates 55, 56 in docs/bundled_model_study.md) read the base face's lower nose and mouth as sadness, and
    the photos' disgust answers did not move, so the nose's height is not the cue they read as disgust.
    """
    eye_to_eye = 2 * ident.eye_x
    return {"nose_y": ident.nose_y + MID_FACE_NOSE_RAISE * eye_to_eye,
            "mouth_y": ident.mouth_y + MID_FACE_MOUTH_RAISE * eye_to_eye}


def _detail_rng(seed: int, subject: int, name: str) -> np.random.Generator:
    """Detail ``name``'s own random stream for ``subject`` under ``seed``, numbered by its place in IDENTITY_DETAILS."""
    return np.random.default_rng([int(seed), int(subject), 0xDE, IDENTITY_DETAILS.index(name) + 1])


def _resting_shift(seed: int, subject: int, details: Collection[str]) -> tuple[float, float] | None:
    """The brow drop (cm) and resting AU 15 that ``rest_spread`` draws or ``rest_shape`` fixes; None with neither."""
    if "rest_spread" in details:
        rng = _detail_rng(seed, subject, "rest_spread")
        return float(rng.uniform(0.0, 2 * REST_BROW_DROP)), float(rng.uniform(0.0, 2 * REST_CORNER_AU15))
    if "rest_shape" in details:
        return REST_BROW_DROP, REST_CORNER_AU15
    return None


def _detail_fields(name: str, ident: Identity, rng: np.random.Generator) -> dict:
    """The :class:`Identity` fields that detail ``name`` draws for ``ident`` from its own stream ``rng``."""
    fields: dict = {}
    u = rng.uniform
    if name == "brows":
        dark = u(0.02, 0.12) if rng.random() < 0.6 else min(float(np.mean(ident.hair_colour)), 0.4) * u(0.5, 0.9)
        tone = np.asarray(ident.hair_colour) / max(float(np.mean(ident.hair_colour)), 1e-3)
        fields.update(brow_thick=u(0.55, 1.25), brow_y=u(1.75, 2.9), brow_arch=u(0.05, 0.6),
                      brow_len=ident.brow_len * u(0.9, 1.1),
                      brow_colour=tuple(np.clip(tone * dark, 0, 0.45)))
    elif name == "skin":
        moles = tuple((u(-5.0, 5.0), u(ident.mouth_y - 2.0, ident.eye_y + 4.0), u(0.06, 0.18))
                      for _ in range(rng.integers(0, 4)))
        made_up = rng.random() < 0.25
        fields.update(skin_texture=u(0.04, 0.14), freckles=u(0.2, 1.0) if rng.random() < 0.25 else 0.0,
                      moles=moles, blush=u(0.05, 0.25) if made_up else 0.0,
                      eye_shadow=u(0.15, 0.5) if made_up else 0.0,
                      eye_shadow_colour=tuple(_blend(_EYE_SHADOWS, rng)))
    elif name == "age":
        fields["age"] = float(u(0.0, 1.0) ** 1.5)
    elif name == "shading":
        fields["socket_shade"] = u(0.1, 0.45)
    elif name == "glasses" and rng.random() < 0.33:
        grey = u(0.03, 0.5)
        colour = np.clip(grey * np.array([1.0, 0.9, 0.8]) ** u(0, 3), 0, 1)
        fields.update(glasses=u(0.12, 0.4), glasses_colour=tuple(colour),
                      glasses_size=(ident.eye_w + u(0.35, 0.75), u(1.0, 1.6)), glasses_round=u(2.0, 8.0))
    elif name == "resting" and rng.random() < 0.75:
        chosen = rng.choice(len(RESTING_AUS), size=int(rng.integers(1, 4)), replace=False)
        fields["resting"] = tuple((RESTING_AUS[i][0], float(u(0.05, RESTING_AUS[i][1]))) for i in sorted(chosen))
    elif name == "eyes":
        height = u(*EYE_FISSURE_RATIO) * 2 * ident.eye_w
        fields.update(eye_open=EYE_UPPER_SHARE * height, eye_low=(1 - EYE_UPPER_SHARE) * height)
    elif name == "teeth":
        fields.update(teeth_shade=u(0.95, 1.12), teeth_gaps=u(0.05, 0.4), teeth_sides=u(0.3, 0.55))
    elif name == "smiles":
        pull, angle = float(np.hypot(ident.smile_out, ident.smile_up)), np.radians(u(*SMILE_ANGLE_DEGREES))
        fields.update(smile_out=pull * np.cos(angle), smile_up=pull * np.sin(angle), smile_lip=u(0.0, 0.5))
    elif name == "broad_smiles":  # after "smiles" in IDENTITY_DETAILS: its lift replaces that one's
        fields["smile_lip"] = u(*BROAD_SMILE_LIP)
    elif name == "lashes":
        fields["lash_over"] = u(*LASH_OVER)
    elif name == "nose":
        fields.update(alar_crease=u(*NOSE_ALAR_CREASE), nostril_size=u(*NOSE_NOSTRIL_SIZE),
                      nose_shade=u(*NOSE_SHADE), resting_fold=u(*NOSE_RESTING_FOLD))
    return fields


# The ``smiles`` detail: the direction of the mouth corners' pull by AU 12, degrees above the horizontal
# (the base face's (0.8, 1.3) cm is 58.4 degrees).
SMILE_ANGLE_DEGREES = (25.0, 58.4)
# The ``broad_smiles`` detail: the upper lip's lift with a full smile, as a share of AU 10's (geometry.UPPER_LIP_LIFT).
BROAD_SMILE_LIP = (0.0, 1.5)
# The ``nose`` detail's ranges (darkening at the line's centre, size ratio, shade, fold depth; the expressions'
# folds reach 0.3 deeper: paint._creases).
NOSE_ALAR_CREASE = (0.2, 0.55)
NOSE_NOSTRIL_SIZE = (1.0, 1.7)
NOSE_SHADE = (0.1, 0.35)
NOSE_RESTING_FOLD = (0.05, 0.3)

# The ``lashes`` detail: the share of the upper lash line's width drawn over the eyeball.
LASH_OVER = (0.5, 1.0)
# The ``rest_shape`` detail: how far the brows drop (cm) and the resting AU 15's intensity; chosen so that FaceMesh
# reads the renders' frontal neutral faces, seen from far away, as it reads MediaPipe's canonical (mean, neutral) face
# (``benchmarks/render_geometry.py``, results/render_geometry_rest_shape.txt). No photo chose them. ``rest_spread``
# draws each from zero to twice these.
REST_BROW_DROP = 0.38
REST_CORNER_AU15 = 0.27

# The ``mid_face`` detail: how far the nose tip and the mouth rise, in eye-to-eye distances: the base face's mean
# heights below the eye line (exact landmarks, 20 frontal neutral faces, no jitter: 0.722 and 1.185) minus those of
# MediaPipe's canonical face (canonical_face_model.obj: nose tip vertex 1, mouth corners 61 / 291, the eye centres
# as the midpoints of the corners 33 / 133 and 263 / 362: 0.595 and 1.106). No photo chose them.
MID_FACE_NOSE_RAISE = 0.127
MID_FACE_MOUTH_RAISE = 0.079

# The ``eyes`` detail: palpebral fissure height / width, and the share of the height above the eye centre.
EYE_FISSURE_RATIO = (0.26, 0.40)
EYE_UPPER_SHARE = 0.55


# Action units of a resting face, (FACS number, highest intensity): weaker than the weakest expression
# ("subtle" draws 0.35 of a prototype) and each alone, where an expression moves several together.
RESTING_AUS: tuple[tuple[int, float], ...] = (
    (1, 0.25),  # inner brows raised: a worried look
    (4, 0.3),  # knitted brows
    (7, 0.3),  # narrowed eyes
    (10, 0.2),  # a short upper lip
    (12, 0.2),  # up-turned mouth corners
    (15, 0.3),  # down-turned mouth corners
    (17, 0.25),  # a raised chin
    (24, 0.25),  # pressed lips
)


# make-up colours for the upper lids (sRGB)
_EYE_SHADOWS = np.array([(0.45, 0.30, 0.35), (0.35, 0.25, 0.20), (0.30, 0.30, 0.40), (0.55, 0.40, 0.30)])
