"""Global drivers (tasks.drivers): permutation importance, coefficients, partial dependence, the card."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.estimators import build_candidate
from models.spec.explain import DriversSpec
from tasks.drivers import (
    drivers_metric,
    global_drivers,
    linear_coefficients,
    partial_dependence_curves,
    sample_rows,
)
from tasks.plots import drivers_plots


def _credit_like(n: int = 1500, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray]:
    """Default probability rises with utilisation, falls with income; noise carries nothing;
    purpose 'cash' doubles the odds."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "utilisation": rng.uniform(0, 1, n),
        "income": rng.lognormal(10, 0.4, n),
        "noise": rng.normal(size=n),
        "purpose": pd.Categorical(rng.choice(["car", "home", "cash"], n)),
    })
    logit = -1.0 + 3.0 * X["utilisation"] - 1.5 * (np.log(X["income"]) - 10) / 0.4 + 0.7 * (X["purpose"] == "cash")
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    return X, y


def _fit(estimator: str, X: pd.DataFrame, y: np.ndarray):
    pipe = build_candidate(estimator, "binary_classification", {}, ["utilisation", "income", "noise"], ["purpose"])
    return pipe.fit(X, y)


@pytest.fixture(scope="module")
def logistic():
    X, y = _credit_like()
    return _fit("logistic_regression", X.iloc[:1000], y[:1000]), X.iloc[1000:].reset_index(drop=True), y[1000:]


def test_permutation_importance_ranks_the_real_drivers_above_noise(logistic):
    pipe, X, y = logistic
    rec = global_drivers(DriversSpec(repeats=5), pipe, X, y, task="binary_classification", primary_metric="roc_auc",
                         categorical=["purpose"], in_sample=False)
    ranked = [d["feature"] for d in rec["permutation_importance"]]
    assert set(ranked[:2]) == {"utilisation", "income"}
    assert ranked[-1] in {"noise", "purpose"}
    by = {d["feature"]: d for d in rec["permutation_importance"]}
    assert by["income"]["importance"] > 0.05 and by["utilisation"]["importance"] > 0.03
    assert abs(by["noise"]["importance"]) < 0.01
    assert by["income"]["std"] > 0
    assert rec["metric"] == "roc_auc" and rec["rows"] == 500 and rec["holdout_rows"] == 500 and rec["in_sample"] is False
    assert [d["rank"] for d in rec["permutation_importance"]] == [1, 2, 3, 4]


def test_recomputing_with_the_same_seed_gives_the_same_figures(logistic):
    pipe, X, y = logistic
    kwargs = dict(task="binary_classification", primary_metric="roc_auc", categorical=["purpose"], in_sample=False)
    a = global_drivers(DriversSpec(repeats=3, seed=7), pipe, X, y, **kwargs)
    b = global_drivers(DriversSpec(repeats=3, seed=7), pipe, X, y, **kwargs)
    c = global_drivers(DriversSpec(repeats=3, seed=8), pipe, X, y, **kwargs)
    assert a == b
    assert a["permutation_importance"] != c["permutation_importance"]


def test_brier_as_primary_metric_is_measured_as_a_loss_increase(logistic):
    pipe, X, y = logistic
    rec = global_drivers(DriversSpec(repeats=3), pipe, X, y, task="binary_classification", primary_metric="brier",
                         categorical=["purpose"], in_sample=False)
    assert rec["metric"] == "brier"
    assert rec["permutation_importance"][0]["feature"] in {"income", "utilisation"}
    assert rec["permutation_importance"][0]["importance"] > 0  # shuffling a driver raises the Brier score


def test_linear_coefficients_have_the_data_generating_signs(logistic):
    pipe, _, _ = logistic
    coefs = {c["input"]: c["coefficient"] for c in linear_coefficients(pipe)}
    assert coefs["utilisation"] > 0.5 and coefs["income"] < -0.5
    assert abs(coefs["noise"]) < 0.2
    assert coefs["purpose_cash"] > coefs["purpose_car"]
    assert linear_coefficients(pipe)[0]["input"] in {"income", "utilisation"}


def test_no_coefficients_for_trees():
    X, y = _credit_like(600)
    assert linear_coefficients(_fit("hist_gradient_boosting", X, y)) is None


def test_partial_dependence_follows_the_drivers(logistic):
    pipe, X, _ = logistic
    curves = {c["feature"]: c for c in partial_dependence_curves(DriversSpec(grid_points=8), pipe, X,
                                                                  "binary_classification",
                                                                  ["utilisation", "income", "purpose"], ["purpose"])}
    util = curves["utilisation"]["average_score"]
    assert len(util) == 8 and all(b > a for a, b in zip(util, util[1:]))  # rises with utilisation
    inc = curves["income"]["average_score"]
    assert all(b < a for a, b in zip(inc, inc[1:]))  # falls with income
    cat = dict(zip(curves["purpose"]["grid"], curves["purpose"]["average_score"]))
    assert set(cat) == {"car", "home", "cash"} and cat["cash"] > cat["car"]
    assert curves["purpose"]["kind"] == "categorical"
    grid = curves["utilisation"]["grid"]
    assert grid[0] == pytest.approx(np.quantile(X["utilisation"], 0.05))


@pytest.mark.parametrize("primary, task, expected", [
    ("roc_auc", "binary_classification", "roc_auc"), ("roc_auc_ci_low", "binary_classification", "roc_auc"),
    ("rmse_ratio_vs_persistence", "regression", "rmse"), ("mae", "regression", "mae"),
    ("calibration_ratio", "binary_classification", "roc_auc"),
])
def test_drivers_metric(primary, task, expected):
    assert drivers_metric(primary, task) == expected


def test_sample_rows_is_seeded_and_bounded():
    section = DriversSpec(max_rows=100, seed=4)
    a, b = sample_rows(1000, section), sample_rows(1000, section)
    assert len(a) == 100 and np.array_equal(a, b) and np.all(np.diff(a) > 0)
    assert np.array_equal(sample_rows(80, section), np.arange(80))


def test_plots_and_card_section(logistic, tmp_path):
    from tasks.card_explain import _drivers_section

    pipe, X, y = logistic
    rec = global_drivers(DriversSpec(repeats=2, partial_dependence_features=2), pipe, X, y,
                         task="binary_classification", primary_metric="roc_auc", categorical=["purpose"],
                         in_sample=True)
    written = sorted(p.name for p in drivers_plots(rec, tmp_path, "credit"))
    assert written == ["drivers.png", "partial_dependence.png"]
    assert all((tmp_path / w).stat().st_size > 5000 for w in written)
    rec["coefficients"] = {"logistic": linear_coefficients(pipe)}
    rec["selected"] = "keras"
    text = "\n".join(_drivers_section({"drivers": rec, "reports": written}))
    top = rec["permutation_importance"][0]
    assert f"| 1 | `{top['feature']}` | {top['importance']:.4f} |" in text
    assert "![drivers](reports/drivers.png)" in text and "reports/partial_dependence.png" in text
    assert "in-sample" in text and "| rank | input | coefficient |" in text
    assert "Coefficients of `logistic` (a linear candidate, not selected)" in text
    assert "Not measured" in "\n".join(_drivers_section({}))
    assert "Could not be measured: ValueError: x" in "\n".join(_drivers_section({"drivers": {"error": "ValueError: x"}}))
