"""Monitoring verdicts that fire when one characteristic moves (issue 12, section 1).

A single drifted feature, a model off in calibration, default tolerances, a direction model
below always-majority, and what the deployment trigger retrains on; built on the credit_risk
data and synthetic scores (no training).
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timezone
from typing import get_args

import numpy as np
import pandas as pd
import pytest

from models.records.drift import EvidentlySummary
from models.records.monitoring import SEVERITY, VERDICTS, MonitoringRecord, Verdict
from models.spec import DriftSpec, parse_spec
from models.statistics import StatisticsError, rate_test
from tasks.drift import compute_drift
from tasks.evaluate import compute_metrics
from tasks.monitor import build_record, performance
from tasks.verdict import decide_verdict, event_action, judge_calibration
from tests.helpers import builtin_periods, builtin_spec_dict

TS = "2026-12-02T06:00:00+0000"
EVIDENTLY = EvidentlySummary(ran=False, reason="not run in this test", current_rows=0, reference_rows=0,
                             current_sample_rows=0, reference_sample_rows=0, sample_note="")


def _spec(name: str = "credit_risk", **drift):
    data = builtin_spec_dict(name)
    data.setdefault("drift", {}).update(drift)
    return parse_spec(data, origin=f"{name}.yaml")


@pytest.fixture(scope="module")
def credit_tables():
    """credit_risk's development and out-of-time modelling tables (the built-in data)."""
    _, development, later = builtin_periods("credit_risk")
    return development, later


def _scores(rng: np.random.Generator, n: int, mean: float = 0.3) -> np.ndarray:
    """Event probabilities with the given mean (Beta(2, 2 (1 - mean) / mean))."""
    return rng.beta(2.0, 2.0 * (1 - mean) / mean, n)


def _record(spec, reference, table, ref_scores, scores, perf=None):
    drift = compute_drift(reference.assign(score=ref_scores), table.assign(score=scores), spec.numeric_features,
                          spec.categorical_features, spec.drift, score_column="score")
    perf = perf or performance(spec, table.drop(columns=[spec.target_column]), scores, {})
    return build_record(spec, version=1, run_id="r1", batch_label="test batch", frame=table, table=table,
                        drift=drift, evidently=EVIDENTLY, perf=perf, ts=TS)


# --------------------------------------------------------------------------- feature drift


def test_credit_risks_later_period_with_amount_times_1_6_is_feature_drift_naming_amount(credit_tables):
    spec = _spec()
    reference, later = credit_tables
    rng = np.random.default_rng(0)
    ref_scores, scores = _scores(rng, len(reference)), _scores(rng, len(later))
    stable = _record(spec, reference, later, ref_scores, scores)
    assert stable.record.verdict == "stable"  # the later period as it is (the control)

    moved = later.assign(Amount=later["Amount"] * 1.6)
    outcome = _record(spec, reference, moved, ref_scores, scores)
    r = outcome.record
    assert r.drift.drifted == ["Amount"] and not r.drift.dataset_drift  # one of 13 features: share 0.08 < 0.3
    assert r.drift.features["Amount"].psi >= 0.25
    assert r.verdict == "feature_drift" and r.severity == "warning" and r.action == "alert"
    assert f"feature drift (PSI >= 0.25): Amount {r.drift.features['Amount'].psi:.3f}" in r.summary
    assert outcome.alarm  # finml.drift.detected is emitted ...
    payload = outcome.event_payload()
    assert payload["verdict"] == "feature_drift" and payload["severity"] == "warning"
    assert payload["action"] == "alert" and payload["drifted_features"] == ["Amount"]
    # ... and the spec decides what it does
    assert _record(_spec(on_feature_drift="retrain"), reference, moved, ref_scores, scores).record.action == "retrain"


def test_the_feature_drift_sentence_lists_the_features_by_psi_descending(credit_tables):
    spec = _spec()
    reference, later = credit_tables
    rng = np.random.default_rng(0)
    moved = later.assign(Amount=later["Amount"] * 1.6, Age=later["Age"] + 8)
    r = _record(spec, reference, moved, _scores(rng, len(reference)), _scores(rng, len(later))).record
    assert r.drift.drifted == ["Age", "Amount"] and not r.drift.dataset_drift  # the record keeps spec order
    age, amount = r.drift.features["Age"].psi, r.drift.features["Amount"].psi
    assert amount > age >= 0.25
    assert f"feature drift (PSI >= 0.25): Amount {amount:.3f}, Age {age:.3f};" in r.summary


def test_a_significant_score_psi_alone_is_feature_drift_naming_the_score(credit_tables):
    spec = _spec()
    reference, later = credit_tables
    rng = np.random.default_rng(1)
    r = _record(spec, reference, later, _scores(rng, len(reference), 0.3), _scores(rng, len(later), 0.6)).record
    assert r.drift.drifted == [] and r.drift.score_status == "significant"
    assert r.verdict == "feature_drift" and "score " in r.summary.split("feature drift")[1]


def test_dataset_drift_stays_drift_with_severity_critical_and_the_on_drift_action(credit_tables):
    spec = _spec(on_drift="alert")
    reference, later = credit_tables
    rng = np.random.default_rng(2)
    moved = later.assign(Amount=later["Amount"] * 1.6, Age=later["Age"] + 15, Income=later["Income"] * 2,
                         Price=later["Price"] * 1.6, Expenses=later["Expenses"] * 1.8)
    r = _record(spec, reference, moved, _scores(rng, len(reference)), _scores(rng, len(later))).record
    assert r.drift.dataset_drift and r.verdict == "drift"
    assert r.severity == "critical" and r.action == "alert"


# --------------------------------------------------------------------------- calibration


def _binomial_two_sided(d: int, n: int, p: float) -> float:
    """The exact two-sided binomial p-value by hand: the probability of every count no more
    likely than the observed one."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    return min(1.0, sum(q for q in pmf if q <= pmf[d] * (1 + 1e-7)))


def test_rate_test_is_the_exact_binomial_test_and_the_jeffreys_interval():
    from scipy.special import betainc

    test = rate_test(18, 1000, 0.053, confidence=0.99)
    assert test.p_value == pytest.approx(_binomial_two_sided(18, 1000, 0.053), rel=1e-6)
    # the Jeffreys interval: Beta(d + 1/2, n - d + 1/2) puts 0.5 % below and 0.5 % above it
    assert betainc(18.5, 982.5, test.jeffreys_low) == pytest.approx(0.005, rel=1e-6)
    assert betainc(18.5, 982.5, test.jeffreys_high) == pytest.approx(0.995, rel=1e-6)
    assert test.jeffreys_low < 0.018 < test.jeffreys_high < 0.053
    none = rate_test(0, 40, 0.05)
    assert none.jeffreys_low == 0.0 and none.p_value == pytest.approx(_binomial_two_sided(0, 40, 0.05), rel=1e-6)
    assert rate_test(40, 40, 0.9).jeffreys_high == 1.0
    with pytest.raises(StatisticsError, match="events"):
        rate_test(5, 4, 0.1)
    with pytest.raises(StatisticsError, match=r"\[0, 1\]"):
        rate_test(1, 4, 1.5)


def test_a_model_three_times_off_in_calibration_is_a_breach_and_noise_is_not():
    spec = DriftSpec()
    # the case: mean predicted PD 5.3 %, observed default rate 1.8 % (18 of 1,000)
    off = judge_calibration(18, 1000, 0.053, spec)
    assert off["breach"] and off["p_value"] < 1e-6 and off["alpha"] == 0.01 and off["tolerance"] == 0.25
    # the same rates on 100 rows are within noise
    assert not judge_calibration(2, 100, 0.053, spec)["breach"]
    # a million rows: 5 % against 5.25 % is significant but immaterial (|ratio - 1| = 0.05 <= 0.25) ...
    assert judge_calibration(50_000, 1_000_000, 0.0525, spec)["p_value"] < 1e-6
    assert not judge_calibration(50_000, 1_000_000, 0.0525, spec)["breach"]
    # ... unless the spec asks for significance alone, or a tighter tolerance
    assert judge_calibration(50_000, 1_000_000, 0.0525, DriftSpec(performance_tolerance={"calibration_ratio": None}))[
        "breach"]
    assert judge_calibration(50_000, 1_000_000, 0.0525, DriftSpec(performance_tolerance={"calibration_ratio": 0.02}))[
        "breach"]
    # no event where 5 % were predicted, on 400 rows
    assert judge_calibration(0, 400, 0.05, spec)["breach"]


def _labelled_batch(later: pd.DataFrame, target: str, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """The later period with synthetic calibrated scores and labels drawn from them."""
    rng = np.random.default_rng(seed)
    scores = _scores(rng, len(later))
    return later.assign(**{target: (rng.random(len(later)) < scores).astype(float)}), scores


def test_two_thirds_of_the_events_relabelled_is_a_calibration_breach_with_both_rates_and_the_p_value(credit_tables):
    spec = _spec()
    reference, later = credit_tables
    batch, scores = _labelled_batch(later, spec.target_column, 3)
    holdout = compute_metrics(spec, batch[spec.target_column].to_numpy(), scores)
    perf = performance(spec, batch, scores, holdout)
    assert not perf["calibration"]["breach"] and perf["breaches"] == []  # the batch as drawn: calibrated

    y = batch[spec.target_column].to_numpy().copy()
    events = np.flatnonzero(y == 1)
    y[np.random.default_rng(4).choice(events, size=2 * len(events) // 3, replace=False)] = 0.0
    relabelled = batch.assign(**{spec.target_column: y})
    perf = performance(spec, relabelled, scores, holdout)
    cal = perf["calibration"]
    assert cal["breach"] and cal["events"] == len(events) - 2 * len(events) // 3 and cal["rows"] == len(batch)
    assert cal["observed_rate"] == pytest.approx(cal["events"] / len(batch))
    assert cal["p_value"] == pytest.approx(_binomial_two_sided(cal["events"], len(batch), float(scores.mean())),
                                           rel=1e-6)
    rng = np.random.default_rng(5)
    outcome = _record(spec, reference, relabelled, _scores(rng, len(reference)), scores, perf)
    r = outcome.record
    assert r.verdict == "calibration_breach" and r.severity == "critical" and r.action == "retrain"
    assert perf["breaches"]  # the ranking worsened as well (recorded, named in the summary)
    assert (f"calibration breach: mean predicted {scores.mean():.4f} against observed rate {cal['observed_rate']:.4f}"
            in r.summary)
    assert f"exact binomial p = {cal['p_value']:.2g}" in r.summary
    payload = outcome.event_payload()
    assert payload["calibration_breach"] and payload["calibration_p_value"] == cal["p_value"]
    assert payload["mean_predicted"] == pytest.approx(scores.mean())
    assert payload["observed_rate"] == cal["observed_rate"]


# --------------------------------------------------------------------------- default tolerances


def test_a_metric_the_spec_gives_no_tolerance_gets_the_catalogues_default(credit_tables):
    reference, later = credit_tables
    spec = _spec(performance_tolerance={})  # credit_risk without its own tolerances
    assert spec.drift.tolerance("roc_auc") == 0.05 and spec.drift.tolerance("gini") == 0.10
    assert spec.drift.tolerance("log_loss") is None
    batch, scores = _labelled_batch(later, spec.target_column, 6)
    holdout = compute_metrics(spec, batch[spec.target_column].to_numpy(), scores)
    holdout["roc_auc"] += 0.08  # the version ranked clearly better on its holdout
    perf = performance(spec, batch, scores, holdout)
    assert perf["changes"]["roc_auc"]["tolerance"] == 0.05 and "roc_auc" in perf["breaches"]
    # null: the spec judges that metric not at all
    perf = performance(_spec(performance_tolerance={"roc_auc": None}), batch, scores, holdout)
    assert perf["changes"]["roc_auc"]["tolerance"] is None and "roc_auc" not in perf["breaches"]


def test_a_direction_model_below_always_majority_on_a_labelled_batch_says_so():
    spec = _spec("market_direction")
    rng = np.random.default_rng(7)
    n = 300
    up = (rng.random(n) < 0.6).astype(float)  # 60 % up days: always-up is right 60 % of the time
    table = pd.DataFrame({spec.target_column: up, "return_lag0": rng.normal(0, 0.01, n)})
    scores = rng.random(n)  # a coin: about 50 % right
    perf = performance(spec, table, scores, {}, train_event_rate=0.55)
    da, majority = perf["metrics"]["directional_accuracy"], perf["metrics"]["majority_directional_accuracy"]
    assert majority == pytest.approx(up.mean()) and da < majority
    assert perf["below_majority"] == (f"directional accuracy {da:.4f} is below the always-majority forecast's "
                                      f"{majority:.4f} on this batch")
    assert perf["below_majority"] is not None
    good = performance(spec, table, np.where(up == 1, 0.9, 0.1), {}, train_event_rate=0.55)
    assert good["below_majority"] is None


# --------------------------------------------------------------------------- precedence, types, trigger


def test_the_precedence_of_the_verdicts():
    assert decide_verdict(True, ["roc_auc"], ["Income"], 13, "x", calibration_breach=True, feature_drift=["A"]) \
        == "data_quality_alarm"
    assert decide_verdict(True, [], calibration_breach=True) == "drift_and_performance_breach"
    assert decide_verdict(False, ["roc_auc"], calibration_breach=True, feature_drift=["A"]) == "calibration_breach"
    assert decide_verdict(False, ["roc_auc"], feature_drift=["A"]) == "performance_breach"
    assert decide_verdict(False, [], label_fault="rate out of range", feature_drift=["A"]) == "data_quality_alarm"
    assert decide_verdict(False, [], tested=13, feature_drift=["A"]) == "feature_drift"
    assert decide_verdict(False, [], tested=0, feature_drift=["score"]) == "feature_drift"
    assert decide_verdict(False, [], tested=0) == "insufficient_data"
    assert decide_verdict(False, [], tested=13) == "stable"
    assert set(get_args(Verdict)) == set(VERDICTS) == set(SEVERITY)


def test_a_record_with_an_unknown_verdict_is_refused_and_an_old_one_reads():
    line = {"ts": TS, "model": "m", "version": 1, "verdict": "stable", "summary": "stable",
            "batch": {"label": "b", "rows": 1},
            "drift": {"tested": 1, "drifted": [], "drifted_share": 0.0, "dataset_drift": False, "threshold_share": 0.3},
            "performance": {"status": "evaluated", "calibration": {"mean_predicted": 0.3, "observed_rate": 0.3}}}
    old = MonitoringRecord.from_stored(line)
    assert old.severity is None and old.action is None and not old.performance.calibration_breach
    assert {k: v for k, v in old.to_json().items() if k != "schema_version"}["performance"]["calibration"] == \
        {"mean_predicted": 0.3, "observed_rate": 0.3, "ratio": None, "brier": None}
    with pytest.raises(ValueError, match="verdict"):
        MonitoringRecord.from_stored({**line, "verdict": "fine"})


def _covers(trigger: dict, model: str, action: str | None) -> bool:
    """Whether Prefect's own matcher starts the training deployment on the flow's drift event."""
    from prefect.server.events.schemas.automations import EventTrigger
    from prefect.server.events.schemas.events import ReceivedEvent

    from flows.monitoring import ACTION_LABEL, DRIFT_EVENT
    from tasks.report import model_resource

    matcher = EventTrigger(match=trigger["match"], expect=set(trigger["expect"]), posture="Reactive", threshold=1)
    event = ReceivedEvent(occurred=datetime.now(timezone.utc), event=DRIFT_EVENT, id=uuid.uuid4(), payload={},
                          resource=model_resource(model, {ACTION_LABEL: action} if action else None))
    return matcher.covers(event)


@pytest.mark.parametrize("on_feature_drift,on_drift,feature_drift_retrains,drift_retrains", [
    ("alert", "retrain", False, True),
    ("retrain", "retrain", True, True),
    ("retrain", "alert", True, False),
    ("alert", "alert", False, False),
])
def test_the_training_trigger_retrains_on_the_events_action_only(on_feature_drift, on_drift, feature_drift_retrains,
                                                                   drift_retrains):
    import sys

    from tests.helpers import ROOT

    sys.path.insert(0, str(ROOT / "scripts"))
    import prefect_yaml

    spec = _spec(on_feature_drift=on_feature_drift, on_drift=on_drift)
    train = prefect_yaml.deployments_for(spec)[0]
    triggers = train.get("triggers") or []
    assert len(triggers) == (1 if "retrain" in (on_drift, on_feature_drift) else 0)

    def retrains(verdict: str) -> bool:
        action = event_action(verdict, spec.drift)
        return any(_covers(t, spec.name, action) for t in triggers)

    assert retrains("feature_drift") is feature_drift_retrains
    for verdict in ("drift", "calibration_breach", "performance_breach", "drift_and_performance_breach"):
        assert retrains(verdict) is drift_retrains
    assert not any(_covers(t, spec.name, None) for t in triggers)  # an event without the label (sent by hand)
    assert not any(_covers(t, "other_model", "retrain") for t in triggers)


def test_labels_of_one_class_with_a_label_fault_are_a_data_quality_alarm_else_a_calibration_breach(credit_tables):
    reference, later = credit_tables
    rng = np.random.default_rng(8)
    ref_scores, scores = _scores(rng, len(reference)), _scores(rng, len(later))
    spec = _spec()
    all_good = later.assign(**{spec.target_column: 0.0})
    perf = performance(spec, all_good, scores, {})
    assert perf["status"] == "single_class_labels" and perf["label_fault"] and perf["calibration"]["breach"]
    assert _record(spec, reference, all_good, ref_scores, scores, perf).record.verdict == "data_quality_alarm"
    # without an expected event rate in the spec there is no label fault: no event where 30 % were predicted
    data = builtin_spec_dict("credit_risk")
    data["target"].pop("expected_positive_rate")
    bare = parse_spec(data, origin="credit_risk.yaml")
    perf = performance(bare, all_good, scores, {})
    assert perf["label_fault"] is None and perf["calibration"]["breach"]
    assert _record(bare, reference, all_good, ref_scores, scores, perf).record.verdict == "calibration_breach"
