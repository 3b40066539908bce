"""The Great Expectations suite built from a spec, on real and broken data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.spec import find_spec
from tasks.load import load_source, modelling_table, split_out_of_time
from tasks.validate import (
    DataValidationError,
    ModellingDataError,
    check_modelling_table,
    expectations_for,
    validate_frame,
)
from tests.helpers import BUILTIN_SPECS


@pytest.fixture(scope="module")
def spec():
    return find_spec("credit_risk", BUILTIN_SPECS)


@pytest.fixture(scope="module")
def raw(spec):
    return load_source(spec)


def test_suite_covers_every_declared_column(spec):
    defs = expectations_for(spec)
    exists = {d.column for d in defs if d.type == "ExpectColumnToExist"}
    assert exists == set(spec.columns) | {"Status"}
    assert any(d.type == "ExpectTableRowCountToBeBetween" and d.kwargs["min_value"] == 1000 for d in defs)
    income_nulls = [d for d in defs if d.column == "Income" and d.type == "ExpectColumnValuesToNotBeNull"][0]
    assert income_nulls.kwargs["mostly"] == pytest.approx(0.85)


def test_real_credit_data_passes(spec, raw):
    report = validate_frame(raw, spec)
    assert report.success, report.to_markdown()
    assert report.rows == 4454 and len(report.outcomes) == len(expectations_for(spec))


def test_failures_name_the_expectation_column_and_examples(spec, raw):
    bad = raw.copy()
    bad.loc[[3, 7], "Age"] = [150, 240]
    bad.loc[5, "Home"] = "castle"
    bad["Income"] = bad["Income"].astype(object)
    bad.loc[9, "Income"] = "1,200"
    bad = bad.drop(columns=["Job"])
    report = validate_frame(bad, spec)
    assert not report.success
    assert set(report.failed_columns) == {"Age", "Home", "Income", "Job"}
    with pytest.raises(DataValidationError) as info:
        raise DataValidationError(report, source="applications.csv")
    message = str(info.value)
    assert "applications.csv: data validation failed" in message
    assert "column 'Age' (values within [18.0, 100.0]): 2 unexpected value(s)" in message and "150" in message
    assert "column 'Home'" in message and "castle" in message
    assert "column 'Income' (values are numeric)" in message and "1,200" in message
    assert "column 'Job' is missing" in message
    assert message.count("'Job'") == 1  # one line for the missing column, not one per expectation on it


def test_missing_columns_get_a_hint_at_the_cause(spec, raw):
    from tasks.validate import missing_column_hint

    semicolons = pd.DataFrame({";".join(raw.columns): ["1;2"]})
    report = validate_frame(semicolons, spec, serving=True, engine="fast")
    message = str(DataValidationError(report, source="batch.csv", columns=list(semicolons.columns)))
    assert "it seems to be separated by ';', and finml reads comma-separated CSV" in message
    assert len(message.splitlines()) == 2  # was 57 lines of "column is missing"
    assert message.splitlines()[1].startswith("  - columns 'rownames', 'Seniority', 'Home'")
    lower = raw.rename(columns={"Age": "age", "Home": " Home"})
    message = str(DataValidationError(validate_frame(lower, spec, serving=True, engine="fast"), "batch.csv",
                                      columns=list(lower.columns)))
    assert "the file has ' Home' for 'Home', 'age' for 'Age' (column names are case-sensitive" in message
    assert missing_column_hint(["Age"], ["x", "y"]) == "; the file's columns: ['x', 'y']"
    assert missing_column_hint(["Age"], None) == ""


def test_null_share_and_row_count(spec, raw):
    bad = raw.head(500).copy()
    bad.loc[bad.index[:100], "Income"] = np.nan  # 20 % > 15 %
    report = validate_frame(bad, spec)
    failed = {(o.expectation, o.column) for o in report.critical_failures}
    assert ("ExpectColumnValuesToNotBeNull", "Income") in failed
    assert ("ExpectTableRowCountToBeBetween", None) in failed  # 500 < 1000


def test_an_empty_table_never_passes(spec, raw):
    report = validate_frame(raw.iloc[0:0], spec)
    assert not report.success
    assert any(o.expectation == "ExpectTableRowCountToBeBetween" for o in report.critical_failures)


def test_serving_form_makes_the_target_optional(spec, raw):
    batch = raw.drop(columns=["Status"]).tail(300)
    assert not validate_frame(batch, spec).success  # training form needs the label (and 1000 rows)
    serving = [d for d in expectations_for(spec, serving=True, present=set(batch.columns))]
    assert not any(d.column == "Status" for d in serving)


def test_modelling_table_checks(spec, raw):
    development, _ = split_out_of_time(raw, spec)
    table = modelling_table(development, spec)
    assert check_modelling_table.fn(table, spec) == []
    one_class = table.assign(Status=0)
    with pytest.raises(ModellingDataError, match="single class"):
        check_modelling_table.fn(one_class, spec)
    rare = table.copy()
    rare["Status"] = 0
    rare.loc[rare.index[:20], "Status"] = 1  # 0.6 % events, expected [0.15, 0.45]
    with pytest.raises(ModellingDataError, match=r"event rate 0\.0056 is outside the expected range"):
        check_modelling_table.fn(rare, spec)
    with pytest.raises(ModellingDataError, match="feature 'Income' is entirely missing"):
        check_modelling_table.fn(table.assign(Income=np.nan), spec)
    with pytest.raises(ModellingDataError, match=r"feature 'Price' is constant \(1000\): it carries no information"):
        check_modelling_table.fn(table.assign(Price=1000), spec)


def _verdicts(report):
    return [(o.expectation, o.column, o.success, o.unexpected_count if o.unexpected_count else 0) for o in report.outcomes]


@pytest.mark.parametrize("serving", [False, True])
def test_fast_engine_agrees_with_great_expectations(spec, raw, serving):
    bad = raw.copy()
    bad.loc[[3, 7], "Age"] = [150, 240]
    bad.loc[5, "Home"] = "castle"
    bad.loc[bad.index[:700], "Income"] = np.nan  # 15.7 % missing > 15 %
    bad["Debt"] = bad["Debt"].astype(object)
    bad.loc[9, "Debt"] = "1,200"
    bad.loc[11, "rownames"] = bad.loc[10, "rownames"]  # duplicated key
    bad = bad.drop(columns=["Job"])
    for frame in (raw, bad):
        gx_report = validate_frame(frame, spec, serving=serving, engine="gx")
        fast_report = validate_frame(frame, spec, serving=serving, engine="fast")
        assert _verdicts(fast_report) == _verdicts(gx_report)
        assert fast_report.success == gx_report.success
    fast = validate_frame(bad, spec, engine="fast")
    assert set(fast.failed_columns) == {"Age", "Home", "Income", "Debt", "Job", "rownames"}
    debt = [o for o in fast.critical_failures if o.column == "Debt" and o.expectation == "ExpectColumnValuesToBeInTypeList"]
    assert debt[0].examples == ["1,200"]


def test_the_split_validation_modules_keep_their_public_names(spec, raw):
    """tasks.validate re-exports the suite's types; both engines build on tasks.expectations."""
    import tasks.expectations as expectations
    import tasks.validate as validate
    from tasks.validate_fast import run_suite_fast

    for name in ("DataValidationError", "ExpectationDef", "ExpectationOutcome", "ValidationReport", "expectations_for",
                 "missing_column_hint"):
        assert getattr(validate, name) is getattr(expectations, name)
    assert validate.run_suite_fast is run_suite_fast
    report = run_suite_fast(raw, expectations.expectations_for(spec), "credit_risk-training")
    assert isinstance(report, expectations.ValidationReport) and report.success and report.rows == len(raw)
