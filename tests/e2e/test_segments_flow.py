"""Segments through the real flows (issue 16 §5): a small synthetic card-limit model with
``segments`` is trained, and monitoring a batch whose utilisation moved in one region only records
the segment table (and shows it in the verdict markdown), without changing the verdict's rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers import write_spec

pytestmark = pytest.mark.usefixtures("prefect_api")


def _accounts(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    region = rng.choice(["north", "south", "east", "west"], size=n, p=[0.4, 0.3, 0.29, 0.01])
    utilisation = rng.uniform(0, 5, n).round(2)
    tenure = rng.integers(0, 120, n)
    logit = -2.0 + 0.6 * utilisation - 0.01 * tenure + np.where(region == "south", 0.4, 0.0)
    return pd.DataFrame({
        "account": np.arange(seed * 100_000, seed * 100_000 + n), "utilisation": utilisation, "tenure_months": tenure,
        "region": region, "age": rng.integers(18, 80, n),
        "defaulted": (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int),
    })


def _spec() -> dict:
    return {
        "name": "card_segments", "task": "binary_classification", "description": "Probability a card account defaults.",
        "intended_use": "Tests.", "limitations": ["Synthetic."], "source": {"kind": "file", "path": "cards.csv"},
        "columns": {"account": {"role": "id", "dtype": "integer"},
                    "utilisation": {"role": "numeric", "min": 0, "max": 10},
                    "tenure_months": {"role": "numeric", "min": 0, "max": 600},
                    "region": {"role": "categorical", "allowed": ["north", "south", "east", "west"]},
                    "age": {"role": "protected", "dtype": "integer", "min": 18, "max": 100}},
        "target": {"column": "defaulted", "positive": 1, "classes": [0, 1]},
        "table": {"min_rows": 500, "unique": ["account"]},
        "split": {"method": "stratified_holdout", "seed": 3},
        "candidates": [{"name": "logistic", "estimator": "logistic_regression"}],
        "gate": {"primary_metric": "roc_auc", "rules": [{"kind": "threshold", "metric": "roc_auc", "min": 0.6}]},
        "fairness": {"bands": {"age": [30, 50]}},
        "segments": ["region", "age", {"column": "tenure_months", "bands": [24, 60]}],
    }


def test_monitoring_records_and_shows_the_segment_table(finml_env):
    from flows.monitoring import monitor_model
    from flows.training import train_model

    specs = finml_env["specs"]
    _accounts(3000, 1).to_csv(specs / "cards.csv", index=False)
    write_spec(specs, _spec())
    summary = train_model("card_segments")
    assert summary["promoted"], summary["reason"]

    batch = _accounts(1500, 2)
    north = batch["region"] == "north"
    batch.loc[north, "utilisation"] = (batch.loc[north, "utilisation"] * 1.8).clip(upper=10).round(2)
    path = finml_env["root"] / "batch.csv"
    batch.to_csv(path, index=False)
    record = monitor_model("card_segments", batch=str(path))

    by = {(r.column, r.segment): r for r in record.segments}
    assert [k for k in by if k[0] == "age"] == [("age", "< 30"), ("age", "[30, 50)"), ("age", ">= 50")]
    assert [k for k in by if k[0] == "tenure_months"] == [("tenure_months", "< 24"), ("tenure_months", "[24, 60)"),
                                                          ("tenure_months", ">= 60")]
    west = by[("region", "west")]
    assert west.current_rows == int((batch["region"] == "west").sum()) < 30 and west.too_small
    assert west.score_psi is None and west.event_rate is None
    assert by[("region", "north")].features["utilisation"].status == "significant"
    assert by[("region", "north")].score_status in ("moderate", "significant")
    for region in ("south", "east"):
        assert by[("region", region)].features["utilisation"].status == "stable", region
    south = by[("region", "south")]
    rows = batch[batch["region"] == "south"]
    assert south.current_rows == len(rows) and south.labelled_rows == len(rows)
    assert south.event_rate == pytest.approx(rows["defaulted"].mean())
    assert 0.5 < south.roc_auc < 1 and 0 <= south.jeffreys_p_value <= 1
    assert sum(r.current_rows for r in record.segments if r.column == "age") == len(batch)

    line = json.loads((finml_env["registry"] / "card_segments" / "monitoring.jsonl").read_text().splitlines()[-1])
    assert [s["segment"] for s in line["segments"] if s["column"] == "region"] == ["east", "north", "south", "west"]
    from tasks.monitor import drift_markdown

    text = drift_markdown(record)
    assert "Segments (measured, not part of the verdict):" in text and "| region = west |" in text

    # the back-test: the batch scored (ledgered with its segment columns), its outcomes arriving later
    from flows.backtest import backtest_model
    from flows.monitoring import score_batch

    unlabelled = finml_env["root"] / "to_score.csv"
    batch.drop(columns=["defaulted"]).to_csv(unlabelled, index=False)
    scored = score_batch("card_segments", batch=str(unlabelled), output=str(finml_env["root"] / "scores.parquet"),
                         as_of="2025-03-31")
    assert scored["ledger"]["rows"] == len(batch)
    outcomes = finml_env["root"] / "outcomes.csv"
    batch.assign(outcome_date="2026-03-31")[["account", "defaulted", "outcome_date"]].to_csv(outcomes, index=False)
    result = backtest_model("card_segments", labels=str(outcomes))
    assert result["join"]["joined"] == len(batch)
    seg = {(r["column"], r["segment"]): r for r in result["backtest"]["segments"]}
    assert seg[("region", "west")]["too_small"] and seg[("region", "west")]["events"] is None
    for band, rows in (("< 30", batch[batch["age"] < 30]), (">= 50", batch[batch["age"] >= 50])):
        r = seg[("age", band)]  # the protected column, measured in its fairness bands
        assert r["current_rows"] == r["labelled_rows"] == len(rows) and r["events"] == int(rows["defaulted"].sum())
    folder = Path(result["folder"])
    assert folder.parent == finml_env["reports"] / "card_segments" / "backtest"
    csv = pd.read_csv(folder / "segments.csv")
    assert set(csv["column"]) == {"region", "age", "tenure_months"} and len(csv) == len(seg)
