"""Scorecard points (tasks.scorecard, the spec's ``scorecard`` section): the scale, rounding,
per-feature points of a logistic model, the card section, scoring output and the spec rules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.errors import SpecError
from models.estimators import build_candidate, predict_scores
from models.spec import find_spec, parse_spec
from models.spec.explain import ScorecardSpec
from tasks.scorecard import (
    PROBABILITY_EPSILON,
    feature_points,
    integer_points,
    points_from_log_odds,
    points_from_probability,
    points_table,
    scaling,
    scorecard_card_section,
    scorecard_points,
    scorecard_record,
)
from tasks.scoring import predictions_frame
from tests.helpers import BUILTIN_SPECS, builtin_spec_dict

SCALE = ScorecardSpec(base_points=600, base_odds=19, pdo=50)


def test_the_base_odds_score_the_base_points_and_each_pdo_doubles_the_odds():
    # p = 0.05 is good:bad odds of 0.95 / 0.05 = 19: exactly the base points
    assert points_from_probability(SCALE, np.array([0.05]))[0] == pytest.approx(600.0, abs=1e-9)
    odds = np.array([19.0, 38.0, 76.0, 9.5, 4.75, 1.0])
    p = 1.0 / (1.0 + odds)  # the event probability of each good:bad odds
    expected = 600.0 + 50.0 * np.log2(odds / 19.0)  # computed here without factor and offset
    np.testing.assert_allclose(points_from_probability(SCALE, p), expected, atol=1e-9)
    assert list(expected[:5]) == pytest.approx([600, 650, 700, 550, 500])
    assert scorecard_points(SCALE, p).tolist() == [600, 650, 700, 550, 500, 388]  # 1:1 odds: the offset, 387.60


def test_siddiqis_worked_example_of_the_scaling():
    # Siddiqi (2006): 600 points at 50:1, 20 points to double the odds: factor 28.8539, offset 487.123
    factor, offset = scaling(ScorecardSpec(base_points=600, base_odds=50, pdo=20))
    assert factor == pytest.approx(28.8539, abs=5e-5) and offset == pytest.approx(487.123, abs=5e-4)
    assert scaling(SCALE) == pytest.approx((50 / math.log(2), 600 - 50 / math.log(2) * math.log(19)))


def test_points_of_log_odds_agree_with_points_of_the_probability():
    logit = np.array([-4.0, -1.0, 0.0, 0.5, 3.0])
    p = 1.0 / (1.0 + np.exp(-logit))
    np.testing.assert_allclose(points_from_log_odds(SCALE, logit), points_from_probability(SCALE, p), atol=1e-9)


def test_whole_points_round_half_up_not_half_to_even():
    assert integer_points(np.array([611.5, 612.5, 612.49, 612.51, -0.5, 0.4])).tolist() == [612, 613, 612, 613, 0, 0]
    assert np.round(612.5) == 612  # what NumPy would have printed
    assert integer_points(np.array([611.5])).dtype == np.int64
    with pytest.raises(ValueError, match="cannot be rounded"):
        integer_points(np.array([600.0, np.nan]))


def test_probabilities_of_zero_and_one_are_clipped_to_the_documented_epsilon():
    factor, offset = scaling(SCALE)
    edge = factor * math.log((1 - PROBABILITY_EPSILON) / PROBABILITY_EPSILON)
    pts = points_from_probability(SCALE, np.array([0.0, 1.0, PROBABILITY_EPSILON, 0.5]))
    assert pts[0] == pytest.approx(offset + edge) and pts[1] == pytest.approx(offset - edge)
    assert pts[2] == pytest.approx(pts[0]) and pts[3] == pytest.approx(offset)
    assert 1880 < pts[0] < 1885 and -1110 < pts[1] < -1105  # offset 387.6 ± 1,494.9 at a pdo of 50
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        points_from_probability(SCALE, np.array([1.2]))


# --------------------------------------------------------------------------- per-feature points


def _applicants(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Risk rises with utilisation and falls with income; 'cash' loans are riskier; income and
    purpose are sometimes missing."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({
        "utilisation": rng.uniform(0, 1, n),
        "income": rng.lognormal(8, 0.5, n),
        "purpose": rng.choice(["car", "home", "cash"], n).astype(object),
    })
    logit = -1.0 + 3.0 * X["utilisation"] - 0.8 * (np.log(X["income"]) - 8) / 0.5 + 0.7 * (X["purpose"] == "cash")
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int).to_numpy()
    X.loc[rng.uniform(size=n) < 0.1, "income"] = np.nan
    X.loc[rng.uniform(size=n) < 0.05, "purpose"] = None
    return X, y


@pytest.fixture(scope="module")
def fitted():
    X, y = _applicants(1600, 5)
    pipe = build_candidate("logistic_regression", "binary_classification", {}, ["utilisation", "income"], ["purpose"])
    pipe.fit(X.iloc[:1200], y[:1200])
    return pipe, X.iloc[1200:].reset_index(drop=True)


def test_the_feature_points_of_a_logistic_model_sum_to_its_points_on_every_row(fitted):
    pipe, X = fitted
    per_feature = feature_points(SCALE, pipe, X)
    assert list(per_feature.columns) == ["utilisation", "income", "purpose"] and len(per_feature) == 400
    p = predict_scores(pipe, X, "binary_classification")
    total = points_from_probability(SCALE, p)  # from the probability alone
    np.testing.assert_allclose(per_feature.sum(axis=1).to_numpy(), total, atol=1e-8)
    assert X["income"].isna().sum() > 20 and X["purpose"].isna().sum() > 5  # missing values are rows like the others
    # more utilisation, fewer points; the neutral share is the same on every feature
    model = pipe.steps[-1][1]
    factor, offset = scaling(SCALE)
    share = (offset - factor * model.intercept_[0]) / 3
    low, high = X["utilisation"].idxmin(), X["utilisation"].idxmax()
    assert per_feature.loc[low, "utilisation"] > share > per_feature.loc[high, "utilisation"]


def test_the_points_table_gives_each_level_and_quantile_the_points_of_a_real_row(fitted):
    pipe, X = fitted
    table = points_table(SCALE, pipe, X, ["purpose"])
    by = {f["feature"]: f for f in table["features"]}
    assert [r["value"] for r in by["purpose"]["rows"]] == ["car", "cash", "home", "(missing)"]
    per_feature = feature_points(SCALE, pipe, X)
    for row in by["purpose"]["rows"]:
        level = None if row["value"] == "(missing)" else row["value"]
        match = X["purpose"].isna() if level is None else X["purpose"] == level
        assert per_feature.loc[match, "purpose"].to_numpy() == pytest.approx(row["points"])
    factor, _ = scaling(SCALE)
    coef = by["purpose"]["coefficients"]
    assert by["purpose"]["rows"][1]["points"] == pytest.approx(table["share"] - factor * coef["purpose_cash"])
    income = [r["value"] for r in by["income"]["rows"]]
    assert len(income) == 6 and "50% quantile" in income[2] and income[-1] == "(missing)"
    scaler = pipe.named_steps["preprocess"].named_transformers_["numeric"].named_steps["scale"]
    z = (np.nanmedian(X["income"]) - scaler.mean_[1]) / scaler.scale_[1]  # income: the second numeric input
    z_flag = (0.0 - scaler.mean_[2]) / scaler.scale_[2]  # its missing indicator (0: present), standardised too
    w = by["income"]["coefficients"]
    assert set(w) == {"income", "missingindicator_income"}
    expected = table["share"] - factor * (w["income"] * z + w["missingindicator_income"] * z_flag)
    assert by["income"]["rows"][2]["points"] == pytest.approx(expected)
    assert by["income"]["rows"][0]["points"] < by["income"]["rows"][4]["points"]  # more income, more points
    missing = per_feature.loc[X["income"].isna(), "income"].to_numpy()
    assert missing == pytest.approx(by["income"]["rows"][-1]["points"])


def test_a_model_that_is_not_logistic_has_no_feature_points_and_the_card_says_why():
    X, y = _applicants(800, 9)
    pipe = build_candidate("hist_gradient_boosting", "binary_classification", {"max_iter": 30},
                           ["utilisation", "income"], ["purpose"]).fit(X, y)
    assert feature_points(SCALE, pipe, X) is None and points_table(SCALE, pipe, X, ["purpose"]) is None
    rec = scorecard_record(SCALE, pipe, X, cutoff=0.05, cutoff_rule="fixed cut-off 0.05 from the spec",
                           candidate="gradient_boosting", estimator="hist_gradient_boosting", categorical=["purpose"])
    assert rec["table"] is None and rec["cutoff"]["points"] == pytest.approx(600.0)
    assert rec["cutoff"]["whole_points"] == 600
    lines = "\n".join(scorecard_card_section({"scorecard": rec}))
    assert "needs an additive model" in lines and "gradient_boosting (hist_gradient_boosting) is not one" in lines
    assert "probability 0.0500 = **600.0 points** (600 in whole points); fixed cut-off 0.05 from the spec" in lines


def test_the_card_section_gives_the_cutoff_in_points_and_the_points_table(fitted):
    pipe, X = fitted
    rec = scorecard_record(SCALE, pipe, X, cutoff=0.2, cutoff_rule="cut-off 0.2000: approves 80.0% of the holdout",
                           candidate="logistic", estimator="logistic_regression", categorical=["purpose"])
    cut = 600 + 50 * math.log2(4 / 19)  # odds 0.8 / 0.2 = 4
    assert rec["cutoff"]["points"] == pytest.approx(cut) and rec["cutoff"]["whole_points"] == round(cut) == 488
    card = "\n".join(scorecard_card_section({"scorecard": rec}))
    assert "## Scorecard points" in card and f"**{cut:.1f} points** (488 in whole points)" in card
    assert "600 points at good:bad odds 19:1 (event probability 5.00%), 50 points to double the odds" in card
    cash = next(r for f in rec["table"]["features"] if f["feature"] == "purpose" for r in f["rows"] if r["value"] == "cash")
    assert f"| `purpose` | cash | {cash['points']:.1f} |" in card
    assert scorecard_card_section({}) == [] and scorecard_card_section({"scorecard": None}) == []


# --------------------------------------------------------------------------- spec and scoring output


def test_the_built_in_credit_model_declares_its_scale():
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    assert spec.scorecard == ScorecardSpec(base_points=600, base_odds=19, pdo=50)


@pytest.mark.parametrize("model", ["market_forecast", "market_direction"])
def test_a_scorecard_section_is_refused_outside_binary_classification(model):
    data = builtin_spec_dict(model)
    data["scorecard"] = {"base_points": 600, "base_odds": 19, "pdo": 50}
    with pytest.raises(SpecError, match=r"scorecard: points restate a probability of default .* task '"
                                        + {"market_forecast": "regression", "market_direction": "direction"}[model]):
        parse_spec(data)


def test_the_scorecard_section_needs_a_positive_scale_and_no_column_named_points():
    data = builtin_spec_dict("credit_risk")
    for bad, field in (({"base_points": 600, "base_odds": 0, "pdo": 50}, "base_odds"),
                       ({"base_points": 600, "base_odds": 19, "pdo": -20}, "pdo"),
                       ({"base_points": 600, "base_odds": 19}, "pdo")):
        with pytest.raises(SpecError, match=rf"scorecard\.{field}"):
            parse_spec({**data, "scorecard": bad})
    clash = {**data, "columns": {**data["columns"], "points": {"role": "numeric"}}}
    with pytest.raises(SpecError, match="columns.points: 'points' is the column the scorecard section writes"):
        parse_spec(clash)
    del clash["scorecard"]
    assert parse_spec(clash).scorecard is None  # without the section the name is free


def test_scoring_output_carries_whole_points_that_agree_with_the_score():
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    table = pd.DataFrame({"rownames": [1, 2, 3, 4]})
    scores = np.array([0.05, 1 / 39, 0.28, 0.999])
    out = predictions_frame(spec, table, scores, 3, "2026-01-02T03:04:05Z")
    assert list(out.columns) == ["rownames", "score", "points", "grade", "model", "model_version", "scored_at"]
    assert out["points"].dtype == np.int64
    expected = [math.floor(600 + 50 * math.log2((1 - p) / p / 19) + 0.5) for p in scores]
    assert out["points"].tolist() == expected == [600, 650, 456, -111]
    no_card = spec.model_copy(update={"scorecard": None})
    assert "points" not in predictions_frame(no_card, table, scores, 3, "2026-01-02T03:04:05Z").columns


@pytest.mark.parametrize("field", ["base_points", "base_odds", "pdo"])
@pytest.mark.parametrize("value", [True, False, "50"])
def test_a_boolean_or_quoted_scorecard_number_is_refused_naming_the_field(field, value):
    data = builtin_spec_dict("credit_risk")
    data["scorecard"] = {"base_points": 600, "base_odds": 19, "pdo": 50, field: value}
    with pytest.raises(SpecError, match=rf"scorecard\.{field}'?: Input should be a valid number"):
        parse_spec(data)


def test_a_boolean_reason_count_or_driver_setting_is_refused():
    data = builtin_spec_dict("credit_risk")
    data["reasons"] = {"k": True}
    with pytest.raises(SpecError, match=r"reasons\.k"):
        parse_spec(data)
    data = builtin_spec_dict("credit_risk")
    data["drivers"] = {"seed": True}
    with pytest.raises(SpecError, match=r"drivers\.seed"):
        parse_spec(data)


def test_an_integer_feature_is_listed_at_values_it_takes():
    rng = np.random.default_rng(4)
    n = 600
    X = pd.DataFrame({"dependants": rng.permutation(np.repeat([0.0, 1.0, 2.0, 3.0], n // 4)),  # linear: 0.75, 1.5
                      "utilisation": rng.uniform(0, 1, n)})
    y = (rng.random(n) < 0.2 + 0.1 * X["dependants"]).astype(int)
    pipe = build_candidate("logistic_regression", "binary_classification", {}, ["dependants", "utilisation"], [])
    pipe.fit(X, y)
    by = {f["feature"]: f for f in points_table(SCALE, pipe, X, [])["features"]}
    shown = [r["value"] for r in by["dependants"]["rows"]]
    assert [s.split(" ")[0] for s in shown] == ["0", "1", "2", "3"]  # never an interpolated 0.25 or 1.5
    assert shown[0] == "0 (holdout 5% quantile)"
    continuous = [float(r["value"].split(" ")[0]) for r in by["utilisation"]["rows"]]
    assert continuous[2] == pytest.approx(float(np.median(X["utilisation"])), rel=1e-5)  # interpolated as before
