"""End to end: the verdicts of issue 12 section 1 through the CLI, on a trained credit_risk, and
the verdict of every built-in spec's out-of-time period."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from flows.cli import app
from models.spec import find_spec
from tasks.load import load_source, split_out_of_time
from tests.helpers import BUILTIN_SPECS

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture(scope="module")
def credit_later():
    """The credit data's held-back later rows (891), as loaded from the source."""
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    return split_out_of_time(load_source(spec), spec)[1]


def test_amount_times_1_6_is_feature_drift_naming_amount_with_a_warning_event(trained, credit_later, tmp_path,
                                                                              captured_events):
    batch = credit_later.drop(columns=["Status"]).assign(Amount=credit_later["Amount"] * 1.6)  # labels not yet in
    path = tmp_path / "amount.csv"
    batch.to_csv(path, index=False)
    result = CliRunner().invoke(app, ["monitor", "credit_risk", "--batch", str(path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "FEATURE_DRIFT" in text and "feature drift (PSI >= 0.25): Amount" in text, text
    assert "severity warning, action alert" in text
    drift_events = [e for e in captured_events if e["event"] == "finml.drift.detected"]
    assert len(drift_events) == 1
    event = drift_events[0]
    assert event["resource"]["finml.action"] == "alert"  # the training trigger matches "retrain" only
    assert event["payload"]["severity"] == "warning" and "Amount" in event["payload"]["drifted_features"]


def test_two_thirds_of_the_events_relabelled_is_a_calibration_breach_in_the_cli(trained, credit_later, tmp_path,
                                                                               captured_events):
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    y = (credit_later["Status"] == spec.target.positive).to_numpy()
    events = np.flatnonzero(y)
    relabel = np.random.default_rng(0).choice(events, size=2 * len(events) // 3, replace=False)
    negative = credit_later["Status"][~y].iloc[0]
    batch = credit_later.copy()
    batch.loc[batch.index[relabel], "Status"] = negative
    path = tmp_path / "relabelled.csv"
    batch.to_csv(path, index=False)
    result = CliRunner().invoke(app, ["monitor", "credit_risk", "--batch", str(path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # rich wraps long lines
    assert "CALIBRATION_BREACH" in text
    kept = len(events) - len(relabel)
    assert re.search(r"calibration BREACH: mean predicted 0\.\d{4} against observed rate "
                     + f"{kept / len(batch):.4f}".replace(".", r"\.") + r" \(ratio \d\.\d\d\), "
                     + f"{kept} events in {len(batch)} rows, Jeffreys 99 % interval", text), text
    assert re.search(r"exact binomial p = \d(\.\d)?e-\d+", text), text
    for metric in ("roc_auc", "ks", "brier", "gini"):  # every metric the gate or a tolerance uses
        assert re.search(rf"{metric} \d\.\d+ \(holdout \d\.\d+, tolerance", text), (metric, text)
    (event,) = [e for e in captured_events if e["event"] == "finml.drift.detected"]
    assert event["payload"]["calibration_breach"] and event["payload"]["calibration_p_value"] < 0.01
    assert event["resource"]["finml.action"] == "retrain" and event["payload"]["severity"] == "critical"


@pytest.mark.parametrize("model,expected", [
    ("credit_risk", {"stable"}),
    ("loan_evaluation", {"performance_breach", "calibration_breach", "drift_and_performance_breach"}),
    # the reference is the whole 1996-2015 development sample: 2 of 9 features (rv_5d, rv_22d) and the score
    # moved, short of dataset drift (with the holdout-only reference it was 7 of 9)
    ("market_forecast", {"feature_drift"}),
    ("mortgage_approval", {"stable"}),
])
def test_the_verdicts_of_the_built_in_out_of_time_periods(trained, model, expected):
    from flows.monitoring import monitor_model

    record = monitor_model(model, batch="out_of_time")
    print(f"{model}: {record.summary}")
    assert record.verdict in expected, record.summary


def test_the_market_tests_of_issue_19_on_the_built_in_market_models(trained):
    """market_forecast: the holdout's VaR back-test and model confidence set in the metadata and the card,
    and the S&P 500 2016-2018 period's VaR back-test with its traffic light; market_direction:
    Pesaran-Timmermann in the (rejected) run's evidence and card."""
    import json
    from pathlib import Path

    from flows.monitoring import monitor_model
    from models.registry import ModelRegistry

    meta = ModelRegistry(trained["registry"], "market_forecast").read_metadata(1)
    var = meta["var_backtest"]
    assert (var["candidate"], var["days"], var["level"], var["distribution"]) == ("linear_har", 4970, 0.99, "t")
    assert var["exceptions"] == 113 and var["kupiec"]["p_value"] < 1e-10  # 2.3 % against 1 %: the tails are too thin
    assert (var["traffic_light"]["zone"], var["traffic_light"]["exceptions"]) == ("yellow", 5)
    persistence = var["baselines"]["persistence"]
    assert (persistence["exceptions"], persistence["traffic_light"]["zone"]) == (161, "red")
    mcs = meta["model_confidence_set"]
    assert mcs["selected_in_set"] and "linear_har" in mcs["included"]
    print("model confidence set:", mcs["included"], "excluded:", mcs["excluded"])
    models = {"linear_har", "gradient_boosting", "keras_mlp"} | {f"{b} (baseline)" for b in
                                                                 ("persistence", "ewma", "garch", "gjr", "har", "log_har")}
    assert set(mcs["included"]) | set(mcs["excluded"]) == models and not set(mcs["included"]) & set(mcs["excluded"])
    # persistence and EWMA are out on squared error; GJR, the lowest holdout RMSE (0.0723), can never be
    assert {"persistence (baseline)", "ewma (baseline)"} <= set(mcs["excluded"]) and "gjr (baseline)" in mcs["included"]
    assert mcs["block_size"] == 17
    card = (trained["registry"] / "market_forecast" / "versions" / "1" / "model_card.md").read_text()
    assert "## Value-at-Risk back-test (holdout)" in card and "| linear_har (selected) | 4970 | 113 | 49.7 |" in card
    assert "## Model confidence set (holdout)" in card

    record = monitor_model("market_forecast", batch="out_of_time")
    light = record.var_backtest["traffic_light"]
    assert (record.var_backtest["days"], record.var_backtest["exceptions"]) == (716, 13)
    assert (light["zone"], light["exceptions"], light["days"], light["scaled"]) == ("yellow", 7, 250, False)
    assert "Basel traffic light YELLOW (7 in the last 250 days)" in record.summary
    assert record.verdict == "feature_drift"  # a yellow zone is no alarm

    evidence = json.loads(Path(trained["summaries"]["market_direction"]["evidence"]).read_text())
    pt = evidence["pesaran_timmermann"]
    assert pt["candidate"] == "logistic" and pt["rows"] == 4975
    assert pt["statistic"] == pytest.approx(-0.590, abs=0.001) and pt["p_value"] == pytest.approx(0.723, abs=0.001)
    assert pt["baselines"]["majority"]["statistic"] is None
    assert pt["baselines"]["persistence"]["statistic"] == pytest.approx(-2.994, abs=0.001)
