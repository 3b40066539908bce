"""Scoring needs only what the model uses: a batch without the spec's protected and excluded
columns (never features) is scored, at the CLI's pre-flight and in the scoring flow's validation;
monitoring keeps requiring protected columns. And ``--reasons`` on a model that cannot give them
is refused by the pre-flight, before Prefect starts (validator's trial 15)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import typer

from models.estimators import build_candidate
from models.spec import parse_spec
from tasks.preflight import header_problem, required_columns
from tasks.scoring import LoadedVersion, read_validate_score

SPEC = {
    "name": "syn", "task": "binary_classification", "description": "Synthetic small credit book.",
    "intended_use": "Tests.", "limitations": ["Synthetic."],
    "source": {"kind": "file", "path": "syn.csv"},
    "columns": {
        "app_id": {"role": "id"},
        "income": {"role": "numeric", "min": 0},
        "region": {"role": "categorical"},
        "sex": {"role": "protected"},
        "leaky": {"role": "excluded", "reason": "leaks the outcome"},
    },
    "target": {"column": "default", "positive": 1, "classes": [0, 1]},
    "table": {"min_rows": 50, "unique": ["app_id"]},
    "split": {"method": "stratified_holdout", "test_size": 0.25, "seed": 42},
    "candidates": [{"name": "logistic", "estimator": "logistic_regression"}],
    "gate": {"primary_metric": "roc_auc", "rules": [{"kind": "threshold", "metric": "roc_auc", "min": 0.5}]},
}


def _batch(path, columns):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"app_id": range(1, 41), "income": rng.uniform(10, 200, 40),
                          "region": rng.choice(["north", "south"], 40), "sex": rng.choice(["F", "M"], 40),
                          "leaky": rng.random(40)})
    frame[columns].to_csv(path, index=False)
    return path


def test_scoring_requires_the_features_and_ids_not_the_protected_or_excluded_columns(tmp_path):
    spec = parse_spec(SPEC)
    assert required_columns(spec, serving=True, scoring=True) == ["app_id", "income", "region"]
    assert required_columns(spec, serving=True) == ["app_id", "income", "region", "sex", "leaky"]  # monitoring
    batch = _batch(tmp_path / "b.csv", ["app_id", "income", "region"])
    assert header_problem(batch, spec, serving=True, scoring=True) is None
    monitored = header_problem(batch, spec, serving=True)
    assert "declared columns 'sex', 'leaky'" in monitored and "missing from the file's header" in monitored
    no_feature = _batch(tmp_path / "c.csv", ["app_id", "region", "sex"])
    assert "declared column 'income'" in header_problem(no_feature, spec, serving=True, scoring=True)


def test_the_scoring_flow_validates_and_scores_a_batch_without_protected_or_excluded_columns(tmp_path):
    spec = parse_spec(SPEC)
    rng = np.random.default_rng(1)
    train = pd.DataFrame({"income": rng.uniform(10, 200, 200), "region": rng.choice(["north", "south"], 200)})
    pipe = build_candidate("logistic_regression", "binary_classification", {}, ["income"], ["region"])
    pipe.fit(train, (rng.random(200) < 0.3).astype(int))
    loaded = LoadedVersion(pipe, 1, {"features": ["income", "region"]}, train)
    batch = _batch(tmp_path / "b.csv", ["app_id", "income", "region"])
    table, scores, _, extra, rows, warnings = read_validate_score.fn(spec, loaded, str(batch))
    assert rows == len(table) == len(scores) == 40 and extra == [] and warnings == []
    np.testing.assert_allclose(scores, pipe.predict_proba(table[["income", "region"]])[:, 1])
    full = _batch(tmp_path / "f.csv", ["app_id", "income", "region", "sex", "leaky"])  # present: still validated
    assert len(read_validate_score.fn(spec, loaded, str(full))[1]) == 40
    from tasks.validate import DataValidationError

    with pytest.raises(DataValidationError, match="income"):
        read_validate_score.fn(spec, loaded, str(_batch(tmp_path / "c.csv", ["app_id", "region"])))


def _preflight(monkeypatch, metadata, spec_data=SPEC):
    from flows.cli import checks

    monkeypatch.setattr(checks, "_judging_spec_of", lambda model, version, out_of_time: (parse_spec(spec_data), 2,
                                                                                         metadata))
    return checks.preflight_score


def test_the_cli_preflight_passes_a_batch_without_protected_or_excluded_columns(monkeypatch, tmp_path, capsys):
    preflight_score = _preflight(monkeypatch, {"task": "binary_classification"})
    batch = _batch(tmp_path / "b.csv", ["app_id", "income", "region"])
    preflight_score("syn", None, str(batch))  # returns: nothing to refuse
    with pytest.raises(typer.Exit):
        preflight_score("syn", None, str(_batch(tmp_path / "c.csv", ["app_id", "region"])))
    assert "declared column 'income'" in capsys.readouterr().err


def test_the_cli_preflight_refuses_reasons_for_a_regression_model_naming_the_option(monkeypatch, tmp_path, capsys):
    preflight_score = _preflight(monkeypatch, {"task": "regression"})
    batch = _batch(tmp_path / "b.csv", ["app_id", "income", "region"])
    preflight_score("syn", None, str(batch))  # without --reasons: fine
    with pytest.raises(typer.Exit) as ended:
        preflight_score("syn", None, str(batch), 3)
    assert ended.value.exit_code == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "--reasons 3: syn version 2 has no reference profile for adverse-action reasons" in err
    assert "its task is regression; reasons are for binary_classification" in err
