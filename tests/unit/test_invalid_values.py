"""``on_invalid: missing`` and the ids of bad rows in validation messages.

The book is tests/data/bad_data/invalid_values.csv (made by make_cases.py): the clean synthetic
loan book with ``rate`` 55, -3 and 99 (declared [0, 40]) on application_id 11, 51 and 121, the text
"unknown" as the rate of application 201, and the grade "Z" (allowed A-D) on applications 8 and 81.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from models.spec import SpecError, parse_spec
from tasks.invalid_values import INVALID_VALUES, invalid_to_missing, invalid_value_outcomes
from tasks.load import DataPreparationError, modelling_table, parse_declared_types
from tasks.validate import DataValidationError, validate_frame
from tests.helpers import ROOT

CASES = ROOT / "tests" / "data" / "bad_data"
MISSING = {"on_invalid": "missing", "max_null_share": 0.05}


def _spec(**columns):
    data = yaml.safe_load((CASES / "applications.yaml").read_text())
    for name, changes in columns.items():
        data["columns"][name] = {**data["columns"][name], **changes}
    return parse_spec(data, origin="applications.yaml")


@pytest.fixture(scope="module")
def raw():
    return pd.read_csv(CASES / "invalid_values.csv")


def _ids(frame, column):
    return sorted(frame.loc[frame[column].isna(), "application_id"].tolist())


def test_invalid_values_become_missing_counted_with_examples_and_ids(raw):
    spec = _spec(rate=MISSING, grade=MISSING)
    frame = parse_declared_types(raw, spec)
    assert frame["rate"].dtype == np.float64
    assert _ids(frame, "rate") == [11, 51, 121, 201] and _ids(frame, "grade") == [8, 81]
    clean = pd.read_csv(CASES / "applications.csv")
    untouched = ~clean["application_id"].isin([11, 51, 121, 201])
    assert frame.loc[untouched, "rate"].tolist() == clean.loc[untouched, "rate"].tolist()
    assert frame.attrs[INVALID_VALUES] == [
        {"column": "rate", "rule": "type", "description": "values are numeric", "count": 1, "rows": 300,
         "examples": ["unknown"], "ids": [201], "id_column": "application_id"},
        {"column": "rate", "rule": "range", "description": "values within [0.0, 40.0]", "count": 3, "rows": 300,
         "examples": [55.0, -3.0, 99.0], "ids": [11, 51, 121], "id_column": "application_id"},
        {"column": "grade", "rule": "allowed", "description": "values in ['A', 'B', 'C', 'D']", "count": 2,
         "rows": 300, "examples": ["Z"], "ids": [8, 81], "id_column": "application_id"},
    ]


def test_the_default_stops_on_the_same_values(raw):
    spec = _spec()
    text = r"column 'rate': 1 value\(s\) are text, not numbers, e.g. \['unknown'\]"
    with pytest.raises(DataPreparationError, match=text):
        parse_declared_types(raw, spec)
    no_text = raw.assign(rate=raw["rate"].replace("unknown", "7.5"))
    frame = parse_declared_types(no_text, spec)
    assert INVALID_VALUES not in frame.attrs and frame["rate"].max() == 99.0
    for engine in ("fast", "gx"):
        report = validate_frame(frame, spec, engine=engine)
        assert {(o.column, o.expectation) for o in report.critical_failures} == {
            ("rate", "ExpectColumnValuesToBeBetween"), ("grade", "ExpectColumnValuesToBeInSet")}


@pytest.mark.parametrize("engine", ["fast", "gx"])
def test_the_validation_reports_each_column_as_a_warning_and_passes(raw, engine):
    spec = _spec(rate=MISSING, grade=MISSING)
    report = validate_frame(parse_declared_types(raw, spec), spec, engine=engine)
    assert report.success
    assert [o.sentence() for o in report.warnings] == [
        "ExpectColumnValuesToBeInTypeList on column 'rate' (values are numeric; invalid values made missing "
        "(on_invalid: missing)): 1 unexpected value(s) (0.3%), e.g. ['unknown'], rows with application_id 201",
        "ExpectColumnValuesToBeBetween on column 'rate' (values within [0.0, 40.0]; invalid values made missing "
        "(on_invalid: missing)): 3 unexpected value(s) (1.0%), e.g. [55.0, -3.0, 99.0], rows with application_id "
        "11, 51, 121",
        "ExpectColumnValuesToBeInSet on column 'grade' (values in ['A', 'B', 'C', 'D']; invalid values made missing "
        "(on_invalid: missing)): 2 unexpected value(s) (0.7%), e.g. ['Z'], rows with application_id 8, 81",
    ]
    markdown = report.to_markdown()
    assert "0 critical failure(s); 3 warning(s)" in markdown
    assert "55.0, -3.0, 99.0; rows with application_id 11" in markdown


def test_the_conversion_is_logged(raw, caplog):
    spec = _spec(rate=MISSING)
    with caplog.at_level("WARNING", logger="tasks.invalid_values"):
        parse_declared_types(raw.assign(grade="A"), spec)
    said = [r.getMessage() for r in caplog.records if r.name == "tasks.invalid_values"]
    assert len(said) == 2 and "3 unexpected value(s)" in said[1] and "rows with application_id 11, 51, 121" in said[1]


def test_a_flood_of_invalid_values_still_stops_by_the_missing_share(raw):
    spec = _spec(rate=MISSING)
    flood = raw.copy()
    flood.loc[flood.index[:30], "rate"] = 80.0  # 29 more out of range: 33 of 300 missing, 11 % > 5 %
    frame = parse_declared_types(flood, spec)
    for engine in ("fast", "gx"):
        report = validate_frame(frame, spec, engine=engine)
        message = str(DataValidationError(report, source="invalid_values.csv"))
        assert "ExpectColumnValuesToNotBeNull on column 'rate' (missing share at most 0.05): 33 unexpected value(s) " \
               "(11.0%), rows with application_id 1, 2, 3, 4, 5 …" in message
        assert [o.unexpected_count for o in report.warnings] == [1, 32]  # application 11 was out of range already


def test_the_imputers_fill_the_missing_values_numeric_and_categorical(raw):
    from models.estimators import build_candidate, predict_scores

    spec = _spec(rate=MISSING, grade=MISSING)
    table = modelling_table(parse_declared_types(raw, spec), spec)
    X, y = table[spec.feature_columns], table["status"]
    assert X["rate"].isna().sum() == 4 and X["grade"].isna().sum() == 2
    fitted = {}
    for estimator in ("hist_gradient_boosting", "logistic_regression"):  # keras_mlp shares logistic's preprocessing
        fitted[estimator] = build_candidate(estimator, "binary_classification", {}, spec.numeric_features,
                                            spec.categorical_features).fit(X, y)
        scores = predict_scores(fitted[estimator], X, "binary_classification")
        assert np.isfinite(scores).all() and len(scores) == 300
    pipeline = fitted["logistic_regression"]
    dense = pipeline.named_steps["preprocess"]  # median-imputed with an indicator; a "missing" category
    encoded = pd.DataFrame(dense.transform(pipeline.named_steps["training_range"].transform(X)),
                           columns=dense.get_feature_names_out())
    assert not encoded.isna().any().any()
    assert (encoded["missingindicator_rate"] > 0).sum() == 4  # standardised after imputation
    assert encoded["grade_missing"].sum() == 2


def test_other_types_of_invalid_values():
    data = yaml.safe_load((CASES / "applications.yaml").read_text())
    data["columns"]["amount"] = {"role": "numeric", "dtype": "integer", "min": 0, **MISSING}
    data["columns"]["grade"] = {"role": "categorical", **MISSING}
    data["columns"]["balance"] = {"role": "numeric", "format": "thousands", **MISSING}
    spec = parse_spec(data)
    frame = pd.DataFrame({"application_id": [1, 2, 3, 4], "amount": [100.0, 2.5, np.nan, -4.0],
                          "grade": ["A", 7, None, True], "balance": ["1,200", "abc", "12", None]})
    out = parse_declared_types(frame, spec)
    assert np.isnan(out["amount"]).tolist() == [False, True, True, True]  # 2.5 not whole, -4 below min
    assert out["grade"].isna().tolist() == [False, True, True, False]  # a number is no category; True is one
    assert out["balance"].tolist()[0] == 1200.0 and np.isnan(out["balance"]).tolist() == [False, True, False, True]
    rules = [(o.column, o.expectation, o.unexpected_count, o.examples, o.ids) for o in invalid_value_outcomes(out)]
    assert rules == [("amount", "ExpectColumnValuesToBeInTypeList", 1, [2.5], [2]),
                     ("amount", "ExpectColumnValuesToBeBetween", 1, [-4.0], [4]),
                     ("balance", "ExpectColumnValuesToBeInTypeList", 1, ["abc"], [2]),
                     ("grade", "ExpectColumnValuesToBeInTypeList", 1, [7], [2])]  # in the spec's column order


def test_a_frame_without_the_setting_is_unchanged():
    spec = _spec()
    frame = pd.DataFrame({"rate": [99.0]})
    frame.attrs[INVALID_VALUES] = [{"stale": True}]
    assert invalid_to_missing(frame, spec.columns) is frame and INVALID_VALUES not in frame.attrs
    assert invalid_value_outcomes(frame) == []


@pytest.mark.parametrize("changes, words", [
    ({"on_invalid": "missing"}, "'on_invalid: missing' needs 'max_null_share' above 0"),
    ({"on_invalid": "skip", "max_null_share": 0.1}, "field 'columns.rate.on_invalid'"),
])
def test_the_setting_is_checked(changes, words):
    with pytest.raises(SpecError, match=r"field 'columns\.rate") as info:
        _spec(rate=changes)
    assert words in str(info.value)


def test_on_invalid_missing_is_for_features_only():
    with pytest.raises(SpecError, match=r"field 'columns\.application_id': 'on_invalid: missing' applies to numeric "
                                        r"and categorical columns only, not to role 'id'"):
        _spec(application_id=MISSING)


# --------------------------------------------------------------------------- ids in messages


def test_failed_expectations_name_the_rows_by_id_in_both_engines(raw):
    spec = _spec()
    frame = parse_declared_types(raw.assign(rate=raw["rate"].replace("unknown", "7.5")), spec)
    frame.loc[[3, 4], "income"] = np.nan
    frame.loc[frame.index[:20], "income"] = np.nan  # 20 of 300 missing > 5 %
    frame.loc[299, "application_id"] = 298  # a duplicated key: no ids beside the key's own values
    texts = {}
    for engine in ("fast", "gx"):
        report = validate_frame(frame, spec, engine=engine)
        texts[engine] = str(DataValidationError(report, source="invalid_values.csv"))
    assert texts["fast"] == texts["gx"]
    lines = texts["fast"].splitlines()[1:]
    assert lines == [
        "  - ExpectColumnValuesToNotBeNull on column 'income' (missing share at most 0.05): 20 unexpected value(s) "
        "(6.7%), rows with application_id 1, 2, 3, 4, 5 …",
        "  - ExpectColumnValuesToBeBetween on column 'rate' (values within [0.0, 40.0]): 3 unexpected value(s) "
        "(1.0%), e.g. [55.0, -3.0, 99.0], rows with application_id 11, 51, 121",
        "  - ExpectColumnValuesToBeInSet on column 'grade' (values in ['A', 'B', 'C', 'D']): 2 unexpected value(s) "
        "(0.7%), e.g. ['Z'], rows with application_id 8, 81",
        "  - ExpectColumnValuesToBeUnique on column 'application_id' (values are unique): 2 unexpected value(s) "
        "(0.7%), e.g. [298]",
    ]


def test_without_an_id_column_no_rows_are_named(raw):
    data = yaml.safe_load((CASES / "applications.yaml").read_text())
    data["columns"]["application_id"]["role"] = "excluded"
    data["columns"]["application_id"]["reason"] = "test: no id column"
    spec = parse_spec(data)
    frame = parse_declared_types(raw.assign(rate=raw["rate"].replace("unknown", "7.5")), spec)
    for engine in ("fast", "gx"):
        failed = validate_frame(frame, spec, engine=engine).critical_failures
        assert failed and all(not o.ids and "rows with" not in o.sentence() for o in failed)
