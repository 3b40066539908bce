"""The champion is compared with the challenger on equal terms: re-scored on the same holdout when
the data is unchanged, and refitted (its recipe) on this run's training rows when new data
changed the holdout, so that it never predicts rows it was trained on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.estimators import save_pipeline
from models.metrics import roc_auc
from models.registry import ModelRegistry
from models.spec import parse_spec
from tasks.evaluate import evaluate_fitted
from tasks.load import modelling_table, parse_declared_types
from tasks.split import plan_split
from tasks.train import fit_candidate, score_champion


def _data(n: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    c = rng.choice(np.array(["a", "b", "c"], dtype=object), n)
    logit = -1 + 0.8 * x1 + 0.5 * x2 + (c == "a") * 0.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame({"id": np.arange(n), "x1": x1, "x2": x2, "c": c, "y": y})


@pytest.fixture()
def spec(tmp_path):
    return parse_spec({
        "name": "toy", "task": "binary_classification", "description": "champion re-scoring test",
        "intended_use": "Tests of champion re-scoring only.", "limitations": ["Synthetic rows."],
        "source": {"kind": "file", "path": str(tmp_path / "unused.csv")},
        "columns": {"id": {"role": "id"}, "x1": {"role": "numeric"}, "x2": {"role": "numeric"},
                    "c": {"role": "categorical", "allowed": ["a", "b", "c"]}},
        "target": {"column": "y", "positive": 1, "classes": [0, 1]}, "table": {"min_rows": 10},
        "split": {"method": "stratified_holdout", "test_size": 0.25, "seed": 42},
        "candidates": [{"name": "logistic", "estimator": "logistic_regression"}],
        "gate": {"primary_metric": "roc_auc", "rules": [{"kind": "threshold", "metric": "roc_auc", "min": 0.5}]},
    })


def _run(spec, frame, registry):
    table = modelling_table(parse_declared_types(frame, spec), spec)
    plan = plan_split.fn(table, spec)
    fitted = [fit_candidate.fn(spec, c, table, plan) for c in spec.candidates]
    evaluation = evaluate_fitted.fn(spec, table, plan, fitted)
    return table, plan, fitted, evaluation, score_champion(spec, registry, table, plan, evaluation.holdout_sha256)


def _publish(registry, spec, evaluation, fitted):
    def write(folder, version):
        (folder / "model").mkdir()
        save_pipeline(fitted[0].pipeline, folder / "model")
        return {"features": spec.feature_columns, "holdout": {"sha256": evaluation.holdout_sha256}}
    return registry.publish(write, promote=True, history_event={"event": "promoted"})


def test_unchanged_data_rescores_the_fitted_champion(tmp_path, spec):
    registry = ModelRegistry(tmp_path / "registry", "toy")
    data = _data(4_000)
    _, _, fitted, evaluation, champion = _run(spec, data, registry)
    assert champion is None
    _publish(registry, spec, evaluation, fitted)
    _, _, _, again, champion = _run(spec, data, registry)
    assert champion.method == "rescored" and champion.same_holdout is True and champion.error is None
    assert roc_auc(again.y, champion.scores) == pytest.approx(again.metrics["roc_auc"])


def test_new_rows_refit_the_champion_recipe_instead_of_scoring_its_own_training_rows(tmp_path, spec):
    registry = ModelRegistry(tmp_path / "registry", "toy")
    full = _data(4_400)
    table1, plan1, fitted, evaluation, _ = _run(spec, full.iloc[:4_000], registry)
    _publish(registry, spec, evaluation, fitted)
    table2, plan2, _, refreshed, champion = _run(spec, full, registry)  # a monthly refresh: 10 % more rows
    seen = table2["id"].iloc[plan2.holdout].isin(set(table1["id"].iloc[plan1.final_train]))
    assert seen.mean() > 0.1  # the new holdout holds rows the fitted champion was trained on
    assert champion.same_holdout is False and champion.method == "recipe_refit" and champion.error is None
    assert len(champion.scores) == len(plan2.holdout)
    # the same recipe fitted on the same training rows scores exactly like the challenger
    assert roc_auc(refreshed.y, champion.scores) == pytest.approx(refreshed.metrics["roc_auc"], abs=1e-9)


def test_rescore_champion_returns_the_typed_record(tmp_path, spec, monkeypatch):
    from models.metrics import MetricError
    from models.records.gate import ChampionRescoring
    from tasks import evaluate
    from tasks.evaluate import rescore_champion

    root = tmp_path / "registry"
    registry = ModelRegistry(root, "toy")
    table, plan, fitted, evaluation, _ = _run(spec, _data(4_000), registry)
    assert rescore_champion.fn(spec, root, table, plan, evaluation.holdout_sha256) is None
    _publish(registry, spec, evaluation, fitted)
    record = rescore_champion.fn(spec, root, table, plan, evaluation.holdout_sha256)
    assert isinstance(record, ChampionRescoring)
    assert (record.version, record.method, record.same_holdout, record.error) == (1, "rescored", True, None)
    assert record.metrics["roc_auc"] == pytest.approx(evaluation.metrics["roc_auc"])
    assert set(record.metrics) == set(evaluation.metrics) and len(record.scores) == len(plan.holdout)
    assert set(record.as_dict()) == {"version", "method", "same_holdout", "metrics", "error"}

    def unusable(*args, **kwargs):
        raise MetricError("the labels have a single class; rank metrics are undefined")

    monkeypatch.setattr(evaluate, "compute_metrics", unusable)
    failed = rescore_champion.fn(spec, root, table, plan, evaluation.holdout_sha256)
    assert failed.metrics is None and failed.scores is not None
    assert failed.error == "MetricError: the labels have a single class; rank metrics are undefined"
