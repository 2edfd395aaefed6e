"""Which people a checkpoint has seen, so that an evaluation on them is never mistaken for a test.

A checkpoint records the subjects of its training and validation parts and, for built-in synthetic
faces, the generator identities ``(seed, id)`` (the same id under another seed is another person).
:func:`seen_overlap` compares them with an evaluation set: the same dataset's subjects by name, and
synthetic identities from any source (in-memory renders or a folder written by ``phanet synth``,
whose ``synth_config.json`` gives the seed).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from phanet.data.registry import DatasetIndex

SYNTH_CONFIG = "synth_config.json"
TRAINED_PARTS = ("train", "val")


def synthetic_identities(index: DatasetIndex, indices=None, root: str | Path | None = None) -> set[tuple[int, int]]:
    """``{(generator seed, identity id)}`` of the synthetic samples of ``index`` (all, or ``indices``)."""
    samples = index.samples if indices is None else [index.samples[i] for i in indices]
    found = set()
    for sample in samples:
        if "generator_seed" in sample.extra and "generator_id" in sample.extra:
            found.add((int(sample.extra["generator_seed"]), int(sample.extra["generator_id"])))
    if found or root is None:
        return found
    config_path = Path(root) / SYNTH_CONFIG
    if not config_path.is_file():
        return found
    try:
        seed = int(json.loads(config_path.read_text())["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return found
    for sample in samples:
        match = re.fullmatch(r"synth(\d+)", sample.subject)
        if match:
            found.add((seed, int(match.group(1))))
    return found


def training_provenance(index: DatasetIndex, split: dict[str, list[int]]) -> dict:
    """What the checkpoint metadata records: subjects (and synthetic identities) per trained part."""
    record: dict = {"subjects": {}, "synthetic": {}}
    for part in TRAINED_PARTS:
        indices = split.get(part, [])
        record["subjects"][part] = sorted({index.samples[i].subject for i in indices if index.samples[i].subject})
        by_seed: dict[int, set[int]] = {}
        for seed, identity in synthetic_identities(index, indices):
            by_seed.setdefault(seed, set()).add(identity)
        if by_seed:
            record["synthetic"][part] = [{"seed": seed, "ids": sorted(ids)} for seed, ids in sorted(by_seed.items())]
    if not record["synthetic"]:
        del record["synthetic"]
    return record


def _ranges(values: list[int]) -> str:
    values, out, start = sorted(values), [], None
    for i, v in enumerate(values):
        if start is None:
            start = v
        if i + 1 == len(values) or values[i + 1] != v + 1:
            out.append(f"{start}" if start == v else f"{start}-{v}")
            start = None
    return ", ".join(out[:8]) + (" ..." if len(out) > 8 else "")


def seen_overlap(meta: dict, index: DatasetIndex, root: str | Path | None = None) -> str | None:
    """A one-line warning when ``index`` holds people the checkpoint was trained or validated on."""
    training = meta.get("training") or {}
    provenance = training.get("provenance") or {}
    evaluated = synthetic_identities(index, root=root)
    seen = {(entry["seed"], i) for part in TRAINED_PARTS for entry in provenance.get("synthetic", {}).get(part, [])
            for i in entry["ids"]}
    if evaluated and seen:
        both = evaluated & seen
        if both:
            seeds = sorted({s for s, _ in both})
            return (f"{len(both)} of the {len(evaluated)} synthetic identities evaluated (generator seed "
                    f"{', '.join(map(str, seeds))}, ids {_ranges([i for _, i in both])}) were in this checkpoint's "
                    "training/validation data: this is NOT a test on unseen people")
        return None
    if training.get("dataset") != index.name:
        return None  # subject names of different datasets are unrelated
    trained = {s for part in TRAINED_PARTS for s in provenance.get("subjects", {}).get(part, [])}
    subjects = {s.subject for s in index.samples if s.subject}
    both = subjects & trained
    if both:
        names = sorted(both)
        return (f"{len(both)} of the {len(subjects)} subjects evaluated ({', '.join(names[:5])}"
                f"{' ...' if len(names) > 5 else ''}) were in this checkpoint's training/validation data: this "
                "is NOT a test on unseen people")
    return None
