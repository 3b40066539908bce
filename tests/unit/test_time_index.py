"""Time shapes a spec must express: an integer time index (no calendar), a training window that
keeps the feature builder's warm-up rows, and the warning for a file sorted by a column when
``out_of_time.share`` takes the file order (issue 14, section 1)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from models.spec import SpecError, parse_spec
from tests.helpers import builtin_spec_dict, builtin_periods


def _spec(data: dict):
    return parse_spec(data, origin="test.yaml")


def _error(data: dict) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(data, origin="test.yaml")
    return str(info.value)


def _integer_market(out_of_time=None, **time_index) -> dict:
    """The market_forecast spec on a series indexed by trading-day numbers (column ``day``)."""
    data = builtin_spec_dict("market_forecast")
    data.pop("time_column")
    data["source"] = {"kind": "file", "path": "series.csv"}
    data["time_index"] = {"column": "day", "kind": "integer", **time_index}
    data["out_of_time"] = out_of_time or {"start": 601}
    data["columns"] = {"day": {"role": "datetime", "dtype": "integer"},
                       "Close": {"role": "input", "dtype": "numeric", "min": 0.01},
                       "Volume": {"role": "input", "dtype": "numeric", "min": 1}}
    data["table"] = {"min_rows": 100, "unique": ["day"]}
    return data


def _series(n: int = 700, first: int = 101, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.01, n) * np.exp(np.sin(np.arange(n) / 40))
    return pd.DataFrame({"day": np.arange(first, first + n), "Close": 100 * np.exp(np.cumsum(returns)),
                         "Volume": rng.integers(1_000, 5_000, n)})


# --------------------------------------------------------------------------- the spec


def test_an_integer_time_index_is_read_with_one_accessor_and_the_old_time_column_still_validates():
    spec = _spec(_integer_market(max_step=2))
    assert (spec.time_axis, spec.time_kind, spec.time_max_step) == ("day", "integer", 2)
    assert spec.out_of_time.start == 601 and isinstance(spec.out_of_time.start, int)
    assert spec.builder.time_column == "day"
    assert _spec(_integer_market()).time_max_step == 1  # a feature builder's default: consecutive numbers

    old = _spec(builtin_spec_dict("market_forecast"))  # time_column: Date, out_of_time.start: "2016-01-01"
    assert (old.time_axis, old.time_kind, old.time_max_step) == ("Date", "datetime", None)
    assert old.out_of_time.start == date(2016, 1, 1)
    long_form = builtin_spec_dict("market_forecast")
    long_form["time_index"] = {"column": long_form.pop("time_column")}
    assert (_spec(long_form).time_axis, _spec(long_form).time_kind) == ("Date", "datetime")


def test_an_integer_time_column_without_time_index_is_refused_instead_of_read_as_1970():
    data = builtin_spec_dict("market_forecast")
    data["columns"]["Date"] = {"role": "datetime", "dtype": "integer"}
    message = _error(data)
    assert "'Date' is declared dtype integer" in message and "time_index: {column: Date, kind: integer}" in message


@pytest.mark.parametrize("change,expected", [
    (lambda d: d.update(time_column="day"), "time_index: give time_index or time_column ('day'), not both"),
    (lambda d: d["columns"]["day"].pop("dtype"),
     "columns.day.dtype: the time_index is of kind 'integer': declare the column dtype: integer"),
    (lambda d: d.update(out_of_time={"start": "2016-01-01"}),
     "out_of_time.start: 2016-01-01 is a date but the time_index is of kind 'integer'"),  # as written, no repr
    (lambda d: d.update(window={"start": "2001-01-01"}),
     "window.start: 2001-01-01 is a date but the time_index is of kind 'integer'; give an index value"),
    (lambda d: d.update(window={"start": "2001-01-01", "end": 480}),
     "field 'window': 'start' (2001-01-01) and 'end' (480) must both be dates or both index values"),
    (lambda d: d.update(window={"start": 200, "end": 700}),
     "window.end: 700 is on or after out_of_time.start (601)"),
    (lambda d: d.update(window={"start": 300, "end": 200}), "'start' (300) is after 'end' (200)"),
    (lambda d: d["time_index"].update(kind="datetime", max_step=3), "'max_step' applies to kind 'integer'"),
])
def test_time_index_mistakes_are_named(change, expected):
    data = _integer_market()
    change(data)
    assert expected in _error(data)


def test_a_date_window_on_a_datetime_spec_and_an_index_window_on_an_integer_one():
    data = builtin_spec_dict("market_forecast")
    data["window"] = {"start": "2000-01-03", "end": "2009-12-31"}
    assert _spec(data).window.start == date(2000, 1, 3)
    data["window"] = {"start": 120}
    assert "window.start: 120 is an index value but the time column holds dates" in _error(data)
    assert _spec({**_integer_market(), "window": {"start": 150, "end": 480}}).window.end == 480


# --------------------------------------------------------------------------- periods and gaps


def test_the_period_of_an_integer_index_is_an_index_range_everywhere_it_is_shown():
    from tasks.load import data_period, parse_declared_types, split_out_of_time
    from tasks.report import period_text
    from tasks.split import rows_period

    spec = _spec(_integer_market())
    frame = parse_declared_types(_series().sample(frac=1.0, random_state=1), spec)  # shuffled file: sorted by day
    assert frame["day"].dtype == np.int64 and frame["day"].is_monotonic_increasing
    development, later = split_out_of_time(frame, spec)
    assert data_period(development, spec) == [101, 600] and data_period(later, spec) == [601, 800]
    assert period_text(data_period(development, spec)) == "index 101 to 600"
    assert rows_period(development, "day", np.arange(20, 380), "integer") == [121, 480]
    assert period_text(["2000-01-03", "2009-12-31"]) == "2000-01-03 to 2009-12-31"
    assert period_text(None) == "no time column"


def test_an_index_jump_larger_than_max_step_is_refused_in_index_steps():
    from tasks.load import DataPreparationError, modelling_table, parse_declared_types

    series = _series()
    gapped = series[(series["day"] < 300) | (series["day"] >= 305)]  # days 300-304 missing: a jump of 5
    spec = _spec(_integer_market())
    with pytest.raises(DataPreparationError, match=r"column 'day': the index jumps by 6 steps from 299 to 305 "
                                                   r"\(at most 1 allowed, time_index.max_step\)"):
        modelling_table(parse_declared_types(gapped, spec), spec)
    table = modelling_table(parse_declared_types(gapped, _spec(_integer_market(max_step=6))), _spec(
        _integer_market(max_step=6)))
    assert len(table) > 500 and table["day"].dtype.kind in "iu"


def test_walk_forward_on_an_integer_index_records_index_periods():
    from tasks.load import modelling_table, parse_declared_types, split_out_of_time
    from tasks.split import plan_split

    spec = _spec(_integer_market())
    development, _ = split_out_of_time(parse_declared_types(_series(), spec), spec)
    table = modelling_table(development, spec)
    described = plan_split.fn(table, spec).describe(table, spec.time_axis, spec.time_kind)
    assert described["final_train_period"] == [123, 595]  # 22 rows of history from 101; the last 5 lack a label
    assert all(isinstance(v, int) for f in described["folds"] for v in f["test_period"])
    assert described["holdout_period"][1] == 595


# --------------------------------------------------------------------------- the training window


def test_a_window_keeps_the_builders_warm_up_rows_so_its_first_row_has_full_features():
    from tasks.load import LoadedData, fingerprint, prepare_table

    base, full_table, _ = builtin_periods("market_forecast")
    spec = base.model_copy(update={"window": _spec({**builtin_spec_dict("market_forecast"),
                                                     "window": {"start": "2000-01-03", "end": "2009-12-31"}}).window})
    from tasks.load import load_source, parse_declared_types

    frame = parse_declared_types(load_source(spec), spec)
    data = prepare_table.fn(spec, LoadedData(frame, fingerprint(frame)))
    table = data.table
    assert data.info["period"] == ["2000-01-03", "2009-12-31"]
    assert str(table["Date"].iloc[0].date()) == "2000-01-03"  # not 22 trading days later
    assert table[spec.feature_columns].iloc[0].notna().all()
    assert data.info["development_rows"] == int(((frame["Date"] >= "2000-01-03") & (frame["Date"] <= "2009-12-31")).sum())
    same = full_table.set_index("Date").loc[table["Date"], spec.feature_columns]  # as built on the whole history
    np.testing.assert_allclose(table[spec.feature_columns].to_numpy(), same.to_numpy(), rtol=1e-9, atol=1e-12)
    assert table["Date"].iloc[-1] < pd.Timestamp("2009-12-31")  # the last 5 rows' labels lie after the window


def test_an_index_window_without_a_builder_selects_its_rows(tmp_path):
    from tasks.load import split_out_of_time
    from tasks.time_axis import cut_window

    data = builtin_spec_dict("credit_risk")
    data["time_index"] = {"column": "t", "kind": "integer"}
    data["columns"]["t"] = {"role": "datetime", "dtype": "integer"}
    data["window"] = {"start": 10, "end": 19}
    spec = _spec(data)
    frame = pd.DataFrame({"t": np.arange(40)})
    development, later = split_out_of_time(frame, spec)
    rows, warm = cut_window(development, spec, warm_up=3)
    assert rows["t"].tolist() == list(range(10, 20)) and warm["t"].tolist() == [7, 8, 9]


# --------------------------------------------------------------------------- file order


def _book(sorted_by: str | None) -> tuple[object, pd.DataFrame]:
    data = builtin_spec_dict("mortgage_approval")  # out_of_time.share, no time column; afam is protected
    spec = _spec(data)
    rng = np.random.default_rng(3)
    n = 1_000
    frame = pd.DataFrame({c: rng.normal(size=n) for c in spec.numeric_features})
    for c in spec.categorical_features:
        frame[c] = rng.choice(["no", "yes"], n, p=[0.9, 0.1])
    frame["afam"] = rng.choice(["no", "yes"], n, p=[0.85, 0.15])
    if sorted_by:
        frame = frame.sort_values(sorted_by, kind="stable").reset_index(drop=True)
    return spec, frame


def test_a_file_sorted_by_a_categorical_column_is_warned_about_naming_it():
    from tasks.file_order import EXPECTATION, file_order_outcomes

    spec, frame = _book(None)
    assert file_order_outcomes(frame, spec) == []  # shuffled: rare values do not make a column look sorted
    categorical = spec.categorical_features[0]
    spec, frame = _book(categorical)
    found = file_order_outcomes(frame, spec)
    assert [o.column for o in found] == [categorical]
    assert found[0].expectation == EXPECTATION and found[0].severity == "warning" and not found[0].success
    assert f"the file looks sorted by {categorical!r}" in found[0].description
    assert "out_of_time.share takes the last 20% of rows in file order" in found[0].description


def test_a_file_in_blocks_of_a_protected_attribute_warns_that_a_group_goes_out_of_time():
    from tasks.file_order import file_order_outcomes
    from tasks.validate import validate_frame

    spec, frame = _book(None)
    yes, no = frame[frame["afam"] == "yes"], frame[frame["afam"] == "no"]
    frame = pd.concat([yes.iloc[:70], no, yes.iloc[70:]], ignore_index=True)  # in blocks, not sorted
    found = file_order_outcomes(frame, spec)
    assert [o.column for o in found] == ["afam"]
    assert "grouped by 'afam'" in found[0].description and "puts whole groups out of time" in found[0].description
    assert "in file order" in found[0].observed and "'yes', 'no'" in found[0].observed

    time_ordered = spec.model_copy(update={"out_of_time": None})
    assert file_order_outcomes(frame, time_ordered) == []  # no out-of-time share: the order does not matter
    sorted_spec, sorted_frame = _book(spec.categorical_features[0])
    report = validate_frame(sorted_frame, sorted_spec, engine="fast")
    assert [o.column for o in report.warnings if o.expectation == "ExpectFileNotOrderedByColumn"] == [
        spec.categorical_features[0]]
    assert not [o for o in validate_frame(sorted_frame, sorted_spec, serving=True, engine="fast").warnings
                if o.expectation == "ExpectFileNotOrderedByColumn"]


def test_the_monitoring_batch_keeps_its_period_and_old_lines_read_back_unchanged():
    import json

    from models.records.monitoring import MonitoringRecord
    from tests.helpers import ROOT

    line = json.loads((ROOT / "tests" / "data" / "legacy_registry" / "credit_risk" / "monitoring.jsonl")
                      .read_text().splitlines()[0])
    old = MonitoringRecord.from_stored(line)
    assert old.batch.period is None and "period" not in old.to_json()["batch"]
    new = MonitoringRecord.from_stored({**line, "batch": {**line["batch"], "period": [601, 800]}})
    assert new.to_json()["batch"]["period"] == [601, 800]
    assert MonitoringRecord.from_stored(json.loads(json.dumps(new.to_json()))).batch.period == [601, 800]


def test_a_window_with_no_development_row_is_refused_naming_its_ends_and_the_data():
    from tasks.load import DataPreparationError
    from tasks.time_axis import cut_window

    spec = _spec({**_integer_market(), "window": {"start": 2_000, "end": 2_100}, "out_of_time": {"share": 0.2}})
    with pytest.raises(DataPreparationError, match=r"window 2000 to 2100: no development row is in the window "
                                                   r"\(the development rows run from 101 to 800\)"):
        cut_window(_series(), spec, warm_up=22)
