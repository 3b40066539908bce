"""Numeric bins frozen on the reference put their edges between distinct reference values
(tasks.psi.freeze_bins): rounding noise in a batch moves no row across an edge, a column with few
distinct values gets one bin per value, and right- and left-closed counting agree."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.spec import DriftSpec
from tasks.drift import bin_shares, column_drift, compute_drift, freeze_bins
from tests.helpers import builtin_periods


def _zero_heavy_integers(n: int, seed: int) -> pd.DataFrame:
    """Integer-valued features shaped like credit_risk's: Expenses on a few round values, Debt
    mostly 0 with a long tail, Time on a 6-month grid, a 0/1 flag."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "expenses": rng.choice([35, 45, 60, 75, 90], n, p=[0.3, 0.25, 0.2, 0.15, 0.1]).astype(float),
        "debt": np.where(rng.random(n) < 0.8, 0.0, np.round(rng.gamma(2.0, 800.0, n))),
        "time": rng.choice(np.arange(6, 66, 6), n).astype(float),
        "age": rng.integers(18, 70, n).astype(float),
        "flag": (rng.random(n) < 0.1).astype(float),
    })


FEATURES = ["expenses", "debt", "time", "age", "flag"]


@pytest.mark.parametrize("noise", ["1e-9", "one float step"])
def test_rounding_noise_on_integer_and_zero_heavy_features_changes_no_psi(noise):
    reference = _zero_heavy_integers(5_000, seed=1)
    batch = _zero_heavy_integers(2_000, seed=2)
    noisy = batch + 1e-9 if noise == "1e-9" else batch.apply(lambda c: np.nextafter(c.to_numpy(), np.inf))
    assert (noisy["expenses"] != batch["expenses"]).all()  # 35 -> 35.00000000000001 is another value
    spec = DriftSpec()
    plain = compute_drift(reference, batch, FEATURES, [], spec)
    moved = compute_drift(reference, noisy, FEATURES, [], spec)
    for a, b in zip(plain.features, moved.features):
        assert b.psi == pytest.approx(a.psi, abs=1e-12), a.column
        assert b.status == a.status == "stable", a.column
    assert moved.drifted == [] and moved.dataset_drift is False
    # and the reference against itself plus noise is exactly stable
    assert all(f.psi == pytest.approx(0.0, abs=1e-12)
               for f in compute_drift(reference, reference + 1e-9, FEATURES, [], spec).features)


def test_right_and_left_closed_counting_agree_on_tied_values():
    reference = _zero_heavy_integers(5_000, seed=3)
    batch = _zero_heavy_integers(1_000, seed=4)
    for col in FEATURES:
        edges = freeze_bins(reference[col], "numeric", 10).edges
        for values in (reference[col].to_numpy(), batch[col].to_numpy()):
            left = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
            right = np.bincount(np.searchsorted(edges, values, side="right"), minlength=edges.size + 1)
            assert (left == right).all(), col
        assert not np.isin(edges, reference[col].to_numpy()).any(), col  # no reference value on an edge


def test_a_feature_with_no_more_distinct_values_than_bins_gets_one_bin_per_value():
    expenses = pd.Series([35.0] * 50 + [45.0] * 30 + [60.0] * 15 + [75.0] * 5)
    binning = freeze_bins(expenses, "numeric", 10)
    assert list(binning.edges) == [40.0, 52.5, 67.5]
    assert binning.labels == ("(-inf, 40]", "(40, 52.5]", "(52.5, 67.5]", "(67.5, +inf)", "<missing>")
    assert list(bin_shares(binning, expenses)) == pytest.approx([0.5, 0.3, 0.15, 0.05, 0.0])
    # before, the quantile bins merged 60 and 75 into one top bin, 3 bins instead of 4
    debt = pd.Series([0.0] * 90 + [100.0, 250.0, 400.0, 900.0, 1200.0] * 2)
    assert list(freeze_bins(debt, "numeric", 10).edges) == [50.0, 175.0, 325.0, 650.0, 1050.0]


def test_quantile_edges_lie_midway_to_the_next_reference_value():
    # 20 distinct values, 4 bins: type-1 quartiles 5, 10, 15 -> edges 5.5, 10.5, 15.5
    values = pd.Series(np.arange(1.0, 21.0))
    assert list(freeze_bins(values, "numeric", 4).edges) == [5.5, 10.5, 15.5]
    # zero-heavy: the quantiles at 0 collapse to one edge between 0 and the smallest positive value
    zero_heavy = pd.Series([0.0] * 700 + list(np.arange(1.0, 301.0)))
    edges = freeze_bins(zero_heavy, "numeric", 10).edges
    assert list(edges) == [0.5, 100.5, 200.5]  # quantiles .1-.7 are 0, .8 is 100, .9 is 200


def test_labels_of_close_edges_stay_distinct_and_short():
    values = pd.Series(1.0 + np.arange(30) * 1e-7)
    labels = freeze_bins(values, "numeric", 10).labels
    assert len(set(labels)) == len(labels)
    assert labels[0] == "(-inf, 1.0000002]"  # 6 significant digits would make every edge "1"; 8 tell them apart
    assert max(len(lab) for lab in labels) < 30
    assert freeze_bins(pd.Series([0.1, 0.2, 0.3] * 5), "numeric", 10).labels[:2] == ("(-inf, 0.15]", "(0.15, 0.25]")


def test_a_reference_with_infinities_and_huge_values_still_bins():
    values = pd.Series([-np.inf, 1e308, 1.7e308, np.inf, np.nan, -1e308])
    binning = freeze_bins(values, "numeric", 10)
    assert np.isfinite(binning.edges).all() and list(binning.edges) == sorted(binning.edges)
    shares = bin_shares(binning, values)
    assert shares.sum() == pytest.approx(1.0) and (shares[:-1] > 0).all()
    assert column_drift("x", values, values, "numeric", DriftSpec(min_rows=1)).psi == 0.0


# --------------------------------------------------------------------------- acceptance, credit_risk


@pytest.mark.parametrize("rule", ["fixed", "chi2"])
def test_credit_risk_out_of_time_batch_with_rounding_noise_is_not_drift(rule):
    spec, reference, later = builtin_periods("credit_risk")
    drift_spec = spec.drift.model_copy(update={"psi_threshold": rule})
    numeric, categorical = spec.numeric_features, spec.categorical_features
    noisy = later.assign(**{c: later[c] + 1e-9 for c in numeric})
    plain = compute_drift(reference, later, numeric, categorical, drift_spec)
    result = compute_drift(reference, noisy, numeric, categorical, drift_spec)
    # before the midpoint edges: Debt 9.44, Time 3.93, Expenses 3.88, Assets 3.83, Seniority 0.90 significant
    assert [f.psi for f in result.features] == pytest.approx([f.psi for f in plain.features], abs=1e-12)
    assert [f.status for f in result.features] == [f.status for f in plain.features]
    assert result.dataset_drift is False
    assert result.drifted == [] and max(f.psi for f in result.features) < 0.25
    assert {f.status for f in result.features} <= {"stable", "moderate"}
    expenses = next(f for f in result.features if f.column == "Expenses")
    assert expenses.psi == pytest.approx(0.239, abs=0.001) and expenses.status == "moderate"  # a real change
    if rule == "chi2":
        assert expenses.psi_p_adjusted < 1e-20
        # Records moved beyond noise too (p = 6.5e-5 after Benjamini-Hochberg) but by PSI 0.027: stable
        records = next(f for f in result.features if f.column == "Records")
        assert records.psi_p_adjusted < 0.01 and records.status == "stable"


@pytest.mark.parametrize("rule", ["fixed", "chi2"])
def test_credit_risk_out_of_time_batch_with_amount_times_1_6_is_significant_on_amount(rule):
    spec, reference, later = builtin_periods("credit_risk")
    drift_spec = spec.drift.model_copy(update={"psi_threshold": rule})
    result = compute_drift(reference, later.assign(Amount=later["Amount"] * 1.6), spec.numeric_features,
                           spec.categorical_features, drift_spec)
    amount = next(f for f in result.features if f.column == "Amount")
    assert amount.status == "significant" and amount.psi > 1.0
    assert amount.decided_by == rule and amount.psi_p_adjusted < 1e-100
    assert result.drifted == ["Amount"]


def test_a_reference_sample_stored_before_the_midpoint_edges_still_monitors():
    """Bins are frozen from ``reference.parquet`` at monitoring time, never stored: no migration."""
    import json
    from pathlib import Path

    legacy = Path(__file__).resolve().parents[1] / "data" / "legacy_registry" / "credit_risk"
    reference = pd.read_parquet(legacy / "versions" / "1" / "reference.parquet")
    recorded = json.loads((legacy / "monitoring.jsonl").read_text(encoding="utf-8").splitlines()[0])["drift"]
    spec, _, later = builtin_periods("credit_risk")
    result = compute_drift(reference, later, spec.numeric_features, spec.categorical_features, spec.drift,
                           score_column=None)
    assert result.tested == 13 and all(f.status in ("stable", "moderate") for f in result.features)
    assert {f.column: f.status for f in result.features} == {c: v["status"] for c, v in recorded["features"].items()}
    by_name = {f.column: f for f in result.features}
    # integer features whose edges held no batch value between reference values: the PSI is unchanged
    for col in ("Seniority", "Age", "Expenses", "Debt", "Home", "Records"):
        assert by_name[col].psi == pytest.approx(recorded["features"][col]["psi"], rel=1e-9), col
    # Time takes 10 values (6, 12, ..., 60) in these 891 reference rows: one bin per value now, and missing
    assert len(by_name["Time"].bins) == 11
