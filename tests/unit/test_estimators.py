"""Candidate pipelines: preprocessing inside the pipeline, unseen categories, Keras persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.estimators import build_candidate, check_candidate_params, load_pipeline, predict_scores, save_pipeline


def _frame(n: int = 1500, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    grade = rng.choice(["A", "B", "C"], size=n)
    logit = -2.0 + 1.5 * x1 - 0.8 * x2 + np.where(grade == "C", 1.0, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    X = pd.DataFrame({"x1": x1, "x2": x2, "grade": grade})
    X.loc[X.sample(frac=0.05, random_state=1).index, "x2"] = np.nan
    X.loc[X.sample(frac=0.02, random_state=2).index, "grade"] = np.nan
    return X, pd.Series(y)


@pytest.mark.parametrize("estimator", ["logistic_regression", "hist_gradient_boosting"])
def test_sklearn_candidates_fit_and_handle_unseen_categories(estimator):
    X, y = _frame()
    pipe = build_candidate(estimator, "binary_classification", {}, ["x1", "x2"], ["grade"])
    pipe.fit(X.iloc[:1000], y.iloc[:1000])
    test = X.iloc[1000:].copy()
    test.loc[test.index[:5], "grade"] = "Z"  # never seen in training
    scores = predict_scores(pipe, test[["grade", "x2", "x1"]], "binary_classification")  # columns reordered
    assert scores.shape == (500,) and np.all((scores > 0) & (scores < 1))
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y.iloc[1000:], scores) > 0.75


def test_check_candidate_params():
    assert check_candidate_params("logistic_regression", "binary_classification", {"C": 0.5}) is None
    assert "unknown hyperparameter(s) ['depth']" in check_candidate_params(
        "hist_gradient_boosting", "regression", {"depth": 3})
    assert "hidden_units" in check_candidate_params("keras_mlp", "regression", {"hidden_units": []})


def test_keras_network_round_trips_and_is_reproducible(tmp_path):
    X, y = _frame()
    params = {"epochs": 30, "patience": 5, "batch_size": 128, "seed": 7}

    def fit():
        return build_candidate("keras_mlp", "binary_classification", params, ["x1", "x2"], ["grade"]).fit(X, y)

    first = fit()
    net = first.named_steps["model"]
    assert [layer.units for layer in net.model_.layers] == [64, 32, 1]
    assert net.model_.layers[-1].activation.__name__ == "sigmoid"
    scores = predict_scores(first, X, "binary_classification")
    second = predict_scores(fit(), X, "binary_classification")
    np.testing.assert_array_equal(scores, second)  # fixed seeds: a rerun gives the same model

    files = save_pipeline(first, tmp_path)
    assert sorted(p.name for p in files) == ["network.keras", "pipeline.joblib"]
    loaded = load_pipeline(tmp_path)
    np.testing.assert_allclose(predict_scores(loaded, X, "binary_classification"), scores, rtol=0, atol=1e-7)


def test_keras_class_weights_keep_probabilities_calibrated():
    """Balanced weights inflate the event probability; the prior correction undoes it."""
    X, y = _frame(3000, seed=3)
    base_rate = y.mean()
    params = {"epochs": 40, "patience": 5, "seed": 1}
    corrected = build_candidate("keras_mlp", "binary_classification", params, ["x1", "x2"], ["grade"]).fit(X, y)
    raw = build_candidate("keras_mlp", "binary_classification", {**params, "prior_correction": False},
                          ["x1", "x2"], ["grade"]).fit(X, y)
    mean_corrected = predict_scores(corrected, X, "binary_classification").mean()
    mean_raw = predict_scores(raw, X, "binary_classification").mean()
    assert abs(mean_corrected - base_rate) < 0.03
    assert mean_raw > base_rate + 0.15  # trained towards a 50/50 prior


def test_keras_regression_learns_a_linear_signal():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    y = 0.2 + 0.05 * X["a"] - 0.03 * X["b"] + rng.normal(0, 0.005, 2000)
    pipe = build_candidate("keras_mlp", "regression", {"epochs": 60, "patience": 5}, ["a", "b"], []).fit(X, y)
    pred = predict_scores(pipe, X, "regression")
    assert np.sqrt(np.mean((pred - y) ** 2)) < 0.015  # the target's std is about 0.06
    assert pipe.named_steps["model"].model_.layers[-1].activation.__name__ == "linear"


@pytest.mark.parametrize("estimator", ["logistic_regression", "hist_gradient_boosting"])
def test_missing_categories_score_the_same_whatever_the_file_format(estimator):
    """NaN (CSV), None (Parquet), pd.NA and a category dtype must all mean 'missing'."""
    X, y = _frame()
    pipe = build_candidate(estimator, "binary_classification", {}, ["x1", "x2"], ["grade"]).fit(X, y)
    as_nan = X.copy()
    as_none = X.astype({"grade": object}).copy()
    as_none.loc[as_none["grade"].isna(), "grade"] = None
    as_na = X.astype({"grade": "string"})
    as_category = X.astype({"grade": "category"})
    expected = predict_scores(pipe, as_nan, "binary_classification")
    missing = X["grade"].isna().to_numpy()
    assert missing.sum() > 10
    for frame in (as_none, as_na, as_category):
        np.testing.assert_allclose(predict_scores(pipe, frame, "binary_classification"), expected, rtol=1e-12)
