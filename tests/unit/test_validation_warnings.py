"""Validation warnings on the command line (issue 14 §2): the report's warning lines, the monitoring
record that keeps them, and what `finml train`, `finml monitor` and `finml score` print."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tasks.expectations import ExpectationOutcome, ValidationReport

RANGE = ExpectationOutcome(expectation="ExpectColumnValuesToBeBetween", column="rate", severity="warning",
                           description="values within [0.0, 40.0]; invalid values made missing (on_invalid: missing)",
                           success=False, unexpected_count=3, unexpected_share=0.01, examples=[55.0, -3.0, 99.0],
                           ids=[11, 51, 121], id_column="application_id")
LINE = ("ExpectColumnValuesToBeBetween on column 'rate' (values within [0.0, 40.0]; invalid values made missing "
        "(on_invalid: missing)): 3 unexpected value(s) (1.0%), e.g. [55.0, -3.0, 99.0], rows with application_id "
        "11, 51, 121")


@pytest.fixture
def consoles(monkeypatch, capsys):
    from flows.cli import common

    monkeypatch.setattr(common.console, "width", 400)  # rich writes to sys.stdout as it is at print time


def test_the_report_words_each_warning_once_and_no_success_or_critical_failure():
    passed = ExpectationOutcome(expectation="ExpectColumnToExist", column="rate", severity="critical",
                                description="column is present", success=True)
    critical = ExpectationOutcome(expectation="ExpectColumnValuesToNotBeNull", column="income", severity="critical",
                                  description="missing share at most 0.05", success=False, unexpected_count=300)
    report = ValidationReport(suite="s", rows=300, outcomes=[passed, RANGE, critical])
    assert report.warning_sentences() == [LINE]
    assert ValidationReport(suite="s", rows=300, outcomes=[passed]).warning_sentences() == []


def test_the_training_summary_prints_each_models_warnings(consoles, capsys):
    from flows.cli.training import print_summary

    rows = [{"model": "applications", "gate": "passed", "promoted": True, "version": 1, "champion": 1,
             "reason": "all rules passed", "warnings": [f"validation: {LINE}", "feature 'x' is constant (0)"]},
            {"model": "old", "gate": "passed", "promoted": True, "version": 2, "champion": 2, "reason": "passed"}]
    print_summary(rows, "Training summary")
    out = capsys.readouterr().out
    assert out.count(f"applications: warning: validation: {LINE}") == 1
    assert "applications: warning: feature 'x' is constant (0)" in out
    assert "old: warning" not in out  # a summary without the key (an older flow's) prints none


def test_monitor_and_score_print_the_batch_warnings(consoles, capsys):
    from flows.cli.monitoring import print_monitoring, print_scoring
    from models.records.monitoring import MonitoringSkipped

    skipped = MonitoringSkipped(model="applications", version=1, summary="insufficient data: 3 usable rows",
                                batch={"label": "b.csv", "rows": 3, "modelled_rows": 3}, validation_warnings=[LINE])
    print_monitoring(skipped)
    assert capsys.readouterr().out.count(f"warning: validation: {LINE}") == 1
    print_scoring("applications", {"rows": 300, "version": 1, "output": "s.parquet", "extra_columns": [],
                                   "validation_warnings": [LINE]})
    assert capsys.readouterr().out.count(f"warning: validation: {LINE}") == 1
    print_scoring("applications", {"rows": 300, "version": 1, "output": "s.parquet", "extra_columns": []})
    assert "warning: validation" not in capsys.readouterr().out


def test_the_monitoring_record_keeps_the_warnings_and_older_lines_stay_the_same():
    from models.records.drift import EvidentlySummary
    from models.records.monitoring import MonitoringRecord
    from models.spec import DriftSpec, find_spec
    from tasks.drift import compute_drift
    from tasks.monitor import build_record
    from tests.helpers import BUILTIN_SPECS

    spec = find_spec("credit_risk", BUILTIN_SPECS)
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({c: rng.normal(0, 1, 600) for c in spec.numeric_features})
    for c in spec.categorical_features:
        reference[c] = "a"
    table = reference.sample(300, random_state=1).reset_index(drop=True)
    drift = compute_drift(reference.assign(score=0.1), table.assign(score=0.1), spec.numeric_features,
                          spec.categorical_features, DriftSpec(), score_column="score")
    kwargs = {"version": 1, "run_id": None, "batch_label": "b.csv", "frame": table, "table": table, "drift": drift,
              "perf": {"status": "no_labels", "breaches": []}, "ts": "2026-12-02T00:00:00Z",
              "evidently": EvidentlySummary(ran=False, reason="test", current_rows=300, reference_rows=600,
                                            current_sample_rows=0, reference_sample_rows=0, sample_note="-")}
    record = build_record(spec, validation_warnings=[LINE], **kwargs).record
    assert record.validation_warnings == [LINE]
    assert MonitoringRecord.from_stored(record.to_json()).validation_warnings == [LINE]
    for none in (None, []):
        quiet = build_record(spec, validation_warnings=none, **kwargs).record
        assert quiet.validation_warnings is None and "validation_warnings" not in quiet.to_json()
