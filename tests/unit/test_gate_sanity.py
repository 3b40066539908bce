"""Issue 12 §4 and §6: the mandatory sanity rules of the gate, the minimum of holdout events, and
one verdict per baseline in the rejection's reason."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from models.errors import DataError, SpecError
from models.metrics import average_precision, roc_auc
from models.spec import parse_spec
from models.statistics import auc_interval
from tasks.gate import GateInputs, HoldoutEventsError, check_split_events, evaluate_gate
from tests.helpers import builtin_spec_dict

BRIER_ONLY = [{"kind": "threshold", "metric": "brier", "max": 0.05}]


def _spec(rules, name="credit_risk", **gate):
    data = builtin_spec_dict(name)
    data["gate"]["rules"] = rules
    data["gate"].update(gate)
    return parse_spec(data)


def _no_signal(n=2000, rate=0.02, seed=0):
    """A holdout with ``rate`` events and a score that knows nothing: a constant near the base
    rate plus noise (a well-calibrated Brier, no ranking)."""
    rng = np.random.default_rng(seed)
    y = np.zeros(n)
    y[rng.choice(n, size=round(n * rate), replace=False)] = 1.0
    return y, np.clip(rate + rng.normal(0, 0.005, n), 0.001, 0.999)


def test_a_no_signal_model_with_2_percent_events_passes_a_brier_only_gate_no_more():
    y, p = _no_signal()
    brier = float(np.mean((p - y) ** 2))
    assert int(y.sum()) == 40 and brier < 0.05  # the spec's only rule is met
    gate = evaluate_gate(_spec(BRIER_ONLY), {"brier": brier}, GateInputs(y, p))
    auc_rule, ap_rule, brier_rule = gate.verdicts
    assert brier_rule.rule == "threshold" and brier_rule.passed
    lo, hi = auc_interval(y, p)
    assert auc_rule.rule == "sanity" and not auc_rule.passed and lo < 0.5 < hi
    assert auc_rule.value == pytest.approx(roc_auc(y, p))
    assert auc_rule.sentence == (f"sanity: ROC AUC {roc_auc(y, p):.4f}, 95% DeLong CI [{lo:.4f}, {hi:.4f}] is not above "
                                 "0.5 beyond noise: the model does not rank events above non-events better than chance")
    assert not gate.passed and gate.reason().startswith("sanity: ROC AUC")
    assert ap_rule.other_value == pytest.approx(0.02) and ap_rule.value == pytest.approx(average_precision(y, p))


def test_average_precision_at_or_below_the_base_rate_fails_with_its_own_sentence():
    y, p = _no_signal(rate=0.05, seed=3)
    p = p - 0.002 * y  # the events score a little lower than the rest
    ap, base = average_precision(y, p), y.mean()
    assert ap < base
    gate = evaluate_gate(_spec(BRIER_ONLY), {"brier": 0.04}, GateInputs(y, p))
    verdict = next(v for v in gate.verdicts if v.metric == "average_precision")
    assert verdict.rule == "sanity" and not verdict.passed
    assert verdict.sentence == (f"sanity: average precision {ap:.4f} is not above the base rate {base:.4f}: the "
                                "highest scores hold no more events than rows picked at random")
    assert verdict.sentence in gate.reason()


def test_a_model_with_signal_passes_the_sanity_rules():
    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.05).astype(float)
    p = 1 / (1 + np.exp(-(-3 + 1.5 * y + rng.normal(0, 1, 2000))))
    gate = evaluate_gate(_spec(BRIER_ONLY), {"brier": 0.04}, GateInputs(y, p))
    assert gate.passed and [v.rule for v in gate.verdicts] == ["sanity", "sanity", "threshold"]
    assert "is above 0.5 (chance) beyond noise" in gate.verdicts[0].sentence


def test_the_issues_holdout_of_13_events_stops_the_run_naming_the_count():
    y, p = _no_signal(n=654, rate=13 / 654)
    assert int(y.sum()) == 13
    with pytest.raises(HoldoutEventsError, match=r"the holdout holds 13 events in 654 rows, fewer than "
                                                 r"gate\.min_events = 30"):
        evaluate_gate(_spec(BRIER_ONLY), {"brier": 0.02}, GateInputs(y, p))
    assert issubclass(HoldoutEventsError, DataError)
    table = pd.DataFrame({"Status": y})
    spec = _spec(BRIER_ONLY)
    plan = SimpleNamespace(holdout=np.arange(654))
    with pytest.raises(HoldoutEventsError, match="13 events in 654 rows"):
        check_split_events.fn(spec, table.rename(columns={"Status": spec.target_column}), plan)
    # the spec may ask for fewer (down to 10): then the sanity rules judge the 13 events
    gate = evaluate_gate(_spec(BRIER_ONLY, min_events=10), {"brier": 0.02}, GateInputs(y, p))
    assert not gate.passed and not gate.verdicts[0].passed


def test_too_few_non_events_stop_the_run_too():
    y = np.ones(500)
    y[:12] = 0
    with pytest.raises(HoldoutEventsError, match="12 non-events in 500 rows"):
        evaluate_gate(_spec(BRIER_ONLY), {"brier": 0.02}, GateInputs(y, np.full(500, 0.9)))


def test_min_events_below_10_is_refused():
    with pytest.raises(SpecError, match="min_events"):
        _spec(BRIER_ONLY, min_events=5)
    assert _spec(BRIER_ONLY).gate.min_events == 30


def test_without_labels_the_sanity_rules_fail_closed():
    gate = evaluate_gate(_spec(BRIER_ONLY), {"brier": 0.02})
    assert not gate.passed and [v.rule for v in gate.failed] == ["sanity", "sanity"]
    assert "cannot be checked; the gate fails closed" in gate.reason()


def test_a_regression_model_must_beat_the_mean_forecast_beyond_noise():
    spec = _spec([{"kind": "threshold", "metric": "rmse", "max": 1.0}], name="market_forecast")
    rng = np.random.default_rng(7)
    y = np.abs(rng.normal(0.15, 0.05, 1500))
    no_better = np.full(1500, y.mean()) + rng.normal(0, 0.01, 1500)  # the mean, plus noise
    gate = evaluate_gate(spec, {"rmse": 0.05}, GateInputs(y, no_better, horizon=5))
    sanity = gate.verdicts[0]
    assert sanity.rule == "sanity" and sanity.other == "the mean forecast" and not sanity.passed
    assert sanity.comparison.method == "diebold_mariano" and sanity.comparison.ci_low <= 0
    assert sanity.other_value == pytest.approx(float(np.std(y)))  # RMSE of the holdout mean = its std
    assert sanity.sentence.startswith("sanity: rmse") and "not better beyond noise than the mean forecast" in sanity.sentence
    good = y + rng.normal(0, 0.02, 1500)
    gate = evaluate_gate(spec, {"rmse": 0.02}, GateInputs(y, good, horizon=5))
    assert gate.passed and gate.verdicts[0].comparison.ci_low > 0


def _direction_case(persistence_beaten: bool):
    """A direction holdout whose scores rank up days above down days (AUC well above 0.5) but
    are all above 0.5: the model always says "up", as the majority forecast does, and beats the
    persistence forecast or not."""
    rng = np.random.default_rng(11)
    n = 3000
    y = (rng.random(n) < 0.53).astype(float)
    p = np.clip(0.6 + 0.05 * (y - 0.5) + rng.normal(0, 0.02, n), 0.51, 0.99)
    majority = np.ones(n)  # always up: right on 53 % of the days
    persistence = np.where(rng.random(n) < (0.35 if persistence_beaten else 0.9), y, 1 - y)
    return y, p, {"majority": majority, "persistence": persistence}


def test_each_baseline_gets_its_own_verdict_in_the_reason():
    spec = parse_spec(builtin_spec_dict("market_direction"))
    metrics = {"directional_accuracy": 0.6}
    y, p, baselines = _direction_case(persistence_beaten=True)
    gate = evaluate_gate(spec, metrics, GateInputs(y, p, baselines=baselines, time_ordered=True))
    sanity = [v for v in gate.verdicts if v.rule == "sanity"]
    assert all(v.passed for v in sanity)
    by_name = {v.other: v for v in gate.verdicts if v.rule == "baseline"}
    majority, persistence = by_name["majority baseline"], by_name["persistence baseline"]
    assert persistence.passed and not majority.passed
    reason = gate.reason()
    assert not reason.startswith("no edge over the naive baselines")
    assert reason == (f"no edge over the majority baseline: {majority.sentence}; "
                      f"edge over the persistence baseline: {persistence.sentence}")
    y, p, baselines = _direction_case(persistence_beaten=False)
    gate = evaluate_gate(spec, metrics, GateInputs(y, p, baselines=baselines, time_ordered=True))
    failed = [v for v in gate.failed if v.rule == "baseline"]
    assert len(failed) == 2 and gate.reason() == "no edge over the naive baselines: " + "; ".join(
        v.sentence for v in failed)


def test_the_card_shows_the_sanity_rules_first_and_says_whose_they_are():
    from tasks.report import gate_markdown

    y, p = _no_signal()
    gate = evaluate_gate(_spec(BRIER_ONLY), {"brier": 0.02}, GateInputs(y, p))
    table = gate_markdown(gate.as_dict())
    rows = [line for line in table.splitlines() if line.startswith("| ") and "rule" not in line]
    assert rows[0].startswith("| sanity | roc_auc |") and rows[0].endswith("| FAIL |")
    assert rows[1].startswith("| sanity | average_precision |") and rows[2].startswith("| threshold | brier |")
    assert "Rules `sanity` are the platform's own" in table
