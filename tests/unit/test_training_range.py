"""Features constant in training are left out of the fitted model; values outside the training
range are counted per feature (issue 12, section 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.estimators import build_candidate, predict_scores, range_guard


def _frame(n: int = 1200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    grade = rng.choice(["A", "B", "C"], size=n)
    logit = -1.5 + 1.5 * x1 + np.where(grade == "C", 1.0, 0.0)
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int))
    # 'fee' is 0 on every training row, 'branch' is always "north": constant in training
    X = pd.DataFrame({"x1": x1, "fee": np.zeros(n), "grade": grade, "branch": ["north"] * n})
    return X, y


def _varied(X: pd.DataFrame, fee: float, branch: str) -> pd.DataFrame:
    out = X.copy()
    out["fee"] = fee
    out["branch"] = branch
    return out


@pytest.mark.parametrize("estimator", ["logistic_regression", "hist_gradient_boosting"])
def test_a_feature_constant_in_training_does_not_change_scores(estimator):
    X, y = _frame()
    pipe = build_candidate(estimator, "binary_classification", {}, ["x1", "fee"], ["grade", "branch"]).fit(X, y)
    base = predict_scores(pipe, X, "binary_classification")
    for fee, branch in [(2.0, "north"), (5.0, "south"), (0.0, "south"), (np.nan, "north")]:
        np.testing.assert_array_equal(predict_scores(pipe, _varied(X, fee, branch), "binary_classification"), base)
    guard = range_guard(pipe)
    assert guard.constant_features_ == ["fee", "branch"]


def test_a_feature_constant_in_training_does_not_change_a_keras_network_s_scores():
    """The issue's case: a network whose scores moved 0.19 → 0.41 when a training constant took 2."""
    X, y = _frame(800)
    params = {"epochs": 5, "patience": 2, "batch_size": 128, "seed": 3}
    pipe = build_candidate("keras_mlp", "binary_classification", params, ["x1", "fee"], ["grade", "branch"]).fit(X, y)
    base = predict_scores(pipe, X, "binary_classification")
    for fee in (2.0, 5.0):
        np.testing.assert_allclose(predict_scores(pipe, _varied(X, fee, "south"), "binary_classification"), base,
                                   rtol=0, atol=1e-7)


def test_training_range_and_out_of_range_counts():
    X, y = _frame()
    X.loc[:9, "x1"] = np.nan
    pipe = build_candidate("logistic_regression", "binary_classification", {}, ["x1", "fee"], ["grade"]).fit(X, y)
    guard = range_guard(pipe)
    low, high = guard.training_range_["x1"]
    assert (low, high) == (float(X["x1"].min()), float(X["x1"].max()))
    assert guard.training_range_["fee"] == (0.0, 0.0)
    batch = X.iloc[:100].copy()
    batch["x1"] = np.linspace(low, high, 100)  # the limits themselves are inside
    batch.loc[batch.index[:3], "x1"] = high + 1.0
    batch.loc[batch.index[3], "x1"] = low - 1.0
    batch.loc[batch.index[4], "x1"] = np.nan  # missing is not out of range
    batch.loc[batch.index[:7], "fee"] = 2.0
    assert guard.out_of_range_counts(batch) == {"x1": 4, "fee": 7}


def test_walk_forward_folds_leave_out_what_is_constant_on_their_own_rows():
    """Each fit decides on its own training rows: constant in an early fold, varying later."""
    X, y = _frame()
    X = X.drop(columns="branch")
    X.loc[800:, "fee"] = np.random.default_rng(5).normal(size=len(X) - 800)
    early = build_candidate("logistic_regression", "binary_classification", {}, ["x1", "fee"], ["grade"])
    early.fit(X.iloc[:800], y.iloc[:800])
    later = build_candidate("logistic_regression", "binary_classification", {}, ["x1", "fee"], ["grade"]).fit(X, y)
    assert range_guard(early).constant_features_ == ["fee"]
    assert range_guard(later).constant_features_ == []


def test_the_card_names_the_features_left_out_and_keeps_ranges_out_of_the_fit_details():
    import json
    from pathlib import Path

    from tasks.report import render_model_card

    path = Path(__file__).parents[1] / "data" / "legacy_registry" / "credit_risk" / "versions" / "1" / "metadata.json"
    meta = json.loads(path.read_text())
    legacy_card = render_model_card(meta)
    assert "Left out of the fitted model" not in legacy_card and "constant on the training rows" not in legacy_card
    meta["selected_candidate"]["details"] = {"n_iter": 120, "constant_features": ["Records"],
                                             "training_range": {"Income": [0.0, 959.0]}}
    card = render_model_card(meta)
    assert "Left out of the fitted model, constant on its training rows (held at the training value at scoring, " \
           "so they cannot move a score): `Records`." in card
    assert "fit details: n_iter=120." in card and "959" not in card
    meta["selected_candidate"]["details"]["constant_features"] = []
    assert "No feature was constant on the training rows" in render_model_card(meta)
