"""Segments (issue 16 §5): the spec's ``segments``, the segment table of tasks/segments.py, and its
place in the monitoring record. Synthetic card-limit data shaped unlike the built-in models: a tiny
segment, a feature that moves in one segment only, a segment whose labels hold one class, tied
scores, a protected numeric column in its fairness bands, a banded feature, a boolean feature and
missing values. Every figure is checked against a computation written out here."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from models.errors import DataError
from models.records.monitoring import MonitoringRecord
from models.spec import parse_spec
from tasks.segments import measure_segments, segment_values, segments_markdown
from tests.helpers import BUILTIN_SPECS, builtin_spec_dict, spec_error


def _spec_dict(segments: list) -> dict:
    """A card-limit model: numeric, banded, boolean and categorical features, a protected age."""
    return {
        "name": "card_limits", "task": "binary_classification", "description": "Probability a card account defaults.",
        "intended_use": "Tests.", "limitations": ["Synthetic."],
        "source": {"kind": "file", "path": "cards.csv"},
        "columns": {
            "account": {"role": "id", "dtype": "integer"},
            "utilisation": {"role": "numeric", "min": 0, "max": 10},
            "tenure_months": {"role": "numeric", "min": 0, "max": 600},
            "contactless": {"role": "categorical", "dtype": "boolean"},
            "region": {"role": "categorical", "allowed": ["north", "south", "east", "west"], "max_null_share": 0.1},
            "age": {"role": "protected", "dtype": "integer", "min": 18, "max": 100},
        },
        "target": {"column": "defaulted", "positive": 1, "classes": [0, 1]},
        "table": {"min_rows": 100},
        "split": {"method": "stratified_holdout"},
        "candidates": [{"name": "logistic", "estimator": "logistic_regression"}],
        "gate": {"primary_metric": "roc_auc", "rules": [{"kind": "threshold", "metric": "roc_auc", "min": 0.55}]},
        "fairness": {"bands": {"age": [25, 40, 60]}, "min_group_rows": 30},
        "drift": {"min_rows": 100},
        "segments": segments,
    }


SEGMENTS = ["region", "age", {"column": "tenure_months", "bands": [12, 36]}, "contactless"]


def _frame(n: int, seed: int, regions: dict[str, int]) -> pd.DataFrame:
    """``n`` accounts with utilisation 0..4 (whole numbers: one PSI bin per value), tied scores (one
    decimal) and outcomes drawn from them; ``regions`` gives each region's row count (the rest missing)."""
    rng = np.random.default_rng(seed)
    region = np.concatenate([np.repeat(np.array([k], dtype=object), v) for k, v in regions.items()]
                            + [np.repeat(np.array([None], dtype=object), n - sum(regions.values()))])
    rng.shuffle(region)
    score = np.round(rng.uniform(0.05, 0.6, n), 1)
    return pd.DataFrame({
        "account": np.arange(n), "utilisation": rng.integers(0, 5, n).astype(float),
        "tenure_months": rng.integers(0, 72, n).astype(float), "contactless": rng.random(n) < 0.3,
        "region": region, "age": rng.integers(18, 80, n), "score": score,
        "defaulted": (rng.random(n) < score).astype(float),
    })


@pytest.fixture(scope="module")
def frames():
    reference = _frame(4000, 1, {"north": 1500, "south": 1000, "east": 1000, "west": 400})
    current = _frame(2000, 2, {"north": 800, "south": 600, "east": 560, "west": 10})
    north = (current["region"] == "north").to_numpy()
    current.loc[north, "utilisation"] = np.minimum(current.loc[north, "utilisation"] + 2, 4)  # moved in north only
    south = (current["region"] == "south").to_numpy()
    current.loc[south, "defaulted"] = 0.0  # one class in south
    current.loc[current.index[:40], "defaulted"] = np.nan  # not yet known
    return reference, current


@pytest.fixture(scope="module")
def table(frames):
    reference, current = frames
    spec = parse_spec(_spec_dict(SEGMENTS))
    rows = measure_segments(spec, current, reference, outcome_column="defaulted")
    return {(r.column, r.segment): r for r in rows}, rows


def _psi_by_value(ref: pd.Series, cur: pd.Series, floor: float = 1e-4) -> float:
    """PSI over the distinct values (the bins of a column with few values), written out."""
    values = sorted(set(ref) | set(cur))
    r = np.array([max((ref == v).mean(), floor) for v in values])
    c = np.array([max((cur == v).mean(), floor) for v in values])
    return float(np.sum((c - r) * np.log(c / r)))


def _auc_by_pairs(y: np.ndarray, p: np.ndarray) -> float:
    """ROC AUC as the share of (event, non-event) pairs ranked right, a tie counting one half."""
    pos, neg = p[y == 1], p[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def test_segments_come_in_spec_order_bands_in_band_order_and_missing_last(table, frames):
    _, rows = table
    reference, current = frames
    names = [(r.column, r.segment) for r in rows]
    assert names == [("region", "east"), ("region", "north"), ("region", "south"), ("region", "west"),
                     ("region", "(missing)"),
                     ("age", "< 25"), ("age", "[25, 40)"), ("age", "[40, 60)"), ("age", ">= 60"),
                     ("tenure_months", "< 12"), ("tenure_months", "[12, 36)"), ("tenure_months", ">= 36"),
                     ("contactless", False), ("contactless", True)]
    by = table[0]
    # a band holds its lower edge: age 40 is in [40, 60), tenure 36 in >= 36
    assert by[("age", "[40, 60)")].current_rows == int(((current["age"] >= 40) & (current["age"] < 60)).sum())
    assert by[("age", "< 25")].reference_rows == int((reference["age"] < 25).sum())
    assert by[("tenure_months", ">= 36")].current_rows == int((current["tenure_months"] >= 36).sum())
    assert by[("region", "(missing)")].current_rows == 30 and by[("region", "(missing)")].reference_rows == 100
    assert by[("contactless", True)].current_share == pytest.approx(current["contactless"].mean())


def test_a_segment_below_the_minimum_size_is_too_small_to_judge_and_has_no_figures(table):
    west = table[0][("region", "west")]
    assert (west.current_rows, west.reference_rows, west.too_small) == (10, 400, True)
    assert west.note == "too small to judge: 10 rows, fewer than fairness.min_group_rows = 30"
    assert west.score_psi is None and west.features == {} and west.labelled_rows is None
    assert west.event_rate is west.roc_auc is west.jeffreys_p_value is None
    assert all(not r.too_small for k, r in table[0].items() if k != ("region", "west"))


def test_a_feature_moved_in_one_segment_has_a_high_psi_there_only(table, frames):
    reference, current = frames
    by = table[0]
    for region in ("north", "south", "east"):
        r = by[("region", region)]
        ref = reference.loc[reference["region"] == region, "utilisation"]
        cur = current.loc[current["region"] == region, "utilisation"]
        assert r.features["utilisation"].psi == pytest.approx(_psi_by_value(ref, cur), abs=1e-6)
    assert by[("region", "north")].features["utilisation"].status == "significant"
    assert by[("region", "north")].features["utilisation"].psi > 1.0
    assert by[("region", "north")].drifted == ["utilisation"]
    assert by[("region", "south")].features["utilisation"].psi < 0.05 and by[("region", "south")].drifted == []
    assert "region" not in by[("region", "north")].features  # constant inside its own segments
    assert "tenure_months" in by[("tenure_months", "< 12")].features  # a banded column is measured in its bands
    assert by[("region", "north")].largest_feature_psi[0] == "utilisation"


def test_the_score_psi_of_a_segment_is_on_bins_frozen_on_its_reference_rows(table, frames):
    reference, current = frames
    east = table[0][("region", "east")]
    ref = reference.loc[reference["region"] == "east", "score"]
    cur = current.loc[current["region"] == "east", "score"]
    assert ref.nunique() <= 10  # one decimal: one bin per score value
    assert east.score_psi == pytest.approx(_psi_by_value(ref, cur), abs=1e-6)
    assert east.score_status == "stable"


def test_outcome_figures_with_ties_against_a_written_out_computation(table, frames):
    _, current = frames
    north = table[0][("region", "north")]
    rows = current[(current["region"] == "north") & current["defaulted"].notna()]
    y, p = rows["defaulted"].to_numpy(), rows["score"].to_numpy()
    assert north.labelled_rows == len(rows) < north.current_rows  # unknown outcomes left out
    assert north.events == int(y.sum()) and north.event_rate == pytest.approx(y.mean())
    assert north.mean_predicted == pytest.approx(p.mean())
    assert len(np.unique(p)) < 10  # heavily tied scores
    assert north.roc_auc == pytest.approx(_auc_by_pairs(y, p), abs=1e-12)
    assert north.brier == pytest.approx(np.mean((p - y) ** 2))
    assert north.jeffreys_p_value == pytest.approx(stats.beta.cdf(p.mean(), y.sum() + 0.5, len(y) - y.sum() + 0.5))


def test_a_segment_whose_labels_hold_one_class_has_no_auc_and_a_jeffreys_p_of_one_half_or_more(table, frames):
    _, current = frames
    south = table[0][("region", "south")]
    rows = current[(current["region"] == "south") & current["defaulted"].notna()]
    assert (south.events, south.event_rate, south.roc_auc) == (0, 0.0, None)
    assert "the labels hold one class: no ROC AUC" in south.note
    n, mean_pd = len(rows), rows["score"].mean()
    assert south.jeffreys_p_value == pytest.approx(stats.beta.cdf(mean_pd, 0.5, n + 0.5))
    assert south.jeffreys_p_value > 0.99  # no events at a mean PD of 0.3: far fewer than the PD allows
    assert south.brier == pytest.approx(np.mean(rows["score"] ** 2))


def test_without_a_reference_only_outcomes_are_measured_as_a_back_test_would(frames):
    _, current = frames
    spec = parse_spec(_spec_dict(["region"]))
    batch = current[["account", "score", "region", "defaulted"]].rename(columns={"defaulted": "outcome"})
    rows = measure_segments(spec, batch, outcome_column="outcome")
    north = next(r for r in rows if r.segment == "north")
    assert north.reference_rows is None and north.score_psi is None and north.features == {} and north.note is None
    assert north.event_rate == pytest.approx(batch.loc[batch["region"] == "north", "outcome"].mean())


def test_a_segment_value_only_in_the_reference_is_listed_with_no_batch_rows(frames):
    reference, current = frames
    spec = parse_spec(_spec_dict(["region"]))
    rows = measure_segments(spec, current[current["region"] != "west"], reference)
    west = next(r for r in rows if r.segment == "west")
    assert (west.current_rows, west.reference_rows, west.too_small) == (0, 400, True)


def test_a_segment_too_small_in_the_reference_or_for_psi_says_why(frames):
    reference, current = frames
    spec = parse_spec(_spec_dict(["region"]))
    ref = pd.concat([reference[reference["region"] != "east"], reference[reference["region"] == "east"].iloc[:20]])
    east = next(r for r in measure_segments(spec, current, ref) if r.segment == "east")
    assert east.score_psi is None and east.note == "20 reference rows, fewer than fairness.min_group_rows = 30: no PSI"
    small_psi = parse_spec({**_spec_dict(["region"]), "drift": {"min_rows": 1000}})
    north = next(r for r in measure_segments(small_psi, current, reference) if r.segment == "north")
    assert north.score_status == "insufficient_data" and north.score_psi is None
    assert north.note == "no PSI: 800 rows, fewer than drift.min_rows = 1000"


def test_bad_input_is_named(frames):
    _, current = frames
    spec = parse_spec(_spec_dict(["region"]))
    with pytest.raises(DataError, match=r"segments: column\(s\) \['region'\] of the spec's segments are not in the"):
        measure_segments(spec, current.drop(columns=["region"]))
    with pytest.raises(DataError, match="outcome column 'defaulted' holds 1 value"):
        measure_segments(spec, current.assign(defaulted=current["defaulted"].where(current.index != 50, 2.0)),
                         outcome_column="defaulted")
    with pytest.raises(DataError, match="the score column 'pd' is not in the batch"):
        measure_segments(spec, current, score_column="pd")
    assert measure_segments(parse_spec(_spec_dict([])), current) == []


def test_segment_values_reuse_the_fairness_bands_of_a_protected_column():
    spec = parse_spec(_spec_dict(["age"]))
    got = segment_values(spec, "age", pd.Series([18, 24, 25, 39, 40, 60, None], dtype="Float64"))
    assert list(got) == ["< 25", "< 25", "[25, 40)", "[25, 40)", "[40, 60)", ">= 60", "(missing)"]
    assert spec.segment_bands("age") == [25, 40, 60] and spec.segment_bands("region") is None


def test_the_markdown_table_shows_figures_and_too_small_segments(table):
    text = segments_markdown(table[1])
    lines = text.splitlines()
    assert lines[0].startswith("| segment | rows (reference / batch) | score PSI | largest feature PSI | drifted |")
    (west,) = [line for line in lines if line.startswith("| region = west |")]
    assert west.startswith("| region = west | 400 / 10 | too small to judge |")
    north = table[0][("region", "north")]
    (line,) = [x for x in lines if x.startswith("| region = north |")]
    assert f"| utilisation {north.features['utilisation'].psi:.4f} | utilisation |" in line
    assert f"| {north.roc_auc:.4f} |" in line and f"| {north.jeffreys_p_value:.3g} |" in line
    assert segments_markdown([]) == ""


def test_the_record_keeps_the_table_and_an_older_record_reads_without_it(table):
    base = {"ts": "2026-05-01T06:00:00+0000", "model": "card_limits", "version": 1, "verdict": "stable",
            "summary": "stable", "batch": {"label": "b.csv", "rows": 2000},
            "drift": {"tested": 5, "drifted": [], "drifted_share": 0.0, "dataset_drift": False, "threshold_share": 0.3},
            "performance": {"status": "no_labels"}}
    old = MonitoringRecord.model_validate(base)
    assert old.segments is None and "segments" not in old.to_json()
    record = old.model_copy(update={"segments": table[1]})
    line = json.loads(json.dumps(record.to_json()))
    back = MonitoringRecord.model_validate(line)
    assert back.segments == table[1]
    assert [s["segment"] for s in line["segments"]][-2:] == [False, True]  # a boolean segment stays a boolean
    south = next(s for s in line["segments"] if s["segment"] == "south")
    assert south["roc_auc"] is None and math.isclose(south["event_rate"], 0.0)


def test_the_monitoring_record_and_markdown_carry_the_table_and_the_verdict_ignores_it(table, frames):
    from models.records.drift import EvidentlySummary
    from tasks.drift import compute_drift
    from tasks.monitor import build_record, drift_markdown, performance

    reference, current = frames
    spec = parse_spec(_spec_dict(SEGMENTS))
    drift = compute_drift(reference, current, spec.numeric_features, spec.categorical_features, spec.drift,
                          score_column="score")
    evidently = EvidentlySummary(ran=False, reason="not run in this test", current_rows=len(current),
                                 reference_rows=len(reference), current_sample_rows=0, reference_sample_rows=0,
                                 sample_note="not run")
    perf = performance(spec, current, current["score"].to_numpy(), {})
    common = dict(version=1, run_id=None, batch_label="cards.csv", frame=current, table=current, drift=drift,
                  evidently=evidently, perf=perf, ts="2026-05-01T06:00:00+0000")
    without = build_record(spec, **common).record
    record = build_record(spec, **common, segments=table[1]).record
    assert record.verdict == without.verdict and record.summary == without.summary  # measured, not judged
    assert without.segments is None and record.segments == table[1]
    north_psi = table[0][("region", "north")].features["utilisation"].psi
    assert north_psi >= spec.drift.psi_significant and "utilisation" not in record.drift.drifted  # diluted overall
    text = drift_markdown(record)
    assert "Segments (measured, not part of the verdict):" in text and "| region = west | 400 / 10 | too small" in text
    assert "Segments" not in drift_markdown(without)


def test_spec_segments_are_refused_naming_the_entry():
    assert "segments.0: 'regoin' is not a declared column, did you mean 'region'" in spec_error(_spec_dict(["regoin"]))
    assert ("segments.0: 'utilisation' is a numeric feature: one segment per distinct value would give segments of a "
            "row or two; give its bands, e.g. segments: [{column: utilisation, bands: [1000, 5000]}]"
            in spec_error(_spec_dict(["utilisation"])))
    assert "segments.0: column 'account' has role 'id' (one segment per row)" in spec_error(_spec_dict(["account"]))
    assert "bands of 'tenure_months': cut points must be strictly increasing" in spec_error(
        _spec_dict([{"column": "tenure_months", "bands": [36, 12]}]))
    assert "an entry of segments is a column name or {column: <name>, bands: [cut points]}, got 7" in spec_error(
        _spec_dict([7]))
    spec = parse_spec(_spec_dict(SEGMENTS))
    assert spec.segment_columns == ["region", "age", "tenure_months", "contactless"]
    assert spec.model_dump(mode="json")["segments"] == ["region", "age", {"column": "tenure_months",
                                                                           "bands": [12.0, 36.0]}, "contactless"]


@pytest.mark.parametrize("name", sorted(p.stem for p in BUILTIN_SPECS.glob("*.yaml")))
def test_no_segments_leave_a_spec_dump_and_hash_as_before(name):
    data = builtin_spec_dict(name)
    spec = parse_spec(data)
    assert "segments" not in spec.model_dump(mode="json") and spec.segments == []
    assert parse_spec({**data, "segments": []}).content_hash() == spec.content_hash()
