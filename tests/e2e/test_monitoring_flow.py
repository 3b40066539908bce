"""End to end: monitoring and scoring through Prefect on the bundled real data."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from flows.cli import app
from models.records.monitoring import MONITORING_SCHEMA_VERSION
from models.registry import ModelRegistry
from models.spec import find_spec
from tasks.load import load_source, split_out_of_time
from tests.helpers import BUILTIN_SPECS

pytestmark = pytest.mark.usefixtures("prefect_api")


@pytest.fixture(scope="module")
def credit_later():
    """The credit data's held-back later rows (891), as loaded from the source."""
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    return split_out_of_time(load_source(spec), spec)[1]


def _history(trained, model="credit_risk"):
    return ModelRegistry(trained["registry"], model).monitoring_history()


def test_stable_batch_gives_no_alarm_and_records_every_value(trained, captured_events):
    from flows.monitoring import monitor_model

    before = len(_history(trained))
    record = monitor_model("credit_risk", batch="out_of_time")
    assert record.verdict == "stable", record.summary
    d = record.drift
    spec = find_spec("credit_risk", BUILTIN_SPECS)
    assert set(d.features) == set(spec.feature_columns)  # every feature, ids never
    assert "rownames" not in d.features
    assert all(f.status in ("stable", "moderate") for f in d.features.values())
    assert d.dataset_drift is False and 0.0 <= d.score_psi < 0.1
    perf = record.performance
    assert perf.status == "evaluated" and perf.labelled_rows == 891
    assert 0.78 < perf.metrics["roc_auc"] < 0.92 and perf.breaches == []
    assert abs(perf.calibration.mean_predicted - perf.calibration.observed_rate) < 0.03
    html = Path(record.evidently.html_path)
    assert html.is_file() and html.stat().st_size > 100_000
    assert str(trained["reports"]) in str(html)
    assert captured_events == []  # nothing emitted on a stable batch
    history = _history(trained)
    assert len(history) == before + 1
    assert history[-1]["drift"]["features"]["Income"]["psi"] == pytest.approx(d.features["Income"].psi)
    assert history[-1]["batch"]["rows"] == 891 and len(history[-1]["batch"]["sha256"]) == 64
    assert history[-1]["schema_version"] == MONITORING_SCHEMA_VERSION  # the record's JSON, versioned
    typed = ModelRegistry(trained["registry"], "credit_risk").monitoring_records()[-1]
    assert typed.to_json() == history[-1]  # the stored line reads back into the same record
    compared = record.spec_comparison  # the spec file is the one the version was trained with
    assert compared.differences == [] and compared.current_sha256 == compared.stored_sha256 == spec.content_hash()


def test_shifted_batch_raises_the_drift_event(trained, credit_later, tmp_path, captured_events):
    from flows.monitoring import monitor_model

    shifted = credit_later.copy()
    shifted["Income"] = shifted["Income"] * 2.5
    shifted["Amount"] = shifted["Amount"] * 1.8
    shifted["Seniority"] = shifted["Seniority"] + 12
    rng = np.random.default_rng(0)
    shifted.loc[rng.random(len(shifted)) < 0.8, "Home"] = "rent"  # rent: about 22 % -> 80 %
    shifted.loc[rng.random(len(shifted)) < 0.7, "Records"] = "yes"  # yes: about 17 % -> 70 %
    path = tmp_path / "shifted.csv"
    shifted.to_csv(path, index=False)
    record = monitor_model("credit_risk", batch=str(path))
    assert record.verdict in ("drift", "drift_and_performance_breach")
    d = record.drift
    assert {"Income", "Amount", "Seniority", "Home", "Records"} <= set(d.drifted)
    assert d.drifted_share == pytest.approx(len(d.drifted) / d.tested) and d.drifted_share >= 0.3
    assert len(captured_events) == 1
    event = captured_events[0]
    assert event["event"] == "finml.drift.detected"
    assert event["resource"]["prefect.resource.id"] == "finml.model.credit_risk"
    payload = event["payload"]
    assert payload["model"] == "credit_risk" and payload["version"] == 1
    assert payload["drift_share"] == d.drifted_share
    assert set(payload["top_features"]) <= set(d.drifted) and len(payload["top_features"]) == 3
    assert payload["breached_metrics"] == record.performance.breaches
    assert _history(trained)[-1]["verdict"] == record.verdict


def test_a_stuck_feed_is_a_data_quality_alarm_not_stable_and_not_retraining(trained, credit_later, tmp_path,
                                                                           captured_events):
    """Income stuck on one in-range value passes the serving suite; monitoring must not call it stable."""
    from flows.monitoring import monitor_model
    from tasks.monitor import drift_markdown

    stuck = credit_later.drop(columns=["Status"]).assign(Income=130.0)  # no labels: drift alone decides
    path = tmp_path / "stuck.csv"
    stuck.to_csv(path, index=False)
    record = monitor_model("credit_risk", batch=str(path))
    assert record.verdict == "data_quality_alarm", record.summary
    assert record.drift.batch_faults == ["Income"]
    assert record.drift.features["Income"].status == "constant"
    assert "stuck, broken or changed feed" in record.summary and "Income" in record.summary
    assert "a stuck feed?" in record.drift.features["Income"].note
    assert [e["event"] for e in captured_events] == ["finml.data-quality.alarm"]  # not finml.drift.detected
    assert captured_events[0]["payload"]["batch_faults"] == ["Income"]
    assert _history(trained)[-1]["verdict"] == "data_quality_alarm"
    # with its labels the stuck feed also costs AUC; that breach is the feed's doing: still a person, not a retraining
    captured_events.clear()
    labelled = tmp_path / "stuck_labelled.csv"
    credit_later.assign(Income=130.0).to_csv(labelled, index=False)
    record = monitor_model("credit_risk", batch=str(labelled))
    assert record.verdict == "data_quality_alarm" and record.performance.status == "evaluated"
    assert [e["event"] for e in captured_events] == ["finml.data-quality.alarm"]
    assert captured_events[0]["payload"]["breached_metrics"] == record.performance.breaches
    table = drift_markdown(record).split("| feature | PSI | status | note |")[1]
    assert table.index("| Income | - | constant") > max(table.index(f"| {c} |") for c in ("Age", "Home"))


def test_labels_of_a_single_class_are_a_data_quality_alarm_with_calibration(trained, credit_later, tmp_path,
                                                                          captured_events):
    """891 labels, all "good": the event rate 0 is outside the spec's expected [0.15, 0.45]; rank
    metrics are undefined, but calibration in the large is not (it used to say only
    "insufficient_labels" and call the batch stable)."""
    from flows.monitoring import monitor_model

    path = tmp_path / "all_good.csv"
    credit_later.assign(Status="good").to_csv(path, index=False)
    record = monitor_model("credit_risk", batch=str(path))
    perf = record.performance
    assert perf.status == "single_class_labels" and perf.labelled_rows == 891
    assert perf.calibration.observed_rate == 0.0 and perf.calibration.ratio is None
    # with all-zero labels the Brier score is the mean squared score, at least the squared mean
    assert perf.calibration.brier > perf.calibration.mean_predicted ** 2 > 0.0
    assert 0.15 < perf.calibration.mean_predicted < 0.45
    p_value = 0.85 ** 891  # P(no event in 891 labels | rate 0.15), the exact binomial p-value
    assert perf.label_fault == ("the labelled rows' event rate 0.000 is outside the expected [0.15, 0.45] "
                                   f"(891 labels, exact binomial p = {p_value:.2g} < drift.fault_alpha 0.001)")
    assert record.verdict == "data_quality_alarm" and "label Status:" in record.summary
    assert [e["event"] for e in captured_events] == ["finml.data-quality.alarm"]
    assert captured_events[0]["payload"]["label_fault"] == perf.label_fault


def test_tiny_batch_is_insufficient_data_not_an_alarm(trained, credit_later, tmp_path, captured_events):
    from flows.monitoring import monitor_model

    path = tmp_path / "tiny.csv"
    credit_later.head(50).to_csv(path, index=False)
    before = len(_history(trained))
    record = monitor_model("credit_risk", batch=str(path), version=1)  # a number, as from Python
    assert record.verdict == "insufficient_data" and record.version == 1
    assert "50 usable rows" in record.summary and "at least 200" in record.summary
    assert captured_events == [] and len(_history(trained)) == before
    # a version that does not exist is an error, whatever the batch
    from models.registry import RegistryError

    with pytest.raises(RegistryError, match="no version 99"):
        monitor_model("credit_risk", batch=str(path), version="99")


def test_bad_batches_fail_naming_the_cause_and_record_nothing(trained, credit_later, tmp_path):
    from flows.monitoring import monitor_model
    from tasks.load import DataSourceError
    from tasks.monitor import MonitoringInputError
    from tasks.validate import DataValidationError

    before = len(_history(trained))
    header_only = tmp_path / "header_only.csv"
    credit_later.head(0).to_csv(header_only, index=False)
    with pytest.raises(MonitoringInputError, match="header_only.csv: the batch is empty"):
        monitor_model("credit_risk", batch=str(header_only))
    no_bytes = tmp_path / "nothing.csv"
    no_bytes.write_text("")
    with pytest.raises(DataSourceError, match="nothing.csv: the file is empty"):
        monitor_model("credit_risk", batch=str(no_bytes))
    missing = tmp_path / "no_income.csv"
    credit_later.drop(columns=["Income"]).to_csv(missing, index=False)
    with pytest.raises(DataValidationError, match="column 'Income'.*missing"):
        monitor_model("credit_risk", batch=str(missing))
    assert len(_history(trained)) == before


def test_market_and_loan_monitoring_on_their_later_periods(trained):
    from flows.monitoring import monitor_model

    market = monitor_model("market_forecast", batch="out_of_time")
    assert market.batch.label == "market_forecast out-of-time period"
    assert set(market.drift.features) == set(find_spec("market_forecast", BUILTIN_SPECS).feature_columns)
    assert market.performance.status == "evaluated"
    assert market.performance.metrics["rmse_ratio_vs_persistence"] < 1.0  # still beats persistence in 2016-18
    loan = monitor_model("loan_evaluation", batch="out_of_time")
    # the later Lending Club loans are ranked worse than the holdout (ROC AUC about 0.69 vs 0.76):
    # beyond the spec's 0.05 tolerance, a breach that asks for retraining
    assert "roc_auc" in loan.performance.breaches
    assert loan.verdict in ("performance_breach", "drift_and_performance_breach")


def test_score_batch_writes_stamped_predictions(trained, credit_later, tmp_path):
    from flows.monitoring import score_batch

    batch = credit_later.drop(columns=["Status"]).copy()
    batch["branch_code"] = "B-17"  # a column the spec does not know
    batch = batch[list(reversed(batch.columns))]  # columns in another order
    path = tmp_path / "to_score.csv"
    batch.to_csv(path, index=False)
    out = tmp_path / "out" / "scores.parquet"
    result = score_batch("credit_risk", batch=str(path), output=str(out))
    assert result["rows"] == 891 and result["version"] == 1 and result["extra_columns"] == ["branch_code"]
    scored = pd.read_parquet(out)
    assert list(scored.columns) == ["rownames", "score", "points", "grade", "model", "model_version", "scored_at"]
    odds = (1 - scored["score"]) / scored["score"]  # the built-in scorecard: 600 points at 19:1, 50 to double the odds
    assert scored["points"].tolist() == np.floor(600 + 50 * np.log2(odds / 19) + 0.5).astype(int).tolist()
    assert len(scored) == 891 and (scored["model"] == "credit_risk").all() and (scored["model_version"] == 1).all()
    assert scored["scored_at"].nunique() == 1 and str(scored["scored_at"].dt.tz) == "UTC"
    pipeline, _, meta = ModelRegistry(trained["registry"], "credit_risk").load_model()
    direct = pipeline.predict_proba(pd.read_csv(path)[meta["features"]])[:, 1]
    np.testing.assert_allclose(scored["score"].to_numpy(), direct, rtol=1e-6)
    assert scored["rownames"].tolist() == batch["rownames"].tolist()
    csv_out = tmp_path / "scores.csv"
    score_batch("credit_risk", batch=str(path), output=str(csv_out))
    csv_scored = pd.read_csv(csv_out)
    assert len(csv_scored) == 891 and (csv_scored["model"] == "credit_risk").all()
    np.testing.assert_allclose(csv_scored["score"].to_numpy(), direct, rtol=1e-6)

    # the flow publishes its artifact
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async def read_scoring_artifacts():
        async with get_client() as client:
            key = ArtifactFilterKey(any_=["credit-risk-scoring"])
            return await client.read_artifacts(artifact_filter=ArtifactFilter(key=key))

    artifacts = asyncio.run(read_scoring_artifacts())
    assert any(f"891 rows from {path}" in a.data and str(csv_out) in a.data for a in artifacts)


def test_score_batch_handles_categories_unseen_in_training(trained, tmp_path):
    from flows.monitoring import score_batch

    spec = find_spec("loan_evaluation", BUILTIN_SPECS)
    later = split_out_of_time(load_source(spec), spec)[1].drop(columns=["Class"])
    later.loc[later.index[:25], "addr_state"] = "PR"  # Puerto Rico: allowed by the spec, never in training
    path = tmp_path / "loans.parquet"
    later.to_parquet(path, index=False)
    out = tmp_path / "loan_scores.parquet"
    result = score_batch("loan_evaluation", batch=str(path), output=str(out))
    scored = pd.read_parquet(out)
    assert result["rows"] == len(later) == len(scored)
    assert scored["score"].between(0, 1).all() and scored["score"].notna().all()


def test_score_batch_errors(trained, credit_later, tmp_path):
    from flows.monitoring import score_batch
    from tasks.scoring import OutputPathError
    from tasks.validate import DataValidationError

    path = tmp_path / "no_age.csv"
    credit_later.drop(columns=["Age"]).to_csv(path, index=False)
    out = tmp_path / "never.parquet"
    with pytest.raises(DataValidationError, match="column 'Age'"):
        score_batch("credit_risk", batch=str(path), output=str(out))
    assert not out.exists()
    with pytest.raises(OutputPathError, match="scores.txt"):
        score_batch("credit_risk", batch=str(path), output=str(tmp_path / "scores.txt"))


def test_cli_monitor_score_and_history(trained, credit_later, tmp_path):
    runner = CliRunner()
    some = tmp_path / "some.csv"
    credit_later.to_csv(some, index=False)
    ok = runner.invoke(app, ["monitor", "credit_risk", "--batch", str(some)])
    assert ok.exit_code == 0, ok.output
    assert "Drift of credit_risk v1" in ok.output and "STABLE" in ok.output and "Income" in ok.output
    empty = tmp_path / "empty.csv"
    credit_later.head(0).to_csv(empty, index=False)
    bad = runner.invoke(app, ["monitor", "credit_risk", "--batch", str(empty)])
    assert bad.exit_code == 1 and "the batch is empty" in bad.output
    no_job = tmp_path / "no_job.csv"
    credit_later.drop(columns=["Job"]).to_csv(no_job, index=False)
    bad = runner.invoke(app, ["monitor", "credit_risk", "--batch", str(no_job)])
    assert bad.exit_code == 1 and "column 'Job'" in bad.output
    history = runner.invoke(app, ["monitor-history", "credit_risk"])
    assert history.exit_code == 0 and "stable" in history.output
    out = tmp_path / "p.csv"
    scored = runner.invoke(app, ["score", "credit_risk", "--batch", str(some), "--out", str(out)])
    assert scored.exit_code == 0 and "891 rows scored with credit_risk v1" in scored.output
