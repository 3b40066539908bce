"""A synthetic returns-only market series and its spec, for the tests of returns-only market data
(issue 14 §1): daily log returns whose volatility cycles between calm and turbulent spells (its log a
50-day sine wave plus AR(1) noise), so a volatility forecaster beats the mean forecast on a short
holdout, a day of the week and a log volume in the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tests.helpers import write_spec


def returns_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """``n`` business days from 2015-01-01: ``Date``, ``ret`` (log returns), ``simple_ret``
    (``exp(ret) - 1``), ``Close`` (100 · exp(cumulative ret), with the close of the day before the
    first row as row 0: one row more than the returns), ``dow`` (0 = Monday) and ``log_volume``."""
    rng = np.random.default_rng(seed)
    noise = np.zeros(n)  # AR(1) noise on the log volatility
    for t in range(1, n):
        noise[t] = 0.95 * noise[t - 1] + 0.05 * rng.standard_normal()
    log_vol = np.log(0.01) + 1.5 * np.sin(2 * np.pi * np.arange(n) / 50) + noise  # calm and turbulent spells
    r = np.exp(log_vol) * rng.standard_normal(n)
    dates = pd.bdate_range("2015-01-01", periods=n)
    return pd.DataFrame({
        "Date": dates, "ret": r, "simple_ret": np.expm1(r), "dow": dates.dayofweek.astype(float),
        "log_volume": 14 + 0.3 * rng.standard_normal(n) + 20 * np.abs(r),
    })


def prices_of(frame: pd.DataFrame) -> pd.DataFrame:
    """The price series whose log returns are ``frame['ret']``: one row more (the close before the
    first return, dated a business day earlier), the extra columns copied (first row: a copy)."""
    first = frame.iloc[[0]].assign(Date=frame["Date"].iloc[0] - pd.offsets.BDay(1))
    out = pd.concat([first, frame], ignore_index=True)
    out["Close"] = 100 * np.exp(np.r_[0.0, np.cumsum(frame["ret"].to_numpy())])
    return out.drop(columns=["ret", "simple_ret"])


def returns_spec(name: str = "synthetic_vol", path: str = "returns.csv", *, extra: list[str] | None = None,
                 signed_returns: int = 0, unique: bool = True, return_kind: str = "log",
                 return_column: str = "ret", min_rows: int = 200) -> dict:
    """A realised-volatility spec on the returns file at ``path``: ``return_column``, a lenient gate
    (a threshold rule and the persistence baseline, not beyond noise), one linear candidate."""
    extra = ["dow", "log_volume"] if extra is None else extra
    columns = {
        "Date": {"role": "datetime", "date_format": "%Y-%m-%d"},
        return_column: {"role": "input", "min": -0.99, "max": 5},
    }
    columns |= {c: {"role": "numeric"} for c in extra}
    params = {"return_column": return_column, "horizon": 5, "return_lags": 3, "windows": [5, 22],
              "extra_features": extra}
    if return_kind != "log":
        params["return_kind"] = return_kind
    if signed_returns:
        params["signed_returns"] = signed_returns
    return {
        "name": name, "task": "regression",
        "description": "Next-week realised volatility of a synthetic returns-only series.",
        "intended_use": "Tests of returns-only market data only.",
        "limitations": ["Synthetic returns with cycling volatility; no market behind them."],
        "source": {"kind": "file", "path": path},
        "time_column": "Date",
        "out_of_time": {"share": 0.3},
        "columns": columns,
        "target": {"column": "rv_next_5d"},
        "table": {"min_rows": min_rows, **({"unique": ["Date"]} if unique else {})},
        "features_from": {"name": "realised_volatility", "params": params},
        "split": {"method": "walk_forward", "n_folds": 3, "test_share": 0.3, "gap": 5},
        "candidates": [{"name": "linear_har", "estimator": "linear_regression"}],
        "gate": {"primary_metric": "rmse", "rules": [{"kind": "threshold", "metric": "rmse", "max": 1.0}]},
        "drift": {"min_rows": 40},
    }


def write_returns_case(folder: Path, frame: pd.DataFrame, **spec_kw) -> Path:
    """Write ``frame`` as ``folder/returns.csv`` (dates as ``%Y-%m-%d``) and its spec; returns the spec path."""
    folder.mkdir(parents=True, exist_ok=True)
    frame.assign(Date=frame["Date"].dt.strftime("%Y-%m-%d")).to_csv(folder / "returns.csv", index=False)
    return write_spec(folder, returns_spec(**spec_kw))
