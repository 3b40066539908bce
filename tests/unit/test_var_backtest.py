"""The VaR back-test of a volatility forecast (issue 19 §3): the spec's ``var`` section, the daily VaR
from the annualised forecast, the holdout and batch back-tests, the ``var_red_zone`` verdict, the
gate's ``mcs`` rule and the card's tables."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from models.errors import SpecError
from models.market_statistics import kupiec_pof
from models.records.monitoring import ALARM_VERDICTS, SEVERITY
from models.spec import VarSpec, parse_spec
from tasks.gate import GateInputs, evaluate_gate
from tasks.market_tests import holdout_mcs, holdout_pesaran_timmermann, market_card_section
from tasks.var_backtest import batch_var_backtest, daily_sigma, next_day_returns, var_backtest, var_sentence
from tasks.verdict import decide_verdict, event_action
from tests.helpers import builtin_spec_dict


def _market(**changes):
    data = builtin_spec_dict("market_forecast")
    data.update(changes)
    return parse_spec(data, origin="market_forecast.yaml")


# --------------------------------------------------------------------------- the spec section


def test_market_forecast_declares_a_99_percent_one_day_var():
    spec = _market()
    assert spec.var == VarSpec(level=0.99, horizon_days=1, distribution="t", dof=5)


def test_a_var_section_is_refused_on_a_model_without_a_volatility_forecast_naming_the_section():
    for name in ("credit_risk", "market_direction"):
        data = builtin_spec_dict(name)
        data["var"] = {"level": 0.99}
        with pytest.raises((SpecError, ValueError), match=r"var: a Value-at-Risk back-test needs a volatility forecast"):
            parse_spec(data, origin=f"{name}.yaml")


@pytest.mark.parametrize("section,message", [
    ({"distribution": "t"}, "distribution 't' needs dof"),
    ({"dof": 5}, "dof applies to distribution 't' only"),
    ({"horizon_days": 10}, "horizon_days"),
    ({"level": 1.2}, "level"),
])
def test_bad_var_sections_are_refused(section, message):
    with pytest.raises((SpecError, ValueError), match=message):
        _market(var=section)


def test_two_mcs_rules_are_refused():
    data = builtin_spec_dict("market_forecast")
    data["gate"]["rules"] += [{"kind": "mcs"}, {"kind": "mcs", "size": 0.25}]
    with pytest.raises((SpecError, ValueError), match="at most one 'mcs' rule"):
        parse_spec(data, origin="market_forecast.yaml")


# --------------------------------------------------------------------------- the daily VaR


def test_the_annualised_forecast_becomes_a_daily_sigma_over_sqrt_252():
    assert daily_sigma(np.array([0.16, -0.01]), 252) == pytest.approx([0.16 / math.sqrt(252), 0.0])


def test_the_back_test_counts_returns_below_minus_the_var_and_drops_days_without_a_next_return():
    n = 101
    forecast = np.full(n, 0.16)  # daily sigma 0.0100791, normal 99 % VaR 0.0234474
    nxt = np.zeros(n)
    nxt[[10, 40, 70]] = -0.03  # exceptions
    nxt[55] = -0.0234  # just inside the VaR
    nxt[-1] = np.nan  # the batch's last day: no next return
    bt = var_backtest(VarSpec(), forecast, nxt, 252, pd.Series(pd.date_range("2020-01-01", periods=n)))
    assert bt["days"] == 100 and bt["exceptions"] == 3 and bt["expected_exceptions"] == pytest.approx(1.0)
    assert bt["mean_var"] == pytest.approx(2.326348 * 0.16 / math.sqrt(252), rel=1e-6)
    assert bt["mean_var"] == pytest.approx(0.0234474, abs=1e-7)
    assert bt["kupiec"]["lr"] == pytest.approx(kupiec_pof(np.r_[np.ones(3), np.zeros(97)].astype(int), 0.99)["lr"])
    assert bt["traffic_light"]["zone"] == "yellow" and bt["traffic_light"]["scaled"]
    assert bt["period"] == ["2020-01-01", "2020-04-09"]
    assert "3 exceptions in 100 days (expected 1.0); Basel traffic light YELLOW" in var_sentence(bt)


def test_a_t_var_is_wider_and_has_fewer_exceptions_than_the_normal():
    nxt = np.zeros(50)
    nxt[5] = -0.025  # beyond the normal VaR (0.02345), inside the t(5) VaR (0.02627)
    normal = var_backtest(VarSpec(), np.full(50, 0.16), nxt, 252)
    fat = var_backtest(VarSpec(distribution="t", dof=5), np.full(50, 0.16), nxt, 252)
    assert (normal["exceptions"], fat["exceptions"]) == (1, 0)
    assert fat["quantile"] == pytest.approx(2.606464, abs=1e-6)


def _prices(n=40, seed=3):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    return pd.DataFrame({"rownames": np.arange(1, n + 1), "Date": pd.bdate_range("2021-01-04", periods=n),
                         "Close": close, "Volume": rng.uniform(1e6, 2e6, n)})


def test_next_day_returns_are_the_log_returns_of_the_following_row_in_time_order():
    spec = _market()
    raw = _prices()
    shuffled = raw.sample(frac=1.0, random_state=0)
    times = raw["Date"].iloc[[5, 20, 39]]
    got = next_day_returns(spec, shuffled, times)
    close = raw["Close"].to_numpy()
    assert got[:2] == pytest.approx([math.log(close[6] / close[5]), math.log(close[21] / close[20])], rel=1e-12)
    assert math.isnan(got[2])


def test_a_batch_back_test_uses_the_batchs_own_returns_and_none_without_a_var_section():
    spec = _market()
    raw = _prices(60)
    table = raw.iloc[25:].reset_index(drop=True)[["Date"]]
    scores = np.full(len(table), 0.01)  # a far too low volatility: every fall is an exception
    bt = batch_var_backtest(spec, raw, table, scores)
    r = np.log(raw["Close"]).diff().shift(-1).to_numpy()[25:-1]
    assert bt["days"] == len(table) - 1
    assert bt["exceptions"] == int((r < -bt["quantile"] * 0.01 / math.sqrt(252)).sum()) > 5
    assert batch_var_backtest(_market(var=None), raw, table, scores) is None


# --------------------------------------------------------------------------- the verdict


def test_a_red_zone_is_an_alarm_verdict_of_its_own_below_faults_and_above_drift():
    assert decide_verdict(False, [], tested=9, var_red_zone=True) == "var_red_zone"
    assert decide_verdict(True, [], tested=9, var_red_zone=True) == "var_red_zone"
    assert decide_verdict(False, [], ["Close"], 9, var_red_zone=True) == "data_quality_alarm"
    assert decide_verdict(True, ["rmse"], tested=9, var_red_zone=True) == "drift_and_performance_breach"
    assert decide_verdict(False, [], tested=9, var_red_zone=False, feature_drift=["rv_5d"]) == "feature_drift"
    assert "var_red_zone" in ALARM_VERDICTS and SEVERITY["var_red_zone"] == "critical"
    assert event_action("var_red_zone", _market().drift) == "retrain"


# --------------------------------------------------------------------------- the model confidence set


def _evaluation(n=400, seed=0):
    rng = np.random.default_rng(seed)
    y = 0.15 + 0.05 * rng.standard_normal(n) ** 2
    good = y + rng.normal(0, 0.01, n)
    fitted = [SimpleNamespace(spec=SimpleNamespace(name="good"), holdout_scores=good),
              SimpleNamespace(spec=SimpleNamespace(name="twin"), holdout_scores=good + rng.normal(0, 1e-4, n)),
              SimpleNamespace(spec=SimpleNamespace(name="bad"), holdout_scores=y + rng.normal(0.05, 0.03, n))]
    evaluations = [SimpleNamespace(name=f.spec.name, error=None) for f in fitted]
    ev = SimpleNamespace(y=y, best="good", scores=good, evaluations=evaluations,
                         baselines={"persistence": y + rng.normal(0, 0.04, n)})
    return ev, fitted


def test_the_holdout_mcs_keeps_the_good_candidates_and_removes_the_bad_and_the_baseline():
    ev, fitted = _evaluation()
    mcs = holdout_mcs(_market(), ev, fitted)
    assert mcs["metric"] == "rmse" and mcs["size"] == 0.10 and mcs["rows"] == 400
    assert mcs["block_size"] == 7  # round(400 ** (1/3)) = 7 >= the 5-day horizon
    assert set(mcs["included"]) == {"good", "twin"} and set(mcs["excluded"]) == {"bad", "persistence (baseline)"}
    assert mcs["selected_in_set"] is True


def test_the_mcs_rule_passes_inside_the_set_and_fails_outside_or_without_it():
    data = builtin_spec_dict("market_forecast")
    data["gate"]["rules"].append({"kind": "mcs"})
    spec = parse_spec(data, origin="market_forecast.yaml")
    ev, fitted = _evaluation()
    mcs = holdout_mcs(spec, ev, fitted)
    inputs = GateInputs(y=ev.y, scores=ev.scores, baselines=ev.baselines, time_ordered=True, horizon=5, mcs=mcs)
    (verdict,) = [v for v in evaluate_gate(spec, {"rmse": 0.01}, inputs).verdicts if v.rule == "mcs"]
    assert verdict.passed and "good is in the 90 % model confidence set on rmse losses" in verdict.sentence
    outside = {**mcs, "selected": "bad", "selected_in_set": False}
    (verdict,) = [v for v in evaluate_gate(spec, {}, GateInputs(y=ev.y, scores=ev.scores, mcs=outside)).verdicts
                  if v.rule == "mcs"]
    assert not verdict.passed and "bad is NOT in the 90 % model confidence set" in verdict.sentence
    (verdict,) = [v for v in evaluate_gate(spec, {}, GateInputs(y=ev.y, scores=ev.scores)).verdicts if v.rule == "mcs"]
    assert not verdict.passed and "fails closed" in verdict.sentence


# --------------------------------------------------------------------------- Pesaran-Timmermann and the card


def test_direction_models_get_pesaran_timmermann_for_the_candidate_and_each_baseline():
    spec = parse_spec(builtin_spec_dict("market_direction"), origin="market_direction.yaml")
    y = np.array([1, 1, 0, 0, 1, 0, 1, 1, 0, 1], dtype=float)
    p = np.array([0.6, 0.4, 0.3, 0.2, 0.7, 0.55, 0.9, 0.5, 0.1, 0.45])  # directions 1,0,0,0,1,1,1,1,0,0
    ev = SimpleNamespace(y=y, best="logistic", scores=p, baselines={"majority": np.full(10, 0.55)})
    pt = holdout_pesaran_timmermann(spec, ev)
    assert pt["candidate"] == "logistic" and pt["statistic"] == pytest.approx(0.2 / math.sqrt(0.0216), rel=1e-12)
    assert pt["baselines"]["majority"]["statistic"] is None
    assert holdout_pesaran_timmermann(_market(), ev) is None
    card = "\n".join(market_card_section({"pesaran_timmermann": pt}))
    assert "| logistic (selected) | 10 | 0.7000 | 0.5000 | 1.361 | 0.0868 |" in card


def test_the_card_shows_the_var_table_and_the_mcs():
    ev, fitted = _evaluation()
    nxt = np.zeros(300)
    nxt[[3, 100]] = -0.5
    bt = var_backtest(VarSpec(), np.full(300, 0.16), nxt, 252)
    meta = {"var_backtest": {"candidate": "good", **bt, "baselines": {"persistence": {"error": "no rows"}}},
            "model_confidence_set": holdout_mcs(_market(), ev, fitted)}
    card = "\n".join(market_card_section(meta))
    assert "## Value-at-Risk back-test (holdout)" in card and "| good (selected) | 300 | 2 | 3.0 |" in card
    assert "| green (1 in 250) |" in card  # day 3 is before the last 250 and "| persistence baseline | – |" in card
    assert "the selected candidate good is in the set" in card and "| bad | 0.000 | no |" in card


def test_a_batch_in_the_red_zone_is_recorded_with_its_back_test_and_the_events_var_keys():
    from models.records.drift import EvidentlySummary
    from tasks.drift import compute_drift
    from tasks.monitor import MonitoringOutcome, build_record, drift_markdown, performance

    spec = _market()
    rng = np.random.default_rng(0)
    cols = spec.numeric_features
    reference = pd.DataFrame(rng.normal(0, 1, (1000, len(cols))), columns=cols).assign(score=rng.normal(0, 1, 1000))
    table = pd.DataFrame(rng.normal(0, 1, (300, len(cols))), columns=cols)
    scores = rng.normal(0, 1, 300)
    drift = compute_drift(reference, table.assign(score=scores), cols, [], spec.drift, score_column="score")
    nxt = np.zeros(300)
    nxt[::25] = -0.5  # 12 exceptions in 300 days, 10 in the last 250: red
    bt = var_backtest(spec.var, np.full(300, 0.16), nxt, 252)
    evidently = EvidentlySummary(ran=False, reason="not run", current_rows=0, reference_rows=0, current_sample_rows=0,
                                 reference_sample_rows=0, sample_note="")
    outcome = build_record(spec, version=1, run_id="r1", batch_label="b", frame=table, table=table, drift=drift,
                           evidently=evidently, perf=performance(spec, table, scores, {}), ts="2026-12-03T00:00:00+0000",
                           var_backtest=bt)
    assert isinstance(outcome, MonitoringOutcome) and outcome.alarm
    record = outcome.record
    assert (record.verdict, record.severity, record.action) == ("var_red_zone", "critical", "retrain")
    assert "Basel traffic light RED (10 in the last 250 days" in record.summary
    payload = outcome.event_payload()
    assert (payload["var_zone"], payload["var_exceptions"], payload["var_days"]) == ("red", 10, 250)
    assert record.to_json()["var_backtest"]["traffic_light"]["zone"] == "red"
    assert "Basel traffic light RED" in drift_markdown(record)
    no_var = build_record(spec, version=1, run_id="r1", batch_label="b", frame=table, table=table, drift=drift,
                          evidently=evidently, perf=performance(spec, table, scores, {}), ts="2026-12-03T00:00:00+0000")
    assert no_var.record.verdict != "var_red_zone" and "var_backtest" not in no_var.record.to_json()
