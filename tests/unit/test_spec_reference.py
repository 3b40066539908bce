"""docs/spec-reference.md is generated from the spec's pydantic schema and kept current."""

from __future__ import annotations

import importlib.util

import pytest

from tests.helpers import ROOT, builtin_spec_dict


@pytest.fixture(scope="module")
def reference():
    spec = importlib.util.spec_from_file_location("spec_reference", ROOT / "scripts" / "spec_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_spec_reference_is_current(reference):
    current = (ROOT / "docs" / "spec-reference.md").read_text()
    assert current == reference.render(), (
        "docs/spec-reference.md differs from the spec schema: run python scripts/spec_reference.py")


def test_every_section_and_field_is_in_the_reference(reference):
    from models.spec import ModelSpec

    text = reference.render()
    sections = reference._sections(ModelSpec)
    assert {"ModelSpec", "FileSource", "ColumnSpec", "RealisedVolatilityParams", "DirectionParams", "BaselineRule",
            "ColumnDriftSpec", "ScheduleSpec"} <= {cls.__name__ for cls, _ in sections}
    for cls, _path in sections:
        assert f"## {cls.__name__}\n" in text
        for name in cls.model_fields:
            assert f"| `{name}` |" in text, (cls.__name__, name)
    for key in builtin_spec_dict("market_forecast"):
        assert f"| `{key}` |" in text
    assert ("| `max_null_share` | number (≥ 0.0, ≤ 1.0) | `0.0` | "
            "Largest share of missing values accepted (0 = none allowed). |") in text
    assert "| `role` | one of `numeric`, `categorical`, `datetime`, `id`, `protected`, `excluded`, `input` | *required* |" in text
    assert "At `features_from.params`." in text and "| `horizon` | integer (≥ 1, ≤ 60) | `5` |" in text
    assert "| `rmse` | lower | regression | yes | yes |  |  | root mean squared error |" in text
    roc_auc = "| `roc_auc` | higher | binary_classification, direction | yes |  | yes | 0.05 | area under the ROC curve |"
    assert roc_auc in text  # the default tolerance column


def test_check_mode_fails_on_a_stale_file(reference, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reference, "OUT", tmp_path / "spec-reference.md")
    monkeypatch.setattr(reference, "ROOT", tmp_path)
    (tmp_path / "spec-reference.md").write_text("# old\n")
    assert reference.main(["--check"]) == 1
    assert "run python scripts/spec_reference.py" in capsys.readouterr().err
    assert reference.main([]) == 0 and reference.main(["--check"]) == 0
