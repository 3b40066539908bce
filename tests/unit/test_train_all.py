"""``finml train --all`` with invalid specs in the folder (flows/cli/training.py, flows/cli/checks.py
preflight_train_all): each is named once before Prefect starts, the valid ones are trained, exit code 1."""

from __future__ import annotations

from typer.testing import CliRunner

import flows.cli.training
from flows.cli import app
from tests.helpers import BUILTIN_SPECS, builtin_spec_dict, write_spec
from tests.unit.test_validate_cli import finml


def _broken_folder(folder):
    """Two invalid specs: a misspelt key (loan_evaluation) and a file that is not YAML (bad_yaml)."""
    broken = builtin_spec_dict("loan_evaluation")
    broken["split"]["methd"] = broken["split"].pop("method")
    write_spec(folder, broken)
    (folder / "bad_yaml.yaml").write_text("name: bad_yaml\ntask: [regression\n")


def test_train_all_names_each_broken_spec_once_and_trains_the_valid_ones(finml_env, monkeypatch):
    specs = finml_env["specs"]
    write_spec(specs, builtin_spec_dict("credit_risk"))
    _broken_folder(specs)
    no_file = builtin_spec_dict("credit_risk")
    no_file["name"] = "no_file"
    no_file["source"] = {"kind": "file", "path": "absent.csv"}
    write_spec(specs, no_file)  # a valid spec whose pre-flight fails: its data file does not exist
    calls = []

    def fake_training(models, reason, parent=False):
        calls.append((models, reason, parent))
        return [{"model": m, "gate": "passed", "promoted": True, "version": 1, "champion": 1, "reason": "promoted"}
                for m in models]

    monkeypatch.setattr(flows.cli.training, "_run_training", fake_training)
    result = CliRunner().invoke(app, ["train", "--all"], env={"COLUMNS": "400"})
    assert calls == [(["credit_risk"], "manual", True)], result.output
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    for name in ("loan_evaluation.yaml", "bad_yaml.yaml", "absent.csv"):
        assert sum(name in line for line in errors) == 1, (name, errors)
    assert "unknown key 'methd', did you mean 'method'" in result.output
    assert errors[-1] == f"error: 3 spec(s) in {specs} not trained (each named above, before the runs)"


def test_train_all_with_only_valid_specs_keeps_the_training_exit_code(finml_env, monkeypatch):
    write_spec(finml_env["specs"], builtin_spec_dict("credit_risk"))
    monkeypatch.setattr(flows.cli.training, "_run_training", lambda models, reason, parent=False: [
        {"model": m, "gate": "failed", "promoted": False, "reason": "rejected"} for m in models])
    result = CliRunner().invoke(app, ["train", "--all"], env={"COLUMNS": "400"})
    assert result.exit_code == 3, result.output
    assert "error:" not in result.output


def test_train_all_with_every_spec_broken_fails_before_prefect(tmp_path):
    _broken_folder(tmp_path)
    out = finml("train", "--all", FINML_SPECS_DIR=str(tmp_path), FINML_REGISTRY_DIR=str(tmp_path / "reg"),
                FINML_REPORTS_DIR=str(tmp_path / "rep"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 3, out.stderr
    assert sum("loan_evaluation.yaml" in line for line in errors) == 1
    assert sum("bad_yaml.yaml" in line for line in errors) == 1
    assert errors[-1] == f"error: none of the 2 spec(s) in {tmp_path} can be trained (each is named above)"
    assert "prefect imported: False" in out.stderr
    assert not (tmp_path / "reg").exists()


def test_train_all_on_the_built_in_specs_passes_every_one_to_the_runs(finml_env, monkeypatch):
    monkeypatch.setenv("FINML_SPECS_DIR", str(BUILTIN_SPECS))
    calls = []
    monkeypatch.setattr(flows.cli.training, "_run_training",
                        lambda models, reason, parent=False: calls.append(models) or [])
    result = CliRunner().invoke(app, ["train", "--all"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert calls == [sorted(p.stem for p in BUILTIN_SPECS.glob("*.yaml"))]


def test_train_all_deployment_names_each_broken_spec_and_starts_the_valid_ones(finml_env, monkeypatch):
    write_spec(finml_env["specs"], builtin_spec_dict("credit_risk"))
    _broken_folder(finml_env["specs"])
    started = []
    monkeypatch.setattr(flows.cli.training, "_run_deployments",
                        lambda runs, timeout: started.append([name for _, name, _ in runs]) or [])
    result = CliRunner().invoke(app, ["train", "--all", "--deployment"], env={"COLUMNS": "400"})
    assert started == [["credit_risk"]], result.output
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert [sum(n in line for line in errors) for n in ("loan_evaluation.yaml", "bad_yaml.yaml")] == [1, 1]
