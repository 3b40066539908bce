"""The ``rating_scale`` and ``validation`` spec sections, the holdout's ``rating`` record and its
model-card section (tasks/rating.py)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy import stats

from models.records.registry import VersionMetadata
from models.spec import SpecError, find_spec, parse_spec
from models.spec.rating import TrafficLightPolicy
from tasks.rating import rating_card_section, rating_of, rating_record
from tasks.report import render_model_card
from tests.helpers import BUILTIN_SPECS, builtin_spec_dict

LEGACY_META = Path(__file__).parents[1] / "data" / "legacy_registry" / "credit_risk" / "versions" / "1" / "metadata.json"


def test_the_credit_risk_spec_grades_its_pds_in_six_grades():
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    assert spec.rating_scale.names == ["A", "B", "C", "D", "E", "F"]
    assert spec.rating_scale.upper_bounds == [0.05, 0.10, 0.20, 0.35, 0.55]
    assert spec.validation.policy == TrafficLightPolicy(red=0.05, amber=0.10)


@pytest.mark.parametrize(("grades", "message"), [
    ([{"name": "A", "max_pd": 0.1}, {"name": "B", "max_pd": 0.5}], "the last grade \\('B'\\) is open-ended"),
    ([{"name": "A", "max_pd": 0.2}, {"name": "B", "max_pd": 0.1}, {"name": "C"}], "strictly increasing"),
    ([{"name": "A", "max_pd": 0.2}, {"name": "A"}], "unique"),
    ([{"name": "A"}, {"name": "B"}], "needs max_pd"),
    ([{"name": "A"}], "at least two grades"),
    (2, "3 to 30 grades"),
    (True, "valid integer"),
    ([{"name": "A", "max_pd": "0.1"}, {"name": "B"}], "valid number"),
    ([{"name": "A", "max_pd": True}, {"name": "B"}], "valid number"),
    ([{"name": "A b", "max_pd": 0.2}, {"name": "B"}], "not a safe name"),
])
def test_a_wrong_rating_scale_is_refused_naming_the_field(grades, message):
    data = builtin_spec_dict("credit_risk")
    data["rating_scale"] = {"grades": grades}
    with pytest.raises(SpecError, match=f"field 'rating_scale.grades.*{message}"):
        parse_spec(data)


def test_a_rating_scale_is_refused_outside_binary_classification_and_a_policy_must_be_ordered():
    data = builtin_spec_dict("market_forecast")
    data["rating_scale"] = {"grades": 7}
    with pytest.raises(SpecError, match="rating_scale: rating grades are bands of a probability of default; task "
                                        "'regression'"):
        parse_spec(data)
    data = builtin_spec_dict("credit_risk")
    data["validation"] = {"policy": {"red": 0.10, "amber": 0.05}}
    with pytest.raises(SpecError, match="field 'validation.policy': red \\(0.1\\) must be below amber"):
        parse_spec(data)


def test_every_new_field_changes_the_content_hash():
    base = parse_spec(builtin_spec_dict("credit_risk")).content_hash()
    hashes = {base}
    for path, value in ((("rating_scale", "grades"), 7), (("validation",), {"policy": {"red": 0.01, "amber": 0.10}}),
                        (("validation",), {"policy": {"red": 0.05, "amber": 0.20}})):
        data = builtin_spec_dict("credit_risk")
        if path == ("rating_scale", "grades"):
            data["rating_scale"] = {"grades": value}
        else:
            data["validation"] = value
        hashes.add(parse_spec(data).content_hash())
    data = builtin_spec_dict("credit_risk")
    data["rating_scale"]["grades"][0]["max_pd"] = 0.04
    hashes.add(parse_spec(data).content_hash())
    data = builtin_spec_dict("credit_risk")
    data["rating_scale"]["grades"][0]["name"] = "AA"
    hashes.add(parse_spec(data).content_hash())
    assert len(hashes) == 6


def test_the_policy_colours_p_values_at_its_bounds():
    policy = TrafficLightPolicy()
    assert [policy.colour(p) for p in (0.0, 0.0499, 0.05, 0.0999, 0.10, 0.9, None)] == \
        ["red", "red", "amber", "amber", "green", "green", None]
    assert policy.text() == "red p < 0.05, amber 0.05 <= p < 0.1, green p >= 0.1"


def _holdout():
    """400 obligors: 200 at PD 0.03 (grade A) with 15 defaults, 150 at 0.15 (C) with 22, 50 at 0.6 (F) with 20."""
    pd = np.array([0.03] * 200 + [0.15] * 150 + [0.6] * 50)
    y = np.zeros(400)
    y[:15] = 1
    y[200:222] = 1
    y[350:370] = 1
    return y, pd


def test_the_rating_record_tests_every_grade_and_the_portfolio():
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    y, pd = _holdout()
    rec = rating_of(spec, SimpleNamespace(y=y, scores=pd))
    rows = {r["grade"]: r for r in rec["grades"]}
    a = rows["A"]
    assert (a["obligors"], a["defaults"], a["share"]) == (200, 15, 0.5)
    assert a["jeffreys_p"] == pytest.approx(stats.beta(15.5, 185.5).cdf(0.03), rel=1e-10)
    assert a["binomial_p"] == pytest.approx(stats.binom.sf(14, 200, 0.03), rel=1e-10)
    assert a["jeffreys_light"] == "red" and a["binomial_light"] == "red"  # 7.5 % observed against 3 %
    assert rows["B"]["obligors"] == 0 and rows["B"]["jeffreys_p"] is None and rows["B"]["jeffreys_light"] is None
    f = rows["F"]
    assert f["binomial_p"] == pytest.approx(stats.binom.sf(19, 50, 0.6)) and f["binomial_light"] == "green"
    port = rec["portfolio"]
    mean_pd = (200 * 0.03 + 150 * 0.15 + 50 * 0.6) / 400
    assert (port["obligors"], port["defaults"], port["mean_pd"]) == (400, 57, pytest.approx(mean_pd))
    assert port["jeffreys_p"] == pytest.approx(stats.beta(57.5, 343.5).cdf(mean_pd), rel=1e-10)
    shares = np.array([0.5, 0, 0.375, 0, 0, 0.125])
    assert rec["concentration"]["herfindahl_index"] == pytest.approx(1 + np.log((shares ** 2).sum()) / np.log(6))
    assert rec["policy"]["text"].startswith("red p < 0.05")
    assert rating_of(spec.model_copy(update={"rating_scale": None}), SimpleNamespace(y=y, scores=pd)) is None


def test_the_card_shows_the_grade_table_coloured_by_the_policy_and_the_herfindahl_index():
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    y, pd = _holdout()
    meta = json.loads(LEGACY_META.read_text())
    assert rating_card_section(meta) == [] and "## Rating grades" not in render_model_card(meta)
    meta["rating"] = rating_record(spec.rating_scale, spec.validation.policy, y, pd)
    card = render_model_card(meta)
    assert "## Rating grades (holdout)" in card
    assert "coloured by `validation.policy`: red p < 0.05, amber 0.05 <= p < 0.1, green p >= 0.1." in card
    jeff = stats.beta(15.5, 185.5).cdf(0.03)
    assert (f"| `A` | ≤ 5% | 200 | 50.0% | 15 | 3.00% | 7.50% | {jeff:.4f} (red) | "
            f"{stats.binom.sf(14, 200, 0.03):.4f} (red) |") in card
    assert "| `B` | (5%, 10%] | 0 | 0.0% | 0 | n/a | n/a | n/a | n/a |" in card
    assert "| `F` | > 55% | 50 |" in card and "| **portfolio** | all | 400 | 100.0% | 57 |" in card
    assert "Herfindahl index **" in card
    assert card.index("## Rating grades") < card.index("## Gate")


def test_the_metadata_keeps_the_rating_record_and_leaves_it_out_when_none():
    meta = json.loads(LEGACY_META.read_text())
    assert "rating" not in VersionMetadata.model_validate(meta).to_json()
    meta["rating"] = {"sample": "holdout", "grades": []}
    assert VersionMetadata.model_validate(meta).to_json()["rating"] == {"sample": "holdout", "grades": []}


def test_training_records_the_holdout_grades_of_credit_risk_in_metadata_and_card():
    """Real data: credit_risk's logistic candidate on its stratified holdout, through build_metadata."""
    from models.backtest_statistics import jeffreys_test
    from tasks.evaluate import evaluate_fitted
    from tasks.gate import apply_gate
    from tasks.load import load_source, modelling_table, parse_declared_types, split_out_of_time
    from tasks.promote import TrainingEvidence, build_metadata
    from tasks.split import plan_split
    from tasks.train import fit_candidate

    spec = find_spec("credit_risk", BUILTIN_SPECS)
    table = modelling_table(split_out_of_time(parse_declared_types(load_source(spec), spec), spec)[0], spec)
    plan = plan_split.fn(table, spec)
    fitted = [fit_candidate.fn(spec, spec.candidates[0], table, plan)]
    evaluation = evaluate_fitted.fn(spec, table, plan, fitted)
    ev = TrainingEvidence(spec=spec, run_id="test-run", reason="manual", started_at="2026-01-01T00:00:00+00:00",
                          data={"rows": len(table), "development_rows": len(table), "out_of_time_rows": 0,
                                "sha256": "0" * 64},
                          validation={"evaluated": 0, "critical_failures": 0, "warnings": 0},
                          split=plan.describe(table, spec.time_column), evaluation=evaluation, best=fitted[0],
                          champion=None, gate=apply_gate.fn(spec, evaluation, None), table=table, plan=plan)
    meta = build_metadata(ev, promoted=False).to_json()
    rating = meta["rating"]
    y, pd = np.asarray(evaluation.y, dtype=float), np.asarray(evaluation.scores, dtype=float)
    assert rating["portfolio"]["obligors"] == len(y) == 891 and rating["portfolio"]["defaults"] == int(y.sum())
    assert sum(r["obligors"] for r in rating["grades"]) == 891
    e = next(r for r in rating["grades"] if r["grade"] == "E")
    inside = (pd > 0.35) & (pd <= 0.55)
    assert e["obligors"] == int(inside.sum()) and e["defaults"] == int(y[inside].sum())
    assert e["jeffreys_p"] == pytest.approx(jeffreys_test(e["defaults"], e["obligors"], float(pd[inside].mean())))
    assert all(r["obligors"] > 50 for r in rating["grades"])  # honest bounds: no grade nearly empty at a 28 % bad rate
    assert "## Rating grades (holdout)" in render_model_card(meta)
