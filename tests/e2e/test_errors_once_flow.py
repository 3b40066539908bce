"""Each error printed once (issue 14 §2): a `finml train` stopped by bad data or by the leakage
guards prints its message once on the console (before: six times, four of them Prefect's task- and
flow-failure lines), exits 1, and the run's logs in the Prefect API still hold the failure.

The real CLI in a subprocess, against the session's Prefect API (``prefect_api``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from models.registry import ModelRegistry

pytestmark = pytest.mark.usefixtures("prefect_api")

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "data" / "bad_data"


def _api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def _spec(tmp_path: Path, csv: Path) -> Path:
    specs = tmp_path / "specs"
    specs.mkdir(exist_ok=True)
    data = yaml.safe_load((CASES / "applications.yaml").read_text())
    shutil.copy(csv, specs / csv.name)
    data["source"]["path"] = csv.name
    (specs / "applications.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return specs


def _finml(tmp_path: Path, specs: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FINML_REGISTRY_DIR": str(tmp_path / "registry"), "FINML_REPORTS_DIR": str(tmp_path / "reports"),
           "FINML_SPECS_DIR": str(specs), "PREFECT_API_URL": _api_url(), "COLUMNS": "400"}
    env.pop("FINML_DEBUG", None)
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)


def _api_logs(run_id: str) -> list[str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    with get_client(sync_client=True) as client:
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    return [log.message for log in logs]


def test_a_validation_stop_is_printed_once_and_kept_in_the_api_logs(tmp_path):
    specs = _spec(tmp_path, CASES / "all_missing_feature.csv")
    out = _finml(tmp_path, specs, "train", "applications")
    text = out.stdout + out.stderr
    message = "ExpectColumnValuesToNotBeNull on column 'income' (missing share at most 0.05): 300 unexpected value(s)"
    assert out.returncode == 1, text
    assert text.count(message) == 1, text
    assert "error: applications: data validation failed" in out.stderr  # one error line, not "applications: applications:"
    assert "DataValidationError" not in text and "Traceback" not in text
    [stopped] = ModelRegistry(tmp_path / "registry", "applications").history()
    logs = _api_logs(stopped["run_id"])
    assert any("Task run failed with exception" in m and message in m for m in logs), logs  # Prefect's run history
    assert any("Encountered exception during execution" in m and message in m for m in logs), logs

    debug = _finml(tmp_path, specs, "--debug", "train", "applications")  # everything, with tracebacks
    assert debug.returncode == 1
    assert (debug.stdout + debug.stderr).count(message) >= 4 and "Traceback" in debug.stderr


def test_a_leakage_stop_is_printed_once_naming_its_setting(tmp_path):
    book = pd.read_csv(CASES / "applications.csv")
    book["balance"] = (book["status"] == "bad").astype(float) * 50_000 + book.index % 7  # derived from the outcome
    leaky = tmp_path / "leaky.csv"
    book.to_csv(leaky, index=False)
    out = _finml(tmp_path, _spec(tmp_path, leaky), "train", "applications")
    text = out.stdout + out.stderr
    assert out.returncode == 1, text
    assert text.count("probable target leakage: 'balance' (roc_auc 1.0000 > 0.95)") == 1, text
    assert text.count("(limit 0.95: leakage.max_single_feature_auc in the spec; raise it only with a documented "
                      "reason)") == 1, text
    [stopped] = ModelRegistry(tmp_path / "registry", "applications").history()
    assert stopped["event"] == "stopped" and stopped["error"] == "LeakageError"
