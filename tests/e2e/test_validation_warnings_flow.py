"""Validation warnings reach the command line (issue 14 §2): the values `on_invalid: missing` made
missing are in the training summary, the monitoring record and the scoring result, and `finml
train`, `finml monitor` and `finml score` print each once (before: only in the validation artifact,
and as log lines of the loader).

invalid_values.csv (tests/data/bad_data): rates 55, -3 and 99 outside [0, 40] (applications 11, 51,
121), the text "unknown" as a rate (201), the grade "Z" (8, 81)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from models.registry import ModelRegistry

pytestmark = pytest.mark.usefixtures("prefect_api")

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "data" / "bad_data"
BATCH = str(CASES / "invalid_values.csv")
RANGE = ("ExpectColumnValuesToBeBetween on column 'rate' (values within [0.0, 40.0]; invalid values made missing "
         "(on_invalid: missing)): 3 unexpected value(s) (1.0%), e.g. [55.0, -3.0, 99.0], rows with application_id "
         "11, 51, 121")
GRADE = ("ExpectColumnValuesToBeInSet on column 'grade' (values in ['A', 'B', 'C', 'D']; invalid values made missing "
         "(on_invalid: missing)): 2 unexpected value(s) (0.7%), e.g. ['Z'], rows with application_id 8, 81")
TEXT = "ExpectColumnValuesToBeInTypeList on column 'rate' (values are numeric; invalid values made missing"


def _spec(env, **grade) -> None:
    data = yaml.safe_load((CASES / "applications.yaml").read_text())
    shutil.copy(CASES / "invalid_values.csv", env["specs"] / "invalid_values.csv")
    data["source"]["path"] = "invalid_values.csv"
    data["columns"]["rate"].update({"on_invalid": "missing", "max_null_share": 0.05})
    data["columns"]["grade"].update({"on_invalid": "missing", "max_null_share": 0.05, **grade})
    (env["specs"] / "applications.yaml").write_text(yaml.safe_dump(data, sort_keys=False))


def _finml(env, *args: str) -> subprocess.CompletedProcess:
    from prefect.settings import PREFECT_API_URL

    run_env = {**os.environ, "FINML_REGISTRY_DIR": str(env["registry"]), "FINML_REPORTS_DIR": str(env["reports"]),
               "FINML_SPECS_DIR": str(env["specs"]), "PREFECT_API_URL": PREFECT_API_URL.value(), "COLUMNS": "400"}
    run_env.pop("FINML_DEBUG", None)
    return subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", *args], cwd=ROOT, env=run_env,
                          capture_output=True, text=True, timeout=600, check=False)


def test_train_monitor_and_score_return_and_print_the_validation_warnings(finml_env, tmp_path):
    from flows.monitoring import monitor_model, score_batch

    _spec(finml_env)
    out = _finml(finml_env, "train", "applications")
    text = " ".join((out.stdout + out.stderr).split())
    assert out.returncode == 0, text
    for warning in (RANGE, GRADE, TEXT):
        assert text.count(warning) == 1, text  # in the summary, not again as a log line
    assert f"applications: warning: validation: {RANGE}" in text

    result = score_batch("applications", batch=BATCH, output=str(tmp_path / "scores.parquet"))
    assert RANGE in result["validation_warnings"] and GRADE in result["validation_warnings"]
    assert len(result["validation_warnings"]) == 3
    record = monitor_model("applications", batch=BATCH)
    assert sorted(record.validation_warnings) == sorted(result["validation_warnings"])
    [stored] = ModelRegistry(finml_env["registry"], "applications").monitoring_records()
    assert stored.validation_warnings == record.validation_warnings  # in monitoring.jsonl too

    for args in (["monitor", "applications", "--batch", BATCH],
                 ["score", "applications", "--batch", BATCH, "--out", str(tmp_path / "s.csv")]):
        out = _finml(finml_env, *args)
        text = " ".join((out.stdout + out.stderr).split())
        assert out.returncode == 0, text
        assert text.count(f"warning: validation: {RANGE}") == 1 and text.count(GRADE) == 1, text


def test_a_stopped_run_keeps_the_warnings_it_gave(finml_env):
    from flows.runners import thread_runner
    from flows.training import train_one

    _spec(finml_env, max_null_share=0.005)  # the two grades "Z" made missing (0.7 %) now break the missing-share limit
    summary = train_one("applications", "manual", thread_runner())
    assert summary["gate"] == "error" and "ExpectColumnValuesToNotBeNull on column 'grade'" in summary["reason"]
    assert not summary["reason"].startswith("DataValidationError")  # the message alone
    assert f"validation: {GRADE}" in summary["warnings"] and f"validation: {RANGE}" in summary["warnings"]
