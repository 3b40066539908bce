"""The realised-volatility feature builder: values by hand, and no look-ahead."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.features import LABEL_END, RealisedVolatilityBuilder, RealisedVolatilityParams


def _raw(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    returns = rng.normal(0, 0.01, n)
    return pd.DataFrame({
        "Date": pd.bdate_range("2020-01-01", periods=n),
        "Close": 100 * np.exp(np.cumsum(returns)),
        "Volume": rng.integers(1_000, 2_000, n).astype(float),
    })


def _builder(**kw) -> RealisedVolatilityBuilder:
    params = RealisedVolatilityParams(price_column="Close", volume_column="Volume", horizon=5, return_lags=3,
                                      windows=[5, 22], trading_days=252, **kw)
    return RealisedVolatilityBuilder(params, "Date")


def test_values_match_a_hand_computation():
    raw = _raw()
    table = _builder().build(raw)
    r = np.log(raw["Close"]).diff().to_numpy()
    row = table.iloc[3]
    t = int(raw.index[raw["Date"] == row["Date"]][0])
    assert row["abs_return_lag0"] == pytest.approx(abs(r[t]))
    assert row["abs_return_lag2"] == pytest.approx(abs(r[t - 2]))
    assert row["rv_5d"] == pytest.approx(math.sqrt(252 / 5 * sum(r[t - i] ** 2 for i in range(5))))
    assert row["rv_22d"] == pytest.approx(math.sqrt(252 / 22 * sum(r[t - i] ** 2 for i in range(22))))
    assert row["rv_next_5d"] == pytest.approx(math.sqrt(252 / 5 * sum(r[t + i] ** 2 for i in range(1, 6))))
    v = np.log(raw["Volume"].to_numpy())
    assert row["log_volume_change_1d"] == pytest.approx(v[t] - v[t - 1])
    assert row["log_volume_vs_22d"] == pytest.approx(v[t] - v[t - 21 : t + 1].mean())
    assert row[LABEL_END] == raw["Date"].iloc[t + 5]


def test_rows_without_full_history_or_label_are_dropped():
    raw = _raw(60)
    table = _builder().build(raw)
    assert len(table) == 60 - 22 - 5  # 22 rows of history (volume window), 5 without a label
    assert table.notna().all().all()
    served = _builder().build(raw, require_target=False)
    assert len(served) == 60 - 22 and served["rv_next_5d"].isna().sum() == 5
    assert _builder().history_rows == 22
    assert len(_builder().build(_raw(23), require_target=False)) == 1  # history_rows + 1 rows: one usable row
    assert _builder().build(_raw(22), require_target=False).empty
    without_volume = RealisedVolatilityBuilder(
        RealisedVolatilityParams(price_column="Close", horizon=5, return_lags=3, windows=[5, 10]), "Date")
    assert without_volume.history_rows == 10


def test_a_batch_too_short_for_its_features_says_how_many_rows_it_needs():
    from models.spec import find_spec
    from tasks.monitor import MonitoringInputError, batch_table
    from tests.helpers import BUILTIN_SPECS

    spec = find_spec("market_forecast", BUILTIN_SPECS)
    need = spec.builder.history_rows
    raw = _raw(need).rename(columns={"Close": spec.builder.params.price_column})
    raw = raw.rename(columns={"Date": spec.time_column})
    with pytest.raises(MonitoringInputError, match=f"needs at least {need + 1} rows \\({need} given\\)"):
        batch_table.fn(spec, raw)


def test_features_never_use_the_future():
    """Changing every price after day t leaves the features of days <= t unchanged."""
    raw = _raw(80)
    cut = 50
    shocked = raw.copy()
    shocked.loc[cut + 1 :, "Close"] *= 3.0
    shocked.loc[cut + 1 :, "Volume"] *= 10.0
    a = _builder().build(raw, require_target=False).set_index("Date")
    b = _builder().build(shocked, require_target=False).set_index("Date")
    features = _builder().feature_names
    upto = raw["Date"].iloc[cut]
    pd.testing.assert_frame_equal(a.loc[:upto, features], b.loc[:upto, features])
    # ...while labels of days whose window reaches past day t do change
    assert not np.allclose(a.loc[:upto, "rv_next_5d"].tail(1), b.loc[:upto, "rv_next_5d"].tail(1))


def test_non_positive_prices_are_rejected_by_name():
    raw = _raw()
    raw.loc[10, "Close"] = 0.0
    with pytest.raises(ValueError, match="column 'Close'"):
        _builder().build(raw)


def test_persistence_baseline_needs_the_horizon_window():
    with pytest.raises(ValueError, match="must include the horizon"):
        RealisedVolatilityParams(price_column="Close", horizon=5, windows=[10, 22])


def test_a_gap_in_the_price_history_is_refused_and_identifiers_are_carried():
    """60 missing trading days were scored silently, with forecasts about 65 % too high after them."""
    from models.settings import get_settings
    from models.spec import find_spec
    from tasks.load import DataPreparationError, load_source, modelling_table, parse_declared_types

    spec = find_spec("market_forecast", get_settings().specs_dir)
    raw = parse_declared_types(load_source(spec), spec).tail(400).reset_index(drop=True)
    table = modelling_table(raw, spec, require_target=False)
    by_date = raw.set_index(spec.time_column)["rownames"]
    assert (table["rownames"].to_numpy() == table[spec.time_column].map(by_date).to_numpy()).all()
    dates = raw[spec.time_column]
    holed = raw[(dates < dates.iloc[200]) | (dates > dates.iloc[260])]
    with pytest.raises(DataPreparationError, match=r"column 'Date': \d+ days pass between .* \(at most 10 allowed"):
        modelling_table(holed, spec, require_target=False)


def test_each_builder_owns_its_parameter_model_in_the_features_from_union():
    import typing

    from pydantic import TypeAdapter

    from models.features import BUILDERS, DirectionBuilder, DirectionParams, FeaturesFrom

    members = typing.get_args(typing.get_args(FeaturesFrom)[0])
    assert {typing.get_args(m.model_fields["name"].annotation)[0]: m.builder_class for m in members} == BUILDERS
    section = TypeAdapter(FeaturesFrom).validate_python(
        {"name": "daily_direction", "params": {"price_column": "Close"}})
    assert isinstance(section.params, DirectionParams) and section.params.windows == [5, 22]
    builder = section.make("Date")
    assert isinstance(builder, DirectionBuilder) and builder.time_column == "Date"
    assert builder.feature_names[:2] == ["return_lag0", "return_lag1"]
    assert section.model_dump() == {"name": "daily_direction", "params": {"price_column": "Close"}}
