"""Every shipped config loads with the strict loader and names a registered dataset and model."""

from pathlib import Path

import pytest

from phanet.config import load_config
from phanet.data import list_datasets
from phanet.models import list_models

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))


def test_configs_folder_has_one_config_per_dataset_protocol():
    assert len(CONFIGS) >= 8


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_names_a_registered_dataset_and_model(path):
    config = load_config(path)
    assert config.data.dataset in list_datasets()
    assert config.model.name in list_models()
    assert config.data.protocol in (None, "subject_kfold", "official")
