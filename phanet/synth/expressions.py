"""Facial action units (FACS) and the seven basic expressions built from them (EMFACS prototypes).

An expression instance is a vector of action-unit (AU) intensities in [0, 1] for each side of the
face, ``[NUM_AUS, 2]`` (column 0: the subject's right, column 1: their left). The geometry turns each
AU into a smooth displacement field around the landmarks it moves (:mod:`.geometry`) and the painter
into lid positions, lip thinning and wrinkles (:mod:`.render`).

Prototypes follow the EMFACS-7 predictions of Friesen & Ekman (1983) as tabulated in the FACS
Investigator's Guide (Ekman, Friesen & Hager, 2002):

========  =====================================================================
happy     6 + 12 (often + 25, lips parted showing teeth)
sad       1 + 4 + 15 (+ 17)
surprise  1 + 2 + 5 + 26 (+ 25 / 27)
fear      1 + 2 + 4 + 5 + 7 + 20 + 26 (+ 25)
disgust   9 and/or 10, + 15 / 16 / 17 (+ 25)
anger     4 + 5 + 7 + 23 or 24 (+ 17), or the open snarl 4 + 5 + 7 + 10 + 23 + 25 + 26
========  =====================================================================

Each instance draws one overall intensity for the expression, jitters every prototype AU around it,
chooses among the alternative forms above, adds small random activations of all other units and a
slight left/right asymmetry, so that no two images of a class are copies of one template.
"""

from __future__ import annotations

import numpy as np

# (FACS number, name); the order is the row order of an AU array.
ACTION_UNITS: tuple[tuple[int, str], ...] = (
    (1, "inner brow raiser"),
    (2, "outer brow raiser"),
    (4, "brow lowerer"),
    (5, "upper lid raiser"),
    (6, "cheek raiser"),
    (7, "lid tightener"),
    (9, "nose wrinkler"),
    (10, "upper lip raiser"),
    (12, "lip corner puller"),
    (15, "lip corner depressor"),
    (16, "lower lip depressor"),
    (17, "chin raiser"),
    (20, "lip stretcher"),
    (23, "lip tightener"),
    (24, "lip presser"),
    (25, "lips part"),
    (26, "jaw drop"),
    (27, "mouth stretch"),
)
NUM_AUS = len(ACTION_UNITS)
AU_INDEX: dict[int, int] = {number: i for i, (number, _) in enumerate(ACTION_UNITS)}

# Each prototype is a list of alternatives (probability, {AU: relative intensity}); AUs marked with a
# probability in OPTIONAL are added with that probability.
PROTOTYPES: dict[str, list[tuple[float, dict[int, float]]]] = {
    "neutral": [(1.0, {})],
    "happy": [(0.75, {6: 0.8, 12: 1.0, 25: 1.0, 26: 0.25}), (0.25, {6: 0.8, 12: 1.0})],
    "sad": [(0.6, {1: 1.0, 4: 0.6, 15: 1.0, 17: 0.6}), (0.4, {1: 1.0, 4: 0.7, 15: 1.0})],
    "surprise": [(0.7, {1: 1.0, 2: 1.0, 5: 1.0, 25: 1.0, 26: 1.0}), (0.3, {1: 1.0, 2: 1.0, 5: 1.0, 25: 1.0, 27: 0.8})],
    "fear": [(1.0, {1: 1.0, 2: 0.7, 4: 0.7, 5: 1.0, 7: 0.4, 20: 1.0, 25: 1.0, 26: 0.6})],
    "disgust": [
        (0.5, {9: 1.0, 10: 0.8, 15: 0.6, 17: 0.6, 4: 0.4}),
        (0.5, {9: 1.0, 10: 1.0, 16: 0.7, 25: 1.0, 4: 0.4}),
    ],
    "anger": [
        (0.35, {4: 1.0, 5: 0.7, 7: 0.8, 23: 1.0, 24: 0.7, 17: 0.6}),
        (0.3, {4: 1.0, 5: 0.8, 7: 0.8, 24: 1.0, 17: 0.8}),
        (0.35, {4: 1.0, 5: 0.8, 7: 0.8, 10: 0.9, 23: 0.6, 25: 1.0, 26: 0.4, 9: 0.3}),
    ],
}

# Happy with the "teeth" switch: a third of the smiles are the posed smile of portraits, the lips
# parted over closed teeth (6 + 12 + 25, no jaw drop); the base forms open the jaw in three quarters.
POSED_SMILE_FORMS: list[tuple[float, dict[int, float]]] = [
    (0.4, {6: 0.8, 12: 1.0, 25: 1.0, 26: 0.25}), (0.35, {6: 0.8, 12: 1.0, 25: 1.0}), (0.25, {6: 0.8, 12: 1.0})]


# The renderer's expression classes, in label order: the seven basic expressions in the order of
# phanet.data.SEVEN_EXPRESSIONS (a test holds the two equal; the renderer imports no dataset code).
EXPRESSIONS: tuple[str, ...] = tuple(PROTOTYPES)


def expression_name(expression: int) -> str:
    """The name of class ``expression`` in :data:`EXPRESSIONS` order."""
    if not 0 <= expression < len(EXPRESSIONS):
        raise ValueError(f"expression index {expression} is outside 0..{len(EXPRESSIONS) - 1}")
    return EXPRESSIONS[expression]


def prototype_aus(expression: int | str, intensity: float = 1.0, form: int = 0) -> np.ndarray:
    """The EMFACS prototype of an expression at one intensity, symmetric: ``[NUM_AUS, 2]`` float64."""
    name = expression if isinstance(expression, str) else expression_name(expression)
    aus = np.zeros((NUM_AUS, 2))
    for au, weight in PROTOTYPES[name][form][1].items():
        aus[AU_INDEX[au]] = min(1.0, weight * intensity)
    return aus


SUBTLE_INTENSITY = 0.35  # lowest expression intensity with the "subtle" randomisation (0.6 without)
BLEND_PROBABILITY = 0.25  # share of non-neutral instances with a second expression mixed in ("blends")
BLEND_INTENSITY = (0.1, 0.35)


def _draw_form_and_intensity(rng: np.random.Generator, name: str, subtle: bool,
                             posed_smiles: bool) -> tuple[list, int, float]:
    """The first draws of an instance: its prototype's form and its overall intensity (shared by
    :func:`sample_aus` and :func:`sample_intensity`, so both read the same numbers from one ``rng``)."""
    forms = POSED_SMILE_FORMS if posed_smiles and name == "happy" else PROTOTYPES[name]
    form = rng.choice(len(forms), p=[p for p, _ in forms])
    intensity = rng.uniform(SUBTLE_INTENSITY if subtle else 0.6, 1.0)
    return forms, int(form), float(intensity)


def sample_intensity(rng: np.random.Generator, expression: int, subtle: bool = True,
                     posed_smiles: bool = False) -> float:
    """The overall intensity that :func:`sample_aus` draws from a generator in the same state: 0 for
    neutral (no prototype to scale), else in [0.35, 1) with ``subtle``, [0.6, 1) without. Cheap (two
    draws), so a dataset can label each image with it without rendering."""
    name = expression_name(expression)
    _, _, intensity = _draw_form_and_intensity(rng, name, subtle, posed_smiles)
    return 0.0 if name == "neutral" else intensity


def sample_aus(rng: np.random.Generator, expression: int, subtle: bool = True, blends: bool = True,
               posed_smiles: bool = False) -> np.ndarray:
    """A random instance of ``expression``: ``[NUM_AUS, 2]`` intensities in [0, 1].

    Intensity of the expression ~ U(0.6, 1.0), or U(0.35, 1.0) with ``subtle`` (expressions from
    subtle to full, as people show them); each prototype AU varies by ±15 % around it; other AUs
    get background activity up to 0.15 (up to 0.12 for the neutral face; none for the mouth-opening
    AUs 25-27, so closed mouths stay closed); each side differs by up to ±12 %. With ``blends``, a
    quarter of the non-neutral instances also carry a weak (0.1-0.35) form of another expression, as
    real expressions are rarely pure prototypes; the label stays the dominant one. With
    ``posed_smiles`` happy draws its form from :data:`POSED_SMILE_FORMS` (the same random numbers
    otherwise, so every other expression is unchanged).
    """
    name = expression_name(expression)
    forms, form, intensity = _draw_form_and_intensity(rng, name, subtle, posed_smiles)
    base = np.where(rng.random(NUM_AUS) < 0.35, rng.uniform(0.0, 0.12 if name == "neutral" else 0.15, NUM_AUS), 0.0)
    base[[AU_INDEX[25], AU_INDEX[26], AU_INDEX[27]]] = 0.0  # the lips stay closed unless the prototype parts them
    for au, weight in forms[form][1].items():
        base[AU_INDEX[au]] = weight * intensity * rng.uniform(0.85, 1.15)
    if blends and name != "neutral" and rng.random() < BLEND_PROBABILITY:
        others = [other for other in PROTOTYPES if other not in ("neutral", name)]
        other = PROTOTYPES[others[rng.integers(len(others))]][0][1]
        weak = rng.uniform(*BLEND_INTENSITY)
        for au, weight in other.items():
            base[AU_INDEX[au]] = max(base[AU_INDEX[au]], weight * weak)
    side = 1.0 + rng.uniform(-0.12, 0.12, (NUM_AUS, 1)) * np.array([[-1.0, 1.0]])
    return np.clip(base[:, None] * side, 0.0, 1.0)
