"""Time shapes through the real flows (issue 14, section 1): a market series indexed by trading-day
numbers (no calendar) trains and is monitored, with every period an index range; a training window
cuts the built-in S&P 500 data without a hand-made file, the first row of the window with its full
lagged features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.registry import ModelRegistry
from tests.helpers import builtin_spec_dict, write_spec

pytestmark = pytest.mark.usefixtures("prefect_api")


def _volatile_series(n: int = 1_200, seed: int = 7) -> pd.DataFrame:
    """Daily closes and volumes indexed 1..n, with stochastic volatility (log-volatility an AR(1),
    coefficient 0.98): volatility clusters, so last weeks' volatility forecasts next week's."""
    rng = np.random.default_rng(seed)
    log_vol = np.zeros(n)
    for t in range(1, n):
        log_vol[t] = 0.98 * log_vol[t - 1] + 0.2 * rng.standard_normal()
    returns = 0.01 * np.exp(log_vol) * rng.standard_normal(n)
    volume = np.exp(12 + 30 * np.abs(returns) + 0.1 * rng.standard_normal(n))
    return pd.DataFrame({"day": np.arange(1, n + 1), "Close": 100 * np.exp(np.cumsum(returns)),
                         "Volume": volume.round()})


def _quick(data: dict) -> dict:
    """One fast candidate and a threshold gate (the platform's sanity rules still apply)."""
    data["candidates"] = [{"name": "linear_har", "estimator": "linear_regression"}]
    data["gate"] = {"primary_metric": "rmse", "rules": [{"kind": "threshold", "metric": "rmse", "max": 5.0}]}
    return data


def test_an_integer_indexed_market_series_trains_and_is_monitored_with_index_periods(finml_env):
    from flows.monitoring import monitor_model
    from flows.training import train_model

    specs = finml_env["specs"]
    _volatile_series().sample(frac=1.0, random_state=3).to_csv(specs / "days.csv", index=False)  # any row order
    data = _quick(builtin_spec_dict("market_forecast"))
    data["name"] = "day_numbers"
    data["source"] = {"kind": "file", "path": "days.csv"}
    data.pop("time_column")
    data["time_index"] = {"column": "day", "kind": "integer"}
    data["out_of_time"] = {"start": 1001}
    data["columns"] = {"day": {"role": "datetime", "dtype": "integer", "min": 1},
                       "Close": {"role": "input", "dtype": "numeric", "min": 0.01},
                       "Volume": {"role": "input", "dtype": "numeric", "min": 1}}
    data["table"] = {"min_rows": 500, "unique": ["day"]}
    write_spec(specs, data)

    summary = train_model("day_numbers")
    assert summary["promoted"], summary["reason"]
    registry = ModelRegistry(finml_env["registry"], "day_numbers")
    meta = registry.read_metadata(1)
    assert meta["data"]["period"] == [1, 1000] and meta["data"]["out_of_time_period"] == [1001, 1200]
    assert meta["split"]["final_train_period"] == [23, 995]  # 22 rows of history; the last 5 lack a label
    assert all(isinstance(v, int) for fold in meta["split"]["folds"] for v in fold["test_period"])
    card = (registry.version_dir(1) / "model_card.md").read_text()
    assert "- Period: index 1 to 1000; out-of-time sample: index 1001 to 1200" in card
    assert "1970-01-01" not in card
    reference = pd.read_parquet(registry.version_dir(1) / "reference.parquet")
    assert reference["day"].dtype.kind in "iu" and reference["day"].min() == 23

    record = monitor_model("day_numbers", batch="out_of_time")
    assert record.batch.period == [1001, 1200] and record.batch.rows == 200
    assert record.batch.modelled_rows == 200 - 22
    line = (finml_env["registry"] / "day_numbers" / "monitoring.jsonl").read_text().splitlines()[-1]
    assert '"period": [1001, 1200]' in line


def test_a_training_window_cuts_the_built_in_sp500_data_without_a_hand_made_file(finml_env):
    from flows.training import train_model

    data = _quick(builtin_spec_dict("market_forecast"))
    data["name"] = "sp500_2000s"
    data["window"] = {"start": "2000-01-03", "end": "2009-12-31"}  # the first and last trading days of the decade
    write_spec(finml_env["specs"], data)

    summary = train_model("sp500_2000s")
    assert summary["promoted"], summary["reason"]
    registry = ModelRegistry(finml_env["registry"], "sp500_2000s")
    meta = registry.read_metadata(1)
    assert meta["data"]["period"] == ["2000-01-03", "2009-12-31"]
    assert meta["data"]["development_rows"] == 2_515  # the decade's trading days, not the 16,500 before 2016
    assert meta["data"]["out_of_time_period"] == ["2016-01-04", "2018-12-07"]  # held back as without a window
    assert meta["split"]["final_train_period"][0] == "2000-01-03"  # the warm-up rows before it fed its features
    card = (registry.version_dir(1) / "model_card.md").read_text()
    assert "- Period: 2000-01-03 to 2009-12-31" in card
    reference = pd.read_parquet(registry.version_dir(1) / "reference.parquet").sort_values("Date")
    first = reference.iloc[0]
    assert str(pd.Timestamp(first["Date"]).date()) == "2000-01-03"
    lags = [c for c in reference.columns if c.startswith("abs_return_lag") or c.startswith("rv_") and c.endswith("d")
            and not c.startswith("rv_next")]
    assert len(lags) == 7 and first[lags].notna().all()
