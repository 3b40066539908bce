"""`finml train` as a script sees it (issue 14 §2): a gate rejection exits 3 and names its model
card; a validation stop exits 1 and leaves a `stopped` line in the history; one model runs as its
own `train-model` flow, not under a `train-all` parent. Each case is the real CLI in a subprocess."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from models.registry import ModelRegistry

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "data" / "bad_data"


def _finml_train(tmp_path: Path, csv: str, **gate) -> subprocess.CompletedProcess:
    specs = tmp_path / "specs"
    specs.mkdir(exist_ok=True)
    data = yaml.safe_load((CASES / "applications.yaml").read_text())
    shutil.copy(CASES / csv, specs / csv)
    data["source"]["path"] = csv
    data["gate"].update(gate)
    (specs / "applications.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    env = {**os.environ, "FINML_REGISTRY_DIR": str(tmp_path / "registry"),
           "FINML_REPORTS_DIR": str(tmp_path / "reports"), "FINML_SPECS_DIR": str(specs),
           "PREFECT_HOME": str(tmp_path / "prefect"), "COLUMNS": "300"}
    env.pop("PREFECT_API_URL", None)
    return subprocess.run([sys.executable, "-c", "from flows.cli import main; main()", "train", "applications"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_a_gate_rejection_exits_3_and_names_its_model_card(tmp_path):
    out = _finml_train(tmp_path, "applications.csv", rules=[{"kind": "threshold", "metric": "roc_auc", "min": 0.999}])
    text = out.stdout + out.stderr
    assert out.returncode == 3, text
    reg = ModelRegistry(tmp_path / "registry", "applications")
    last = reg.history()[-1]
    assert last["event"] == "rejected" and reg.list_versions() == []
    card = Path(last["evidence"]).parent / "model_card.md"
    assert card.is_file()
    assert f"model card of the rejected run: {card}" in " ".join(out.stdout.split())
    assert "train-all" not in text  # its own run, not a train-all parent
    assert re.search(r"Beginning flow run 'train-applications-\d{4}-\d\d-\d\dT\d{4}' for flow 'train-model'", text)


def test_a_validation_stop_exits_1_and_leaves_a_stopped_line(tmp_path):
    out = _finml_train(tmp_path, "all_missing_feature.csv")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "column 'income' (missing share at most 0.05): 300 unexpected" in out.stderr
    reg = ModelRegistry(tmp_path / "registry", "applications")
    [line] = reg.history()
    assert line["event"] == "stopped" and line["error"] == "DataValidationError" and line["version"] is None
    assert "column 'income' (missing share at most 0.05): 300 unexpected" in line["cause"]
    assert line["reason"] == "manual" and line["run_id"]
    assert reg.list_versions() == [] and reg.champion() is None
