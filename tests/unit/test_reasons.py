"""Adverse-action reasons (tasks/reasons.py): the reference profile, each feature's contribution
against it, the ranking (ties, a factor lowering the risk, a categorical), the bounds of K, and the
exact agreement with a logistic model's points below the reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.estimators import build_candidate
from models.spec import ReasonsSpec, SpecError, parse_spec
from tasks.reasons import (
    ReasonCountError,
    ReasonsUnavailableError,
    check_reason_count,
    feature_contributions,
    logistic_points,
    principal_reasons,
    rank_reasons,
    reason_columns,
    reason_features,
    reasons_summary,
    reference_profile,
    stored_reasons,
)
from tests.helpers import builtin_spec_dict


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


class StubModel:
    """P(event) = sigmoid(a + b − 2c + 1.5·[home = rent]): contributions known in closed form."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        eta = (X["a"].to_numpy(float) + X["b"].to_numpy(float) - 2.0 * X["c"].to_numpy(float)
               + 1.5 * (X["home"].astype(object).to_numpy() == "rent"))
        p = _sigmoid(eta)
        return np.column_stack([1 - p, p])


REFERENCE = {"a": 0.0, "b": 0.0, "c": 0.0, "home": "own"}


def _stored(features=("a", "b", "c", "home"), cutoff=0.5):
    return {"cutoff": cutoff, "reference": {"kind": "passing_margin", "values": dict(REFERENCE)},
            "features": list(features), "categorical": ["home"],
            "texts": {"a": "Text of a", "b": "Text of b", "c": "Text of c", "home": "Housing status"}}


def _frame(rows):
    return pd.DataFrame(rows, columns=["a", "b", "c", "home"])


def _scores(X):
    return StubModel().predict_proba(X)[:, 1]


def test_contribution_is_the_score_change_when_the_feature_alone_takes_the_reference_value():
    X = _frame([[1.0, 0.5, 0.25, "rent"]])
    c = feature_contributions(StubModel(), X, REFERENCE, ["a", "b", "c", "home"], ["home"])
    s = _sigmoid(1.0 + 0.5 - 0.5 + 1.5)
    expected = [s - _sigmoid(0.5 - 0.5 + 1.5), s - _sigmoid(1.0 - 0.5 + 1.5), s - _sigmoid(1.0 + 0.5 + 1.5),
                s - _sigmoid(1.0 + 0.5 - 0.5)]
    np.testing.assert_allclose(c[0], expected, rtol=0, atol=1e-15)
    assert c[0, 2] < 0  # c above its reference lowers the risk


def test_ties_break_in_spec_column_order():
    X = _frame([[1.0, 1.0, 0.0, "own"]])  # a and b raise the risk by exactly the same amount
    out = principal_reasons(ReasonsSpec(), StubModel(), X, _scores(X), _stored(), k=2)
    assert [out.loc[0, "reason_1"], out.loc[0, "reason_2"]] == ["a", "b"]
    assert out.loc[0, "reason_1_contribution"] == out.loc[0, "reason_2_contribution"] > 0
    swapped = principal_reasons(ReasonsSpec(), StubModel(), X, _scores(X), _stored(("b", "a", "c", "home")), k=2)
    assert [swapped.loc[0, "reason_1"], swapped.loc[0, "reason_2"]] == ["b", "a"]


def test_a_factor_that_lowers_the_risk_is_never_a_reason_even_with_free_slots():
    X = _frame([[2.0, 0.0, 0.5, "own"]])  # score sigmoid(1) > 0.5: declined; only a raises the risk
    out = principal_reasons(ReasonsSpec(), StubModel(), X, _scores(X), _stored(), k=4)
    assert out.loc[0, "declined"]
    assert out.loc[0, "reason_1"] == "a" and out.loc[0, "reason_1_text"] == "Text of a"
    assert out.loc[0, "reason_1_contribution"] == pytest.approx(_sigmoid(1.0) - _sigmoid(-1.0), abs=1e-15)
    for i in (2, 3, 4):  # b equals its reference (no change), c lowers the risk, home is the reference category
        assert pd.isna(out.loc[0, f"reason_{i}"]) and pd.isna(out.loc[0, f"reason_{i}_contribution"])
    assert "c" not in set(out[[f"reason_{i}" for i in range(1, 5)]].astype(object).stack())


def test_a_categorical_compares_with_the_reference_category():
    X = _frame([[0.5, 0.0, 0.0, "rent"], [1.0, 0.0, 0.0, "own"]])
    out = principal_reasons(ReasonsSpec(), StubModel(), X, _scores(X), _stored(), k=2)
    assert list(out.loc[0, ["reason_1", "reason_2"]]) == ["home", "a"]  # 1.5 on the log-odds beats 0.5
    assert out.loc[0, "reason_1_text"] == "Housing status"
    assert out.loc[0, "reason_1_contribution"] == pytest.approx(_sigmoid(2.0) - _sigmoid(0.5), abs=1e-15)
    assert out.loc[1, "reason_1"] == "a" and pd.isna(out.loc[1, "reason_2"])  # 'own' is the reference: no reason


def test_only_declined_rows_get_reasons_unless_explain_all():
    X = _frame([[2.0, 0.0, 0.0, "own"], [-1.0, 0.5, 0.0, "own"]])  # scores 0.88 (declined), 0.38 (approved)
    out = principal_reasons(ReasonsSpec(), StubModel(), X, _scores(X), _stored(), k=3)
    assert list(out["declined"]) == [True, False]
    assert out.loc[0, "reason_1"] == "a" and out.loc[1, ["reason_1", "reason_1_text"]].isna().all()
    assert list(out.columns) == ["declined", *reason_columns(3)]
    every = principal_reasons(ReasonsSpec(explain="all"), StubModel(), X, _scores(X), _stored(), k=3)
    assert every.loc[1, "reason_1"] == "b" and not every.loc[1, "declined"]
    summary = reasons_summary(out, _stored(), 3, "declined")
    assert summary == {"k": 3, "explain": "declined", "cutoff": 0.5, "reference": "passing_margin",
                       "declined_rows": 1, "explained_rows": 1, "without_reason": 0, "approved_without_reason": 0}


def test_a_row_at_the_cutoff_is_declined():
    X = _frame([[0.0, 0.0, 0.0, "own"]])  # score exactly 0.5
    out = principal_reasons(ReasonsSpec(), StubModel(), X, _scores(X), _stored(cutoff=0.5), k=1)
    assert bool(out.loc[0, "declined"]) and pd.isna(out.loc[0, "reason_1"])  # at the reference: no single factor
    assert reasons_summary(out, _stored(), 1, "declined")["without_reason"] == 1


@pytest.mark.parametrize("k", [0, 6, -1, 2.5, True, "4"])
def test_k_outside_one_to_five_is_refused_naming_the_option(k):
    with pytest.raises(ReasonCountError, match=r"--reasons .*from 1 to 5"):
        check_reason_count(k)
    X = _frame([[2.0, 0.0, 0.0, "own"]])
    with pytest.raises(ReasonCountError):
        principal_reasons(ReasonsSpec(), StubModel(), X, _scores(X), _stored(), k=k)


def test_k_from_one_to_five_is_accepted():
    assert [check_reason_count(k) for k in (1, 4, 5, np.int64(3))] == [1, 4, 5, 3]
    X = _frame([[2.0, 1.0, 0.0, "rent"]])
    out = principal_reasons(ReasonsSpec(), StubModel(), X, _scores(X), _stored(), k=5)
    assert list(out.loc[0, ["reason_1", "reason_2", "reason_3"]]) == ["a", "home", "b"]
    assert out[["reason_4", "reason_5"]].isna().all(axis=None)


def test_rank_reasons_pads_when_k_exceeds_the_features():
    index, value = rank_reasons(np.array([[0.2, np.nan, 0.3]]), 5)
    assert index.tolist() == [[2, 0, -1, -1, -1]] and value[0, :2].tolist() == [0.3, 0.2]


def test_reference_profile_passing_margin_averages_the_approved_rows_nearest_the_cutoff():
    X = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0, np.nan, 7.0], "g": ["p", "q", "q", "p", "p", "q", "r"]})
    scores = np.array([0.10, 0.20, 0.30, 0.40, 0.45, 0.48, 0.90])  # cut-off 0.5: the first six approved
    margin = reference_profile(ReasonsSpec(margin_rows=10), X, scores, 0.5, ["g"])
    assert margin["rows"] == 6 and margin["values"] == {"x": 3.0, "g": "p"}  # tie p/q 3-3: the smaller text
    few = ReasonsSpec().model_copy(update={"margin_rows": 3})  # below the spec's minimum of 10: a small example
    near = reference_profile(few, X, scores, 0.5, ["g"])
    assert near["rows"] == 3 and near["values"] == {"x": 4.5, "g": "p"}  # rows 0.48, 0.45, 0.40 (x 4, 5; NaN skipped)
    assert near["score_range"] == [0.40, 0.48]
    every = reference_profile(ReasonsSpec(reference="all"), X, scores, 0.5, ["g"])
    assert every["rows"] == 7 and every["values"]["x"] == pytest.approx(22 / 6) and every["kind"] == "all"
    with pytest.raises(ValueError, match="no holdout application is approved"):
        reference_profile(ReasonsSpec(), X, scores, 0.05, ["g"])


def _synthetic(n=2000, seed=3):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "income": rng.lognormal(7, 0.5, n), "debt": rng.normal(0, 1, n), "years": rng.integers(0, 30, n).astype(float),
        "home": rng.choice(["own", "rent", "parents"], n, p=[0.5, 0.3, 0.2]),
        "sex": rng.choice(["f", "m"], n),  # protected: in the frame, never a feature
    })
    X.loc[rng.random(n) < 0.1, "income"] = np.nan
    eta = -0.0004 * X["income"].fillna(1000) + 0.8 * X["debt"] - 0.05 * X["years"] + 0.7 * (X["home"] == "rent")
    y = (rng.random(n) < _sigmoid(eta + 0.5)).astype(int)
    return X, y


def test_the_logistic_ranking_equals_the_exact_points_below_the_reference():
    X, y = _synthetic()
    numeric, categorical = ["income", "debt", "years"], ["home"]
    features = numeric + categorical
    pipe = build_candidate("logistic_regression", "binary_classification", {"C": 1.0}, numeric, categorical)
    pipe.fit(X[features], y)
    scores = pipe.predict_proba(X[features])[:, 1]
    cutoff = float(np.quantile(scores, 0.7))
    profile = reference_profile(ReasonsSpec(), X[features], scores, cutoff, categorical)
    texts = {"income": "Obligations too high for income", "debt": "Obligations too high for income",
             "years": "Length of employment", "home": "Type of residence"}  # two features, one statement
    stored = {"cutoff": cutoff, "reference": profile, "features": features, "categorical": categorical,
              "texts": texts}
    out = principal_reasons(ReasonsSpec(min_contribution=0.0), pipe, X[features], scores, stored, k=4)
    declined = np.flatnonzero(scores >= cutoff)
    assert len(declined) == int(out["declined"].sum()) > 500
    points = logistic_points(pipe, X[features].iloc[declined], profile["values"], features, categorical)
    plain, _ = rank_reasons(points, 4)
    assert ((plain == 0) | (plain == 1)).sum(axis=1).max() == 2  # rows where both would be given: de-duplication matters
    exact, _ = rank_reasons(points, 4, [texts[f] for f in features])  # the exact ranking, de-duplicated alike
    codes = np.array([-1, *range(len(features))])
    ours = np.column_stack([out[f"reason_{i}"].cat.codes.to_numpy()[declined] for i in range(1, 5)])
    assert (ours == codes[exact + 1]).all()  # every declined row, every position
    assert (exact[:, 0] >= 0).mean() > 0.99
    # and the points are the log-odds change: logit(score) − logit(score with the feature at the reference)
    c = feature_contributions(pipe, X[features].iloc[declined[:50]], profile["values"], features, categorical)
    s = scores[declined[:50]]
    logit = np.log(s / (1 - s))
    np.testing.assert_allclose(logit[:, None] - np.log((s[:, None] - c) / (1 - s[:, None] + c)), points[:50], atol=1e-8)


def test_protected_excluded_and_id_columns_are_never_reasons():
    data = builtin_spec_dict("credit_risk")
    data["columns"]["Marital"] = {"role": "protected", "allowed": ["divorced", "married", "separated", "single",
                                                                   "widow"], "max_null_share": 0.01}
    data["columns"]["Price"] = {"role": "excluded", "reason": "probable leakage"}
    spec = parse_spec(data)
    features = reason_features(spec)
    assert "Marital" not in features and "Price" not in features and "rownames" not in features
    assert features == [c for c in data["columns"] if c in spec.feature_columns]  # spec column order
    assert features[:3] == ["Seniority", "Home", "Time"]


def test_reason_texts_come_from_the_spec_with_a_default_from_the_name():
    data = builtin_spec_dict("credit_risk")
    data["columns"]["Income"]["reason"] = "Income too low"
    data["columns"]["Job"].pop("reason")
    spec = parse_spec(data)
    assert spec.reason_text("Income") == "Income too low"
    assert spec.reason_text("Job") == "Job: less favourable than the reference applicant's"
    assert spec.reason_text("Age") == "Age: less favourable than the reference applicant's"


def test_the_reasons_section_is_refused_for_a_regression_spec():
    data = builtin_spec_dict("market_forecast")
    data["reasons"] = {"k": 4}
    with pytest.raises(SpecError, match="reasons: adverse-action reasons apply to binary_classification"):
        parse_spec(data)
    data = builtin_spec_dict("credit_risk")
    data["reasons"] = {"k": 6}
    with pytest.raises(SpecError, match="reasons.k"):
        parse_spec(data)


def test_a_version_without_a_reasons_record_is_refused_naming_why():
    with pytest.raises(ReasonsUnavailableError, match="credit_risk version 3 .*promoted before"):
        stored_reasons({"task": "binary_classification"}, "credit_risk", 3)
    with pytest.raises(ReasonsUnavailableError, match="its task is regression"):
        stored_reasons({"task": "regression"}, "market_forecast", 1)
    with pytest.raises(ReasonsUnavailableError, match="could not be prepared"):
        stored_reasons({"task": "binary_classification", "reasons": {"error": "ValueError: x"}}, "m", 1)
