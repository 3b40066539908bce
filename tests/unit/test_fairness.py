"""Issue 12 §5: fairness that means something: numeric protected attributes in declared bands,
groups too small to judge, and the reference group declared or the largest."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.errors import DataError, SpecError
from models.spec import parse_spec
from tasks.fairness import check_protected_groups, fairness_report
from tasks.report import _fairness_section
from tests.helpers import builtin_spec_dict

BANDS = [18, 25, 40, 60]


def _credit(bands=None, **fairness):
    """credit_risk with ``Age`` measured as a protected attribute (as in the issue)."""
    data = builtin_spec_dict("credit_risk")
    data["columns"]["Age"]["role"] = "protected"
    if bands is not None:
        fairness["bands"] = {"Age": bands}
    data["fairness"] = fairness
    return parse_spec(data)


def test_a_numeric_protected_attribute_without_bands_is_refused_naming_the_field():
    with pytest.raises(SpecError, match=r"fairness\.bands\.Age: protected column 'Age' is numeric: declare its bands"):
        _credit()
    assert _credit(BANDS).fairness.groups_of("Age") == ["< 18", "[18, 25)", "[25, 40)", "[40, 60)", ">= 60"]


@pytest.mark.parametrize("fairness,message", [
    ({"bands": {"Age": [18, 40, 25]}}, "strictly increasing"),
    ({"bands": {"Age": []}}, "at least one cut point"),
    ({"bands": {"Age": BANDS, "Income": [1000]}}, r"fairness\.bands\.Income: not a column with role 'protected'"),
    ({"bands": {"Age": BANDS}, "reference_groups": {"Age": 49}}, r"fairness\.reference_groups\.Age: 49 is not a band"),
])
def test_bad_bands_are_refused(fairness, message):
    data = builtin_spec_dict("credit_risk")
    data["columns"]["Age"]["role"] = "protected"
    data["fairness"] = fairness
    with pytest.raises(SpecError, match=message):
        parse_spec(data)


def _holdout(seed=0):
    """600 applicants: ages with a thin top band (about 15 rows at 60 and over), scores that
    approve the young less often."""
    rng = np.random.default_rng(seed)
    age = np.concatenate([rng.integers(18, 25, 90), rng.integers(25, 40, 300), rng.integers(40, 60, 195),
                          rng.integers(60, 70, 15)])
    y = (rng.random(len(age)) < 0.25).astype(float)
    scores = np.clip(0.25 + 0.3 * (y - 0.25) + 0.1 * (age < 25) + rng.normal(0, 0.1, len(age)), 0.01, 0.99)
    return y, scores, pd.DataFrame({"Age": age})


def test_banded_age_gives_per_band_approval_rates_and_a_too_small_group_enters_no_ratio():
    spec = _credit(BANDS)
    y, scores, protected = _holdout()
    report = fairness_report(spec, y, scores, protected)
    attr = report["attributes"]["Age"]
    groups = {g["group"]: g for g in attr["groups"]}
    assert [g["group"] for g in attr["groups"]] == ["[18, 25)", "[25, 40)", "[40, 60)", ">= 60"]  # band order
    assert [groups[b]["rows"] for b in groups] == [90, 300, 195, 15]
    approved = scores < report["cutoff"]
    young = protected["Age"].to_numpy() < 25
    assert groups["[18, 25)"]["approval_rate"] == pytest.approx(approved[young].mean())
    assert attr["reference_group"] == "[25, 40)" and attr["reference_rule"] == "the largest group"
    ref_rate = groups["[25, 40)"]["approval_rate"]
    assert groups["[18, 25)"]["adverse_impact_ratio"] == pytest.approx(groups["[18, 25)"]["approval_rate"] / ref_rate)
    old = groups[">= 60"]
    assert old["too_small"] and old["adverse_impact_ratio"] is None and old["roc_auc"] is None
    assert attr["notes"] == [("group '>= 60': 15 holdout rows, too small to judge (fewer than "
                              "fairness.min_group_rows = 30); it enters no ratio")]
    judged = [g["adverse_impact_ratio"] for g in attr["groups"] if not g["too_small"] and not g["reference"]]
    assert report["adverse_impact_ratio"] == pytest.approx(min(judged))
    card = "\n".join(_fairness_section(report))
    assert "| >= 60 | 15 |" in card and "too small to judge | too small to judge |" in card
    assert "reference group: [25, 40), the largest group; bands at 18, 25, 40, 60" in card
    assert "- group '>= 60': 15 holdout rows, too small to judge" in card


def test_the_issues_one_row_groups_cannot_happen_at_run_time_either():
    """A protected column declared without a type or bounds whose values are ages: the report
    stops naming the field instead of making one group per age."""
    data = builtin_spec_dict("credit_risk")
    data["columns"]["Age"] = {"role": "protected"}
    spec = parse_spec(data)
    y, scores, protected = _holdout()
    with pytest.raises(DataError, match=r"fairness\.bands\.Age: protected column 'Age' holds numbers"):
        fairness_report(spec, y, scores, protected)


def test_the_development_table_check_refuses_an_unbanded_numeric_protected_column_before_fitting():
    """The same rule as the holdout report's (one function), on a whole table: numbers without
    bands are refused; bands, coded values or text are groups; a regression measures no fairness."""
    data = builtin_spec_dict("credit_risk")
    data["columns"]["Age"] = {"role": "protected"}  # no dtype, no bounds: the spec cannot tell
    spec = parse_spec(data)
    table = pd.DataFrame({"Age": np.arange(18, 80), "Seniority": np.arange(62)})
    with pytest.raises(DataError) as info:
        check_protected_groups(spec, table)
    assert str(info.value) == ("fairness.bands.Age: protected column 'Age' holds numbers (62 distinct values); "
                               "declare its bands (increasing cut points, e.g. Age: [18, 25, 40, 60]) so that "
                               "groups are not one value each")
    check_protected_groups(spec, table.assign(Age=table["Age"].astype(str)))  # text: each value a group
    check_protected_groups(spec, table.drop(columns="Age"))  # not in the table (a feature builder's)
    check_protected_groups(_credit(BANDS), table)  # banded
    data["columns"]["Age"]["allowed"] = list(range(18, 80))  # coded values are groups as they are
    check_protected_groups(parse_spec(data), table)
    direction = builtin_spec_dict("market_direction")  # a classifier whose fairness is not measured
    direction["columns"]["Age"] = {"role": "protected"}
    check_protected_groups(parse_spec(direction), table)


def test_the_reference_is_the_largest_group_not_the_most_approved():
    spec = parse_spec(builtin_spec_dict("mortgage_approval") | {"fairness": {}})
    rng = np.random.default_rng(4)
    group = np.array(["no"] * 400 + ["yes"] * 80)
    y = (rng.random(480) < 0.12).astype(float)
    scores = np.where(group == "yes", 0.05, 0.2) + rng.normal(0, 0.05, 480)  # the small group is approved more
    report = fairness_report(spec, y, scores, pd.DataFrame({"afam": group}))
    attr = report["attributes"]["afam"]
    groups = {g["group"]: g for g in attr["groups"]}
    assert groups["yes"]["approval_rate"] > groups["no"]["approval_rate"]
    assert attr["reference_group"] == "no" and groups["no"]["reference"]  # before: 'yes', the most approved
    assert groups["yes"]["adverse_impact_ratio"] == pytest.approx(groups["yes"]["approval_rate"]
                                                                   / groups["no"]["approval_rate"])
    assert report["adverse_impact_ratio"] == groups["yes"]["adverse_impact_ratio"] > 1


def test_a_declared_reference_too_small_to_judge_gives_no_ratio():
    spec = parse_spec(builtin_spec_dict("mortgage_approval") | {"fairness": {"reference_groups": {"afam": "yes"}}})
    rng = np.random.default_rng(5)
    group = np.array(["no"] * 400 + ["yes"] * 20)
    y = (rng.random(420) < 0.12).astype(float)
    report = fairness_report(spec, y, rng.random(420), pd.DataFrame({"afam": group}))
    attr = report["attributes"]["afam"]
    assert attr["reference_group"] is None and report["adverse_impact_ratio"] is None
    assert all(g["adverse_impact_ratio"] is None for g in attr["groups"])
    assert ("the declared reference group 'yes' has 20 holdout rows, fewer than fairness.min_group_rows = 30: "
            "no adverse impact ratio") in attr["notes"]
    assert "reference group: none" in "\n".join(_fairness_section(report))


def test_the_mortgage_spec_keeps_its_declared_reference():
    spec = parse_spec(builtin_spec_dict("mortgage_approval"))
    rng = np.random.default_rng(6)
    group = np.array(["no"] * 400 + ["yes"] * 70)
    y = (rng.random(470) < 0.12).astype(float)
    report = fairness_report(spec, y, rng.random(470), pd.DataFrame({"afam": group}))
    attr = report["attributes"]["afam"]
    assert attr["reference_group"] == "no" and attr["reference_rule"] == "declared in fairness.reference_groups"
    assert attr["notes"] == [] and attr["bands"] is None
