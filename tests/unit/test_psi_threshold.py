"""``drift.psi_threshold``: the fixed traffic light against the chi2 rule, which judges a PSI against
its sampling distribution at both sample sizes (Yurdakul 2018) with Benjamini-Hochberg across the
features: a light other than stable needs the PSI beyond noise, and the size thresholds still apply."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2, false_discovery_control

from models.records.drift import DriftSummary
from models.spec import DriftSpec, SpecError, parse_spec
from tasks.drift import column_drift, compute_drift
from tasks.feature_drift import FeatureDrift, apply_psi_rule, psi_p_value
from tests.helpers import builtin_spec_dict

CHI2 = DriftSpec(psi_threshold="chi2")


def _unchanged_pairs(n: int, pairs: int, seed: int) -> list[tuple[pd.Series, pd.Series]]:
    """``pairs`` (reference, batch) samples of ``n`` rows each from one normal population."""
    rng = np.random.default_rng(seed)
    return [(pd.Series(rng.normal(size=n)), pd.Series(rng.normal(size=n))) for _ in range(pairs)]


def test_the_fixed_light_cries_wolf_on_small_unchanged_batches_and_the_chi2_rule_does_not():
    # 10 bins, 200 rows a side, nothing changed (the issue: 95th percentile 0.17, 36 % above 0.1)
    pairs = _unchanged_pairs(200, 400, seed=5)
    fixed = [column_drift("x", r, b, "numeric", DriftSpec()) for r, b in pairs]
    values = np.array([f.psi for f in fixed])
    assert np.quantile(values, 0.95) == pytest.approx(0.17, abs=0.03)
    assert 0.25 < np.mean(values >= 0.1) < 0.45
    assert all(f.decided_by == "fixed" for f in fixed)
    judged = [column_drift("x", r, b, "numeric", CHI2) for r, b in pairs]
    flagged = [f for f in judged if f.status != "stable"]
    assert len(flagged) <= 0.02 * len(judged)  # about psi_alpha (0.01) of them
    assert all(f.decided_by == "chi2" for f in judged)
    noisy = next(f for f in judged if f.psi >= 0.1 and f.status == "stable")
    assert "would be moderate but is within sampling noise at these sizes" in noisy.note and "chi2 p = " in noisy.note
    # 10,000 a side: the noise is tiny, PSI about 9 * 2e-4
    big_ref, big = _unchanged_pairs(10_000, 1, seed=6)[0]
    assert column_drift("x", big_ref, big, "numeric", DriftSpec()).psi == pytest.approx(0.0018, abs=0.0015)


def test_the_p_value_is_the_chi2_tail_of_psi_over_the_two_sizes():
    # PSI 0.1 with 10 occupied bins, 1,000 and 500 rows: statistic 0.1 / (1/1000 + 1/500) = 33.3
    assert psi_p_value(0.1, 10, 1_000, 500) == pytest.approx(chi2.sf(0.1 / 0.003, 9), rel=1e-12)
    assert psi_p_value(0.1, 10, 1_000, 500) == pytest.approx(1.18e-4, rel=0.01)
    assert psi_p_value(0.5, 1, 1_000, 500) == 1.0
    reference, batch = _unchanged_pairs(1_000, 1, seed=7)[0]
    f = column_drift("x", reference, batch + 0.3, "numeric", CHI2)
    assert f.occupied_bins == 10
    assert f.psi_p_value == pytest.approx(chi2.sf(f.psi / (2 / 1_000), 9), rel=1e-9)


def test_at_volume_the_chi2_rule_agrees_with_the_fixed_light_and_an_immaterial_shift_stays_stable():
    rng = np.random.default_rng(8)
    reference = pd.Series(rng.normal(size=200_000))
    tiny = column_drift("x", reference, pd.Series(rng.normal(0.05, 1.0, 200_000)), "numeric", CHI2)
    assert tiny.psi_p_value < 1e-10 and tiny.psi < 0.01  # beyond noise, and immaterial
    assert tiny.status == "stable" and tiny.decided_by == "chi2" and tiny.note == ""
    for shift, light in ((0.35, "moderate"), (0.8, "significant")):
        batch = pd.Series(rng.normal(shift, 1.0, 200_000))
        judged = column_drift("x", reference, batch, "numeric", CHI2)
        assert judged.status == column_drift("x", reference, batch, "numeric", DriftSpec()).status == light
        assert judged.note.startswith("chi2 rule: beyond sampling noise (chi2 p = ") and "< psi_alpha 0.01" in judged.note


def test_a_many_category_feature_on_a_small_batch_is_not_called_drift_by_the_chi2_rule():
    rng = np.random.default_rng(9)
    cats = np.array([f"c{i}" for i in range(50)], dtype=object)
    reference = pd.Series(rng.choice(cats, 300))
    batch = pd.Series(rng.choice(cats, 300))
    fixed = column_drift("branch", reference, batch, "categorical", DriftSpec())
    assert fixed.psi > 0.25 and fixed.status == "significant"  # noise alone: about 49 * 2/300 = 0.33
    assert "unreliable" in fixed.note
    judged = column_drift("branch", reference, batch, "categorical", CHI2)
    assert judged.psi == fixed.psi and judged.psi_p_value > 0.01
    assert judged.status == "stable" and "unreliable" not in judged.note
    assert "would be significant but is within sampling noise" in judged.note


def _tested(name: str, value: float, p: float) -> FeatureDrift:
    return FeatureDrift(name, "numeric", value, "stable", judged=True, reference_rows=300, current_rows=300,
                        psi_no_change=0.06, occupied_bins=10, psi_p_value=p)


def test_benjamini_hochberg_across_the_features_decides():
    raw = [0.004, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]
    features = [_tested(f"f{i}", 0.3, p) for i, p in enumerate(raw)]
    apply_psi_rule(features, CHI2)
    expected = false_discovery_control(raw, method="bh")
    assert [f.psi_p_adjusted for f in features] == pytest.approx(list(expected), rel=1e-12)
    assert features[0].psi_p_adjusted == pytest.approx(0.04)  # 0.004 * 10 / 1
    # alone it would be significant (0.004 < 0.01); among ten features it is not
    assert features[0].status == "stable"
    assert "Benjamini-Hochberg across 10 features" in features[0].note
    alone = [_tested("f0", 0.3, 0.004)]
    apply_psi_rule(alone, CHI2)
    assert alone[0].status == "significant"
    # two strong ones survive the correction; the size thresholds still apply
    strong = [_tested("a", 0.3, 1e-8), _tested("b", 0.15, 1e-8), _tested("c", 0.05, 1e-8)] + features[1:]
    apply_psi_rule(strong, CHI2)
    assert [f.status for f in strong[:3]] == ["significant", "moderate", "stable"]
    fixed = [_tested("f0", 0.3, 0.9)]
    apply_psi_rule(fixed, DriftSpec())
    assert fixed[0].status == "significant" and fixed[0].decided_by == "fixed"


def test_compute_drift_records_the_rule_and_p_values_and_the_default_stays_fixed():
    assert DriftSpec().psi_threshold == "fixed" and DriftSpec().psi_alpha == 0.01
    rng = np.random.default_rng(10)
    reference = pd.DataFrame({"a": rng.normal(size=3_000), "b": rng.normal(size=3_000), "c": rng.normal(size=3_000)})
    batch = pd.DataFrame({"a": rng.normal(1.0, 1.0, 1_000), "b": rng.normal(size=1_000), "c": 1.0})
    result = compute_drift(reference, batch, ["a", "b", "c"], [], CHI2)
    assert result.drifted == ["a"] and result.psi_threshold == "chi2"
    summary = result.summary().model_dump(mode="json")
    assert summary["psi_threshold"] == "chi2" and summary["psi_alpha"] == 0.01
    a = summary["features"]["a"]
    assert a["decided_by"] == "chi2" and a["psi_p_adjusted"] < 1e-50 and a["psi_p_value"] <= a["psi_p_adjusted"]
    assert set(summary["features"]["c"]) == {"psi", "status", "note"}  # constant: no PSI rule, no keys
    assert DriftSummary.model_validate(summary).model_dump(mode="json") == summary
    row = result.as_rows()[1]
    assert row["decided_by"] == "chi2" and row["psi_p_value"] == float(f"{result.features[1].psi_p_value:.6g}")


def test_the_spec_accepts_the_two_rules_only():
    data = builtin_spec_dict("credit_risk")
    data["drift"] |= {"psi_threshold": "chi2", "psi_alpha": 0.05}
    assert parse_spec(data).drift.psi_threshold == "chi2"
    data["drift"]["psi_threshold"] = "bonferroni"
    with pytest.raises(SpecError, match="psi_threshold"):
        parse_spec(data)
