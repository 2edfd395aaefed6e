"""Synthetic faces as a dataset: pose presets, an index of lazily rendered samples, a torch Dataset.

Every sample is ``(subject, expression, pose, variant)``; its image is a small picklable callable
(:class:`SyntheticImage`) that renders on demand, so DataLoader workers render in parallel and
nothing is stored. Rendering is deterministic, so index ``i`` always gives the same image.

Subjects are disjoint across splits when the caller gives disjoint subject ids, e.g.
``synthetic_index(range(0, 20))`` for training and ``synthetic_index(range(20, 30))`` for testing,
or one index with ``splits={"train": 20, "test": 10}``, which labels each sample's ``split`` by
its subject.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from phanet.crop import DEFAULT_FIT, DEFAULT_PADDING, crop_spec
from phanet.data.base import SEVEN_EXPRESSIONS, FaceDataset, LabelSpace, PoseBin, Sample
from phanet.data.layout import pose_name
from phanet.data.registry import DatasetIndex, register_dataset
from phanet.synth.render import (
    DEFAULT_RANDOMIZATIONS,
    RenderSettings,
    capture_intensity,
    render_capture,
    render_capture_job,
)

log = logging.getLogger(__name__)

# The library's default renders: aligned crops of the face-crop contract, every randomisation.
DEFAULT_RENDER = RenderSettings()

_STEPS_15 = [float(a) for a in range(-90, 91, 15)]

# (yaw, pitch) in degrees, in label order.
POSE_PRESETS: dict[str, list[tuple[float, float]]] = {
    "kdef5": [(-90.0, 0.0), (-45.0, 0.0), (0.0, 0.0), (45.0, 0.0), (90.0, 0.0)],
    "bu3dfe35": [(yaw, pitch) for pitch in (-30.0, -15.0, 0.0, 15.0, 30.0) for yaw in _STEPS_15[3:10]],
    "multipie7": [(yaw, 0.0) for yaw in _STEPS_15[3:10]],
    "multipie13": [(yaw, 0.0) for yaw in _STEPS_15],
}

PoseSpec = str | Sequence[tuple[float, float]] | Sequence[float]


def parse_poses(poses: PoseSpec) -> list[tuple[float, float]]:
    """Poses as ``[(yaw, pitch), ...]`` from a preset name, ``"yaw:pitch,yaw:pitch"`` or a list.

    A bare yaw (``"0,30"`` or ``[0, 30]``) means pitch 0. Raises ``ValueError`` on unknown presets,
    malformed entries, angles outside ±180° (yaw) / ±90° (pitch) and duplicates.
    """
    if isinstance(poses, str):
        text = poses.strip()
        if text in POSE_PRESETS:
            return list(POSE_PRESETS[text])
        if any(ch.isalpha() for ch in text):
            raise ValueError(f"unknown pose preset {text!r}; presets: {', '.join(POSE_PRESETS)}, "
                             "or a list like '-45:0,0:0,45:0' (yaw:pitch in degrees)")
        items: list = []
        for part in text.split(","):
            fields = part.strip().split(":")
            try:
                if not part.strip() or len(fields) > 2:
                    raise ValueError
                items.append(tuple(float(f) for f in fields))
            except ValueError:
                raise ValueError(f"bad pose {part!r} in {poses!r}: expected yaw or yaw:pitch in degrees") from None
    else:
        items = list(poses)
    if not items:
        raise ValueError("no poses given")
    out = []
    for item in items:
        if np.isscalar(item):
            yaw, pitch = float(item), 0.0
        else:
            yaw, pitch = float(item[0]), float(item[1]) if len(item) > 1 else 0.0
        yaw, pitch = yaw + 0.0, pitch + 0.0  # no "-0" bins
        if not (-180 <= yaw <= 180 and -90 <= pitch <= 90):
            raise ValueError(f"pose yaw={yaw:g}, pitch={pitch:g} is out of range (|yaw| <= 180, |pitch| <= 90)")
        out.append((yaw, pitch))
    if len(set(out)) != len(out):
        raise ValueError(f"duplicate poses in {poses!r}")
    return out


def pose_bins(poses: PoseSpec) -> tuple[PoseBin, ...]:
    """The pose bins of a pose set: ``yaw-45`` when every pitch is 0, else ``yaw-45_pitch+15``."""
    parsed = parse_poses(poses)
    with_pitch = any(pitch != 0 for _, pitch in parsed)

    return tuple(PoseBin(pose_name(yaw, pitch if with_pitch else None), yaw, pitch) for yaw, pitch in parsed)


def synthetic_label_space(poses: PoseSpec = "kdef5") -> LabelSpace:
    """The seven basic expressions and the pose bins of ``poses``."""
    return LabelSpace(expressions=tuple(SEVEN_EXPRESSIONS), poses=pose_bins(poses))


@dataclass(frozen=True)
class SyntheticImage:
    """A picklable recipe for one synthetic image; calling it renders ``[size, size, 3]`` uint8.

    ``render`` says how (:class:`phanet.synth.RenderSettings`: size, jitter, crop, randomisations).
    """

    seed: int
    subject: int
    expression: int
    yaw: float
    pitch: float
    variant: int = 0
    render: RenderSettings = DEFAULT_RENDER

    def __call__(self) -> np.ndarray:
        return render_capture(self.seed, self.subject, self.expression, self.yaw, self.pitch, self.render,
                              variant=self.variant)


# Below this many images (~1.5 s of rendering at 64 px) a process pool's start-up costs more than it saves.
PARALLEL_RENDER_MIN = 100


def render_recipes(recipes: Sequence[SyntheticImage], processes: int = 1, progress: bool = False,
                   desc: str = "render synthetic faces") -> list[np.ndarray]:
    """Render every recipe, in order; on ``processes`` cores at once when there are many.

    The workers import only :mod:`phanet.synth` (numpy), so they start in well under a second.

    The renderer is numpy on one core, so a pool of processes renders a large set about ``processes``
    times faster; results are identical (each image depends only on its recipe). The pool uses the
    ``spawn`` start method: forking a process whose torch has started OpenMP threads can hang the child.
    Where the workers cannot start (e.g. code run from standard input, which spawned processes cannot
    re-import), the set is rendered in this process instead, with a warning.
    """
    from tqdm import tqdm

    if processes > 1 and len(recipes) >= PARALLEL_RENDER_MIN:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from concurrent.futures.process import BrokenProcessPool

        try:
            with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
                jobs = [(r.seed, r.subject, r.expression, r.yaw, r.pitch, r.render, r.variant) for r in recipes]
                rendered = pool.map(render_capture_job, jobs, chunksize=16)
                return list(tqdm(rendered, total=len(recipes), desc=desc, disable=not progress))
        except BrokenProcessPool as err:
            log.warning("rendering in one process: the render workers could not start (%s)", err)
    return [recipe() for recipe in tqdm(recipes, desc=desc, disable=not progress)]


def _subject_list(subjects: int | Iterable[int]) -> list[int]:
    ids = list(range(subjects)) if isinstance(subjects, int) else [int(s) for s in subjects]
    if not ids:
        raise ValueError("no subjects given")
    if min(ids) < 0:
        raise ValueError(f"subject ids must be >= 0, got {min(ids)}")
    if len(set(ids)) != len(ids):
        raise ValueError("subject ids must be unique")
    return ids


def _split_of(ids: list[int], splits: Mapping[str, int] | None) -> dict[int, str | None]:
    if not splits:
        return {s: None for s in ids}
    if sum(splits.values()) != len(ids) or min(splits.values()) < 0:
        raise ValueError(f"split sizes {dict(splits)} must be >= 0 and add up to the {len(ids)} subjects")
    names = [name for name, count in splits.items() for _ in range(count)]
    return dict(zip(ids, names))


def synthetic_index(
    subjects: int | Iterable[int],
    poses: PoseSpec = "kdef5",
    render: RenderSettings = DEFAULT_RENDER,
    seed: int = 0,
    per_cell: int = 1,
    splits: Mapping[str, int] | None = None,
) -> DatasetIndex:
    """Index of synthetic samples: every subject x expression x pose, ``per_cell`` times.

    ``subjects`` is a count (ids ``0..n-1``) or the ids themselves; ids are the identities, so
    disjoint ids give disjoint subjects across splits. The ``per_cell`` images of one cell are
    different captures (``variant``): other AU intensities, lighting, background and pose jitter.
    ``splits`` optionally names consecutive groups of the subjects (e.g. ``{"train": 14, "val": 3,
    "test": 3}``) and sets each sample's ``split``. ``yaw``/``pitch`` of a sample are the nominal
    values of its bin; the rendered pose is jittered by up to ±3°. ``render`` says how images are
    rendered (:class:`phanet.synth.RenderSettings`; its default: aligned crops of the face-crop
    contract, padding 0.1, ``eye_mouth`` fit, the default randomisations; ``align_padding=None`` and
    ``randomize=()`` give the faces of version 0.1).
    """
    if per_cell < 1:
        raise ValueError(f"per_cell must be >= 1, got {per_cell}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    ids = _subject_list(subjects)
    crop = None if render.align_padding is None else crop_spec(render.align_padding, render.align_fit)
    split_of = _split_of(ids, splits)
    space = synthetic_label_space(poses)
    samples = []
    for subject in ids:
        sid = f"synth{subject:04d}"
        for expression, expression_name in enumerate(space.expressions):
            for pose_index, pose in enumerate(space.poses):
                for variant in range(per_cell):
                    image = SyntheticImage(seed, subject, expression, pose.yaw, pose.pitch, variant, render)
                    samples.append(Sample(
                        image=image,
                        expression=expression,
                        pose=pose_index,
                        subject=sid,
                        item_id=f"{sid}_{expression_name}_{pose.name}_v{variant}",
                        yaw=pose.yaw,
                        pitch=pose.pitch,
                        split=split_of[subject],
                        # kept when the image is rendered into memory (the demo), for provenance checks;
                        # the intensity is what train.intensity_labels grades the targets by
                        extra={"generator_seed": seed, "generator_id": subject,
                               "intensity": capture_intensity(seed, subject, expression, render.randomize,
                                                              variant=variant)},
                    ))
    protocol = "official" if splits else "subject_kfold"
    return DatasetIndex(samples=samples, label_space=space, default_protocol=protocol, name="synthetic", crop=crop)


@register_dataset("synthetic")
def load_synthetic(
    root=None,
    subjects: int | Iterable[int] = 20,
    poses: PoseSpec = "kdef5",
    size: int = 112,
    seed: int = 0,
    per_cell: int = 1,
    splits: Mapping[str, int] | None = None,
    align_padding: float | None = DEFAULT_PADDING,
    randomize: Sequence[str] | str = DEFAULT_RANDOMIZATIONS,
    align_fit: str = DEFAULT_FIT,
) -> DatasetIndex:
    """Registry entry ``synthetic``: rendered on the fly, so there is no root folder."""
    if root not in (None, ""):
        raise ValueError(
            f"the synthetic dataset is rendered on the fly and takes no root (got {str(root)!r}); "
            "to read a folder written by `phanet synth`, load it as the generic CSV dataset"
        )
    render = RenderSettings(size, align_padding=align_padding, align_fit=align_fit, randomize=randomize)
    return synthetic_index(subjects, poses, render, seed, per_cell, splits)


class SyntheticFaces(FaceDataset):
    """A torch Dataset of synthetic faces rendered on the fly (see :func:`synthetic_index`).

    Item ``i`` is always the same image; ``transform`` is as in :class:`~phanet.data.FaceDataset`.
    """

    def __init__(
        self,
        subjects: int | Iterable[int],
        poses: PoseSpec = "kdef5",
        size: int = 112,
        seed: int = 0,
        per_cell: int = 1,
        transform=None,
    ):
        index = synthetic_index(subjects, poses, RenderSettings(size), seed, per_cell)
        super().__init__(index.samples, index.label_space, transform=transform, strict=True)
