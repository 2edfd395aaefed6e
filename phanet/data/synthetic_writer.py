"""Write synthetic faces to disk in the generic CSV layout, with an optional contact sheet.

Layout (the contract with :mod:`phanet.data.datasets.generic`)::

    OUT/labels.csv          image,expression,pose,subject,yaw,pitch,split,intensity
    OUT/labelspace.json     LabelSpace.to_json(): the order of expression and pose names
    OUT/synth_config.json   the generator settings, to regenerate the same files
    OUT/images/synth0000/happy_yaw+45_v0.png ...
    OUT/preview.png         (with preview) expressions x poses of the first subject

``image`` paths are relative to OUT with forward slashes; ``expression`` and ``pose`` are names;
``yaw``/``pitch`` are the nominal degrees of the pose bin.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from phanet.crop import DEFAULT_FIT, DEFAULT_PADDING
from phanet.data.datasets.synthetic import PoseSpec, SyntheticImage, synthetic_index
from phanet.synth.render import DEFAULT_RANDOMIZATIONS, RenderSettings

# intensity: the expression's overall intensity as drawn (0 for neutral); the generic loader keeps it in
# Sample.extra, where train.intensity_labels reads it (phanet.intensity_targets)
LABEL_COLUMNS = ("image", "expression", "pose", "subject", "yaw", "pitch", "split", "intensity")


def _render_to(task: tuple[SyntheticImage, str]) -> None:
    recipe, path = task
    Image.fromarray(recipe()).save(path, compress_level=3)


def write_synthetic_dataset(
    out_dir: str | Path,
    subjects: int | Iterable[int],
    poses: PoseSpec = "kdef5",
    size: int = 112,
    seed: int = 0,
    per_cell: int = 1,
    preview: bool = False,
    progress: bool = True,
    workers: int = 1,
    splits: Mapping[str, int] | None = None,
    overwrite: bool = False,
    randomize: Sequence[str] | str = DEFAULT_RANDOMIZATIONS,
    align_padding: float | None = DEFAULT_PADDING,
    align_fit: str = DEFAULT_FIT,
) -> Path:
    """Render every subject x expression x pose (x ``per_cell``) into ``out_dir``; returns it.

    Output is identical for any ``workers`` (processes rendering in parallel). Raises
    ``FileExistsError`` if ``out_dir`` already holds a ``labels.csv`` and not ``overwrite``.
    """
    out = Path(out_dir)
    render = RenderSettings(size, align_padding=align_padding, align_fit=align_fit, randomize=randomize)  # validates
    index = synthetic_index(subjects, poses, render, seed, per_cell, splits)
    if (out / "labels.csv").exists() and not overwrite:
        raise FileExistsError(f"{out / 'labels.csv'} exists; choose another folder or overwrite")
    space = index.label_space
    rows, tasks = [], []
    for sample in index.samples:
        recipe = sample.image
        name = f"{space.expressions[sample.expression]}_{space.poses[sample.pose].name}_v{recipe.variant}"
        rel = f"images/{sample.subject}/{name}.png"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        tasks.append((recipe, str(out / rel)))
        rows.append((rel, space.expressions[sample.expression], space.poses[sample.pose].name, sample.subject,
                     f"{sample.yaw:g}", f"{sample.pitch:g}", sample.split or "", f"{sample.extra['intensity']:.4f}"))
    _run(tasks, workers, progress)
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(LABEL_COLUMNS)
        writer.writerows(rows)
    (out / "labelspace.json").write_text(json.dumps(space.to_json(), indent=2) + "\n", encoding="utf-8")
    config = {
        "generator": "phanet.synth",
        "subjects": sorted({s.image.subject for s in index.samples}),
        "poses": [[p.yaw, p.pitch] for p in space.poses],
        "size": size, "seed": seed, "per_cell": per_cell, "splits": dict(splits) if splits else None,
        "crop": index.crop, "randomize": list(render.randomize),
    }
    (out / "synth_config.json").write_text(json.dumps(config) + "\n", encoding="utf-8")
    if preview:
        first = index.samples[0].subject
        cells = {(s.expression, s.pose): out / r[0] for s, r in zip(index.samples, rows)
                 if s.subject == first and s.image.variant == 0}
        images = {key: np.asarray(Image.open(path).convert("RGB")) for key, path in cells.items()}
        contact_sheet(images, space.expressions, [p.name for p in space.poses]).save(out / "preview.png")
    return out


def _run(tasks: list, workers: int, progress: bool) -> None:
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="rendering faces", unit="img", disable=not progress or None)
    try:
        if workers <= 1:
            for task in tasks:
                _render_to(task)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for _ in pool.map(_render_to, tasks, chunksize=16):
                    bar.update()
    finally:
        bar.close()


def contact_sheet(images: Mapping[tuple[int, int], np.ndarray], row_names, column_names) -> Image.Image:
    """Grid of ``images[(row, column)]`` (``[H, W, 3]`` uint8) with row and column labels."""
    h, w = next(iter(images.values())).shape[:2]
    left, top = 70, 16
    sheet = Image.new("RGB", (left + w * len(column_names), top + h * len(row_names)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(column_names):
        draw.text((left + c * w + 3, 2), name, fill="black")
    for r, name in enumerate(row_names):
        draw.text((4, top + r * h + h // 2 - 5), name, fill="black")
        for c in range(len(column_names)):
            if (r, c) in images:
                sheet.paste(Image.fromarray(images[(r, c)]), (left + c * w, top + r * h))
    return sheet
