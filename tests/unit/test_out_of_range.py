"""Values outside the training range: counted per feature at scoring, a data-quality alarm at
monitoring when the share is material (issue 12, section 4)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from models.estimators import build_candidate
from models.records.drift import EvidentlySummary
from models.records.monitoring import MonitoringRecord
from models.spec import DriftSpec, find_spec
from tasks.drift import compute_drift
from tasks.monitor import build_record, decide_verdict
from tasks.ranges import out_of_range_report, out_of_range_text
from tests.helpers import BUILTIN_SPECS


def _fitted(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"income": rng.gamma(3.0, 1000.0, n), "age": rng.integers(20, 70, n).astype(float)})
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-(X["income"] - 3000) / 2000))).astype(int))
    return build_candidate("logistic_regression", "binary_classification", {}, ["income", "age"], []).fit(X, y), X


def test_values_outside_the_training_range_are_counted_and_judged_per_feature():
    pipe, X = _fitted(2000)
    top = float(X["income"].max())
    batch = X.sample(1000, random_state=1).reset_index(drop=True)
    batch.loc[:29, "income"] = top * 100  # 3 %: a feed now in cents
    batch.loc[:4, "age"] = 150.0          # 0.5 %: under the share limit
    report = out_of_range_report(pipe, batch, share_limit=0.01, alpha=0.001)
    assert report["rows"] == 1000 and report["training_rows"] == 2000
    income, age = report["features"]["income"], report["features"]["age"]
    assert income["rows"] == 30 and income["share"] == 0.03 and income["training_max"] == top
    assert income["p_value"] == pytest.approx(binomtest(30, 1000, 2 / 2001, alternative="greater").pvalue)
    assert income["material"] and not age["material"] and age["rows"] == 5
    assert report["material"] == ["income"]
    assert "income 30 row(s) (3.00 %; training range" in out_of_range_text(report)
    clean = out_of_range_report(pipe, X.iloc[:500], share_limit=0.01, alpha=0.001)
    assert clean["features"] == {} and clean["material"] == [] and out_of_range_text(clean) is None


def test_a_share_within_the_noise_of_a_small_training_set_is_not_material():
    """100 training rows: a new draw falls outside their range with probability 2/101 ≈ 2 %."""
    pipe, X = _fitted(100)
    batch = pd.concat([X] * 10, ignore_index=True)
    batch.loc[:29, "income"] = X["income"].max() + 1.0  # 3 % of 1,000 rows: 19.8 expected by chance
    report = out_of_range_report(pipe, batch, share_limit=0.01, alpha=0.001)
    assert report["features"]["income"]["share"] == 0.03
    assert 0.001 < report["features"]["income"]["p_value"] < 0.05 and report["material"] == []


def test_a_material_out_of_range_share_is_a_data_quality_alarm_in_the_monitoring_record():
    assert decide_verdict(False, [], [], 10, out_of_range=["income"]) == "data_quality_alarm"
    assert decide_verdict(True, [], [], 10, out_of_range=["income"]) == "drift"  # the population moved
    assert decide_verdict(False, ["roc_auc"], [], 10, out_of_range=["income"]) == "performance_breach"
    assert decide_verdict(False, [], [], 10, out_of_range=[]) == "stable"
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({c: rng.normal(0, 1, 1000) for c in spec.numeric_features})
    for c in spec.categorical_features:
        reference[c] = "a"
    table = reference.sample(400, random_state=1).reset_index(drop=True)
    drift = compute_drift(reference.assign(score=0.1), table.assign(score=0.1), spec.numeric_features,
                          spec.categorical_features, DriftSpec(), score_column="score")
    perf = {"status": "no_labels", "breaches": []}
    oor = {"rows": 400, "training_rows": 3000, "share_limit": 0.01, "material": ["Income"],
           "features": {"Income": {"rows": 40, "share": 0.1, "training_min": 0.0, "training_max": 959.0,
                                   "p_value": 1e-30, "material": True}}}
    kwargs = {"version": 1, "run_id": None, "batch_label": "b.csv", "frame": table, "table": table, "drift": drift,
              "perf": perf, "ts": "2026-12-02T00:00:00Z",
              "evidently": EvidentlySummary(ran=False, reason="test", current_rows=400, reference_rows=1000,
                                            current_sample_rows=0, reference_sample_rows=0, sample_note="-")}
    outcome = build_record(spec, out_of_range=oor, **kwargs)
    assert outcome.record.verdict == "data_quality_alarm" and outcome.data_quality_alarm
    assert "values outside the training range: Income 40 row(s) (10.00 %; training range 0 to 959) material" \
        in outcome.record.summary
    assert outcome.event_payload()["out_of_range_features"] == ["Income"]
    again = MonitoringRecord.from_stored(outcome.record.to_json())
    assert again.out_of_range.features["Income"].rows == 40 and again.out_of_range.material == ["Income"]
    without = build_record(spec, **kwargs).record  # not measured (a version saved before the ranges)
    assert without.out_of_range is None and without.verdict != "data_quality_alarm"
    old = {k: v for k, v in without.to_json().items() if k != "out_of_range"}
    assert MonitoringRecord.from_stored(old).out_of_range is None  # records written before the field


def test_a_pipeline_saved_before_the_guard_reports_nothing():
    pipe, X = _fitted(300)
    from sklearn.pipeline import Pipeline

    legacy = Pipeline(pipe.steps[1:])  # the pipelines of older versions had no range step
    assert out_of_range_report(legacy, X, 0.01, 0.001) is None and out_of_range_text(None) is None
