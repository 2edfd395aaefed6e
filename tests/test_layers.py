"""The package's layering (docs/architecture.md) holds: the renderer knows no dataset code, and the
dataset registry fails loudly on a module it cannot import."""

from __future__ import annotations

import subprocess
import sys

import pytest

from phanet.data import SEVEN_EXPRESSIONS, registry
from phanet.synth import EXPRESSIONS, RenderSettings, render_capture, render_face


def test_the_renderer_imports_no_dataset_code():
    code = "import sys, phanet.synth; print(sorted(m for m in sys.modules if m.startswith('phanet.data')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_renderer_classes_are_the_seven_basic_expressions_in_label_order():
    assert EXPRESSIONS == SEVEN_EXPRESSIONS


def test_render_settings_check_their_values_once_at_construction():
    assert RenderSettings(randomize="subtle,lips").randomize == ("lips", "subtle")
    assert RenderSettings(randomize="none").randomize == ()
    with pytest.raises(ValueError, match="at least 8 pixels"):
        RenderSettings(size=4)
    with pytest.raises(ValueError, match="unknown randomisation"):
        RenderSettings(randomize=("lipz",))
    with pytest.raises(ValueError, match="unknown crop fit"):
        RenderSettings(align_fit="affine")
    with pytest.raises(ValueError, match="unknown crop fit"):
        RenderSettings(align_padding=None, align_fit="affine")


def test_render_face_is_render_capture_with_settings_spelt_out():
    settings = RenderSettings(48, jitter=False, align_padding=0.1, align_fit="lsq5", randomize=())
    flat = render_face(2, 5, 3, 30.0, 0.0, 48, jitter=False, variant=1, align_padding=0.1, align_fit="lsq5",
                       randomize=())
    assert (render_capture(2, 5, 3, 30.0, 0.0, settings, variant=1) == flat).all()


def test_a_missing_dataset_module_is_an_error_not_a_skipped_dataset(monkeypatch):
    monkeypatch.setattr(registry, "_DATASET_MODULES", registry._DATASET_MODULES + ("phanet.data.datasets.nosuch",))
    with pytest.raises(ModuleNotFoundError, match="nosuch"):
        registry.list_datasets()
