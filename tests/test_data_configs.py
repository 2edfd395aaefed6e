"""configs/*.yaml: one per dataset x protocol, each explained, each naming a registered dataset and its options."""

import inspect
from pathlib import Path

import pytest
import yaml

from phanet.config import load_config
from phanet.data.protocols import PROTOCOLS
from phanet.data.registry import get_dataset_loader, list_datasets
from phanet.models import list_models

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
DATASET_CONFIGS = [p for p in CONFIGS if yaml.safe_load(p.read_text())["data"].get("dataset") in set(list_datasets())]


def test_every_config_names_a_registered_dataset():
    assert CONFIGS and DATASET_CONFIGS == CONFIGS


def test_every_real_dataset_has_a_config_for_its_default_protocol():
    datasets = {(c["data"]["dataset"], c["data"]["protocol"]) for c in map(lambda p: yaml.safe_load(p.read_text()),
                                                                           DATASET_CONFIGS)}
    expected = {
        ("kdef", "subject_kfold"), ("multipie", "subject_kfold"), ("bu3dfe", "subject_kfold"),
        ("affectnet", "official"), ("rafdb", "official"), ("sfew", "official"), ("fer2013", "official"),
        ("generic", "subject_kfold"), ("generic", "official"),
    }
    assert expected <= datasets


@pytest.mark.parametrize("path", DATASET_CONFIGS, ids=lambda p: p.name)
def test_config_explains_its_protocol_and_fits_the_loader(path):
    text = path.read_text()
    assert text.startswith("# ") and len([ln for ln in text.splitlines() if ln.startswith("#")]) >= 2
    config = yaml.safe_load(text)
    assert set(config) == {"model", "data", "train"}
    data = config["data"]
    assert data["protocol"] in PROTOCOLS
    accepted = set(list(inspect.signature(get_dataset_loader(data["dataset"])).parameters)[1:])
    assert set(data["options"]) <= accepted, f"{path.name}: options {set(data['options']) - accepted} unknown"
    # real datasets: 112 multi-view, 224 in the wild; the bundled model's synthetic recipe renders at 96
    assert config["model"]["input_size"] in ((96,) if data["dataset"] == "synthetic" else (112, 224))


@pytest.mark.parametrize("path", DATASET_CONFIGS, ids=lambda p: p.name)
def test_config_loads_with_the_run_config_schema_and_names_a_registered_model(path):
    config = load_config(path)
    assert config.data.dataset == yaml.safe_load(path.read_text())["data"]["dataset"]
    assert config.model.name in list_models()
