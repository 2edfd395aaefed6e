"""`phanet data check / prepare / folds / list` on a KDEF fixture tree."""

import json

import numpy as np
from PIL import Image

from phanet.cli import main
from phanet.data.datasets.kdef import ANGLES, EXPRESSIONS


def make_kdef(root, folders=("AF01", "BF01", "AM02", "BM02", "AF03", "BF03", "AF04")):
    for n, folder in enumerate(folders):
        for e, exp in enumerate(EXPRESSIONS):
            for a, angle in enumerate(ANGLES):
                path = root / "KDEF" / folder / f"{folder}{exp}{angle}.JPG"
                path.parent.mkdir(parents=True, exist_ok=True)
                image = np.full((16, 12, 3), 120, np.uint8)
                image[:8, :6] = (n * 30, e * 30, a * 40)  # every file different (equal ones are duplicates)
                Image.fromarray(image).save(path)
    return root


def test_check_prints_counts_and_every_problem(tmp_path, capsys):
    root = make_kdef(tmp_path)
    (root / "KDEF/AF01/AF01NEHL.JPG").unlink()
    (root / "KDEF/AF01/AF01HAS.JPG").write_bytes(b"\xff\xd8\xff truncated")
    Image.fromarray(np.zeros((16, 12, 3), np.uint8)).save(root / "KDEF/AF01/AF01SAS.JPG")
    Image.fromarray(np.full((20, 12, 3), 120, np.uint8)).save(root / "KDEF/AF01/AF01SUS.JPG")
    (root / "KDEF/AF01/AF01XX.JPG").write_bytes(b"")
    assert main(["data", "check", "--dataset", "kdef", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "kdef: 244 samples, default protocol subject_kfold" in out
    assert "classes (7):" in out and "poses (5):" in out and "yaw-90" in out
    assert "subjects: 4 (images per subject: min 35, median 69.5, max 70)" in out
    assert "F01: 69 images (most subjects have 70)" in out and "F04: 35 images" in out
    assert "AF01NEHL.JPG: missing" in out
    assert "AF01XX.JPG: name does not parse" in out
    assert "AF01HAS.JPG: unreadable" in out
    assert "AF01SAS.JPG: nearly black" in out
    assert "AF01SUS.JPG: 12x20 pixels, most are 12x16" in out
    assert main(["data", "check", "--dataset", "kdef", "--root", str(root), "--strict", "--no-open"]) == 1


def test_check_of_a_folder_without_the_layout_exits_non_zero_naming_it(tmp_path, capsys):
    assert main(["data", "check", "--dataset", "kdef", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no subject folder such as AF01/" in err and str(tmp_path) in err
    assert main(["data", "check", "--dataset", "kdef", "--root", str(tmp_path), "--option", "poses=7"]) == 1
    assert "has no option poses; its options: angles" in capsys.readouterr().err


def test_prepare_builds_a_cache_once(tmp_path, capsys):
    root = make_kdef(tmp_path, folders=("AF01",))
    args = ["data", "prepare", "--dataset", "kdef", "--root", str(root), "--size", "8", "--cache", str(tmp_path / "c")]
    assert main(args) == 0
    assert "cache of 35 kdef crops (8x8)" in capsys.readouterr().out
    caches = list((tmp_path / "c").glob("kdef-8px-*/images.npy"))
    assert len(caches) == 1 and np.load(caches[0]).shape == (35, 8, 8, 3)


def test_folds_writes_a_subject_fold_file_and_never_overwrites_it(tmp_path, capsys):
    root = make_kdef(tmp_path)
    out = tmp_path / "kdef_folds.json"
    args = ["data", "folds", "--dataset", "kdef", "--root", str(root), "--folds", "3", "--val-fraction", "0", "--out",
            str(out)]
    assert main(args) == 0
    data = json.loads(out.read_text())
    assert sorted(s for fold in data["folds"] for s in fold["test"]) == ["F01", "F03", "F04", "M02"]
    assert "fold 0: train" in capsys.readouterr().out
    assert main(args) == 1


def test_list_names_every_dataset(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("kdef", "multipie", "bu3dfe", "affectnet", "sfew", "rafdb", "fer2013", "generic"):
        assert f"\n{name} " in "\n" + out
