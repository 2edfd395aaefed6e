"""Protocols: subject-independent k-fold with reusable fold files, official splits, cross-dataset mapping."""

import json

import pytest

from phanet.data import SEVEN_EXPRESSIONS, DatasetIndex, LabelSpace, PoseBin, Sample
from phanet.data.protocols import (
    cross_dataset_index,
    make_split,
    map_label_space,
    official_split,
    read_folds,
    split_for_fold,
    subject_kfold,
)


def index_of(subjects: int, per_subject: int = 3, name: str = "toy", split=None) -> DatasetIndex:
    samples = [
        Sample(image=f"{s}_{i}.png", expression=i % 7, subject=f"S{s:02d}", item_id=f"{s}_{i}", split=split)
        for s in range(subjects) for i in range(per_subject)
    ]
    return DatasetIndex(samples, LabelSpace(SEVEN_EXPRESSIONS), name=name)


def subjects_at(index: DatasetIndex, indices: list[int]) -> set[str]:
    return {index.samples[i].subject for i in indices}


def test_subject_kfold_covers_every_sample_once_with_disjoint_balanced_subjects():
    index = index_of(23)
    folds = subject_kfold(index.samples, k=5, seed=0)
    assert sorted(i for fold in folds for i in fold) == list(range(len(index.samples)))
    subject_sets = [subjects_at(index, fold) for fold in folds]
    assert sorted(len(s) for s in subject_sets) == [4, 4, 5, 5, 5]
    for a in range(5):
        for b in range(a + 1, 5):
            assert not subject_sets[a] & subject_sets[b]
    assert subject_kfold(index.samples, 5, seed=0) == folds
    assert subject_kfold(index.samples, 5, seed=1) != folds


def test_split_for_fold_carves_val_by_subject_from_training_subjects():
    index = index_of(20)
    split = split_for_fold(index, fold=3, k=10, seed=0, val_fraction=0.2, fold_file=None)
    train, val, test = (subjects_at(index, split[p]) for p in ("train", "val", "test"))
    assert len(test) == 2 and len(val) == round(0.2 * 18)
    assert not (train & val) and not (train & test) and not (val & test)
    assert len(split["train"]) + len(split["val"]) + len(split["test"]) == len(index.samples)


def test_fold_file_is_written_then_reused_even_with_another_sample_order(tmp_path):
    fold_file = tmp_path / "folds" / "toy.json"
    index = index_of(12)
    first = split_for_fold(index, 1, 4, seed=0, val_fraction=0.1, fold_file=fold_file)
    data = read_folds(fold_file)
    assert data["dataset"] == "toy" and data["k"] == 4 and data["seed"] == 0
    assert len(data["subjects"]) == 12 and len(data["folds"]) == 4
    reordered = DatasetIndex(list(reversed(index.samples)), index.label_space, name="toy")
    again = split_for_fold(reordered, 1, 4, seed=99, val_fraction=0.1, fold_file=fold_file)
    for part in ("train", "val", "test"):
        assert subjects_at(reordered, again[part]) == subjects_at(index, first[part])


def test_a_fold_file_for_other_subjects_is_refused_naming_the_file(tmp_path):
    fold_file = tmp_path / "folds.json"
    split_for_fold(index_of(10), 0, 5, 0, 0.1, fold_file)
    with pytest.raises(ValueError, match=r"folds.json does not match the dataset's subjects: 2 subject\(s\) not in"):
        split_for_fold(index_of(12), 0, 5, 0, 0.1, fold_file)
    with pytest.raises(ValueError, match="has 5 folds, but k=10"):
        split_for_fold(index_of(10), 0, 10, 0, 0.1, fold_file)
    (tmp_path / "bad.json").write_text(json.dumps({"folds": []}))
    with pytest.raises(ValueError, match="bad.json: not a phanet fold file"):
        split_for_fold(index_of(10), 0, 5, 0, 0.1, tmp_path / "bad.json")


def test_subject_kfold_refuses_samples_without_subject():
    index = index_of(4)
    index.samples[0].subject = ""
    with pytest.raises(ValueError, match="need a subject for every sample; 1 have none"):
        make_split(index, "subject_kfold", k=2)


def test_official_split_uses_val_as_test_when_there_is_no_test_and_carves_val_from_train():
    train = index_of(10, split="train").samples
    val = index_of(2, split="val").samples
    for s in train:
        s.subject = ""  # in-the-wild: no subjects, carve by image
    index = DatasetIndex(train + val, LabelSpace(SEVEN_EXPRESSIONS), default_protocol="official")
    split = make_split(index, val_fraction=0.2, seed=0)
    assert split["test"] == list(range(30, 36))
    assert len(split["val"]) == 6 and not set(split["val"]) & set(split["train"])
    assert sorted(split["train"] + split["val"]) == list(range(30))


def test_official_split_keeps_a_real_validation_set_and_refuses_datasets_without_splits():
    parts = [index_of(3, split=p).samples for p in ("train", "val", "test")]
    index = DatasetIndex(parts[0] + parts[1] + parts[2], LabelSpace(SEVEN_EXPRESSIONS))
    assert official_split(index) == {"train": list(range(9)), "val": list(range(9, 18)), "test": list(range(18, 27))}
    with pytest.raises(ValueError, match="no official split"):
        official_split(index_of(3))
    with pytest.raises(ValueError, match="unknown protocol"):
        make_split(index, "leave_one_out")


def test_cross_dataset_maps_classes_by_name_with_synonyms_and_reports_dropped():
    source = LabelSpace(("neutral", "happy", "surprise", "disgust", "squint", "scream"))
    target = LabelSpace(("Neutral", "smile", "sad", "Surprised", "afraid", "disgust", "angry"))
    mapping, dropped = map_label_space(source, target)
    assert mapping == {0: 0, 1: 1, 3: 2, 5: 3}
    assert dropped == ["sad", "afraid", "angry"]


def test_cross_dataset_index_relabels_target_samples_into_the_training_classes():
    target = index_of(2, per_subject=7)
    target.label_space = LabelSpace(SEVEN_EXPRESSIONS, (PoseBin("yaw+0", 0.0, 0.0),))
    source = LabelSpace(("happy", "neutral"))
    relabelled, dropped = cross_dataset_index(target, source)
    assert dropped == ["sad", "surprise", "fear", "disgust", "anger"]
    assert relabelled.label_space.expressions == ("happy", "neutral")
    assert relabelled.label_space.poses == target.label_space.poses
    assert sorted(s.expression for s in relabelled.samples) == [0, 0, 1, 1]
    assert target.samples[1].expression == 1  # the original index is not modified
    assert any("'sad' has no counterpart" in p for p in relabelled.problems)
