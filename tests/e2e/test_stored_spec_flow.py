"""End to end: a version is judged with the spec stored in it, whatever the spec file says now
(docs/drift.md, "Which spec judges a version")."""

from __future__ import annotations

import shutil

import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from models.registry import ModelRegistry
from models.spec import find_spec
from tests.helpers import BUILTIN_SPECS

pytestmark = pytest.mark.usefixtures("prefect_api")


def _out(result) -> str:
    return " ".join(result.output.split())  # rich wraps long lines


def test_an_edited_spec_file_does_not_change_the_verdict_and_is_named(trained, tmp_path, monkeypatch):
    specs = tmp_path / "specs"
    shutil.copytree(BUILTIN_SPECS, specs)
    path = specs / "credit_risk.yaml"
    data = yaml.safe_load(path.read_text())
    data["columns"]["Amount"]["max"] = 1000  # the later period has larger loans: this file would refuse the batch
    data.setdefault("drift", {})["dataset_drift_share"] = 0.05
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("FINML_SPECS_DIR", str(specs))
    stored_hash = ModelRegistry(trained["registry"], "credit_risk").version_metadata(1).spec_sha256
    current_hash = find_spec("credit_risk", specs).content_hash()

    runner = CliRunner()
    result = runner.invoke(app, ["monitor", "credit_risk", "--demo-period"])
    assert result.exit_code == 0, result.output
    out = _out(result)
    assert "STABLE" in out  # the stored spec's verdict (test_monitoring_flow: stable on this period)
    assert (f"spec: judged with the spec stored with v1 (sha256 {stored_hash[:12]}…); the current spec file (sha256 "
            f"{current_hash[:12]}…) differs in 2 fields: columns.Amount.max, drift.dataset_drift_share; these are "
            "not applied to this version") in out
    line = ModelRegistry(trained["registry"], "credit_risk").monitoring_history()[-1]
    assert line["verdict"] == "stable" and line["drift"]["threshold_share"] == 0.3  # the stored drift settings
    assert line["spec_comparison"] == {
        "judged_with": "stored", "stored_sha256": stored_hash, "current_sha256": current_hash,
        "differences": ["columns.Amount.max", "drift.dataset_drift_share"], "from_current": [],
        "current_problem": None, "stored_problem": None}

    from flows.monitoring import score_batch
    from tasks.load import load_source, split_out_of_time

    builtin = find_spec("credit_risk", BUILTIN_SPECS)
    batch = tmp_path / "later.csv"
    split_out_of_time(load_source(builtin), builtin)[1].to_csv(batch, index=False)
    result = score_batch("credit_risk", batch=str(batch), output=str(tmp_path / "p.parquet"))
    assert result["rows"] == 891
    assert result["spec_comparison"]["differences"] == ["columns.Amount.max", "drift.dataset_drift_share"]


def test_a_version_is_monitored_and_scored_without_its_spec_file(trained, tmp_path, monkeypatch):
    specs = tmp_path / "specs"
    specs.mkdir()
    monkeypatch.setenv("FINML_SPECS_DIR", str(specs))
    runner = CliRunner()
    result = runner.invoke(app, ["monitor", "credit_risk", "--demo-period"])
    assert result.exit_code == 0, result.output
    out = _out(result)
    assert f"warning: no spec named 'credit_risk' in {specs}" in out and "STABLE" in out
    assert "the current spec file was not compared: no spec named 'credit_risk'" in out
    line = ModelRegistry(trained["registry"], "credit_risk").monitoring_history()[-1]
    assert line["spec_comparison"]["current_sha256"] is None and line["batch"]["rows"] == 891
