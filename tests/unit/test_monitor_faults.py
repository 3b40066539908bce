"""Data-quality faults and breach decisions of monitoring, against independent computations.

A fault must mean "beyond sampling noise": a rare flag that is all zero in a small batch, or no
event among 40 labels of a 5 % population, is what healthy batches look like.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.spec import DriftSpec
from tasks.drift import compute_drift, state_test_pvalue
from tasks.monitor import decide_verdict, label_rate_fault, performance


def _fisher_pvalue_2x2(a: int, b: int, c: int, d: int) -> float:
    """Two-sided Fisher's exact test on [[a, b], [c, d]] by hand: the hypergeometric probability
    of every table with the same margins that is no more likely than the observed one."""
    r1, r2, c1, n = a + b, c + d, a + c, a + b + c + d

    def prob(x: int) -> float:
        return math.comb(r1, x) * math.comb(r2, c1 - x) / math.comb(n, c1)

    observed = prob(a)
    return min(1.0, sum(prob(x) for x in range(max(0, c1 - r2), min(r1, c1) + 1) if prob(x) <= observed * (1 + 1e-7)))


def test_state_test_is_fishers_exact_test_per_state_with_bonferroni():
    # a rare flag: 12 ones in 2,465 reference rows, none in 300 batch rows (two states: the same 2x2 table twice)
    assert state_test_pvalue([2453, 12, 0], [300, 0, 0]) == pytest.approx(min(1, 2 * _fisher_pvalue_2x2(2453, 12, 300, 0)))
    assert state_test_pvalue([100, 900, 0], [300, 0, 0]) == pytest.approx(2 * _fisher_pvalue_2x2(100, 900, 300, 0))
    # three states: the smallest of the three per-state p-values, times three
    per_state = [_fisher_pvalue_2x2(50, 950, 10, 190), _fisher_pvalue_2x2(900, 100, 150, 50),
                 _fisher_pvalue_2x2(50, 950, 40, 160)]
    assert state_test_pvalue([50, 900, 50], [10, 150, 40]) == pytest.approx(min(1, 3 * min(per_state)))
    assert state_test_pvalue([5, 0, 0], [7, 0, 0]) == 1.0  # one state on both sides: nothing to test
    # one stray missing value in 200 rows against a 50,000-row constant reference: exact p = 2 x 0.004
    assert state_test_pvalue([50_000, 0, 0], [199, 0, 1]) == pytest.approx(2 * _fisher_pvalue_2x2(50_000, 0, 199, 1))
    assert state_test_pvalue([50_000, 0, 0], [199, 0, 1]) > 0.001


def _frame(rng: np.random.Generator, n: int, flag_ones: int) -> pd.DataFrame:
    flag = np.zeros(n)
    flag[:flag_ones] = 1.0
    return pd.DataFrame({"x": rng.normal(0, 1, n), "flag": rng.permutation(flag)})


def test_a_rare_flag_all_zero_in_a_small_batch_is_judged_not_a_fault():
    rng = np.random.default_rng(0)
    reference, batch = _frame(rng, 2465, 12), _frame(rng, 300, 0)
    result = compute_drift(reference, batch, ["x", "flag"], [], DriftSpec())
    flag = {f.column: f for f in result.features}["flag"]
    assert flag.status == "constant" and flag.judged and not flag.batch_fault
    assert flag.state_p_value == pytest.approx(min(1, 2 * _fisher_pvalue_2x2(2453, 12, 300, 0))) and flag.state_p_value > 0.1
    assert "consistent with the reference" in flag.note
    assert result.batch_faults == [] and result.tested == 2
    assert decide_verdict(result.dataset_drift, [], result.batch_faults, result.tested) == "stable"
    # the same flag stuck at 0 where the reference had 10 % ones is a stuck feed
    stuck = compute_drift(_frame(rng, 2465, 250), batch, ["x", "flag"], [], DriftSpec())
    assert stuck.batch_faults == ["flag"] and {f.column: f for f in stuck.features}["flag"].state_p_value < 1e-6


def test_the_missing_share_of_a_one_valued_column_is_compared():
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"x": rng.normal(0, 1, 1000), "half": np.where(np.arange(1000) % 2 == 0, 1.0, np.nan)})
    emptier = pd.DataFrame({"x": rng.normal(0, 1, 300), "half": np.where(np.arange(300) < 6, 1.0, np.nan)})
    result = compute_drift(reference, emptier, ["x", "half"], [], DriftSpec())
    half = {f.column: f for f in result.features}["half"]
    assert half.status == "constant" and half.batch_fault
    assert "at 1 50.0% -> 2.0%, missing 50.0% -> 98.0%" in half.note
    same = pd.DataFrame({"x": rng.normal(0, 1, 300), "half": np.where(np.arange(300) % 2 == 0, 1.0, np.nan)})
    assert compute_drift(reference, same, ["x", "half"], [], DriftSpec()).batch_faults == []


def test_broken_feeds_do_not_inflate_the_drift_share_of_the_other_features():
    rng = np.random.default_rng(2)
    cols = [f"f{i}" for i in range(10)]
    reference = pd.DataFrame({c: rng.normal(0, 1, 2000) for c in cols})
    batch = pd.DataFrame({c: rng.normal(0, 1, 1000) for c in cols})
    batch["f0"] += 3.0
    batch["f1"] += 3.0                       # 2 of 10 drifted: 0.2, under the default 0.3
    for c in ("f6", "f7", "f8", "f9"):
        batch[c] = 0.0                       # four stuck feeds
    result = compute_drift(reference, batch, cols, [], DriftSpec())
    assert result.drifted == ["f0", "f1"] and result.batch_faults == ["f6", "f7", "f8", "f9"]
    assert result.tested == 10 and result.drifted_share == pytest.approx(0.2) and not result.dataset_drift
    assert decide_verdict(result.dataset_drift, [], result.batch_faults, result.tested) == "data_quality_alarm"


def test_a_fault_needs_evidence_and_size():
    """One stray value in a constant column, a float32 batch of the reference's float64 value, and a
    missing share moving from 1.0 % to 1.2 % on a million rows are not faults."""
    rng = np.random.default_rng(5)
    n_ref = 50_000
    reference = pd.DataFrame({"x": rng.normal(0, 1, n_ref), "flag": np.zeros(n_ref), "rate": np.full(n_ref, 0.1)})
    batch = pd.DataFrame({"x": rng.normal(0, 1, 200), "flag": np.r_[np.zeros(199), np.nan],
                          "rate": np.full(200, 0.1, dtype="float32")})
    result = compute_drift(reference, batch, ["x", "flag", "rate"], [], DriftSpec())
    assert result.batch_faults == [], [f.note for f in result.features]
    by = {f.column: f for f in result.features}
    assert by["flag"].state_p_value > 0.001 and not by["rate"].judged  # the same single state on both sides
    big_ref = pd.DataFrame({"x": rng.normal(0, 1, 100_000), "one": np.where(rng.random(100_000) < 0.010, np.nan, 1.0)})
    big = pd.DataFrame({"x": rng.normal(0, 1, 1_000_000), "one": np.where(rng.random(1_000_000) < 0.012, np.nan, 1.0)})
    moved = {f.column: f for f in compute_drift(big_ref, big, ["x", "one"], [], DriftSpec()).features}["one"]
    assert moved.state_p_value < 1e-6 and moved.state_psi < 0.01 and not moved.batch_fault


def test_a_label_fault_does_not_hold_back_drift_or_a_breach_but_a_feature_fault_does():
    assert decide_verdict(True, ["roc_auc"], [], 10, label_fault="rate 0.15 above [0.02, 0.12]") == \
        "drift_and_performance_breach"
    assert decide_verdict(False, [], [], 10, label_fault="rate 0.15 above [0.02, 0.12]") == "data_quality_alarm"
    assert decide_verdict(True, ["roc_auc"], ["income"], 10) == "data_quality_alarm"


def test_label_rate_fault_is_an_exact_binomial_test_against_the_nearer_end_of_the_range():
    expected = (0.02, 0.12)
    assert label_rate_fault(3, 40, expected, 0.001) is None                     # inside the range
    assert label_rate_fault(0, 40, expected, 0.001) is None                     # p = 0.98^40 = 0.446
    fault = label_rate_fault(0, 400, expected, 0.001)                           # p = 0.98^400 = 3.1e-4
    assert fault is not None and f"p = {0.98 ** 400:.2g}" in fault and "400 labels" in fault
    # above the range: P(X >= 30 | 40, 0.12), summed by hand
    p_high = sum(math.comb(40, k) * 0.12 ** k * 0.88 ** (40 - k) for k in range(30, 41))
    assert p_high < 1e-15
    assert f"p = {p_high:.2g}" in label_rate_fault(30, 40, expected, 0.001)
    assert label_rate_fault(10, 40, (0.15, 0.45), 0.001) is None                # 0.25: inside
    assert label_rate_fault(0, 0, expected, 0.001) is None


def test_a_worsening_equal_to_the_tolerance_is_no_breach_and_direction_free_metrics_have_no_worsening():
    from models.settings import get_settings
    from models.spec import find_spec

    spec = find_spec("credit_risk", get_settings().specs_dir)
    rng = np.random.default_rng(3)
    y = (rng.random(2000) < 0.3).astype(float)
    p = np.clip(0.3 + 0.25 * (y - 0.3) + rng.normal(0, 0.15, 2000), 0.01, 0.99)
    table = pd.DataFrame({spec.target_column: y})
    first = performance(spec, table, p, {})
    auc = first["metrics"]["roc_auc"]
    at_tolerance = performance(spec, table, p, {"roc_auc": auc + 0.05, "calibration_ratio": 1.0})
    change = at_tolerance["changes"]["roc_auc"]
    assert change["worsening"] == pytest.approx(0.05) and change["breach"] is False
    assert at_tolerance["changes"]["calibration_ratio"]["worsening"] is None
    assert at_tolerance["changes"]["calibration_ratio"]["breach"] is False
    beyond = performance(spec, table, p, {"roc_auc": auc + 0.0501})
    assert beyond["changes"]["roc_auc"]["breach"] is True and beyond["breaches"] == ["roc_auc"]


def test_psi_sampling_floor_is_stated_where_it_reaches_the_moderate_threshold():
    """50 categories, 2,465 reference and 300 batch rows from one population: PSI averages about
    (50 - 1)(1/2465 + 1/300) = 0.183 with no change at all (Yurdakul 2018)."""
    rng = np.random.default_rng(4)
    states = np.array([f"S{i:02d}" for i in range(50)], dtype=object)
    reference = pd.DataFrame({"state": rng.choice(states, 2465), "x": rng.normal(0, 1, 2465)})
    psis = []
    for _ in range(100):
        batch = pd.DataFrame({"state": rng.choice(states, 300), "x": rng.normal(0, 1, 300)})
        by = {f.column: f for f in compute_drift(reference, batch, ["x"], ["state"], DriftSpec()).features}
        psis.append(by["state"].psi)
    expected = 49 * (1 / 2465 + 1 / 300)
    assert by["state"].psi_no_change == pytest.approx(expected)
    assert abs(np.mean(psis) - expected) < 0.03  # the simulation agrees with the formula
    assert "PSI is about 0.18 with no change at all" in by["state"].note and "unreliable" in by["state"].note
    assert by["x"].psi_no_change == pytest.approx(9 * (1 / 2465 + 1 / 300)) and by["x"].note == ""
