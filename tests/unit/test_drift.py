"""PSI on frozen bins (tasks.drift): hand-computed values, frozen edges, verdicts, statuses,
score drift, and the Evidently wrapper on a small frame."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.records.drift import DriftSummary, EvidentlyColumn, EvidentlySummary
from models.spec import ColumnDriftSpec, DriftSpec
from tasks.drift import (
    Binning,
    bin_shares,
    column_drift,
    compute_drift,
    evidently_drift_report,
    freeze_bins,
    psi,
    traffic_light,
)

FLOOR = 1e-4


def _term(cur: float, ref: float) -> float:
    """One PSI term written out independently: floor both shares, then (c - r) ln(c / r)."""
    c, r = max(cur, FLOOR), max(ref, FLOOR)
    return (c - r) * math.log(c / r)


# --------------------------------------------------------------------------- hand-computed PSI


def test_psi_of_share_vectors_by_hand():
    ref = [0.5, 0.3, 0.2, 0.0]
    cur = [0.4, 0.3, 0.0, 0.3]
    expected = (
        (0.4 - 0.5) * math.log(0.4 / 0.5)
        + 0.0
        + (1e-4 - 0.2) * math.log(1e-4 / 0.2)
        + (0.3 - 1e-4) * math.log(0.3 / 1e-4)
    )
    assert psi(ref, cur, FLOOR) == pytest.approx(expected, rel=1e-12)
    assert expected == pytest.approx(3.94284, abs=1e-5)
    assert psi([0.25] * 4, [0.25] * 4, FLOOR) == 0.0
    with pytest.raises(ValueError):
        psi([0.5, 0.5], [1.0], FLOOR)


def test_categorical_psi_with_empty_bin_missing_and_unseen_category_by_hand():
    # reference: A x5, B x3, C x2 (no missing); current: A x4, B x3, C x0 (empty bin),
    # D x1 (never seen in the reference -> <other>), missing x2 (None and NaN).
    reference = pd.Series(["A"] * 5 + ["B"] * 3 + ["C"] * 2, dtype=object)
    current = pd.Series(["A"] * 4 + ["B"] * 3 + ["D"] + [None, np.nan], dtype=object)
    spec = DriftSpec(min_rows=1)

    result = column_drift("home", reference, current, "categorical", spec)

    # bins: A, B, C, <other>, <missing>
    # ref shares: .5, .3, .2, 0 (floored to 1e-4), 0 (floored)
    # cur shares: .4, .3, 0 (floored), .1, .2
    expected = (
        (0.4 - 0.5) * math.log(0.4 / 0.5)          # A
        + (0.3 - 0.3) * 0.0                          # B
        + (1e-4 - 0.2) * math.log(1e-4 / 0.2)        # C: empty in the current batch
        + (0.1 - 1e-4) * math.log(0.1 / 1e-4)        # <other>: unseen category D
        + (0.2 - 1e-4) * math.log(0.2 / 1e-4)        # <missing>
    )
    assert expected == pytest.approx(3.75124, abs=1e-5)
    assert result.psi == pytest.approx(expected, rel=1e-12)
    assert result.status == "significant"
    assert [b["bin"] for b in result.bins] == ["A", "B", "C", "<other>", "<missing>"]
    assert [b["reference_share"] for b in result.bins] == pytest.approx([0.5, 0.3, 0.2, 0.0, 0.0])
    assert [b["current_share"] for b in result.bins] == pytest.approx([0.4, 0.3, 0.0, 0.1, 0.2])
    assert sum(b["psi_term"] for b in result.bins) == pytest.approx(expected)
    assert result.current_missing_share == pytest.approx(0.2)
    assert result.reference_missing_share == 0.0


def test_numeric_psi_with_edges_empty_bin_and_missing_by_hand():
    reference = pd.Series([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], dtype=float)
    # 5 quantile bins of 1..10 (observed-value quantiles at .2 .4 .6 .8: 2, 4, 6, 8); each edge
    # lies midway to the next reference value: 2.5, 4.5, 6.5, 8.5 (no reference value on an edge);
    # intervals (-inf,2.5] (2.5,4.5] (4.5,6.5] (6.5,8.5] (8.5,inf) and missing.
    current = pd.Series([0.5, 2.0, 3.0, 4.0, 7.0, 8.0, 8.5, 9.0, 100.0, np.nan])
    spec = DriftSpec(bins=5, min_rows=1)

    binning = freeze_bins(reference, "numeric", 5)
    assert list(binning.edges) == [2.5, 4.5, 6.5, 8.5]
    assert binning.labels == ("(-inf, 2.5]", "(2.5, 4.5]", "(4.5, 6.5]", "(6.5, 8.5]", "(8.5, +inf)", "<missing>")
    # a value exactly on an edge belongs to the bin below it: 8.5 -> (6.5,8.5]
    assert list(bin_shares(binning, current)) == pytest.approx([0.2, 0.2, 0.0, 0.3, 0.2, 0.1])
    assert list(bin_shares(binning, reference)) == pytest.approx([0.2, 0.2, 0.2, 0.2, 0.2, 0.0])

    result = column_drift("income", reference, current, "numeric", spec)
    expected = (
        0.0 + 0.0                                     # (-inf,2.5], (2.5,4.5]: unchanged
        + (1e-4 - 0.2) * math.log(1e-4 / 0.2)         # (4.5,6.5]: empty in the current batch
        + (0.3 - 0.2) * math.log(0.3 / 0.2)           # (6.5,8.5]
        + 0.0                                         # (8.5,inf)
        + (0.1 - 1e-4) * math.log(0.1 / 1e-4)         # missing: none in the reference
    )
    assert expected == pytest.approx(2.25005, abs=1e-5)
    assert result.psi == pytest.approx(expected, rel=1e-12)
    assert result.psi == pytest.approx(sum(_term(c, r) for c, r in
                                           zip([0.2, 0.2, 0, 0.3, 0.2, 0.1], [0.2, 0.2, 0.2, 0.2, 0.2, 0])))


def test_traffic_light_uses_the_spec_thresholds():
    spec = DriftSpec()  # 0.1 / 0.25
    assert [traffic_light(v, spec) for v in (0.0, 0.0999, 0.1, 0.2499, 0.25, 3.0)] == [
        "stable", "stable", "moderate", "moderate", "significant", "significant"]
    strict = DriftSpec(psi_moderate=0.02, psi_significant=0.05)
    assert traffic_light(0.03, strict) == "moderate"
    assert traffic_light(0.05, strict) == "significant"


# --------------------------------------------------------------------------- frozen bins


def test_quantile_edges_are_frozen_on_the_reference():
    rng = np.random.default_rng(1)
    reference = pd.Series(rng.normal(size=20_000))
    shifted = pd.Series(rng.normal(loc=1.0, size=50_000))
    binning = freeze_bins(reference, "numeric", 10)
    assert len(binning.edges) == 9
    assert binning.edges == pytest.approx(np.quantile(reference, np.arange(1, 10) / 10), abs=1e-3)

    ref_shares = bin_shares(binning, reference)
    assert ref_shares[:10] == pytest.approx([0.1] * 10, abs=1e-3)
    cur_shares = bin_shares(binning, shifted)
    # under the reference's edges a +1 sd batch empties the low bins and fills the top one:
    # P(Z + 1 <= q_0.1) = Phi(-1.2816 - 1) = 0.0113; P(Z + 1 > q_0.9) = 1 - Phi(0.2816) = 0.389
    assert cur_shares[0] == pytest.approx(0.0113, abs=0.003)
    assert cur_shares[9] == pytest.approx(0.389, abs=0.01)

    # the bins of the verdict are the reference's, whatever the batch
    spec = DriftSpec()
    a = column_drift("x", reference, shifted, "numeric", spec)
    b = column_drift("x", reference, pd.Series(rng.normal(loc=-3.0, size=5_000)), "numeric", spec)
    assert [r["bin"] for r in a.bins] == [r["bin"] for r in b.bins] == list(binning.labels)


def test_tied_and_discrete_data_get_fewer_bins():
    binary = freeze_bins(pd.Series([0.0] * 80 + [1.0] * 20), "numeric", 10)
    assert list(binary.edges) == [0.5]  # one bin per value, the edge midway between them
    assert binary.labels == ("(-inf, 0.5]", "(0.5, +inf)", "<missing>")
    # Poisson(2) on 10,000 rows takes the 10 values 0..9: one bin per value (no more distinct values than bins)
    few = pd.Series(np.random.default_rng(2).poisson(2.0, 10_000).astype(float))
    assert sorted(few.unique()) == list(range(10))
    assert list(freeze_bins(few, "numeric", 10).edges) == [v + 0.5 for v in range(9)]
    # Poisson(6) has more distinct values than bins: tied quantiles, so fewer than 10 bins
    many = pd.Series(np.random.default_rng(2).poisson(6.0, 10_000).astype(float))
    counts = freeze_bins(many, "numeric", 10)
    assert 2 <= len(counts.edges) < 9
    # every frozen bin holds reference rows
    assert (bin_shares(counts, many)[:-1] > 0).all()


def test_categorical_bins_accept_category_dtype_and_map_by_value():
    reference = pd.Series(pd.Categorical(["a", "b", "a", None, "c"], categories=["a", "b", "c", "unused"]))
    binning = freeze_bins(reference, "categorical", 10)
    assert isinstance(binning, Binning)
    assert binning.categories == ("a", "b", "c")
    current = pd.Series(pd.Categorical(["b", "zz", None, "a"], categories=["zz", "b", "a"]))
    assert list(bin_shares(binning, current)) == pytest.approx([0.25, 0.25, 0.0, 0.25, 0.25])


# --------------------------------------------------------------------------- verdicts


def _reference_frame(n: int = 20_000, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "income": rng.lognormal(10, 0.5, n),
        "age": rng.normal(45, 12, n),
        "debt": rng.gamma(2.0, 1000.0, n),
        "home": rng.choice(np.array(["rent", "owner", "parents", "other"], dtype=object), n, p=[0.4, 0.35, 0.15, 0.1]),
        "job": rng.choice(np.array(["fixed", "freelance", "partime"], dtype=object), n, p=[0.6, 0.3, 0.1]),
    })
    df.loc[rng.random(n) < 0.05, "debt"] = np.nan
    df.loc[rng.random(n) < 0.03, "job"] = None
    df["score"] = 1 / (1 + np.exp(-(df["age"] - 45) / 12))
    return df


NUMERIC = ["income", "age", "debt"]
CATEGORICAL = ["home", "job"]


def test_a_resample_of_the_reference_is_stable_everywhere():
    reference = _reference_frame()
    current = reference.sample(n=50_000, replace=True, random_state=7).reset_index(drop=True)
    result = compute_drift(reference, current, NUMERIC, CATEGORICAL, DriftSpec(), score_column="score")
    assert {f.column: f.status for f in result.features} == {c: "stable" for c in NUMERIC + CATEGORICAL}
    assert all(f.psi < 0.01 for f in result.features)
    assert result.tested == 5
    assert result.drifted == [] and result.drifted_share == 0.0
    assert result.dataset_drift is False
    assert result.score.status == "stable"


def test_a_shifted_batch_is_significant_and_triggers_dataset_drift_at_the_spec_share():
    reference = _reference_frame()
    rng = np.random.default_rng(11)
    current = reference.sample(n=30_000, replace=True, random_state=8).reset_index(drop=True)
    current["age"] = current["age"] + 12.0  # +1 sd
    current["home"] = rng.choice(np.array(["rent", "owner", "parents", "other"], dtype=object), len(current),
                                 p=[0.1, 0.35, 0.15, 0.4])  # rent 40 % -> 10 %, other 10 % -> 40 %
    result = compute_drift(reference, current, NUMERIC, CATEGORICAL, DriftSpec())
    status = {f.column: f.status for f in result.features}
    assert status["age"] == "significant" and status["home"] == "significant"
    assert status["income"] == status["debt"] == status["job"] == "stable"
    assert result.drifted == ["age", "home"]
    assert result.drifted_share == pytest.approx(2 / 5)
    assert result.dataset_drift is True  # 0.4 >= 0.3 (default)
    assert [f.column for f in result.top_features(2)] in (["age", "home"], ["home", "age"])
    assert result.top_features(1)[0].psi == max(f.psi for f in result.features)

    lenient = compute_drift(reference, current, NUMERIC, CATEGORICAL, DriftSpec(dataset_drift_share=0.5))
    assert lenient.drifted_share == pytest.approx(0.4) and lenient.dataset_drift is False

    rows = result.as_rows()
    assert [r["column"] for r in rows] == NUMERIC + CATEGORICAL
    assert rows[1]["status"] == "significant" and rows[1]["psi"] == round(result.features[1].psi, 6)
    assert result.summary().drifted == ["age", "home"]


def test_constant_all_missing_and_absent_columns_are_reported_not_counted():
    reference = _reference_frame(5_000)
    current = reference.sample(n=5_000, replace=True, random_state=9).reset_index(drop=True)
    reference["flag"] = 1.0                          # constant in the reference
    current["flag"] = np.random.default_rng(0).random(len(current))
    reference["grade"] = np.random.default_rng(0).choice(np.array(["A", "B", "C"], dtype=object), len(reference))
    current["grade"] = "B"                           # one value in the current batch
    reference["bonus"] = np.random.default_rng(1).random(len(reference))
    current["bonus"] = np.nan                        # all missing in the batch
    reference["region"] = None                       # all missing in the reference
    current["region"] = "north"
    current["code"] = "x"                            # numeric column holding text
    reference["code"] = 1.0
    current["age"] = current["age"] + 30.0           # the one real drift

    result = compute_drift(reference, current, ["age", "flag", "bonus", "missing_col", "code"],
                           ["grade", "region"], DriftSpec())
    by = {f.column: f for f in result.features}
    assert by["age"].status == "significant"
    assert by["flag"].status == "constant" and "reference has a single value (1)" in by["flag"].note
    assert by["grade"].status == "constant" and "current batch has a single value ('B')" in by["grade"].note
    assert by["bonus"].status == "all_missing" and "every current value is missing" in by["bonus"].note
    assert by["region"].status == "all_missing" and "every reference value is missing" in by["region"].note
    assert by["missing_col"].status == "error" and "absent from the reference and the current batch" in by["missing_col"].note
    assert by["code"].status == "error" and "numeric" in by["code"].note
    for name in ("flag", "grade", "bonus", "region", "missing_col", "code"):
        assert by[name].psi is None and not by[name].tested
    # judged: age (PSI) and the four columns whose states moved (each a fault); the error columns are not
    assert result.tested == 5 and result.drifted == ["age"] and result.drifted_share == pytest.approx(0.2)
    assert result.dataset_drift is False  # broken feeds count as not drifted: they cannot inflate the share
    assert result.top_features(5) == [by["age"]]
    assert result.summary().not_tested["bonus"] == "all_missing"
    # the batch lost what the reference had (stuck or broken feed), or gained what it never had: flagged, not drift
    assert result.batch_faults == ["flag", "bonus", "grade", "region"]
    assert result.summary().batch_faults == result.batch_faults
    assert by["grade"].batch_fault and "stuck feed" in by["grade"].note
    assert by["bonus"].batch_fault and "broken feed" in by["bonus"].note
    assert by["flag"].batch_fault and "changed feed" in by["flag"].note
    assert by["region"].batch_fault and "new or repaired feed" in by["region"].note
    assert all(by[c].state_p_value < 1e-100 for c in ("flag", "grade", "bonus", "region"))
    assert not by["code"].batch_fault and not by["code"].judged and not by["missing_col"].judged


def test_a_feed_stuck_on_one_value_is_a_batch_fault_and_the_verdict_is_never_stable():
    from tasks.monitor import decide_verdict

    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"income": rng.normal(130, 40, 1_000),
                              "home": rng.choice(np.array(["owner", "rent", "parents"], dtype=object), 1_000),
                              "fixed": np.full(1_000, 7.0)})
    stuck = pd.DataFrame({"income": np.full(500, 130.0), "home": ["rent"] * 500, "fixed": np.full(500, 7.0)})
    result = compute_drift(reference, stuck, ["income", "fixed"], ["home"], DriftSpec())
    by = {f.column: f for f in result.features}
    assert [by[c].status for c in ("income", "fixed", "home")] == ["constant", "constant", "constant"]
    assert result.batch_faults == ["income", "home"]  # "fixed" was constant in the reference too: no fault
    assert not by["fixed"].judged and "same single state in both frames" in by["fixed"].note
    assert result.tested == 2 and result.drifted == [] and result.dataset_drift is False
    assert decide_verdict(result.dataset_drift, [], result.batch_faults, result.tested) == "data_quality_alarm"
    # the reference's single value replaced by another single value is a fault as well
    moved = compute_drift(reference, stuck.assign(fixed=9.0), ["fixed"], [], DriftSpec())
    assert moved.batch_faults == ["fixed"]
    # nothing testable and nothing broken: not enough evidence to call the batch stable
    same = compute_drift(reference, stuck, ["fixed"], [], DriftSpec())
    assert same.batch_faults == [] and same.tested == 0
    assert decide_verdict(same.dataset_drift, [], same.batch_faults, same.tested) == "insufficient_data"


def test_verdict_precedence():
    from tasks.monitor import decide_verdict

    # a broken feed comes first: drift or a breach measured on it is not evidence for retraining
    assert decide_verdict(True, ["roc_auc"], ["income"], 5) == "data_quality_alarm"
    assert decide_verdict(True, [], ["income"], 5) == "data_quality_alarm"
    assert decide_verdict(False, ["roc_auc"], ["income"], 0) == "data_quality_alarm"
    assert decide_verdict(False, [], ["income"], 5) == "data_quality_alarm"
    assert decide_verdict(True, ["roc_auc"], [], 5) == "drift_and_performance_breach"
    assert decide_verdict(True, [], [], 5) == "drift"
    assert decide_verdict(False, ["roc_auc"], [], 0) == "performance_breach"
    assert decide_verdict(False, [], [], 0) == "insufficient_data"
    assert decide_verdict(False, [], [], 5) == "stable"
    assert decide_verdict(False, []) == "stable"


def test_nothing_tested_is_no_drift_and_small_batches_are_insufficient():
    reference = _reference_frame(2_000)
    small = reference.head(50)
    result = compute_drift(reference, small, NUMERIC, CATEGORICAL, DriftSpec(min_rows=200), score_column="score")
    assert {f.status for f in result.features} == {"insufficient_data"}
    assert result.score.status == "insufficient_data"
    assert result.tested == 0 and result.drifted_share == 0.0 and result.dataset_drift is False
    empty = compute_drift(reference, reference.iloc[:0], NUMERIC, CATEGORICAL, DriftSpec(min_rows=1))
    assert {f.status for f in empty.features} == {"insufficient_data"} and empty.dataset_drift is False


# --------------------------------------------------------------------------- score drift


def test_score_psi_uses_numeric_frozen_bins_and_is_kept_out_of_the_feature_share():
    reference = _reference_frame()
    current = reference.sample(n=20_000, replace=True, random_state=10).reset_index(drop=True)
    current["score"] = np.clip(current["score"] + 0.2, 0, 1)
    result = compute_drift(reference, current, NUMERIC, CATEGORICAL, DriftSpec(), score_column="score")
    assert result.score.column == "score" and result.score.kind == "numeric"
    assert result.score.status == "significant"
    binning = freeze_bins(reference["score"], "numeric", 10)
    expected = psi(bin_shares(binning, reference["score"]), bin_shares(binning, current["score"]), FLOOR)
    assert result.score.psi == pytest.approx(expected)
    assert [b["bin"] for b in result.score.bins] == list(binning.labels)
    assert result.dataset_drift is False and result.drifted == []  # features unchanged
    assert result.as_rows()[-1]["role"] == "score"

    no_score = compute_drift(reference, current.drop(columns="score"), NUMERIC, CATEGORICAL, DriftSpec(),
                             score_column="score")
    assert no_score.score.status == "error"


# --------------------------------------------------------------------------- Evidently wrapper


def _loan_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(5)

    def frame(n: int, shift: float) -> pd.DataFrame:
        return pd.DataFrame({
            "income": rng.lognormal(10 + shift, 0.5, n),
            "seniority": rng.poisson(6, n).astype(float),
            "home": rng.choice(np.array(["rent", "owner", "parents"], dtype=object), n, p=[0.5, 0.35, 0.15]),
            "bonus": rng.random(n),
            "flag": rng.random(n),
        })

    reference, current = frame(2_000, 0.0), frame(3_000, 0.5)
    current["bonus"] = np.nan                       # all missing in the batch
    reference["flag"] = 1.0                         # constant in the reference
    current.loc[current.index[:100], "home"] = None
    return reference, current


def test_evidently_report_on_a_bounded_sample(tmp_path):
    reference, current = _loan_frames()
    spec = DriftSpec(evidently_sample_rows=1_000, columns={"income": ColumnDriftSpec(method="psi", threshold=0.2)})
    html = tmp_path / "reports" / "drift.html"
    out = evidently_drift_report(reference, current, ["income", "seniority", "bonus", "flag", "absent"], ["home"],
                                 spec, html, seed=3, title="loans: drift")
    assert out.ran is True and out.error is None
    assert out.html_path == str(html) and html.is_file()
    text = html.read_text(encoding="utf-8")
    banner = ("Evidently drift report on a random sample of 1,000 of 3,000 current rows and "
              "1,000 of 2,000 reference rows")
    assert banner in text and "the platform&#x27;s PSI decision uses every row" in text
    assert text.index(banner) < text.index("<body>") + 600  # right after <body>
    assert out.current_sample_rows == 1_000 and out.reference_sample_rows == 1_000
    assert out.columns == ["income", "seniority", "home"]
    assert set(out.skipped) == {"bonus", "flag", "absent"}
    assert "all values missing in the sampled current rows" in out.skipped["bonus"]
    assert "constant in the sampled reference rows" in out.skipped["flag"]
    assert "absent" in out.skipped["absent"]
    assert out.per_column["income"].method == "psi" and out.per_column["income"].threshold == 0.2
    assert out.per_column["income"].drifted is True       # lognormal mean shifted by 1 sd of log
    # the defaults: Evidently's PSI test at the spec's psi_significant (0.25), like the decision
    assert (out.per_column["seniority"].method, out.per_column["seniority"].threshold) == ("psi", 0.25)
    assert (out.per_column["home"].method, out.per_column["home"].threshold) == ("psi", 0.25)
    assert out.drifted_count == sum(v.drifted for v in out.per_column.values())
    assert out.drifted_share == pytest.approx(out.drifted_count / 3)


def test_evidently_takes_float_coded_and_nullable_string_categories(tmp_path):
    """One such column used to stop the whole report (float labels; pd.NA in a string column)."""
    rng = np.random.default_rng(2)
    n = 400
    reference = pd.DataFrame({
        "income": rng.normal(100, 20, n),
        "home": pd.Series(rng.choice(["owner", "rent", "parents"], n), dtype=object),
        "grade": rng.integers(1, 4, n),                                   # integer codes
        "member": pd.Series(rng.random(n) < 0.5, dtype="boolean"),
    })
    current = reference.sample(n=n, replace=True, random_state=1).reset_index(drop=True)
    current["home"] = current["home"].astype("string")
    current.loc[:2, "home"] = pd.NA
    current["grade"] = current["grade"].astype(float)
    current.loc[:4, "grade"] = np.nan                                     # codes read back as floats
    current.loc[:3, "member"] = pd.NA
    out = evidently_drift_report(reference, current, ["income"], ["home", "grade", "member"], DriftSpec(),
                                 tmp_path / "r.html")
    assert out.error is None and out.ran is True and (tmp_path / "r.html").is_file()
    assert out.columns == ["income", "home", "grade", "member"]
    assert out.per_column["grade"].drifted is False  # "2" and 2.0 are one category, not a drift


def test_evidently_is_not_called_on_an_empty_batch_or_without_usable_columns(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "evidently", None)  # any import of evidently would now raise
    reference, current = _loan_frames()
    html = tmp_path / "drift.html"
    out = evidently_drift_report(reference, current.iloc[:0], ["income"], ["home"], DriftSpec(), html)
    assert out.ran is False and "empty" in out.reason and out.html_path is None
    assert not html.exists()
    out = evidently_drift_report(reference, current, ["bonus", "flag"], [], DriftSpec(), html)
    assert out.ran is False and "no column" in out.reason and set(out.skipped) == {"bonus", "flag"}
    out = evidently_drift_report(reference, current.head(20), ["income"], [], DriftSpec(min_rows=200), html)
    assert out.ran is False and "min_rows" in out.reason
    assert not html.exists()


# --------------------------------------------------------------------------- typed records and module layout

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_registry"


def _legacy_monitoring_records() -> list[dict]:
    lines = [line for path in sorted(LEGACY.glob("*/monitoring.jsonl"))
             for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [json.loads(line) for line in lines]


def test_monitoring_records_written_before_the_types_read_back_unchanged():
    records = _legacy_monitoring_records()
    assert len(records) == 4
    for record in records:
        drift, evidently = DriftSummary.model_validate(record["drift"]), EvidentlySummary.model_validate(record["evidently"])
        assert drift.model_dump(mode="json") == record["drift"]
        assert evidently.model_dump(mode="json") == record["evidently"]
        assert drift.tested == len(drift.features) and evidently.ran is True
        assert all(isinstance(c, EvidentlyColumn) and c.description for c in evidently.per_column.values())
    credit = next(r for r in records if r["model"] == "credit_risk")
    drift = DriftSummary.model_validate(credit["drift"])
    assert drift.features["Expenses"].status == "moderate" and drift.top_features[0] == "Expenses"
    assert drift.not_tested == {}


def test_the_drift_summary_is_the_drift_section_the_monitoring_record_holds():
    reference = _reference_frame(5_000)
    current = reference.sample(n=5_000, replace=True, random_state=9).reset_index(drop=True)
    current["bonus"] = np.nan
    reference["bonus"] = 1.0
    current["age"] = current["age"] + 30.0
    reference["score"] = np.random.default_rng(4).random(len(reference))
    current["score"] = np.random.default_rng(5).random(len(current))
    result = compute_drift(reference, current, ["age", "income", "bonus", "absent"], ["home"], DriftSpec(),
                           score_column="score")
    # the section as tasks.monitor.build_record wrote it before DriftSummary existed, plus the rule
    # (psi_threshold, psi_alpha) and, for a tested feature, the rule and p-values that decided it
    top = result.top_features(3)
    rule = {"psi_threshold": "fixed", "psi_alpha": 0.01}
    written = {
        "tested": result.tested, "drifted": list(result.drifted), "drifted_share": result.drifted_share,
        "dataset_drift": result.dataset_drift, "threshold_share": DriftSpec().dataset_drift_share,
        "score_psi": result.score.psi, "score_status": result.score.status,
        "top_features": [f.column for f in top], "batch_faults": list(result.batch_faults),
        "features": {f.column: {"psi": f.psi, "status": f.status, "note": f.note}
                     | ({"decided_by": "fixed", "psi_p_value": f.psi_p_value, "psi_p_adjusted": f.psi_p_adjusted}
                        if f.psi is not None else {})
                     for f in result.features},
        **rule,
    }
    summary = result.summary()
    assert summary.model_dump(mode="json") == written
    assert json.dumps(summary.model_dump(mode="json"), sort_keys=True) == json.dumps(written, sort_keys=True)
    assert summary.not_tested == {"bonus": "all_missing", "absent": "error"}
    assert DriftSummary.model_validate(json.loads(json.dumps(written))) == summary
    rows = result.rows()
    assert [r.role for r in rows] == ["feature"] * 5 + ["score"]
    assert result.as_rows()[0] == {
        "column": "age", "role": "feature", "kind": "numeric", "status": "significant",
        "psi": round(result.features[0].psi, 6), "bins": len(result.features[0].bins),
        "reference_missing_share": 0.0, "current_missing_share": 0.0, "reference_rows": 5_000,
        "current_rows": 5_000, "note": result.features[0].note, "decided_by": "fixed",
        "psi_p_value": float(f"{result.features[0].psi_p_value:.6g}"),
        "psi_p_adjusted": float(f"{result.features[0].psi_p_adjusted:.6g}"),
    }


def test_the_evidently_summary_of_a_report_not_run_keeps_its_sixteen_keys(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "evidently", None)
    reference, current = _loan_frames()
    out = evidently_drift_report(reference, current.iloc[:0], ["income", "absent"], ["home"], DriftSpec(),
                                 tmp_path / "r.html")
    written = out.model_dump(mode="json")
    assert written == {
        "ran": False, "reason": "the current batch is empty", "error": None, "html_path": None,
        "current_rows": 0, "reference_rows": 2_000, "current_sample_rows": 0, "reference_sample_rows": 2_000,
        "sample_note": "Evidently not run: the current batch is empty", "columns": [],
        "skipped": {"absent": "absent from the reference and the current batch"}, "drifted_count": None,
        "drifted_share": None, "dataset_drift": None, "per_column": {}, "seconds": written["seconds"],
    }
    assert 0 <= written["seconds"] < 5
    assert EvidentlySummary.model_validate(json.loads(json.dumps(written))).model_dump(mode="json") == written


def test_an_evidently_column_without_a_test_writes_no_description():
    bare = EvidentlyColumn(method="psi", threshold=0.2, score=0.3, drifted=None)
    assert bare.model_dump(mode="json") == {"method": "psi", "threshold": 0.2, "score": 0.3, "drifted": None}
    bare.drifted, bare.description = True, "Drift score is 0.30."
    assert bare.model_dump(mode="json")["description"] == "Drift score is 0.30."
    summary = EvidentlySummary(ran=True, current_rows=1, reference_rows=1, current_sample_rows=1,
                               reference_sample_rows=1, sample_note="", per_column={"x": EvidentlyColumn(score=1.0)})
    assert "description" not in summary.model_dump(mode="json")["per_column"]["x"]


def test_importing_the_drift_and_validation_modules_loads_neither_evidently_nor_great_expectations():
    code = ("import sys\n"
            "import tasks.drift, tasks.evidently_report, tasks.feature_drift, tasks.psi\n"
            "import tasks.validate, tasks.expectations, tasks.validate_fast\n"
            "print(sorted(m for m in ('evidently', 'great_expectations') if m in sys.modules))\n")
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_drift_modules_re_export_what_monitoring_imports():
    import tasks.drift as drift
    from tasks.evidently_report import evidently_drift_report as report
    from tasks.feature_drift import FeatureDrift
    from tasks.feature_drift import column_drift as per_column
    from tasks.psi import psi as psi_of

    assert drift.evidently_drift_report is report and drift.column_drift is per_column and drift.psi is psi_of
    assert drift.FeatureDrift is FeatureDrift and set(drift.__all__) >= {"compute_drift", "DriftResult", "DriftSummary"}
