"""Returns-only market data (issue 14 §1): the market builders read a return column instead of
prices, pass declared columns through as features, add signed returns to the volatility builder,
refuse a repeated time value with no ``table.unique``, and sort rows out of order with a warning
that counts them."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from models.errors import MarketDataError, SpecError
from models.features import (
    DirectionBuilder,
    DirectionParams,
    RealisedVolatilityBuilder,
    RealisedVolatilityParams,
)
from models.market_rows import ROW_ORDER
from models.spec import find_spec
from tasks.load import modelling_table, parse_declared_types, read_table_file
from tasks.validate import validate_frame
from tests.helpers import write_spec
from tests.market_returns_data import (
    prices_of,
    returns_frame,
    returns_spec,
    write_returns_case,
)

COMMON = {"return_lags": 3, "windows": [5, 22], "volume_column": None}


def _vol(**params) -> RealisedVolatilityBuilder:
    return RealisedVolatilityBuilder(RealisedVolatilityParams(horizon=5, **{**COMMON, **params}), "Date")


def _direction(**params) -> DirectionBuilder:
    return DirectionBuilder(DirectionParams(**{**COMMON, **params}), "Date")


# --------------------------------------------------------------------------- returns instead of prices


@pytest.mark.parametrize("make", [_vol, _direction], ids=["realised_volatility", "daily_direction"])
def test_a_price_series_and_its_log_returns_give_the_same_table(make):
    frame = returns_frame(200)
    prices = prices_of(frame)
    from_prices = make(price_column="Close").build(prices)
    from_returns = make(return_column="ret").build(frame)
    assert len(from_prices) == 200 + 1 - 22 - make(price_column="Close").horizon
    assert list(from_returns.columns) == list(from_prices.columns)
    pd.testing.assert_frame_equal(from_returns, from_prices, check_exact=False, rtol=1e-10, atol=1e-14)
    assert make(return_column="ret").history_rows == make(price_column="Close").history_rows - 1 == 21


def test_simple_returns_are_turned_into_log_returns_by_log1p():
    frame = returns_frame(150)
    log = _vol(return_column="ret").build(frame)
    simple = _vol(return_column="simple_ret", return_kind="simple").build(frame)
    pd.testing.assert_frame_equal(simple, log, check_exact=False, rtol=1e-10, atol=1e-14)
    r = frame["ret"].to_numpy()
    t = 40  # a row of the table is a day of the file: features from its own return and the ones before
    row = simple[simple["Date"] == frame["Date"].iloc[t]].iloc[0]
    assert row["abs_return_lag0"] == pytest.approx(abs(r[t]), rel=1e-12)
    assert row["rv_5d"] == pytest.approx(np.sqrt(252 / 5 * np.sum(r[t - 4 : t + 1] ** 2)), rel=1e-12)
    assert row["rv_next_5d"] == pytest.approx(np.sqrt(252 / 5 * np.sum(r[t + 1 : t + 6] ** 2)), rel=1e-12)
    # read as log returns, the simple ones give other (wrong) volatilities
    assert not np.allclose(_vol(return_column="simple_ret").build(frame)["rv_5d"], log["rv_5d"], rtol=1e-6)


def test_a_simple_return_of_minus_one_or_below_is_refused_naming_the_column():
    frame = returns_frame(60)
    frame.loc[30, "simple_ret"] = -1.0
    with pytest.raises(MarketDataError, match=r"column 'simple_ret': simple returns must be above -1 "
                                              r"\(return_kind: simple\).*1 value\(s\) are not, e.g. \[-1.0\]"):
        _vol(return_column="simple_ret", return_kind="simple").build(frame)


@pytest.mark.parametrize("params, message", [
    ({"price_column": "Close", "return_column": "ret"}, "give price_column or return_column, not both"),
    ({}, r"give price_column \(daily closes\) or return_column \(daily returns\)"),
    ({"price_column": "Close", "return_kind": "simple"}, "return_kind describes return_column; with price_column"),
    ({"return_column": "ret", "return_kind": "pct"}, "return_kind\n  Input should be .log. or .simple."),
])
def test_price_and_return_columns_are_mutually_exclusive_and_the_error_names_both(params, message):
    with pytest.raises(ValueError, match=message):
        RealisedVolatilityParams(**params)


def test_a_spec_with_both_columns_is_refused_naming_both_fields(tmp_path):
    data = returns_spec()
    data["features_from"]["params"]["price_column"] = "Close"
    write_spec(tmp_path, data)
    with pytest.raises(SpecError, match="field 'features_from.params': give price_column or return_column, not both"):
        find_spec("synthetic_vol", tmp_path)


def test_the_return_column_must_be_declared_as_an_input(tmp_path):
    data = returns_spec()
    data["columns"]["ret"]["role"] = "numeric"
    write_spec(tmp_path, data)
    with pytest.raises(SpecError, match="input column 'ret' must be declared under columns with role 'input'"):
        find_spec("synthetic_vol", tmp_path)


# --------------------------------------------------------------------------- extra features


def test_extra_features_are_passed_through_as_of_the_row():
    frame = returns_frame(120)
    builder = _vol(return_column="ret", extra_features=["dow", "log_volume"])
    assert builder.feature_names == ["abs_return_lag0", "abs_return_lag1", "abs_return_lag2", "rv_5d", "rv_22d",
                                     "dow", "log_volume"]
    table = builder.build(frame)
    by_date = frame.set_index("Date")
    assert np.array_equal(table["dow"].to_numpy(), by_date.loc[table["Date"], "dow"].to_numpy())  # not lagged
    assert np.array_equal(table["log_volume"].to_numpy(), by_date.loc[table["Date"], "log_volume"].to_numpy())
    assert table["dow"].iloc[0] == frame["Date"].iloc[21].dayofweek


def test_a_spec_lists_numeric_and_categorical_extra_features_where_the_estimators_find_them(tmp_path):
    data = returns_spec(extra=["log_volume"])
    data["columns"]["weekday"] = {"role": "categorical", "allowed": ["Mon", "Tue", "Wed", "Thu", "Fri"]}
    data["features_from"]["params"]["extra_features"] = ["weekday", "log_volume"]
    write_spec(tmp_path, data)
    spec = find_spec("synthetic_vol", tmp_path)
    built = ["abs_return_lag0", "abs_return_lag1", "abs_return_lag2", "rv_5d", "rv_22d"]
    assert spec.numeric_features == built + ["log_volume"]
    assert spec.categorical_features == ["weekday"]
    assert spec.feature_columns == built + ["log_volume", "weekday"]
    frame = returns_frame(120)
    frame["weekday"] = frame["Date"].dt.strftime("%a")
    table = modelling_table(frame, spec)
    assert list(table["weekday"].iloc[:3]) == list(frame["weekday"].iloc[21:24])


@pytest.mark.parametrize("change, message", [
    (lambda d: d["features_from"]["params"]["extra_features"].append("turnover"),
     ("features_from: params.extra_features: 'turnover' is not a declared column; declare it under columns "
      "with role 'numeric' or 'categorical'")),
    (lambda d: d["columns"].update(dow={"role": "excluded", "reason": "calendar"}),
     ("features_from: params.extra_features: column 'dow' has role 'excluded'; a feature passed through needs "
      "role 'numeric' or 'categorical'")),
    (lambda d: d["columns"].update(turnover={"role": "numeric"}),
     ("features_from: column 'turnover' has role 'numeric' (a model feature), but the builder derives the "
      "features: list it under features_from.params.extra_features")),
    (lambda d: (d["columns"].update(rv_5d={"role": "numeric"}),
                d["features_from"]["params"]["extra_features"].append("rv_5d")),
     "features_from: params.extra_features: 'rv_5d' is also the name of a feature or label the builder derives"),
])
def test_extra_features_must_be_declared_numeric_or_categorical_columns(tmp_path, change, message):
    data = returns_spec()
    change(data)
    write_spec(tmp_path, data)
    with pytest.raises(SpecError) as err:
        find_spec("synthetic_vol", tmp_path)
    assert message in str(err.value)


def test_the_point_in_time_check_passes_with_a_categorical_extra_feature(tmp_path):
    from tasks.leakage import check_point_in_time

    data = returns_spec(extra=[])
    data["columns"]["weekday"] = {"role": "categorical"}
    data["features_from"]["params"]["extra_features"] = ["weekday"]
    write_spec(tmp_path, data)
    spec = find_spec("synthetic_vol", tmp_path)
    frame = returns_frame(200).assign(weekday=lambda f: f["Date"].dt.strftime("%a"))
    result = check_point_in_time(spec, frame, modelling_table(frame, spec))
    assert result["checked"] and "weekday" not in result["features"] and "rv_22d" in result["features"]


# --------------------------------------------------------------------------- signed returns


def test_signed_returns_are_added_beside_the_absolute_ones():
    frame = returns_frame(120)
    builder = _vol(return_column="ret", signed_returns=2)
    assert builder.feature_names == ["abs_return_lag0", "abs_return_lag1", "abs_return_lag2", "return_lag0",
                                     "return_lag1", "rv_5d", "rv_22d"]
    table = builder.build(frame)
    r = frame.set_index("Date")["ret"]
    dates = table["Date"]
    assert np.allclose(table["return_lag0"], r.loc[dates].to_numpy(), rtol=0, atol=0)
    assert np.allclose(table["return_lag1"], r.shift(1).loc[dates].to_numpy(), rtol=0, atol=0)
    assert (table["return_lag0"] < 0).any() and np.allclose(table["abs_return_lag0"], table["return_lag0"].abs())
    assert _vol(return_column="ret", signed_returns=True).feature_names[3] == "return_lag0"  # true: one lag
    assert "return_lag0" not in _vol(return_column="ret").feature_names  # off by default


def test_signed_returns_longer_than_the_windows_need_more_history():
    assert _vol(price_column="Close", signed_returns=30).history_rows == 30


# --------------------------------------------------------------------------- repeated and out-of-order rows


def test_a_repeated_date_is_refused_with_no_table_unique(tmp_path):
    frame = returns_frame(120)
    repeated = pd.concat([frame, frame.iloc[[50, 50, 70]]], ignore_index=True)
    write_returns_case(tmp_path, repeated, unique=False, min_rows=100)
    spec = find_spec("synthetic_vol", tmp_path)
    assert spec.table.unique == []
    rows = parse_declared_types(read_table_file(tmp_path / "returns.csv"), spec)
    assert validate_frame(rows, spec, engine="fast").success  # nothing in the suite says "unique"
    with pytest.raises(MarketDataError) as err:
        modelling_table(rows, spec)
    d50, d70 = (str(frame["Date"].iloc[i].date()) for i in (50, 70))
    assert str(err.value).startswith(
        f"column 'Date': 2 time value(s) appear on more than one row (5 rows in all), first: ['{d50}', '{d70}']; "
        "a market feature builder needs one row per time value")
    assert "table.unique: [Date]" in str(err.value)
    assert err.value.column == "Date" and err.value.examples == [d50, d70] and err.value.count == 5


def test_a_repeated_date_in_a_price_series_is_refused_not_a_zero_return():
    prices = prices_of(returns_frame(80))
    doubled = pd.concat([prices, prices.iloc[[40]]], ignore_index=True)
    with pytest.raises(MarketDataError, match="column 'Date': 1 time value"):
        _direction(price_column="Close").build(doubled)


def test_rows_out_of_order_are_sorted_and_counted_in_a_validation_warning(tmp_path):
    frame = returns_frame(120)
    moved = frame.iloc[np.r_[0:30, 40:60, 30:40, 60:120]].reset_index(drop=True)  # 10 rows moved 20 later
    moved = pd.concat([moved.iloc[::-1].iloc[:3], moved.iloc[:-3]], ignore_index=True)  # 3 last rows first, reversed
    write_returns_case(tmp_path, moved, min_rows=100)
    spec = find_spec("synthetic_vol", tmp_path)
    rows = parse_declared_types(read_table_file(tmp_path / "returns.csv"), spec)
    assert rows["Date"].is_monotonic_increasing and len(rows) == 120
    note = rows.attrs[ROW_ORDER]
    # earlier than the row before them: days 118 and 117 (after 119 and 118), day 0 (after 117), day 30
    # (after day 59)
    assert note["column"] == "Date" and note["rows"] == 120 and note["out_of_order"] == 4
    assert note["examples"][0] == str(frame["Date"].iloc[118].date())
    [warning] = [o for o in validate_frame(rows, spec, engine="fast").warnings
                 if o.expectation == "ExpectColumnValuesToBeIncreasing"]
    assert warning.column == "Date" and warning.unexpected_count == 4 and not warning.success
    assert "the 4 row(s) out of order were sorted by 'Date'" in warning.sentence()
    pd.testing.assert_frame_equal(modelling_table(rows, spec), modelling_table(frame, spec))


def test_the_builder_sorts_rows_out_of_order_and_logs_how_many(caplog):
    frame = returns_frame(100)
    shuffled = frame.sample(frac=1.0, random_state=3).reset_index(drop=True)
    with caplog.at_level(logging.WARNING, logger="models.market_rows"):
        table = _vol(return_column="ret").build(shuffled)
    pd.testing.assert_frame_equal(table, _vol(return_column="ret").build(frame))
    expected = int((shuffled["Date"].diff() < pd.Timedelta(0)).sum())
    assert f"column 'Date': {expected} of 100 row(s) are earlier than the row before them" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="models.market_rows"):
        _vol(return_column="ret").build(frame)
    assert caplog.text == ""  # rows in order: no warning


def test_a_sorted_market_file_carries_no_row_order_warning(tmp_path):
    write_returns_case(tmp_path, returns_frame(120), min_rows=100)
    spec = find_spec("synthetic_vol", tmp_path)
    rows = parse_declared_types(read_table_file(tmp_path / "returns.csv"), spec)
    assert ROW_ORDER not in rows.attrs
    assert not [o for o in validate_frame(rows, spec, engine="fast").outcomes
                if o.expectation == "ExpectColumnValuesToBeIncreasing"]


def test_the_returns_only_example_of_docs_features_md_validates(tmp_path):
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "features.md").read_text()
    [body] = re.findall(r"^```yaml\n(.*?)^```", page, flags=re.MULTILINE | re.DOTALL)
    (tmp_path / "fx_volatility.yaml").write_text(body)
    spec = find_spec("fx_volatility", tmp_path)
    assert spec.builder.params.return_kind == "simple" and spec.builder.input_columns == ["ret"]
    assert spec.numeric_features == ["abs_return_lag0", "abs_return_lag1", "abs_return_lag2", "abs_return_lag3",
                                     "abs_return_lag4", "return_lag0", "rv_5d", "rv_22d", "log_volume"]
    assert spec.categorical_features == ["weekday"] and spec.builder.history_rows == 21


@pytest.mark.parametrize("column", ["ret", "Close"])
def test_a_missing_return_or_price_is_refused_naming_the_column_and_the_date(column):
    # before: the NaN spread into 22 rows of rolling features and 5 labels, and training ended in
    # "no candidate could be evaluated (labels and scores must be finite)"
    frame = returns_frame(200) if column == "ret" else prices_of(returns_frame(200))
    frame.loc[150, column] = np.nan
    builder = _vol(return_column="ret") if column == "ret" else _vol(price_column="Close")
    with pytest.raises(MarketDataError) as err:
        builder.build(frame)
    day = str(pd.Timestamp(frame.loc[150, "Date"]).date())
    assert str(err.value).startswith(f"column {column!r}: 1 missing value(s) (at Date ['{day}']); the market builders "
                                     f"need a {'return' if column == 'ret' else 'price'} on every row")
    assert err.value.column == column
