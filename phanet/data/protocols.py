"""Evaluation protocols as pure functions: subject-independent k-fold, official splits,
cross-dataset class mapping.

* **Subject-independent k-fold** (multi-view sets: KDEF, Multi-PIE, BU-3DFE). Subjects, not images,
  are dealt to folds - sorted, shuffled with the seed, then round-robin, so fold sizes differ by at most
  one subject - and a person never appears on both sides of a split. The validation part is carved by
  subject from the training subjects of each fold. Folds are written to a JSON *fold file* naming the
  subjects of every fold, so a later run (another machine, another sample order) reuses exactly the
  same partition, and a fold file that does not match the dataset's subjects is refused.
* **Official splits** (in-the-wild sets) follow ``Sample.split``. Where the test labels were never
  released (AffectNet, SFEW) the official validation set is the test set, as in the literature; where
  there is no validation set (RAF-DB, AffectNet, SFEW) one is carved from training (by subject when
  subjects are known, else by image).
* **Cross-dataset** evaluation (train on A, test on B) matches classes by name
  (:func:`map_label_space`), with common synonyms (``smile`` -> ``happy``), and reports the classes
  of B that A cannot predict; those samples are dropped (:func:`cross_dataset_index`).
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

from phanet.data.base import LabelSpace, Sample
from phanet.data.registry import DatasetIndex

log = logging.getLogger(__name__)

FOLD_FORMAT = "phanet-folds-1"
PROTOCOLS = ("subject_kfold", "official")

# Spellings of the canonical expressions met in dataset releases (canonical names, phanet.data.base).
SYNONYMS = {
    "smile": "happy", "happiness": "happy", "happy": "happy",
    "angry": "anger", "anger": "anger",
    "sadness": "sad", "sad": "sad",
    "surprised": "surprise", "surprise": "surprise",
    "afraid": "fear", "fearful": "fear", "fear": "fear",
    "disgusted": "disgust", "disgust": "disgust",
    "neutral": "neutral", "contempt": "contempt",
}


# ----------------------------------------------------------------------------- subject k-fold

def _subjects(samples: list[Sample]) -> list[str]:
    unnamed = [s.item_id or str(s.image) for s in samples if not s.subject]
    if unnamed:
        raise ValueError(
            f"subject-independent folds need a subject for every sample; {len(unnamed)} have none "
            f"(e.g. {unnamed[0]}); use protocol 'official' or give subjects"
        )
    return sorted({s.subject for s in samples})


def subject_folds(samples: list[Sample], k: int, seed: int) -> list[list[str]]:
    """The test subjects of each of ``k`` folds: shuffled with ``seed``, dealt round-robin."""
    subjects = _subjects(samples)
    if not 2 <= k <= len(subjects):
        raise ValueError(f"k={k} folds need 2 <= k <= number of subjects ({len(subjects)})")
    random.Random(seed).shuffle(subjects)
    return [sorted(subjects[i::k]) for i in range(k)]


def subject_kfold(samples: list[Sample], k: int, seed: int) -> list[list[int]]:
    """Test indices of each fold; every subject is in exactly one fold's test part."""
    return [_indices_of(samples, set(fold)) for fold in subject_folds(samples, k, seed)]


def _indices_of(samples: list[Sample], subjects: set[str]) -> list[int]:
    return [i for i, s in enumerate(samples) if s.subject in subjects]


def carve_subjects(subjects: list[str], fraction: float, seed: int) -> list[str]:
    """A seeded ``fraction`` of ``subjects`` (at least one when fraction > 0, never all of them)."""
    if fraction <= 0 or len(subjects) < 2:
        return []
    count = min(len(subjects) - 1, max(1, round(fraction * len(subjects))))
    return sorted(random.Random(seed).sample(sorted(subjects), count))


def write_folds(path: str | Path, folds: list[dict[str, list[str]]], meta: dict) -> None:
    """Write folds (``[{"test": [subjects], "val": [subjects]}, ...]``) and ``meta`` as JSON.

    ``meta`` should hold what identifies the partition: dataset, k, seed, val_fraction, subjects.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format": FOLD_FORMAT, **meta, "folds": folds}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


def read_folds(path: str | Path) -> dict:
    """The fold file's content; raises ValueError naming the file when it is not one."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"fold file {path}: cannot read ({err})") from err
    if not isinstance(data, dict) or data.get("format") != FOLD_FORMAT or not isinstance(data.get("folds"), list):
        raise ValueError(f"fold file {path}: not a phanet fold file (expected format {FOLD_FORMAT!r} and 'folds')")
    for fold in data["folds"]:
        if not isinstance(fold, dict) or not isinstance(fold.get("test"), list):
            raise ValueError(f"fold file {path}: each fold needs a 'test' list of subjects")
    return data


def _verify_folds(data: dict, path: Path, index: DatasetIndex, k: int) -> None:
    if len(data["folds"]) != k:
        raise ValueError(f"fold file {path} has {len(data['folds'])} folds, but k={k} was asked for")
    if data.get("dataset") and index.name and data["dataset"] != index.name:
        raise ValueError(f"fold file {path} is for dataset {data['dataset']!r}, not {index.name!r}")
    in_file = {s for fold in data["folds"] for s in fold["test"]}
    in_data = set(_subjects(index.samples))
    if in_file != in_data:
        extra, missing = sorted(in_file - in_data), sorted(in_data - in_file)
        raise ValueError(
            f"fold file {path} does not match the dataset's subjects: "
            f"{len(missing)} subject(s) not in the file {missing[:5]}, {len(extra)} in the file only {extra[:5]}; "
            "delete it to make new folds, or load the dataset it was made for"
        )


def split_for_fold(
    index: DatasetIndex, fold: int, k: int, seed: int, val_fraction: float, fold_file: str | Path | None
) -> dict[str, list[int]]:
    """Train/val/test indices of fold ``fold`` of a subject-independent ``k``-fold split.

    With ``fold_file``: an existing file is verified against the dataset's subjects and reused (its
    seed wins); a missing one is written, so the next run reuses it. The validation subjects are carved
    from the fold's training subjects with a seed derived from ``seed`` and ``fold``.
    """
    if not 0 <= fold < k:
        raise ValueError(f"fold {fold} does not exist; folds are 0..{k - 1}")
    fold_path = Path(fold_file) if fold_file else None
    if fold_path is not None and fold_path.exists():
        data = read_folds(fold_path)
        _verify_folds(data, fold_path, index, k)
        if data.get("seed") not in (None, seed):
            log.info("fold file %s was made with seed %s (not %s); reusing it", fold_path, data["seed"], seed)
        folds = data["folds"]
        if data.get("val_fraction") != val_fraction:
            file_seed = data["seed"] if isinstance(data.get("seed"), int) else seed
            folds = _with_val(index.samples, [f["test"] for f in folds], val_fraction, file_seed)
    else:
        folds = _with_val(index.samples, subject_folds(index.samples, k, seed), val_fraction, seed)
        if fold_path is not None:
            meta = {"dataset": index.name, "k": k, "seed": seed, "val_fraction": val_fraction,
                    "subjects": _subjects(index.samples), "num_samples": len(index.samples)}
            write_folds(fold_path, folds, meta)
    test, val = set(folds[fold]["test"]), set(folds[fold].get("val", []))
    return {
        "train": [i for i, s in enumerate(index.samples) if s.subject not in test and s.subject not in val],
        "val": _indices_of(index.samples, val),
        "test": _indices_of(index.samples, test),
    }


def _with_val(samples, test_folds: list[list[str]], val_fraction: float, seed: int) -> list[dict]:
    subjects = _subjects(samples)
    folds = []
    for number, test in enumerate(test_folds):
        train = sorted(set(subjects) - set(test))
        folds.append({"test": sorted(test), "val": carve_subjects(train, val_fraction, seed * 1009 + number)})
    return folds


# ----------------------------------------------------------------------------- official splits

def official_split(index: DatasetIndex, val_fraction: float = 0.1, seed: int = 0) -> dict[str, list[int]]:
    """Train/val/test indices from ``Sample.split``.

    No test part (AffectNet, SFEW: test labels unreleased): the official val set becomes the test set.
    No val part then (or RAF-DB, which has none): ``val_fraction`` of the training part is carved out,
    by subject when every training sample has one, else by image. Samples without a split are left out.
    """
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for i, sample in enumerate(index.samples):
        if sample.split in parts:
            parts[sample.split].append(i)
    if not parts["train"]:
        raise ValueError(f"{index.name or 'dataset'} has no official split (no sample marked 'train'); "
                         "use protocol 'subject_kfold'")
    if not parts["test"]:
        if not parts["val"]:
            raise ValueError(f"{index.name or 'dataset'} has no 'test' or 'val' samples to evaluate on")
        parts["test"], parts["val"] = parts["val"], []
    if not parts["val"]:
        parts["train"], parts["val"] = _carve_val(index.samples, parts["train"], val_fraction, seed)
    return parts


def _carve_val(samples: list[Sample], train: list[int], fraction: float, seed: int):
    train_samples = [samples[i] for i in train]
    if all(s.subject for s in train_samples):
        val_subjects = set(carve_subjects(sorted({s.subject for s in train_samples}), fraction, seed))
        val = [i for i in train if samples[i].subject in val_subjects]
    else:
        count = round(fraction * len(train)) if fraction > 0 else 0
        val = sorted(random.Random(seed).sample(train, min(count, len(train) - 1)))
    chosen = set(val)
    return [i for i in train if i not in chosen], val


def make_split(
    index: DatasetIndex,
    protocol: str | None = None,
    fold: int = 0,
    k: int = 10,
    seed: int = 0,
    val_fraction: float = 0.1,
    fold_file: str | Path | None = None,
) -> dict[str, list[int]]:
    """Train/val/test indices under ``protocol`` ("subject_kfold", "official"; None = the dataset's default)."""
    protocol = protocol or index.default_protocol
    if protocol == "subject_kfold":
        return split_for_fold(index, fold, k, seed, val_fraction, fold_file)
    if protocol == "official":
        return official_split(index, val_fraction, seed)
    raise ValueError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")


# ----------------------------------------------------------------------------- cross-dataset

def canonical_name(name: str) -> str:
    key = name.strip().lower()
    return SYNONYMS.get(key, key)


def map_label_space(source: LabelSpace, target: LabelSpace) -> tuple[dict[int, int], list[str]]:
    """Match classes by (canonical) name: ``{target index: source index}`` and the dropped target names.

    ``source`` is the space a model was trained on, ``target`` the dataset it is evaluated on; a target
    class the model cannot predict is dropped (and named, so the report can say so).
    """
    source_index = {canonical_name(name): i for i, name in enumerate(source.expressions)}
    mapping, dropped = {}, []
    for i, name in enumerate(target.expressions):
        j = source_index.get(canonical_name(name))
        if j is None:
            dropped.append(name)
        else:
            mapping[i] = j
    return mapping, dropped


def cross_dataset_index(target: DatasetIndex, source_space: LabelSpace) -> tuple[DatasetIndex, list[str]]:
    """``target``'s samples relabelled into ``source_space``'s expression indices, and the dropped classes.

    Samples of dropped classes are left out; poses keep the target's bins (a model's pose head is not
    compared across datasets whose bins differ).
    """
    mapping, dropped = map_label_space(source_space, target.label_space)
    samples = []
    for sample in target.samples:
        if sample.expression in mapping:
            copy = Sample(**{**sample.__dict__, "expression": mapping[sample.expression]})
            samples.append(copy)
    space = LabelSpace(source_space.expressions, target.label_space.poses)
    note = [f"cross-dataset: {name!r} has no counterpart in the training classes; its samples are dropped"
            for name in dropped]
    relabelled = DatasetIndex(samples, space, target.problems + note, target.default_protocol, target.name, target.crop)
    return relabelled, dropped
