"""Segments in back-tests (issue 16 §5): the spec's segment columns are kept in the scoring ledger
as scored, and the back-test measures each version's matured outcomes per segment. Synthetic
card data: a segment too small to judge, a segment whose outcomes hold one class, a banded
numeric column, rows ledgered before the spec declared a segment, two versions. Figures are
checked against scipy and scikit-learn."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from models.ledger import SEGMENT_PREFIX, append_ledger, ledger_frame, read_ledger
from models.spec import parse_spec
from tasks.backtest import backtest_record, matured_segments
from tasks.backtest_report import report_tables
from tasks.ledger import ledger_scored_rows
from tests.unit.test_segments import _spec_dict

SEGMENTS = ["region", {"column": "tenure_months", "bands": [12, 36]}]


def _batch(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    region = np.array(["north"] * (n // 2) + ["south"] * (n // 2 - 12) + ["west"] * 12, dtype=object)
    rng.shuffle(region)
    table = pd.DataFrame({"account": np.arange(n), "region": region,
                          "tenure_months": rng.integers(0, 72, n).astype(float),
                          "utilisation": rng.uniform(0, 4, n)})
    scores = np.round(rng.uniform(0.05, 0.6, n), 2)  # ties
    outcome = (rng.random(n) < scores).astype(float)
    outcome[region == "south"] = 0.0  # one class in south
    return table, scores, outcome


@pytest.fixture()
def spec():
    return parse_spec(_spec_dict(SEGMENTS))


def _matured(root, spec, table, scores, outcome, version, run):
    (root / spec.name).mkdir(exist_ok=True)
    out = ledger_scored_rows.fn(spec, root, table, scores, version, run, "2025-02-01T00:00:00", as_of="2025-01-31")
    assert out["rows"] == len(table)
    ledger = read_ledger(root, spec.name)
    mine = ledger[ledger["run_id"] == run].reset_index(drop=True)
    return ledger, mine.assign(outcome=outcome[np.argsort(table["account"].to_numpy())])


def test_the_ledger_keeps_the_segment_columns_as_scored(tmp_path, spec):
    table, scores, outcome = _batch(400, 1)
    _, rows = _matured(tmp_path, spec, table, scores, outcome, 1, "run-1")
    assert f"{SEGMENT_PREFIX}region" in rows and f"{SEGMENT_PREFIX}tenure_months" in rows
    by_id = rows.set_index("id")
    assert by_id.loc["7", f"{SEGMENT_PREFIX}region"] == table.loc[7, "region"]
    assert by_id.loc["7", f"{SEGMENT_PREFIX}tenure_months"] == table.loc[7, "tenure_months"]
    assert "utilisation" not in rows and f"{SEGMENT_PREFIX}utilisation" not in rows


def test_each_versions_matured_outcomes_are_measured_per_segment(tmp_path, spec):
    table, scores, outcome = _batch(400, 1)
    _, rows = _matured(tmp_path, spec, table, scores, outcome, 1, "run-1")
    found = {(r["column"], r["segment"]): r for r in matured_segments(spec, rows)}
    assert {k for k in found if k[0] == "region"} == {("region", "north"), ("region", "south"), ("region", "west")}
    assert {k[1] for k in found if k[0] == "tenure_months"} == {"< 12", "[12, 36)", ">= 36"}
    y, p = rows["outcome"].to_numpy(), rows["score"].to_numpy()
    north = (rows[f"{SEGMENT_PREFIX}region"] == "north").to_numpy()
    n, d, pd_bar = int(north.sum()), int(y[north].sum()), float(p[north].mean())
    r = found[("region", "north")]
    assert r["version"] == 1 and r["current_rows"] == n == 200 and r["labelled_rows"] == n and r["events"] == d
    assert r["event_rate"] == pytest.approx(d / n) and r["mean_predicted"] == pytest.approx(pd_bar)
    assert r["roc_auc"] == pytest.approx(roc_auc_score(y[north], p[north]))
    assert r["brier"] == pytest.approx(np.mean((p[north] - y[north]) ** 2))
    assert r["jeffreys_p_value"] == pytest.approx(stats.beta.cdf(pd_bar, d + 0.5, n - d + 0.5))
    assert r["jeffreys_light"] == spec.validation.policy.colour(r["jeffreys_p_value"])
    assert r["score_psi"] is None  # no reference sample in a back-test
    south = found[("region", "south")]
    assert south["events"] == 0 and south["roc_auc"] is None and "one class" in south["note"]
    assert south["jeffreys_light"] == "green"  # no defaults: never more than the PD allows
    west = found[("region", "west")]
    assert west["too_small"] and west["current_rows"] == 12 and west["events"] is None
    band = (rows[f"{SEGMENT_PREFIX}tenure_months"] >= 36).to_numpy()
    assert found[("tenure_months", ">= 36")]["current_rows"] == int(band.sum())


def test_rows_ledgered_before_the_segments_were_declared_fall_in_missing(tmp_path, spec):
    table, scores, outcome = _batch(400, 2)
    (tmp_path / spec.name).mkdir()
    old = ledger_frame(pd.Series(range(1000, 1060)), "2024-12-31", 1, np.full(60, 0.2), None, "run-0",
                       "2025-01-01")  # no segment columns: the spec had no segments then
    append_ledger(tmp_path, spec.name, old, "run-0")
    ledger, rows = _matured(tmp_path, spec, table, scores, outcome, 2, "run-1")
    earlier = ledger[ledger["run_id"] == "run-0"].assign(outcome=0.0)
    both = pd.concat([earlier, rows], ignore_index=True)
    found = {(r["version"], r["column"], r["segment"]): r for r in matured_segments(spec, both)}
    assert found[(1, "region", "(missing)")]["current_rows"] == 60
    assert found[(1, "region", "(missing)")]["events"] == 0
    assert (2, "region", "(missing)") not in found and found[(2, "region", "north")]["current_rows"] == 200


def test_the_back_test_record_and_report_carry_the_segment_table(tmp_path, spec):
    table, scores, outcome = _batch(400, 3)
    ledger, rows = _matured(tmp_path, spec, table, scores, outcome, 1, "run-1")
    rows = rows.assign(outcome_date=pd.Timestamp("2026-01-31", tz="UTC"))
    record = backtest_record(spec, ledger, rows, {})
    assert len(record["segments"]) == 6
    tables = {t.name: t for t in report_tables(record, None)}
    seg = tables["segments"].frame
    assert list(seg.columns[:4]) == ["version", "column", "segment", "rows"]
    north = seg[(seg["column"] == "region") & (seg["segment"] == "north")].iloc[0]
    assert north["rows"] == 200 and north["jeffreys_p"] == pytest.approx(
        [r for r in record["segments"] if r["segment"] == "north"][0]["jeffreys_p_value"])
    without = parse_spec(_spec_dict([]))
    assert backtest_record(without, ledger, rows, {})["segments"] is None
