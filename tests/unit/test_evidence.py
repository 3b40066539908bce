"""The evidence a version records about its development data (issue 12, sections 3 and 6):
duplicates counted per fold, the holdout's period, per-fold walk-forward metrics with dates, and
a drift reference that is the whole development sample."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from models.spec import find_spec
from tasks.leakage import duplicate_rows
from tasks.load import (
    load_source,
    modelling_table,
    parse_declared_types,
    split_out_of_time,
)
from tasks.split import Fold, SplitPlan, plan_split
from tests.helpers import BUILTIN_SPECS


@pytest.fixture(scope="module")
def market():
    """market_forecast's development modelling table (1950-2015) and its walk-forward plan."""
    spec = find_spec("market_forecast", BUILTIN_SPECS)
    raw = parse_declared_types(load_source(spec), spec)
    table = modelling_table(split_out_of_time(raw, spec)[0], spec)
    return spec, table, plan_split.fn(table, spec)


def test_walk_forward_duplicates_are_counted_against_each_folds_own_training_rows(market):
    spec, table, plan = market
    dup = duplicate_rows(spec, table, plan)
    # pooled over every fold's training rows, 3,971 of the 4,970 holdout rows (80 %) were counted:
    # the earlier test blocks are training rows of the later folds
    assert dup["holdout_rows"] == 4970 and len(dup["per_fold"]) == 5
    assert dup["duplicated_in_training"] == 0 and dup["share"] == 0.0
    assert [f["test_rows"] for f in dup["per_fold"]] == [994] * 5


def test_a_test_row_copying_a_row_of_its_own_folds_training_window_is_counted(market):
    spec, table, _ = market
    small = table.iloc[:300].reset_index(drop=True)
    small = pd.concat([small, small.iloc[[10, 20]], small.iloc[[250]]], ignore_index=True)  # rows 300-302
    # fold 0 trains on 0-199 and tests 200-249 plus the copies of rows 10 and 20 (300, 301);
    # fold 1 trains on 0-249 and tests 250-299 plus the copy of row 250 (302), which is a test row of
    # fold 1 itself, not a training row: not a duplicate
    plan = SplitPlan("walk_forward", [Fold(np.arange(200), np.r_[np.arange(200, 250), 300, 301]),
                                      Fold(np.arange(250), np.r_[np.arange(250, 300), 302])],
                     final_train=np.arange(303), refit_final=True)
    dup = duplicate_rows(spec, small, plan)
    assert [f["duplicated_in_training"] for f in dup["per_fold"]] == [2, 0]
    assert dup["duplicated_in_training"] == 2 and dup["holdout_rows"] == 103
    assert dup["share"] == pytest.approx(2 / 103)


@pytest.fixture(scope="module")
def market_version(market, tmp_path_factory):
    """market_forecast's linear HAR candidate through the walk-forward backtest, evaluated, gated
    and promoted into a fresh registry (no Keras, no Prefect)."""
    from tasks.evaluate import evaluate_fitted
    from tasks.gate import apply_gate
    from tasks.promote import TrainingEvidence, decide
    from tasks.train import fit_candidate

    spec, table, plan = market
    fitted = [fit_candidate.fn(spec, spec.candidates[0], table, plan)]  # linear_har
    evaluation = evaluate_fitted.fn(spec, table, plan, fitted)
    ev = TrainingEvidence(
        spec=spec, run_id="test-run", reason="manual", started_at="2026-01-01T00:00:00+00:00",
        data={"rows": len(table), "development_rows": len(table), "out_of_time_rows": 0, "sha256": "0" * 64,
              "period": ["1950-01-03", "2015-12-31"]},
        validation={"evaluated": 0, "critical_failures": 0, "warnings": 0},
        split=plan.describe(table, spec.time_column), evaluation=evaluation, best=fitted[0], champion=None,
        gate=apply_gate.fn(spec, evaluation, None), table=table, plan=plan,
        leakage={"duplicates": duplicate_rows(spec, table, plan)},
    )
    root = tmp_path_factory.mktemp("evidence")
    decision = decide(ev, root / "registry", root / "reports")
    assert decision.promoted, decision.reason
    from models.registry import ModelRegistry

    registry = ModelRegistry(root / "registry", spec.name)
    return {"ev": ev, "evaluation": evaluation, "folder": registry.version_dir(decision.version),
            "meta": registry.read_metadata(decision.version)}


def test_the_split_records_the_holdout_period_and_each_folds_dates(market):
    spec, table, plan = market
    d = plan.describe(table, spec.time_column)
    dates = pd.to_datetime(table["Date"])
    assert d["holdout_period"] == ["1996-03-28", "2015-12-23"] == [str(dates.iloc[plan.holdout[0]].date()), str(dates.iloc[-1].date())]
    assert d["final_train_period"] == [str(dates.iloc[0].date()), str(dates.iloc[-1].date())]
    assert d["final_train_period"][0] < "1951-01-01"
    for row, fold in zip(d["folds"], plan.folds):
        assert row["train_period"] == [str(dates.iloc[fold.train[0]].date()), str(dates.iloc[fold.train[-1]].date())]
        assert row["test_period"] == [str(dates.iloc[fold.test[0]].date()), str(dates.iloc[fold.test[-1]].date())]
        assert row["train_period"][1] < row["test_period"][0]  # the gap lies between them
    tests = [r["test_period"] for r in d["folds"]]
    assert all(a[1] < b[0] for a, b in itertools.pairwise(tests))  # consecutive blocks, in time order
    assert "holdout_period" not in plan.describe()  # without the table: sizes only, as before


def test_walk_forward_metrics_are_computed_on_each_folds_test_block(market_version):
    from models.metrics import rmse

    evaluation = market_version["evaluation"]
    folds = evaluation.folds
    assert [f["fold"] for f in folds] == [0, 1, 2, 3, 4] and [f["test_rows"] for f in folds] == [994] * 5
    for k, f in enumerate(folds):
        block = slice(994 * k, 994 * (k + 1))
        assert f["error"] is None
        assert f["metrics"]["rmse"] == pytest.approx(rmse(evaluation.y[block], evaluation.scores[block]))
        assert f["metrics"]["baseline_rmse"] == pytest.approx(
            rmse(evaluation.y[block], evaluation.baselines["persistence"][block]))
    # equal blocks: the pooled holdout MSE is the mean of the folds' MSEs
    pooled = np.mean([f["metrics"]["rmse"] ** 2 for f in folds])
    assert evaluation.metrics["rmse"] == pytest.approx(np.sqrt(pooled))
    assert len({round(f["metrics"]["rmse"], 6) for f in folds}) == 5  # five different blocks


def test_market_forecast_card_and_metadata_give_the_periods_per_fold_metrics_and_no_duplicates(market_version):
    meta, folder = market_version["meta"], market_version["folder"]
    split = meta["split"]
    assert [f["fold"] for f in meta["fold_metrics"]] == [0, 1, 2, 3, 4]
    assert all(f["metrics"]["rmse"] > 0 for f in meta["fold_metrics"])
    assert meta["leakage"]["duplicates"]["duplicated_in_training"] == 0
    card = (folder / "model_card.md").read_text()
    start, end = split["holdout_period"]
    assert f"- Holdout period: {start} to {end}; the selected model was fitted on rows from 1950-" in card
    assert "| fold | training rows | training period | test rows | test period | rmse |" in card
    for k, (f, s) in enumerate(zip(meta["fold_metrics"], split["folds"])):
        row = (f"| {k + 1} | {s['train_rows']} | {s['train_period'][0]} to {s['train_period'][1]} | 994 | "
               f"{s['test_period'][0]} to {s['test_period'][1]} | {f['metrics']['rmse']:.4f} |")
        assert row in card, row
    assert "- Holdout rows identical to a training row: 0 of 4970" in card
    assert ("- Drift reference (`reference.parquet`): all 16580 rows of the development modelling table, scored by "
            "this version (16580 of them rows it was fitted on: in-sample scores)") in card
    evaluation = __import__("json").loads((folder / "reports" / "evaluation.json").read_text())
    assert evaluation["fold_metrics"] == meta["fold_metrics"]


def test_market_forecast_card_shows_every_baseline_with_rmse_mae_qlike_and_diebold_mariano(market_version):
    """Issue 19 §4: the forecast section lists the candidate and the six baselines with their pooled and
    per-fold losses, the Diebold-Mariano intervals against each baseline, and the chart; metadata too."""
    from models.metrics import mae, qlike, rmse

    meta, folder, evaluation = market_version["meta"], market_version["folder"], market_version["evaluation"]
    rec = meta["forecast"]
    names = ["persistence", "ewma", "garch", "gjr", "har", "log_har"]
    assert [m["name"] for m in rec["models"]] == ["linear_har", *names] and not rec["fits"]["errors"]
    y = evaluation.y
    card = (folder / "model_card.md").read_text()
    assert "## Forecast comparison (holdout)" in card and "| model | RMSE | MAE | QLIKE |" in card
    for m in rec["models"][1:]:
        f = evaluation.baselines[m["name"]]
        assert m["pooled"] == pytest.approx({"rmse": rmse(y, f), "mae": mae(y, f), "qlike": qlike(y, f)})
        assert f"| {m['name']} (baseline) | {rmse(y, f):.4f} | {mae(y, f):.4f} | {qlike(y, f):.4f} |" in card
        assert len(m["folds"]) == 5
    dm = [r for r in rec["diebold_mariano"] if r["candidate"] == "linear_har"]
    assert {(r["baseline"], r["metric"]) for r in dm} == {(b, m) for b in names for m in ("rmse", "mae", "qlike")}
    assert all(r["ci_low"] < r["diff"] < r["ci_high"] for r in dm)
    assert [len(f) for f in (rec["fits"]["folds"])] == [7] * 5  # fold, train_rows and the five fitted baselines
    assert "![forecast and baselines](reports/forecast_baselines.png)" in card
    assert (folder / "reports" / "forecast_baselines.png").stat().st_size > 10_000
    assert "forecast_baselines" not in card.split("## Plots")[1]  # shown once, in its section
    stored = __import__("json").loads((folder / "reports" / "evaluation.json").read_text())
    assert stored["forecast"]["diebold_mariano"] == rec["diebold_mariano"]


def test_the_reference_is_the_whole_development_sample_scored_by_the_promoted_model(market, market_version):
    from models.estimators import predict_scores

    spec, table, _ = market
    folder, meta = market_version["folder"], market_version["meta"]
    reference = pd.read_parquet(folder / "reference.parquet")
    # it was the 4,970 holdout rows (1996-2015); now every development row (1950-2015)
    assert len(reference) == len(table) == 16580
    assert list(reference.columns) == [*table.columns, "score"]  # the same columns as before
    pd.testing.assert_frame_equal(reference.drop(columns="score"), table)  # in table (time) order
    pipeline = market_version["ev"].best.pipeline  # the refit on every row: the promoted pipeline
    np.testing.assert_allclose(reference["score"], predict_scores(pipeline, table[spec.feature_columns], "regression"))
    assert meta["reference"] == {"rows": 16580, "source": "development sample", "modelling_rows": 16580,
                                 "sampled": False, "seed": None, "in_sample_rows": 16580}
    assert meta["holdout"]["rows"] == 4970  # the holdout stays the sample of the performance figures


def test_a_development_sample_above_reference_rows_is_sampled_with_the_split_seed_in_time_order(market_version):
    import dataclasses

    from tasks.promote import reference_info, reference_rows, reference_sample

    ev = market_version["ev"]
    small = ev.spec.model_copy(update={"drift": ev.spec.drift.model_copy(update={"reference_rows": 1000})})
    ev = dataclasses.replace(ev, spec=small)
    rows = reference_rows(ev)
    assert len(rows) == 1000 and len(np.unique(rows)) == 1000 and (np.diff(rows) > 0).all()
    np.testing.assert_array_equal(rows, reference_rows(ev))  # seeded: the same rows every time
    assert rows.min() < 2000 and rows.max() > 14_000  # drawn from the whole development period
    ref = reference_sample(ev)
    assert len(ref) == 1000 and pd.to_datetime(ref["Date"]).is_monotonic_increasing
    assert reference_info(ev).model_dump() == {"rows": 1000, "source": "development sample",
                                               "modelling_rows": 16580, "sampled": True, "seed": 0,
                                               "in_sample_rows": 1000}


def test_a_stratified_holdouts_reference_holds_training_and_holdout_rows(tmp_path):
    """The promoted pipeline of a single holdout is the fold's own fit: its scores are in-sample on the
    training rows (2,672 of credit_risk's 3,563) and out-of-sample on the holdout rows."""
    from models.estimators import predict_scores
    from tasks.promote import TrainingEvidence, reference_info, reference_sample
    from tasks.train import fit_candidate

    spec = find_spec("credit_risk", BUILTIN_SPECS)
    table = modelling_table(split_out_of_time(parse_declared_types(load_source(spec), spec), spec)[0], spec)
    plan = plan_split.fn(table, spec)
    fitted = fit_candidate.fn(spec, spec.candidates[0], table, plan)  # logistic regression
    ev = TrainingEvidence(spec=spec, run_id=None, reason="manual", started_at="", data={}, validation={},
                          split={}, evaluation=None, best=fitted, champion=None, gate=None, table=table, plan=plan)
    ref = reference_sample(ev)
    assert len(ref) == 3563 and ref["rownames"].tolist() == table["rownames"].tolist()
    np.testing.assert_allclose(ref["score"], predict_scores(fitted.pipeline, table[spec.feature_columns],
                                                            spec.estimator_task))
    np.testing.assert_allclose(ref["score"].to_numpy()[plan.holdout], fitted.holdout_scores)  # the same model
    info = reference_info(ev)
    assert (info.rows, info.sampled, info.in_sample_rows) == (3563, False, 2672) == (len(table), False,
                                                                                       len(plan.final_train))
