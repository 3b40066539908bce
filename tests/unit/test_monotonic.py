"""Monotonic expectations: declared directions, constrained boosting, the checks and the gate rule."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from models.errors import SpecError
from models.estimators import build_candidate
from models.spec import ModelSpec
from tasks.gate import GateInputs, evaluate_gate
from tasks.monotonic import check_monotonic, coefficient_signs, largest_reversal, response_checks
from tests.helpers import builtin_spec_dict
from tests.unit.test_drivers import _credit_like

NUMERIC, CATEGORICAL = ["utilisation", "income", "noise"], ["purpose"]


def _fit(estimator, X, y, monotone=None):
    return build_candidate(estimator, "binary_classification", {}, NUMERIC, CATEGORICAL, monotone).fit(X, y)


@pytest.fixture(scope="module")
def data():
    X, y = _credit_like(2000, seed=5)
    return X.iloc[:1400], y[:1400], X.iloc[1400:].reset_index(drop=True)


def test_largest_reversal():
    assert largest_reversal([1, 2, 3, 4], [0.1, 0.2, 0.3, 0.4], +1) == (0.0, 1.0, 1.0)
    size, lo, hi = largest_reversal([1, 2, 3, 4, 5], [0.1, 0.4, 0.35, 0.2, 0.5], +1)
    assert size == pytest.approx(0.2) and (lo, hi) == (2.0, 4.0)
    size, lo, hi = largest_reversal([10, 20, 30], [0.5, 0.3, 0.45], -1)
    assert size == pytest.approx(0.15) and (lo, hi) == (20.0, 30.0)


def test_a_logistic_model_follows_the_data_and_reverses_a_wrong_declaration(data):
    X, y, holdout = data
    pipe = _fit("logistic_regression", X, y)
    checks = {c["feature"]: c for c in response_checks(pipe, holdout, "binary_classification",
                                                        {"utilisation": 1, "income": 1}, tolerance=0.005)}
    assert checks["utilisation"]["passed"] and checks["utilisation"]["reversal"] == 0.0
    wrong = checks["income"]
    assert not wrong["passed"] and wrong["reversal"] > 0.1 and wrong["from"] < wrong["to"]
    assert wrong["direction"] == "increasing" and len(wrong["grid"]) == 20
    signs = {c["feature"]: c for c in coefficient_signs(pipe, {"utilisation": 1, "income": 1})}
    assert signs["utilisation"]["passed"] and not signs["income"]["passed"] and signs["income"]["coefficient"] < 0


def test_boosting_is_trained_under_the_declared_direction(data):
    X, y, holdout = data
    free = _fit("hist_gradient_boosting", X, y)
    constrained = _fit("hist_gradient_boosting", X, y, {"income": 1})  # against the data
    assert list(constrained.steps[-1][1].monotonic_cst) == [0, 1, 0, 0]
    free_check = response_checks(free, holdout, "binary_classification", {"income": 1}, 0.005)[0]
    held = response_checks(constrained, holdout, "binary_classification", {"income": 1}, 0.005)[0]
    assert not free_check["passed"] and free_check["reversal"] > 0.1
    assert held["passed"] and held["reversal"] <= 1e-9  # the constraint holds exactly along the grid
    assert coefficient_signs(constrained, {"income": 1}) is None


def _spec(**columns):
    d = builtin_spec_dict("credit_risk")
    for name, extra in columns.items():
        d["columns"][name] = {**d["columns"][name], **extra}
    return d


def test_spec_declarations():
    spec = ModelSpec.model_validate(_spec(Income={"monotone": "decreasing"}, Amount={"monotone": "increasing"}))
    assert spec.monotone_features == {"Seniority": -1, "Amount": 1, "Income": -1}
    with pytest.raises(ValueError, match="'monotone' applies to numeric features only, not to role 'categorical'"):
        ModelSpec.model_validate(_spec(Home={"monotone": "increasing"}))
    d = builtin_spec_dict("loan_evaluation")
    d["gate"]["rules"].append({"kind": "monotonic"})
    with pytest.raises((ValueError, SpecError), match="a 'monotonic' rule needs at least one numeric column"):
        ModelSpec.model_validate(d)


def _gate_spec(direction: str) -> ModelSpec:
    d = _spec(Income={"monotone": direction})
    d["gate"]["rules"].append({"kind": "monotonic", "tolerance": 0.01})
    return ModelSpec.model_validate(d)


def test_the_gate_rule_names_the_reversed_feature_and_its_range(data):
    X, y, holdout = data
    fitted = [SimpleNamespace(spec=SimpleNamespace(name="logistic", estimator="logistic_regression", params={}),
                              pipeline=None, error=None)]
    ev = SimpleNamespace(holdout=holdout.rename(columns={"income": "Income"}), best="logistic")
    spec = SimpleNamespace(monotone_features={"Income": 1}, feature_columns=list(ev.holdout.columns),
                           estimator_task="binary_classification", name="t",
                           gate=SimpleNamespace(rules=[SimpleNamespace(kind="monotonic", tolerance=0.01)]))
    fitted[0].pipeline = build_candidate("logistic_regression", "binary_classification", {},
                                         ["utilisation", "Income", "noise"], CATEGORICAL).fit(
        X.rename(columns={"income": "Income"}), y)
    record = check_monotonic.fn(spec, ev, fitted)
    assert record["selected"] == "logistic" and record["tolerance"] == 0.01
    assert not record["candidates"]["logistic"]["response"][0]["passed"]
    rules_spec = _gate_spec("increasing")
    rng = np.random.default_rng(0)
    yy = rng.integers(0, 2, 400).astype(float)
    inputs = GateInputs(y=yy, scores=np.clip(yy * 0.6 + rng.uniform(0, 0.4, 400), 0, 1), monotonic=record)
    verdict = next(v for v in evaluate_gate(rules_spec, {"roc_auc": 0.9, "ks": 0.5}, inputs).verdicts
                   if v.rule == "monotonic")
    assert not verdict.passed
    assert "Income is declared increasing but the average score falls by" in verdict.sentence
    assert "the linear candidate logistic gives it a coefficient of -" in verdict.sentence
    ok = {**record, "candidates": {"logistic": {**record["candidates"]["logistic"],
                                                "response": [{**record["candidates"]["logistic"]["response"][0],
                                                              "passed": True, "reversal": 0.0}],
                                                "coefficients": []}}}
    passed = next(v for v in evaluate_gate(rules_spec, {"roc_auc": 0.9}, GateInputs(y=yy, scores=inputs.scores,
                                                                                   monotonic=ok)).verdicts
                  if v.rule == "monotonic")
    assert passed.passed and "follows every declared direction (Income increasing" in passed.sentence
    closed = next(v for v in evaluate_gate(rules_spec, {"roc_auc": 0.9}, GateInputs(y=yy, scores=inputs.scores)).verdicts
                  if v.rule == "monotonic")
    assert not closed.passed and "fails closed" in closed.sentence
