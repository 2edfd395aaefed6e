"""The generator's detail randomisations (brows, skin, age, shading, glasses, resting, eyes, teeth, smiles,
broad_smiles, nose, rest_shape, rest_spread, lashes, mid_face, clutter, camera):
each is a switch that changes what it should and leaves the rest of the face, and the default faces, as they were."""

import dataclasses

import numpy as np
import pytest

from phanet.synth import (
    DEFAULT_RANDOMIZATIONS,
    RANDOMIZATIONS,
    check_randomize,
    prototype_aus,
    render_face,
    sample_identity,
)
from phanet.synth.expressions import AU_INDEX, EXPRESSIONS, POSED_SMILE_FORMS, SUBTLE_INTENSITY, sample_aus
from phanet.synth.identity import (
    BROAD_SMILE_LIP,
    EYE_FISSURE_RATIO,
    EYE_UPPER_SHARE,
    IDENTITY_DETAILS,
    LASH_OVER,
    MID_FACE_MOUTH_RAISE,
    MID_FACE_NOSE_RAISE,
    NOSE_ALAR_CREASE,
    NOSE_NOSTRIL_SIZE,
    NOSE_RESTING_FOLD,
    NOSE_SHADE,
    REST_BROW_DROP,
    REST_CORNER_AU15,
    RESTING_AUS,
    SMILE_ANGLE_DEGREES,
    Identity,
)
from phanet.synth.maths import value_noise
from phanet.synth.render import CAMERA_DISTANCE, Scene, View, background, render_scene, sample_scene, sample_view

SIZE = 64
NEW = ("brows", "skin", "age", "shading", "glasses", "resting", "eyes", "teeth", "smiles", "broad_smiles", "nose",
       "rest_shape", "rest_spread", "lashes", "mid_face", "clutter", "camera")


def test_the_default_renders_are_the_three_switches_of_version_0_2():
    assert set(DEFAULT_RANDOMIZATIONS) == {"lips", "subtle", "blends"}
    assert set(RANDOMIZATIONS) == set(DEFAULT_RANDOMIZATIONS) | set(NEW)
    assert check_randomize("default") == check_randomize(("subtle", "lips", "blends"))
    assert check_randomize("all") == tuple(sorted(RANDOMIZATIONS))
    default = render_face(0, 4, 1, 20.0, 0.0, SIZE, align_padding=0.1)
    assert np.array_equal(default, render_face(0, 4, 1, 20.0, 0.0, SIZE, align_padding=0.1, randomize="default"))
    with pytest.raises(ValueError, match="glasses"):
        check_randomize("glases")


@pytest.mark.parametrize("part", NEW)
def test_each_detail_switch_changes_the_image(part):
    # a subject that draws glasses and a resting face under seed 2, so both switches have something to paint
    subject = next(s for s in range(40) if sample_identity(2, s, details=("glasses", "resting")).glasses > 0
                   and sample_identity(2, s, details=("resting",)).resting)
    # a neutral mouth shows no teeth and no smile
    expression = EXPRESSIONS.index("happy" if part in ("teeth", "smiles", "broad_smiles") else "neutral")
    base = render_face(2, subject, expression, 0.0, 0.0, SIZE, align_padding=0.1)
    switched = render_face(2, subject, expression, 0.0, 0.0, SIZE, align_padding=0.1,
                           randomize=DEFAULT_RANDOMIZATIONS + (part,))
    assert not np.array_equal(base, switched)


def test_identity_details_draw_from_their_own_streams():
    plain = sample_identity(3, 7)
    full = sample_identity(3, 7, details=IDENTITY_DETAILS)
    no_skin = sample_identity(3, 7, details=tuple(d for d in IDENTITY_DETAILS if d != "skin"))
    # the base face is the same whatever details are on
    assert (plain.eye_x, plain.mouth_w, plain.skin, plain.hair_colour) == (full.eye_x, full.mouth_w, full.skin,
                                                                          full.hair_colour)
    # turning one detail off leaves every other detail as it was
    skin_fields = ("skin_texture", "freckles", "moles", "blush", "eye_shadow", "eye_shadow_colour")
    for field in dataclasses.fields(Identity):
        if field.name not in skin_fields:
            assert getattr(no_skin, field.name) == getattr(full, field.name), field.name
    assert no_skin.skin_texture == 0 and full.skin_texture > 0
    with pytest.raises(ValueError, match="known: age, brows"):
        sample_identity(3, 7, details=("beard",))


def test_detail_ranges_over_many_subjects():
    people = [sample_identity(0, s, details=IDENTITY_DETAILS) for s in range(300)]
    share = lambda values: float(np.mean(values))  # noqa: E731
    assert 0.2 < share([p.glasses > 0 for p in people]) < 0.45  # about a third wear glasses
    assert 0.15 < share([p.freckles > 0 for p in people]) < 0.35
    assert 0.15 < share([p.blush > 0 for p in people]) < 0.35
    assert min(p.age for p in people) < 0.05 and max(p.age for p in people) > 0.9
    plain = [sample_identity(0, s) for s in range(300)]
    # brows: thicker and lower than the base range, which never drew a real brow's thickness
    assert max(p.brow_thick for p in plain) <= 0.8 < max(p.brow_thick for p in people)
    assert min(p.brow_y for p in people) < 2.0 <= 2.3 <= min(p.brow_y for p in plain)


def test_resting_faces_are_weak_single_units_that_every_expression_carries():
    people = [sample_identity(0, s, details=("resting",)) for s in range(300)]
    assert 0.65 < float(np.mean([bool(p.resting) for p in people])) < 0.85  # about three quarters
    caps = dict(RESTING_AUS)
    for person in people:
        assert len(person.resting) <= 3
        for au, intensity in person.resting:
            assert 0.05 <= intensity <= caps[au] < SUBTLE_INTENSITY  # weaker than the weakest expression
    # render_scene adds the resting units to whatever the expression moves
    resting = dataclasses.replace(Identity(), resting=((15, 0.3), (4, 0.2)))
    happy = prototype_aus("happy", 0.8)
    moved = happy.copy()
    moved[AU_INDEX[15]] += 0.3
    moved[AU_INDEX[4]] += 0.2
    assert np.array_equal(render_scene(resting, happy, View(), Scene(), SIZE),
                          render_scene(Identity(), moved, View(), Scene(), SIZE))
    assert not np.array_equal(render_scene(resting, happy, View(), Scene(), SIZE),
                              render_scene(Identity(), happy, View(), Scene(), SIZE))


def test_the_rest_shape_lowers_the_brows_and_rests_the_mouth_corners_after_the_other_details():
    for subject in range(20):
        plain = sample_identity(0, subject)
        shaped = sample_identity(0, subject, details=("rest_shape",))
        assert shaped.brow_y == pytest.approx(plain.brow_y - REST_BROW_DROP)
        assert shaped.resting == ((15, REST_CORNER_AU15),)
        assert dataclasses.replace(shaped, brow_y=plain.brow_y, resting=()) == plain  # nothing else changes
        # with the brows and resting details it shifts what they drew, and keeps their resting units
        both = sample_identity(0, subject, details=("brows", "resting"))
        all_three = sample_identity(0, subject, details=("brows", "resting", "rest_shape"))
        assert all_three.brow_y == pytest.approx(both.brow_y - REST_BROW_DROP)
        assert all_three.resting == both.resting + ((15, REST_CORNER_AU15),)
    # one action unit named twice adds up: a resting AU 15 and the rest shape's
    twice = dataclasses.replace(Identity(), resting=((15, 0.2), (15, REST_CORNER_AU15)))
    moved = prototype_aus("neutral", 1.0)
    moved[AU_INDEX[15]] += 0.2 + REST_CORNER_AU15
    assert np.array_equal(render_scene(twice, prototype_aus("neutral", 1.0), View(), Scene(), SIZE),
                          render_scene(Identity(), moved, View(), Scene(), SIZE))


def test_the_rest_spread_draws_each_subjects_resting_shift_around_the_rest_shapes():
    drops, corners = [], []
    for subject in range(200):
        plain = sample_identity(0, subject, details=("brows", "resting"))
        spread = sample_identity(0, subject, details=("brows", "resting", "rest_spread"))
        drop = plain.brow_y - spread.brow_y
        assert spread.resting[:-1] == plain.resting and spread.resting[-1][0] == 15
        assert dataclasses.replace(spread, brow_y=plain.brow_y, resting=plain.resting) == plain  # nothing else
        drops.append(drop)
        corners.append(spread.resting[-1][1])
        # the same subject always gets the same shift; rest_spread replaces rest_shape where both are named
        assert sample_identity(0, subject, details=("brows", "resting", "rest_spread", "rest_shape")) == spread
    drops, corners = np.array(drops), np.array(corners)
    assert drops.min() >= 0 and drops.max() <= 2 * REST_BROW_DROP and corners.max() <= 2 * REST_CORNER_AU15
    # spread over the whole range, centred on the fixed shift, drawn independently
    assert drops.mean() == pytest.approx(REST_BROW_DROP, abs=0.06) and drops.std() > 0.18
    assert corners.mean() == pytest.approx(REST_CORNER_AU15, abs=0.04) and corners.std() > 0.12
    assert abs(np.corrcoef(drops, corners)[0, 1]) < 0.2
    assert len({sample_identity(s, 3, details=("rest_spread",)).brow_y for s in range(5)}) == 5


def test_the_mid_face_raises_the_nose_tip_and_mouth_to_the_canonical_faces_heights_below_the_eyes():
    from phanet.synth.render import RenderSettings, render_capture

    def heights(marks):  # nose tip and mouth below the eye line, in eye-to-eye distances
        eyes, mouth = marks[:2].mean(0), marks[3:].mean(0)
        eye_to_eye = np.hypot(*(marks[1] - marks[0]))
        return (marks[2] - eyes)[1] / eye_to_eye, (mouth - eyes)[1] / eye_to_eye

    for subject in range(10):
        plain = sample_identity(0, subject, details=("brows", "nose"))
        raised = sample_identity(0, subject, details=("brows", "nose", "mid_face"))
        assert raised.nose_y == pytest.approx(plain.nose_y + MID_FACE_NOSE_RAISE * 2 * plain.eye_x)
        assert raised.mouth_y == pytest.approx(plain.mouth_y + MID_FACE_MOUTH_RAISE * 2 * plain.eye_x)
        assert dataclasses.replace(raised, nose_y=plain.nose_y, mouth_y=plain.mouth_y) == plain  # nothing else
    # measured on frontal neutral renders (exact landmarks, no jitter): from the base face's heights to about the
    # canonical face's (0.595 and 1.106), the numbers the constants were set from
    measured = {}
    for parts in ((), ("mid_face",)):
        settings = RenderSettings(size=SIZE, jitter=False, align_padding=None, randomize=("lips",) + parts)
        measured[parts] = np.mean([heights(render_capture(0, s, 0, 0.0, 0.0, settings, return_landmarks=True)[1])
                                   for s in range(8)], axis=0)
    assert measured[()] == pytest.approx([0.72, 1.19], abs=0.04)
    assert measured[("mid_face",)] == pytest.approx([0.595, 1.106], abs=0.03)


def test_a_capture_can_be_seen_through_another_camera_with_everything_else_kept():
    from phanet.synth.render import RenderSettings, render_capture

    settings = RenderSettings(SIZE, True, 0.1, randomize=("brows", "clutter"))
    default = render_capture(2, 5, 1, 30.0, 0.0, settings)
    jittered = sample_view(2, 5, 1, 0, 30.0, 0.0, jitter=True)
    assert np.array_equal(render_capture(2, 5, 1, 30.0, 0.0, settings, view=jittered), default)
    far = render_capture(2, 5, 1, 30.0, 0.0, settings, view=View(yaw=30.0, distance=2000.0))
    assert not np.array_equal(far, default)
    # the view decides the pose: the capture's own yaw and pitch are unused
    assert np.array_equal(render_capture(2, 5, 1, -60.0, 20.0, settings, view=View(yaw=30.0, distance=2000.0)), far)


def test_eye_openings_span_adult_palpebral_fissures():
    plain = [sample_identity(0, s) for s in range(300)]
    wide = [sample_identity(0, s, details=("eyes",)) for s in range(300)]
    ratio = lambda p: (p.eye_open + p.eye_low) / (2 * p.eye_w)  # noqa: E731  fissure height / width
    # the base range is narrower than nearly every real adult eye (about 10 of 30 mm)
    assert max(ratio(p) for p in plain) < 0.30
    assert EYE_FISSURE_RATIO[0] <= min(ratio(p) for p in wide) and max(ratio(p) for p in wide) <= EYE_FISSURE_RATIO[1]
    assert 0.31 < float(np.mean([ratio(p) for p in wide])) < 0.35
    for p, w in zip(plain, wide):
        assert w.eye_open == pytest.approx(EYE_UPPER_SHARE * ratio(w) * 2 * w.eye_w)
        assert dataclasses.replace(w, eye_open=p.eye_open, eye_low=p.eye_low) == p  # nothing else moves
    # the painter draws the lower lid where eye_low says: a deeper one changes the eye band and nothing else
    face = sample_identity(1, 2)
    changed = np.abs(_frontal(dataclasses.replace(face, eye_low=0.45)) - _frontal(face)).sum(-1) > 0
    rows, cols = np.nonzero(changed)
    assert changed.sum() > 20 and 32 <= rows.min() and rows.max() <= 46 and 20 <= cols.min() and cols.max() <= 76


def _frontal(ident: Identity, expression: str = "neutral") -> np.ndarray:
    return render_scene(ident, prototype_aus(expression), View(), Scene(), 96).astype(float)


def test_teeth_are_drawn_per_subject_and_painted_in_the_open_mouth_only():
    plain = [sample_identity(0, s) for s in range(300)]
    drawn = [sample_identity(0, s, details=("teeth",)) for s in range(300)]
    defaults = Identity()
    for p, t in zip(plain, drawn):
        assert (p.teeth_shade, p.teeth_gaps, p.teeth_sides) == (defaults.teeth_shade, defaults.teeth_gaps,
                                                                defaults.teeth_sides)
        assert 0.95 <= t.teeth_shade <= 1.12 and 0.05 <= t.teeth_gaps <= 0.4 and 0.3 <= t.teeth_sides <= 0.55
        assert dataclasses.replace(t, teeth_shade=p.teeth_shade, teeth_gaps=p.teeth_gaps,
                                   teeth_sides=p.teeth_sides) == p  # nothing else moves
    face = sample_identity(1, 2)
    white = dataclasses.replace(face, teeth_shade=1.12, teeth_gaps=0.05, teeth_sides=0.3)
    # a closed mouth shows no teeth; an open smile shows brighter teeth, and only in the mouth
    assert np.array_equal(_frontal(white), _frontal(face))
    smile_plain, smile_white = _frontal(face, "happy"), _frontal(white, "happy")
    changed = np.abs(smile_white - smile_plain).sum(-1) > 0
    rows, cols = np.nonzero(changed)
    assert changed.sum() > 10 and 60 <= rows.min() and rows.max() <= 80 and 28 <= cols.min() and cols.max() <= 68
    assert smile_white[changed].mean() > smile_plain[changed].mean() + 5


def test_the_teeth_switch_gives_a_third_of_the_smiles_closed_teeth_and_leaves_other_expressions():
    def draws(expression, posed):
        return [sample_aus(np.random.default_rng(i), EXPRESSIONS.index(expression), posed_smiles=posed)
                for i in range(600)]

    jaw, parted = AU_INDEX[26], AU_INDEX[25]
    for posed, jaw_share in ((False, 0.75), (True, POSED_SMILE_FORMS[0][0])):
        smiles = draws("happy", posed)
        assert abs(np.mean([a[jaw].max() > 0 for a in smiles]) - jaw_share) < 0.06
        closed_teeth = np.mean([a[parted].max() > 0 and a[jaw].max() == 0 for a in smiles])
        assert abs(closed_teeth - (POSED_SMILE_FORMS[1][0] if posed else 0.0)) < 0.06
    for expression in EXPRESSIONS:
        if expression != "happy":
            assert all(np.array_equal(a, b) for a, b in zip(draws(expression, False), draws(expression, True)))


def test_broad_smiles_lift_the_upper_lip_further_and_change_nothing_else():
    smiles = [sample_identity(0, s, details=("smiles",)) for s in range(300)]
    broad = [sample_identity(0, s, details=("smiles", "broad_smiles")) for s in range(300)]
    alone = [sample_identity(0, s, details=("broad_smiles",)) for s in range(300)]
    plain = [sample_identity(0, s) for s in range(300)]
    for s, b, a, p in zip(smiles, broad, alone, plain):
        assert BROAD_SMILE_LIP[0] <= b.smile_lip <= BROAD_SMILE_LIP[1]
        assert b.smile_lip == a.smile_lip  # one stream of its own, whether or not "smiles" is on
        assert dataclasses.replace(b, smile_lip=s.smile_lip) == s  # the angles stay those of "smiles"
        assert dataclasses.replace(a, smile_lip=p.smile_lip) == p
    lifts = np.array([b.smile_lip for b in broad])
    assert np.mean(lifts > 0.5) > 0.55 and lifts.max() > 1.3  # most smiles lift the lip beyond "smiles"' range
    # a broad smile bares more teeth than the same face's smile with the lip lifted as "smiles" at most does
    face = sample_identity(1, 2)
    smile = prototype_aus("happy", form=1)

    def teeth(ident):
        mouth = render_scene(ident, smile, View(), Scene(), 96)[56:80, 28:68].astype(int)
        return int(((mouth.max(-1) - mouth.min(-1) < 45) & (mouth.min(-1) > 100)).sum())

    assert teeth(dataclasses.replace(face, smile_lip=1.5)) > teeth(dataclasses.replace(face, smile_lip=0.5)) + 15


def test_smiles_are_drawn_per_subject_and_move_only_smiling_mouths():
    plain = [sample_identity(0, s) for s in range(300)]
    drawn = [sample_identity(0, s, details=("smiles",)) for s in range(300)]
    defaults = Identity()
    pull = np.hypot(defaults.smile_out, defaults.smile_up)
    for p, t in zip(plain, drawn):
        assert (p.smile_out, p.smile_up, p.smile_lip) == (defaults.smile_out, defaults.smile_up, defaults.smile_lip)
        angle = np.degrees(np.arctan2(t.smile_up, t.smile_out))
        assert SMILE_ANGLE_DEGREES[0] <= angle <= SMILE_ANGLE_DEGREES[1] + 1e-6
        assert np.hypot(t.smile_out, t.smile_up) == pytest.approx(pull) and 0.0 <= t.smile_lip <= 0.5
        assert dataclasses.replace(t, smile_out=p.smile_out, smile_up=p.smile_up, smile_lip=p.smile_lip) == p
    assert np.mean([t.smile_lip > 0.25 for t in drawn]) > 0.3  # a lifted upper lip is common, not a rarity
    face = sample_identity(1, 2)
    wide = dataclasses.replace(face, smile_out=1.39, smile_up=0.65)
    bared = dataclasses.replace(wide, smile_lip=0.5)
    assert np.array_equal(_frontal(wide), _frontal(face))  # no smile, nothing moves
    smile = prototype_aus("happy", form=1)  # the closed smile: the lip lift alone parts the lips

    def corners(ident):
        _, marks = render_scene(ident, smile, View(), Scene(), 96, return_landmarks=True)
        return marks[3:]  # the mouth corners: [[x, y], [x, y]]

    steep, flat = corners(face), corners(wide)
    # the flatter pull puts the corners further apart and lower (image rows grow downwards)
    assert flat[1, 0] - flat[0, 0] > steep[1, 0] - steep[0, 0] + 1.0
    assert flat[:, 1].mean() > steep[:, 1].mean() + 0.5
    # lifting the upper lip with the corners bares the teeth (light, unsaturated pixels; lips and skin are
    # saturated) between lips that were closed: about 40 pixels against none
    def teeth(ident):
        mouth = render_scene(ident, smile, View(), Scene(), 96)[56:80, 28:68].astype(int)
        return int(((mouth.max(-1) - mouth.min(-1) < 45) & (mouth.min(-1) > 100)).sum())

    assert teeth(wide) < 10 and teeth(bared) > 25


def test_age_lines_darken_a_neutral_forehead_and_glasses_darken_the_eye_band():
    young = dataclasses.replace(sample_identity(1, 2), age=0.0)
    old = dataclasses.replace(young, age=1.0)
    forehead = (slice(16, 30), slice(36, 60))
    assert _frontal(old)[forehead].mean() < _frontal(young)[forehead].mean() - 0.5
    framed = dataclasses.replace(young, glasses=0.35, glasses_colour=(0.05, 0.05, 0.05))
    eyes = (slice(34, 50), slice(10, 86))
    assert _frontal(framed)[eyes].mean() < _frontal(young)[eyes].mean() - 2.0


def test_the_nose_detail_is_drawn_for_every_subject_within_its_ranges():
    defaults = Identity()
    for s in range(200):
        plain, nosed = sample_identity(0, s), sample_identity(0, s, details=("nose",))
        fields = ("alar_crease", "nostril_size", "nose_shade", "resting_fold")
        assert all(getattr(plain, f) == getattr(defaults, f) for f in fields)  # off: the base face's nose
        for field, (lo, hi) in zip(fields, (NOSE_ALAR_CREASE, NOSE_NOSTRIL_SIZE, NOSE_SHADE, NOSE_RESTING_FOLD)):
            assert lo <= getattr(nosed, field) <= hi, field
        assert dataclasses.replace(nosed, **{f: getattr(plain, f) for f in fields}) == plain


def test_the_nose_detail_darkens_the_resting_nose_base_and_leaves_eyes_and_forehead():
    base = sample_identity(1, 3)
    nosed = dataclasses.replace(base, alar_crease=0.5, nostril_size=1.6, nose_shade=0.3, resting_fold=0.25)
    a, b = _frontal(base), _frontal(nosed)
    _, marks = render_scene(base, prototype_aus("neutral"), View(), Scene(), 96, return_landmarks=True)
    tip_x, tip_y = np.round(marks[2]).astype(int)
    nose_base = (slice(tip_y - 2, tip_y + 6), slice(tip_x - 10, tip_x + 11))
    assert b[nose_base].mean() < a[nose_base].mean() - 3.0
    upper_face = (slice(0, tip_y - 12), slice(None))  # forehead, brows and eyes: untouched
    assert np.array_equal(a[upper_face], b[upper_face])
    # the resting nasolabial folds: beside the mouth darker, with no expression at all
    mouth_y = int(round((marks[3][1] + marks[4][1]) / 2))
    beside = (slice(tip_y + 4, mouth_y), slice(int(marks[3][0]) - 4, int(marks[3][0]) + 1))
    assert b[beside].mean() < a[beside].mean() - 0.5


def test_the_lashes_detail_draws_how_much_of_the_lash_line_covers_the_eyeball():
    for s in range(100):
        plain, lashed = sample_identity(0, s), sample_identity(0, s, details=("lashes",))
        assert plain.lash_over == 0.0 and LASH_OVER[0] <= lashed.lash_over <= LASH_OVER[1]
        assert dataclasses.replace(lashed, lash_over=0.0) == plain


def test_the_lashes_detail_darkens_the_top_of_the_eye_opening_and_leaves_the_rest_of_the_face():
    base = sample_identity(1, 3)
    a, b = _frontal(base), _frontal(dataclasses.replace(base, lash_over=1.0))
    _, marks = render_scene(base, prototype_aus("neutral"), View(), Scene(), 96, return_landmarks=True)
    eye_x, eye_y = np.round(marks[0]).astype(int)
    rows = np.nonzero(np.abs(a - b).sum(axis=(1, 2)))[0]
    assert len(rows) and rows.min() >= eye_y - 6 and rows.max() <= eye_y + 2  # the eyes' rows only
    top_of_eye = (slice(eye_y - 3, eye_y + 1), slice(eye_x - 6, eye_x + 7))
    assert b[top_of_eye].mean() < a[top_of_eye].mean() - 1.0


def test_socket_shading_darkens_the_eye_sockets_more_than_the_cheeks():
    flat = dataclasses.replace(sample_identity(1, 3), socket_shade=0.0)
    shaded = dataclasses.replace(flat, socket_shade=0.45)
    a, b = _frontal(flat), _frontal(shaded)
    socket, cheek = (slice(29, 35), slice(26, 40)), (slice(58, 64), slice(20, 28))  # under the brow; a cheek
    assert a[socket].mean() - b[socket].mean() > 2 * max(a[cheek].mean() - b[cheek].mean(), 0.5)


def test_clutter_changes_the_backdrop_only():
    plain = sample_scene(0, 1, 2, 0)
    busy = sample_scene(0, 1, 2, 0, clutter=True)
    assert dataclasses.replace(busy, clutter=(), texture=(0.0, 0)) == plain  # the same lights and colours
    assert busy.clutter and not plain.clutter
    assert not np.array_equal(background(plain, 48), background(busy, 48))
    ident = sample_identity(0, 1)
    a = render_scene(ident, prototype_aus("happy"), View(), plain, 64)
    b = render_scene(ident, prototype_aus("happy"), View(), busy, 64)
    centre = (slice(24, 40), slice(24, 40))  # inside the face: the same pixels
    assert np.array_equal(a[centre], b[centre]) and not np.array_equal(a, b)


def test_value_noise_is_deterministic_bounded_and_smooth():
    rng = np.random.default_rng(0)
    points = rng.uniform(-10, 10, (2000, 3))
    a = value_noise(points, 1.5, key=3)
    assert np.array_equal(a, value_noise(points, 1.5, key=3))
    assert not np.array_equal(a, value_noise(points, 1.5, key=4))
    assert a.min() >= 0 and a.max() < 1 and a.std() > 0.1
    near = value_noise(points + 0.01, 1.5, key=3)
    assert np.abs(near - a).max() < 0.1  # a hundredth of a lattice cell moves the value a little


def test_camera_distance_changes_the_perspective_only():
    assert View().distance == CAMERA_DISTANCE
    drawn = [sample_view(0, 1, 2, variant, 30.0, 0.0, True, camera=True) for variant in range(200)]
    distances = np.array([view.distance for view in drawn])
    assert 40.0 <= distances.min() < 50.0 and 170.0 < distances.max() <= 200.0
    plain = sample_view(0, 1, 2, 5, 30.0, 0.0, True)
    assert dataclasses.replace(drawn[5], distance=CAMERA_DISTANCE) == plain  # the same pose jitter
    # a near camera magnifies what is near it: the turned nose tip sits further from the eyes
    ident = sample_identity(0, 1)
    offsets = []
    for distance in (40.0, 200.0):
        _, marks = render_scene(ident, prototype_aus("neutral"), View(yaw=40.0, distance=distance), Scene(), 96,
                                return_landmarks=True)
        eyes = (marks[0] + marks[1]) / 2
        offsets.append((marks[2][0] - eyes[0]) / np.linalg.norm(marks[0] - marks[1]))
    assert offsets[0] > offsets[1] + 0.05


@pytest.mark.parametrize("command", ["demo", "synth"])
def test_the_randomize_help_names_every_switch_of_the_generator(command):
    # the help is spelled out (building the parsers imports neither numpy nor torch), so it must keep up
    from phanet.cli import build_parser

    subparsers = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    randomize = next(a for a in subparsers.choices[command]._actions if a.dest == "randomize")
    named = {word.strip(" ,;:()") for word in randomize.help.split()}
    assert set(RANDOMIZATIONS) <= named, sorted(set(RANDOMIZATIONS) - named)
