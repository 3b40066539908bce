"""Declared column types against the data: booleans as a categorical feature, and an integer
column with missing values (floats with NaN after loading), in both validation engines and the
steps after them (one-hot encoding, PSI's categorical bins)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.estimators import build_candidate
from models.spec import find_spec
from tasks.load import DataPreparationError, load_source, parse_declared_types
from tasks.psi import bin_shares, freeze_bins
from tasks.validate import validate_frame
from tests.helpers import BUILTIN_SPECS


@pytest.fixture(scope="module")
def spec():
    return find_spec("credit_risk", BUILTIN_SPECS)


@pytest.fixture(scope="module")
def raw(spec):
    return load_source(spec)


def _with_column(spec, name, **fields):
    columns = dict(spec.columns)
    columns[name] = columns[name].model_copy(update=fields)
    return spec.model_copy(update={"columns": columns})


def _type_check(report, column):
    return next(o for o in report.outcomes if o.column == column and o.expectation == "ExpectColumnValuesToBeInTypeList")


@pytest.mark.parametrize("with_missing", [False, True])
@pytest.mark.parametrize("engine", ["gx", "fast"])
def test_a_boolean_column_is_accepted_as_categorical(spec, raw, engine, with_missing):
    flags = raw.assign(Records=raw["Records"] == "yes")  # bool dtype, True/False
    if with_missing:
        flags["Records"] = flags["Records"].astype(object)
        flags.loc[[4, 8], "Records"] = np.nan
    bool_spec = _with_column(spec, "Records", allowed=[True, False], max_null_share=0.01 if with_missing else 0.0)
    report = validate_frame(parse_declared_types(flags, bool_spec), bool_spec, engine=engine)
    assert _type_check(report, "Records").success, report.to_markdown()
    assert report.success, report.to_markdown()


@pytest.mark.parametrize("engine", ["gx", "fast"])
def test_a_categorical_column_of_numbers_is_still_refused(spec, raw, engine):
    coded = raw.assign(Records=(raw["Records"] == "yes").astype(int))
    outcome = _type_check(validate_frame(coded, _with_column(spec, "Records", allowed=None), engine=engine), "Records")
    assert not outcome.success


def test_boolean_categories_are_one_hot_encoded_and_binned_for_psi():
    rng = np.random.default_rng(7)
    flag = pd.Series(rng.random(400) < 0.3, name="flag")
    frame = pd.DataFrame({"x": rng.normal(size=400), "flag": flag})
    y = (flag.to_numpy() & (rng.random(400) < 0.9)).astype(int)
    pipe = build_candidate("logistic_regression", "binary_classification", {}, ["x"], ["flag"]).fit(frame, y)
    assert list(pipe.named_steps["preprocess"].get_feature_names_out()) == ["x", "flag_False", "flag_True"]
    scores = pipe.predict_proba(frame.assign(flag=frame["flag"].astype(object)))[:, 1]
    assert np.allclose(scores, pipe.predict_proba(frame)[:, 1])  # an object column of booleans scores the same
    assert scores[flag.to_numpy()].mean() > 0.7 and scores[~flag.to_numpy()].mean() < 0.1
    bins = freeze_bins(flag, "categorical", 10)
    assert bins.categories == (False, True) and bins.labels == ("False", "True", "<other>", "<missing>")
    current = pd.Series([True, True, False, None], dtype=object)
    assert bin_shares(bins, current).tolist() == [0.25, 0.5, 0.0, 0.25]


@pytest.mark.parametrize("engine", ["gx", "fast"])
@pytest.mark.parametrize("stored", ["Int64", "float64"])
def test_an_integer_column_with_allowed_missing_values_is_accepted(spec, raw, engine, stored):
    seniority = raw["Seniority"].astype("Int64")
    seniority[[2, 5, 9]] = pd.NA
    data = raw.assign(Seniority=seniority.astype(stored))  # Parquet gives Int64, a CSV reader float64
    int_spec = _with_column(spec, "Seniority", dtype="integer", max_null_share=0.01)
    parsed = parse_declared_types(data, int_spec)
    assert parsed["Seniority"].isna().sum() == 3 and parsed["Seniority"].sum() == raw["Seniority"].drop([2, 5, 9]).sum()
    report = validate_frame(parsed, int_spec, engine=engine)
    assert _type_check(report, "Seniority").success, report.to_markdown()
    assert report.success, report.to_markdown()


def test_an_integer_column_with_missing_values_refuses_fractions(spec, raw):
    data = raw.assign(Seniority=raw["Seniority"].astype("float64"))
    data.loc[[2, 3], "Seniority"] = [np.nan, 2.5]
    int_spec = _with_column(spec, "Seniority", dtype="integer", max_null_share=0.01)
    with pytest.raises(DataPreparationError, match=r"column 'Seniority': declared integer but 1 value\(s\) are not "
                                                    r"whole numbers, e.g. \[2.5\]"):
        parse_declared_types(data, int_spec)


@pytest.mark.parametrize("engine", ["gx", "fast"])
def test_an_integer_column_without_allowed_missing_values_still_refuses_floats(spec, raw, engine):
    data = raw.assign(Seniority=raw["Seniority"].astype("float64"))
    int_spec = _with_column(spec, "Seniority", dtype="integer")
    report = validate_frame(parse_declared_types(data, int_spec), int_spec, engine=engine)
    assert not _type_check(report, "Seniority").success
