"""A float-rounding step in a numeric column with few distinct reference values is no drift in the
Evidently report: Evidently 0.7 bins such a column one bin per value, so before the fix 36 + 1e-9
was a new category and credit_risk's Time scored PSI 15.38. Current values equal to a reference
value up to float rounding are sent to Evidently as that value; a real change is still drift."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.drift import compute_drift, evidently_drift_report
from tasks.evidently_report import EVIDENTLY_FEW_VALUES, snap_to_reference_values
from tests.helpers import builtin_periods


def test_values_equal_up_to_rounding_snap_and_real_changes_stay():
    ref = np.array([0.0, 0.5, 1.0, 36.0, 0.5, np.nan])
    cur = np.array([36.00000000000001, 36 + 1e-9, 0 + 1e-9, 0.5 - 1e-12, 37.0, 0.51, 0.5, np.nan, np.inf, -3.0])
    out, moved = snap_to_reference_values(ref, cur)
    assert moved == 4
    np.testing.assert_array_equal(out, [36.0, 36.0, 0.0, 0.5, 37.0, 0.51, 0.5, np.nan, np.inf, -3.0])
    assert cur[0] == 36.00000000000001  # the input is not modified
    # a column with more distinct reference values than Evidently's one-bin-per-value limit is left alone
    many = np.arange(EVIDENTLY_FEW_VALUES + 1, dtype="float64")
    out, moved = snap_to_reference_values(many, many + 1e-9)
    assert moved == 0 and (out == many + 1e-9).all()
    out, moved = snap_to_reference_values(many[:EVIDENTLY_FEW_VALUES], many[:EVIDENTLY_FEW_VALUES] + 1e-9)
    assert moved == EVIDENTLY_FEW_VALUES and (out == many[:EVIDENTLY_FEW_VALUES]).all()


def _evidently(tmp_path, current):
    spec, reference, _ = builtin_periods("credit_risk")
    return evidently_drift_report(reference, current, spec.numeric_features, spec.categorical_features, spec.drift,
                                  tmp_path / "r.html")


def test_credit_risk_later_period_with_rounding_noise_is_not_drift_in_evidently(tmp_path):
    spec, reference, later = builtin_periods("credit_risk")
    numeric = spec.numeric_features
    assert reference["Time"].nunique() == 11  # one bin per value in Evidently
    clean = _evidently(tmp_path, later)
    assert clean.ran and clean.drifted_count == 0 and clean.per_column["Time"].score < 0.05
    noisy = later.assign(**{c: later[c] + 1e-9 for c in numeric})
    step = later.assign(Time=np.nextafter(later["Time"].astype("float64"), np.inf))
    assert (step["Time"] != later["Time"]).all() and 36.00000000000001 in set(step["Time"])
    for batch in (noisy, step):
        out = _evidently(tmp_path, batch)
        assert out.drifted_count == clean.drifted_count  # was 1: Time at PSI 15.38
        assert out.per_column["Time"].drifted is False
        assert out.per_column["Time"].score == pytest.approx(clean.per_column["Time"].score, abs=1e-12)
    # our PSI never saw the snapped values: it is unchanged on the noisy batch, and the batch itself too
    plain = compute_drift(reference, later, numeric, spec.categorical_features, spec.drift)
    ours = compute_drift(reference, noisy, numeric, spec.categorical_features, spec.drift)
    assert [f.psi for f in ours.features] == pytest.approx([f.psi for f in plain.features], abs=1e-12)
    assert (noisy["Time"] == later["Time"] + 1e-9).all()


def test_a_real_shift_is_still_drift_in_evidently(tmp_path):
    _, _, later = builtin_periods("credit_risk")
    time = _evidently(tmp_path, later.assign(Time=later["Time"] + 6))
    assert time.per_column["Time"].drifted is True and time.per_column["Time"].score > 5
    assert time.drifted_count == 1
    amount = _evidently(tmp_path, later.assign(Amount=later["Amount"] * 1.6))
    assert amount.per_column["Amount"].drifted is True and amount.drifted_count == 1
