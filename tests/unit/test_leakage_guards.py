"""Leakage that hides (issue 12, section 4): missingness, an id declared as a feature, and a model
far better than a single feature and a linear baseline."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from models.spec import find_spec, parse_spec
from tasks.leakage import (
    LeakageError,
    check_id_like_features,
    check_missingness_leakage,
    check_single_feature_leakage,
    leakage_guards,
    model_lift_check,
    model_lift_warning,
)
from tasks.load import load_source, modelling_table, split_out_of_time
from tasks.report import _leakage_section
from tasks.split import plan_split
from tests.helpers import BUILTIN_SPECS, builtin_spec_dict


@pytest.fixture(scope="module")
def credit():
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    table = modelling_table(split_out_of_time(load_source(spec), spec)[0], spec)
    return spec, table, plan_split.fn(table, spec)


def _with_column(name: str, role: str = "numeric"):
    data = builtin_spec_dict("credit_risk")
    data["columns"][name] = {"role": role}
    return parse_spec(data)


def _post_default_fee(table, seed: int = 0) -> np.ndarray:
    """A fee charged after a default: present for 60 % of the defaults, missing otherwise."""
    rng = np.random.default_rng(seed)
    default = table["Status"].to_numpy() == 1
    present = default & (rng.random(len(table)) < 0.6)
    return np.where(present, rng.gamma(2.0, 50.0, len(table)), np.nan)


def test_a_post_default_fee_passes_the_single_feature_screen_but_not_the_missingness_screen(credit):
    _, table, plan = credit
    leaky_spec = _with_column("late_fee")
    leaky = table.assign(late_fee=_post_default_fee(table))
    rows = plan.folds[0].train
    screen = {s["column"]: s for s in check_single_feature_leakage(leaky_spec, leaky, rows)}
    assert not screen["late_fee"]["flagged"]  # the values alone say nothing: all present rows are defaults
    with pytest.raises(LeakageError, match=r"'late_fee' \(ROC AUC of 'is missing' 0\.80\d\d > 0\.75") as info:
        check_missingness_leakage(leaky_spec, leaky, rows)
    assert info.value.columns == ["late_fee"]
    with pytest.raises(LeakageError, match="late_fee"):  # the guards stage refuses it before any fit
        leakage_guards.fn(leaky_spec, None, leaky, plan)


def test_ordinary_missingness_of_the_built_in_credit_data_passes(credit):
    spec, table, plan = credit
    screen = {s["column"]: s for s in check_missingness_leakage(spec, table, plan.folds[0].train)}
    assert 0.55 < screen["Income"]["value"] < 0.57 and not screen["Income"]["flagged"]  # 8 % missing
    assert max(s["value"] for s in screen.values()) < 0.6
    # by hand: the ROC AUC of a 0/1 indicator is 0.5 + |m1 - m0| / 2
    y = table["Status"].to_numpy()[plan.folds[0].train]
    m = table["Income"].isna().to_numpy()[plan.folds[0].train]
    assert screen["Income"]["value"] == pytest.approx(0.5 + abs(m[y == 1].mean() - m[y == 0].mean()) / 2)


def test_an_id_declared_as_a_feature_is_refused_naming_it(credit):
    spec, table, plan = credit
    id_spec = _with_column("application_no")
    with_id = table.assign(application_no=np.arange(100_000, 100_000 + len(table), dtype=float))
    with pytest.raises(LeakageError, match=r"\['application_no'\] take a different value on every row") as info:
        check_id_like_features(id_spec, with_id)
    assert info.value.columns == ["application_no"]
    with pytest.raises(LeakageError, match="application_no"):
        leakage_guards.fn(id_spec, None, with_id, plan)
    # unique but in no order (or monotone with repeats) is not an id
    rng = np.random.default_rng(1)
    assert check_id_like_features(id_spec, table.assign(application_no=rng.permutation(len(table)))) == []
    assert check_id_like_features(id_spec, table.assign(application_no=np.arange(len(table)) // 2)) == []
    assert check_id_like_features(spec, table) == []  # the built-in features


def test_model_lift_warning_by_hand():
    spec = parse_spec(builtin_spec_dict("credit_risk"))
    screen = [{"column": "Seniority", "statistic": "roc_auc", "value": 0.70},
              {"column": "Income", "statistic": "roc_auc", "value": 0.62},
              {"column": "Debt", "statistic": "roc_auc", "value": None}]
    lift = model_lift_check(spec, screen, model_auc=0.94, linear_auc=0.83)
    assert lift["best_single_feature"] == "Seniority" and lift["lift"] == pytest.approx(0.11)
    assert "0.9400 is 0.1100 above" in lift["warning"] and "Seniority: 0.7000" in lift["warning"]
    assert model_lift_check(spec, screen, model_auc=0.86, linear_auc=0.83)["warning"] is None
    assert model_lift_check(spec, screen, model_auc=0.94, linear_auc=0.90)["warning"] is None  # lift 0.04
    assert model_lift_check(spec, screen, model_auc=None, linear_auc=0.90)["lift"] is None


def test_model_lift_warning_uses_the_logistic_candidate_or_fits_a_linear_baseline(credit):
    spec, table, plan = credit
    y = table["Status"].to_numpy(dtype=float)[plan.holdout]
    screen = [{"column": "Seniority", "statistic": "roc_auc", "value": 0.70}]
    logistic = SimpleNamespace(estimator="logistic_regression", error=None, metrics={"roc_auc": 0.80})
    trees = SimpleNamespace(estimator="hist_gradient_boosting", error=None, metrics={"roc_auc": 0.95})
    evaluation = SimpleNamespace(evaluations=[logistic, trees], metrics={"roc_auc": 0.95}, y=y)
    out = model_lift_warning.fn(spec, {"single_feature_screen": screen}, evaluation, table, plan)
    assert out["model_lift"]["linear_auc"] == 0.80 and out["model_lift"]["warning"]
    evaluation = SimpleNamespace(evaluations=[trees], metrics={"roc_auc": 0.95}, y=y)
    fitted = model_lift_warning.fn(spec, {"single_feature_screen": screen}, evaluation, table, plan)["model_lift"]
    assert 0.75 < fitted["linear_auc"] < 0.9  # a logistic regression on the credit holdout
    assert fitted["lift"] == pytest.approx(0.95 - fitted["linear_auc"])


def test_the_card_shows_the_missingness_screen_and_the_lift_warning():
    leakage = {
        "single_feature_screen": [{"column": "Seniority", "statistic": "roc_auc", "value": 0.70, "limit": 0.95}],
        "missingness_screen": [{"column": "Income", "missing_share": 0.084, "value": 0.559, "limit": 0.75,
                                "flagged": False}],
        "model_lift": {"model_auc": 0.94, "best_single_feature": "Seniority", "best_single_feature_auc": 0.70,
                       "linear_auc": 0.83, "lift": 0.11, "limit": 0.08, "warning": "the selected model's ..."},
        "point_in_time": {"checked": False},
    }
    text = "\n".join(_leakage_section(leakage))
    assert "`Income`: missing on 8.4 % of the rows, ROC AUC of 'is missing' 0.5590 (limit 0.75)" in text
    assert "**Warning**: the selected model's ..." in text
    quiet = {**leakage, "model_lift": {**leakage["model_lift"], "lift": 0.03, "warning": None}}
    assert "ROC AUC 0.9400 on the holdout, 0.03 above the better of the best single feature (0.7000) and the " \
           "linear baseline (0.8300); limit 0.08" in "\n".join(_leakage_section(quiet))
