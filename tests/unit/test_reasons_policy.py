"""Adverse-action reasons, the policy rules found by the trial of the reasons (validator's trial
15): a category unseen in training is never a reason, a reason text is given once per row, a
materiality floor, and the note on rows without a reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.estimators import build_candidate, training_categories
from models.spec import ReasonsSpec
from tasks.ranges import unseen_categories_lines, unseen_categories_report
from tasks.reasons import principal_reasons, reference_profile


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _book(n=1500, seed=5):
    """A small credit book: region 'south' is risky; the one-hot logistic model learns
    coefficients for 'north', 'south', 'west' only."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"debt": rng.normal(0, 1, n), "region": rng.choice(["north", "south", "west"], n)})
    y = (rng.random(n) < _sigmoid(0.9 * X["debt"] + 1.2 * (X["region"] == "south") - 0.3)).astype(int)
    pipe = build_candidate("logistic_regression", "binary_classification", {"C": 1.0}, ["debt"], ["region"])
    pipe.fit(X, y)
    scores = pipe.predict_proba(X)[:, 1]
    cutoff = float(np.quantile(scores, 0.6))
    profile = reference_profile(ReasonsSpec(reference="all"), X, scores, cutoff, ["region"])
    stored = {"cutoff": cutoff, "reference": profile, "features": ["debt", "region"], "categorical": ["region"],
              "texts": {"debt": "Debt too high", "region": "Region"}}
    return pipe, stored


def test_a_category_unseen_in_training_is_never_a_reason_and_is_counted():
    pipe, stored = _book()
    assert sorted(training_categories(pipe)["region"]) == ["north", "south", "west"]
    batch = pd.DataFrame({"debt": [2.0, 2.5, 1.2, 2.0], "region": ["mars", "mars", "mars", "south"]})
    scores = pipe.predict_proba(batch)[:, 1]
    assert (scores >= stored["cutoff"]).all()  # all four declined
    # without the rule, 'mars' (all one-hot indicators 0) against the reference 'north' raised the risk
    out = principal_reasons(ReasonsSpec(), pipe, batch, scores, stored, k=2)
    given = out[["reason_1", "reason_2"]].astype(object)
    assert not (given.iloc[:3] == "region").any(axis=None)
    assert list(given.iloc[:3]["reason_1"]) == ["debt", "debt", "debt"]
    assert "region" in list(given.iloc[3])  # a known category is still a reason
    report = unseen_categories_report(pipe, batch, ["region"])
    assert report == {"region": {"rows": 3, "values": ["mars"]}}
    assert unseen_categories_lines(report) == [
        ("region: 3 row(s) with a category unseen in training ('mars'); scored as none of the known categories, "
         "never an adverse-action reason")]
    missing = batch.assign(region=[None, np.nan, "north", "west"])  # missing values are imputed, not unseen
    assert unseen_categories_report(pipe, missing, ["region"]) == {}


def test_a_reason_text_is_given_once_per_row_at_the_rank_of_its_largest_contribution():
    from tests.unit.test_reasons import StubModel, _frame, _scores, _stored

    stored = _stored()
    stored["texts"] = {"a": "Excessive obligations", "b": "Excessive obligations", "c": "Text of c",
                       "home": "Housing status"}
    X = _frame([[1.0, 0.8, -0.1, "rent"], [0.3, 0.6, 0.0, "own"]])  # row 0: home 1.5 > a 1.0 > b 0.8 > c 0.2
    out = principal_reasons(ReasonsSpec(), StubModel(), X, _scores(X), stored, k=3)
    assert list(out.loc[0, ["reason_1", "reason_2", "reason_3"]]) == ["home", "a", "c"]  # b's text = a's: skipped
    assert list(out.loc[0, ["reason_1_text", "reason_2_text", "reason_3_text"]]) == [
        "Housing status", "Excessive obligations", "Text of c"]
    s = _sigmoid(1.0 + 0.8 + 0.2 + 1.5)
    assert out.loc[0, "reason_2_contribution"] == pytest.approx(s - _sigmoid(0.8 + 0.2 + 1.5), abs=1e-15)  # a's own
    assert out.loc[1, "reason_1"] == "b" and pd.isna(out.loc[1, "reason_2"])  # a (0.3 < b's 0.6) shares b's text


def test_a_factor_below_the_materiality_floor_is_not_a_reason():
    from tests.unit.test_reasons import StubModel, _frame, _scores, _stored

    X = _frame([[1.0, 2e-5, 0.0, "own"]])  # b adds about 4e-6 to the probability: immaterial
    s = _sigmoid(1.0 + 2e-5)
    tiny = s - _sigmoid(1.0)
    assert 0 < tiny < 1e-5
    out = principal_reasons(ReasonsSpec(), StubModel(), X, _scores(X), _stored(), k=2)  # default floor 0.001
    assert out.loc[0, "reason_1"] == "a" and pd.isna(out.loc[0, "reason_2"])
    every = principal_reasons(ReasonsSpec(min_contribution=0), StubModel(), X, _scores(X), _stored(), k=2)
    assert every.loc[0, "reason_2"] == "b" and every.loc[0, "reason_2_contribution"] == pytest.approx(tiny, rel=1e-6)
    high = principal_reasons(ReasonsSpec(min_contribution=0.5), StubModel(), X, _scores(X), _stored(), k=2)
    assert high[["reason_1", "reason_2"]].isna().all(axis=None)  # a adds 0.23 < 0.5
    assert ReasonsSpec().min_contribution == 0.001


@pytest.mark.parametrize("value", [True, -0.01, 1.0, float("nan"), "0.01"])
def test_the_materiality_floor_is_a_probability_in_zero_to_one(value):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="min_contribution"):
        ReasonsSpec(min_contribution=value)


def test_the_note_on_rows_without_a_reason_counts_declined_rows_and_words_approved_ones_apart(capsys):
    from flows.cli.monitoring import print_scoring
    from tasks.reasons import reasons_summary
    from tests.unit.test_reasons import StubModel, _frame, _scores, _stored

    # row 0 declined with reason a; row 1 at the reference (score 0.5, declined, no reason);
    # rows 2 and 3 approved with every factor lowering the risk (no reason)
    X = _frame([[2.0, 0.0, 0.0, "own"], [0.0, 0.0, 0.0, "own"], [0.0, 0.0, 0.5, "own"], [-1.0, 0.0, 0.0, "own"]])
    out = principal_reasons(ReasonsSpec(explain="all"), StubModel(), X, _scores(X), _stored(), k=2)
    summary = reasons_summary(out, _stored(), 2, "all")
    assert (summary["declined_rows"], summary["explained_rows"]) == (2, 4)
    assert (summary["without_reason"], summary["approved_without_reason"]) == (1, 2)
    result = {"rows": 4, "version": 1, "output": "o.parquet", "extra_columns": [], "reasons": summary}
    print_scoring("m", result)
    text = " ".join(capsys.readouterr().out.split())
    assert "note: 1 declined row(s) have no single feature raising the risk" in text
    assert "note: 2 approved row(s) have no feature raising the risk" in text
    assert "explained row(s)" not in text


def test_the_card_measures_the_exact_agreement_at_the_spec_s_number_of_reasons():
    from types import SimpleNamespace

    from models.spec import parse_spec
    from tasks.reasons import adverse_action_record, reasons_card_section
    from tests.unit.test_scoring_columns import SPEC

    spec = parse_spec({**SPEC, "reasons": {"reference": "all", "k": 3}})
    rng = np.random.default_rng(2)
    X = pd.DataFrame({"income": rng.uniform(10, 200, 400), "region": rng.choice(["north", "south", "west"], 400)})
    y = (rng.random(400) < _sigmoid(-0.02 * X["income"] + 1.0 * (X["region"] == "south") + 1)).astype(int)
    pipe = build_candidate("logistic_regression", "binary_classification", {}, ["income"], ["region"]).fit(X, y)
    fitted = [SimpleNamespace(spec=SimpleNamespace(name="logistic", estimator="logistic_regression"), pipeline=pipe,
                              error=None)]
    record = adverse_action_record.fn(spec, SimpleNamespace(best="logistic", holdout=X, y=y.to_numpy()), fitted)
    assert record["agreement"]["exact"]["k"] == 3
    assert record["agreement"]["exact"]["agreeing"] == record["agreement"]["exact"]["rows"] == record["holdout_declined"]
    card = "\n".join(reasons_card_section({"reasons": record}))
    assert "its top 3 reasons (k = reasons.k of the spec, else the advised 4) equal the exact" in card
