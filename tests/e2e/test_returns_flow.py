"""End to end (issue 14 §1): a returns-only market file, with no price column, a day of the week and a
log volume passed through as features and the signed return added, trains and monitors through
the real flows; the same file with a repeated date and no ``table.unique`` stops the run, recorded
as ``stopped``; a batch with rows out of order is sorted and its count is reported."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from models.errors import MarketDataError
from models.records.monitoring import VERDICTS
from models.registry import ModelRegistry
from tests.market_returns_data import returns_frame, write_returns_case

pytestmark = pytest.mark.usefixtures("prefect_api")

FEATURES = ["abs_return_lag0", "abs_return_lag1", "abs_return_lag2", "return_lag0", "rv_5d", "rv_22d",
            "dow", "log_volume"]


class _Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_returns_only_file_trains_and_monitors(finml_env, tmp_path):
    from flows.monitoring import monitor_model, score_batch
    from flows.training import train_model

    frame = returns_frame(400, seed=1)[["Date", "ret", "dow", "log_volume"]]  # no price anywhere
    write_returns_case(finml_env["specs"], frame, signed_returns=1)

    summary = train_model("synthetic_vol")
    assert summary["promoted"] and summary["version"] == 1, summary
    reg = ModelRegistry(finml_env["registry"], "synthetic_vol")
    meta = reg.read_metadata(1)
    assert meta["features"] == FEATURES
    assert meta["data"]["development_rows"] == 280 and meta["data"]["modelling_rows"] == 280 - 21 - 5
    assert meta["leakage"]["point_in_time"]["checked"] and "dow" not in meta["leakage"]["point_in_time"]["features"]
    assert 0 < meta["metrics"]["rmse"] < 1.0

    record = monitor_model("synthetic_vol", batch="out_of_time")  # the last 120 rows; 21 of them history
    assert record.batch.rows == 120 and record.batch.modelled_rows == 99
    features = record.drift.features
    assert list(features) == FEATURES  # the signed return and the extra features are monitored for drift
    assert features["return_lag0"].psi is not None and features["dow"].psi is not None
    assert record.verdict in VERDICTS and reg.monitoring_history()[-1]["version"] == 1

    later = frame.iloc[280:].reset_index(drop=True)
    shuffled = later.iloc[np.r_[0:50, 60:120, 50:60]]  # ten days moved to the end: one row out of order
    batch = tmp_path / "later.csv"
    shuffled.assign(Date=shuffled["Date"].dt.strftime("%Y-%m-%d")).to_csv(batch, index=False)
    seen = _Lines()
    logging.getLogger("models.market_rows").addHandler(seen)  # Prefect's logging set-up hides it from caplog
    try:
        scored = score_batch("synthetic_vol", batch=str(batch), output=str(tmp_path / "scores.parquet"))
    finally:
        logging.getLogger("models.market_rows").removeHandler(seen)
    assert scored["rows"] == 99 and scored["unscored_rows"] == 21
    assert any("column 'Date': 1 of 120 row(s) are earlier than the row before them" in line for line in seen.lines)


def test_a_repeated_date_with_no_table_unique_stops_training(finml_env):
    from flows.training import train_model

    frame = returns_frame(300, seed=2)[["Date", "ret", "dow", "log_volume"]]
    repeated = frame.iloc[np.r_[0:151, 150:300]]  # day 150 twice
    write_returns_case(finml_env["specs"], repeated, unique=False)
    with pytest.raises(MarketDataError, match="column 'Date': 1 time value\\(s\\) appear on more than one row"):
        train_model("synthetic_vol")
    [line] = ModelRegistry(finml_env["registry"], "synthetic_vol").history()
    assert line["event"] == "stopped" and line["error"] == "MarketDataError"
    assert f"first: ['{frame['Date'].iloc[150].date()}']" in line["cause"]
