"""The spec stored with a version judges it; the current spec file is compared with it
(models/stored_spec.py, docs/drift.md "Which spec judges a version")."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import models.spec.checks as spec_checks
from models.records.monitoring import MonitoringRecord, MonitoringSkipped, SpecComparison
from models.spec import FileSource, SpecError, find_spec, parse_spec
from models.stored_spec import StoredSpecError, judging_spec, spec_differences, stored_spec
from tests.helpers import BUILTIN_SPECS, builtin_spec_dict, write_spec

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_registry"


def _metadata(data: dict, version: int = 3) -> dict:
    """What build_metadata records about the spec of a version trained on ``data``."""
    spec = parse_spec(data)
    return {"model": spec.name, "version": version, "spec_sha256": spec.content_hash(),
            "spec": spec.model_dump(mode="json")}


def _legacy_metadata(model: str) -> dict:
    return json.loads((LEGACY / model / "versions" / "1" / "metadata.json").read_text())


@pytest.mark.parametrize("model", ["credit_risk", "loan_evaluation", "market_forecast", "mortgage_approval"])
def test_specs_stored_by_the_code_before_issue_11_read_with_their_own_settings(model):
    meta = _legacy_metadata(model)
    spec = stored_spec(meta)
    assert spec.name == model and sorted(spec.feature_columns) == sorted(meta["features"])
    # the values stored, not today's defaults: the old code's drift settings come back
    assert spec.drift.reference_rows == meta["spec"]["drift"]["reference_rows"] == 50000
    assert spec.drift.num_method == meta["spec"]["drift"]["num_method"] != "psi"
    assert spec.drift.psi_threshold == "fixed"  # added since: its default


def test_the_legacy_credit_risk_spec_names_what_the_built_in_file_changed_since():
    meta = _legacy_metadata("credit_risk")
    spec, compared = judging_spec("credit_risk", meta, BUILTIN_SPECS)
    assert compared.judged_with == "stored" and compared.stored_sha256 == meta["spec_sha256"]
    assert compared.current_sha256 == find_spec("credit_risk", BUILTIN_SPECS).content_hash() != compared.stored_sha256
    assert spec.scorecard is None  # the stored spec judges: no points for a version trained without the section
    assert compared.differences == [  # the monotone declarations, the adverse-action reason texts, ...
        "limitations", "columns.Amount.reason", "columns.Amount.monotone", "columns.Assets.reason", "columns.Debt.reason",
        "columns.Expenses.reason", "columns.Home.reason", "columns.Income.reason", "columns.Income.monotone",
        "columns.Job.reason", "columns.Price.reason", "columns.Records.reason", "columns.Seniority.reason",
        "columns.Seniority.monotone", "columns.Time.reason",
        "gate.rules", "drift.reference_rows", "drift.num_method", "drift.cat_method", "drift.stattest_threshold",
        "scorecard", "rating_scale"]
    assert compared.from_current == [] and spec.drift.num_method == "wasserstein"
    assert spec.rating_scale is None  # nor grades
    assert "differs in 22 fields: limitations, columns.Amount.reason, columns.Amount.monotone" in compared.sentence(1)


def test_an_unchanged_spec_file_reports_no_difference(tmp_path):
    data = builtin_spec_dict("credit_risk")
    write_spec(tmp_path, data)
    meta = _metadata(data)
    spec, compared = judging_spec("credit_risk", meta, tmp_path)
    assert compared.differences == [] and compared.current_sha256 == compared.stored_sha256 == meta["spec_sha256"]
    assert spec.content_hash() == meta["spec_sha256"]
    assert compared.sentence(3) == (f"spec: judged with the spec stored with v3 (sha256 {meta['spec_sha256'][:12]}…); "
                                    "the current spec file is the same")


def test_a_tightened_column_and_other_bins_are_named_and_not_applied(tmp_path):
    data = builtin_spec_dict("credit_risk")
    meta = _metadata(data)
    data["columns"]["Amount"]["max"] = 1000
    data["drift"]["bins"] = 5
    data["columns"]["Extra"] = {"role": "excluded", "dtype": "numeric", "reason": "not yet used"}
    write_spec(tmp_path, data)
    spec, compared = judging_spec("credit_risk", meta, tmp_path)
    assert compared.current_problem is None
    assert compared.differences == ["columns.Amount.max", "columns.Extra", "drift.bins"]
    assert spec.columns["Amount"].max == builtin_spec_dict("credit_risk")["columns"]["Amount"]["max"]
    assert spec.drift.bins == 10 and "Extra" not in spec.columns
    assert compared.from_current == []
    assert compared.sentence(3).endswith("differs in 3 fields: columns.Amount.max, columns.Extra, drift.bins; these "
                                         "are not applied to this version (train a new version to apply them)")


def test_the_action_on_an_alarm_comes_from_the_current_file(tmp_path):
    data = builtin_spec_dict("credit_risk")
    meta = _metadata(data)
    data.setdefault("drift", {})["on_drift"] = "alert"
    data["drift"]["psi_significant"] = 0.2
    write_spec(tmp_path, data)
    spec, compared = judging_spec("credit_risk", meta, tmp_path)
    assert compared.differences == ["drift.psi_significant", "drift.on_drift"]
    assert compared.from_current == ["drift.on_drift"]
    assert spec.drift.on_drift == "alert" and spec.drift.psi_significant == 0.25
    assert "taken from the current file: drift.on_drift; the others are not applied" in compared.sentence(3)


def test_lists_are_compared_element_by_element_when_their_length_is_kept(tmp_path):
    data = builtin_spec_dict("credit_risk")
    stored = parse_spec(data)
    data["candidates"][0]["params"]["C"] = 123.0
    data["gate"]["rules"] = data["gate"]["rules"][:1]
    assert spec_differences(stored, parse_spec(data)) == ["candidates.0.params.C", "gate.rules"]


def test_a_missing_or_broken_spec_file_leaves_the_stored_spec_to_judge(tmp_path):
    data = builtin_spec_dict("credit_risk")
    meta = _metadata(data)
    spec, compared = judging_spec("credit_risk", meta, tmp_path)  # no file at all
    assert spec.content_hash() == meta["spec_sha256"] and compared.current_sha256 is None
    assert compared.current_problem.startswith(f"no spec named 'credit_risk' in {tmp_path}")
    assert "the current spec file was not compared: no spec named 'credit_risk'" in compared.sentence(3)
    (tmp_path / "credit_risk.yaml").write_text("name: [\n")
    spec, compared = judging_spec("credit_risk", meta, tmp_path)
    assert spec.content_hash() == meta["spec_sha256"] and "not valid YAML" in compared.current_problem
    assert "\n" not in compared.sentence(3)


def test_a_stored_file_source_reads_from_the_current_file_for_out_of_time_and_keeps_the_data_roots(tmp_path):
    data = builtin_spec_dict("credit_risk")
    data["source"] = {"kind": "file", "path": "data/credit.csv"}
    trained = tmp_path / "then"
    trained.mkdir()
    write_spec(trained, data)
    old = find_spec("credit_risk", trained)
    meta = {"model": "credit_risk", "version": 2, "spec_sha256": old.content_hash(),
            "spec": old.model_dump(mode="json")}
    assert meta["spec"]["source"]["path"] == str(trained.resolve() / "data" / "credit.csv")  # absolute when stored
    now = tmp_path / "now"  # the project moved: the same spec file, elsewhere
    now.mkdir()
    write_spec(now, data)
    spec, compared = judging_spec("credit_risk", meta, now, out_of_time=True)
    assert compared.differences == ["source.path"] and compared.from_current == ["source.path"]
    assert spec.source.path == str(now.resolve() / "data" / "credit.csv") and spec.source.spec_folder == now.resolve()
    spec, compared = judging_spec("credit_risk", meta, now, out_of_time=False)  # a batch file: nothing is read
    assert compared.from_current == [] and spec.source.path == meta["spec"]["source"]["path"]
    (now / "credit_risk.yaml").unlink()  # no current file: the stored path, with the spec folder's data roots
    spec, compared = judging_spec("credit_risk", meta, now, out_of_time=True)
    assert isinstance(spec.source, FileSource) and spec.source.path == meta["spec"]["source"]["path"]
    assert spec.source.spec_folder == now.resolve() and compared.from_current == []


def test_a_stored_spec_without_intended_use_or_limitations_reads_although_they_are_required(tmp_path):
    data = builtin_spec_dict("credit_risk")
    meta = _metadata(data)
    for key in ("intended_use", "limitations"):
        meta["spec"].pop(key)  # a dump written before the fields were required
    with pytest.raises(SpecError, match="intended_use"):
        parse_spec(meta["spec"])  # a spec file without them is refused ...
    spec = stored_spec(meta)  # ... a stored version's spec reads, blank as the code of its day wrote it
    assert spec.intended_use == "" and spec.limitations == []
    write_spec(tmp_path, {**data, "intended_use": "Scoring applicants", "limitations": ["Old data"]})
    _, compared = judging_spec("credit_risk", meta, tmp_path)
    assert compared.differences == ["intended_use", "limitations"]
    assert compared.stored_problem is None


def test_a_stored_spec_that_todays_cross_field_checks_refuse_still_judges(monkeypatch, tmp_path):
    data = builtin_spec_dict("credit_risk")
    meta = _metadata(data)
    write_spec(tmp_path, data)
    monkeypatch.setattr(spec_checks, "CHECKS", (*spec_checks.CHECKS, lambda spec: ["table.unique: now required"]))
    with pytest.raises(Exception, match="table.unique: now required"):
        parse_spec(data)  # a spec file with the same content is refused today
    spec, compared = judging_spec("credit_risk", meta, tmp_path)
    assert spec.content_hash() == meta["spec_sha256"]
    assert compared.judged_with == "stored" and compared.stored_problem == "table.unique: now required"
    assert "today's checks would refuse it: table.unique: now required" in compared.sentence(3)


def test_a_stored_spec_this_code_cannot_read_falls_back_to_the_current_file_or_fails_naming_both(tmp_path):
    data = builtin_spec_dict("credit_risk")
    meta = _metadata(data)
    meta["spec"]["drift"]["psi_window"] = 3  # a key a later schema removed
    write_spec(tmp_path, data)
    spec, compared = judging_spec("credit_risk", meta, tmp_path)
    assert compared.judged_with == "current" and spec.content_hash() == compared.current_sha256
    assert "field 'drift.psi_window': unknown key" in compared.stored_problem
    assert compared.sentence(3).startswith("spec: judged with the current spec file (sha256 ")
    (tmp_path / "credit_risk.yaml").unlink()
    with pytest.raises(StoredSpecError, match=r"credit_risk version 3 cannot be judged: the spec stored with "
                                              r"credit_risk version 3: invalid stored spec: field 'drift.psi_window'.*and the "
                                              r"current spec file cannot be read either: no spec named 'credit_risk'"):
        judging_spec("credit_risk", meta, tmp_path)


def test_the_record_keeps_the_comparison_and_old_records_read_without_it():
    line = json.loads((LEGACY / "credit_risk" / "monitoring.jsonl").read_text().splitlines()[0])
    old = MonitoringRecord.from_stored(line)
    assert old.spec_comparison is None and "spec_comparison" not in old.to_json()
    compared = SpecComparison(stored_sha256="a" * 64, current_sha256="b" * 64, differences=["drift.bins"])
    new = MonitoringRecord.from_stored({**line, "spec_comparison": compared.model_dump(mode="json")})
    assert new.spec_comparison == compared
    assert new.to_json()["spec_comparison"]["differences"] == ["drift.bins"]
    assert MonitoringRecord.from_stored(json.loads(json.dumps(new.to_json()))).spec_comparison == compared


def test_the_cli_prints_the_comparison_of_a_record_and_of_a_scoring_result(capsys):
    from flows.cli.monitoring import print_monitoring, print_scoring

    compared = SpecComparison(stored_sha256="a" * 64, current_sha256="b" * 64, differences=["columns.Amount.max"])
    skipped = MonitoringSkipped(model="credit_risk", version=2, summary="insufficient data: 3 usable rows",
                                batch={"label": "b.csv", "rows": 3}, spec_comparison=compared)
    print_monitoring(skipped)
    out = " ".join(capsys.readouterr().out.split())
    assert "spec: judged with the spec stored with v2 (sha256 aaaaaaaaaaaa…); the current spec file (sha256 " \
           "bbbbbbbbbbbb…) differs in 1 field: columns.Amount.max" in out
    print_scoring("credit_risk", {"rows": 5, "version": 2, "output": "p.csv", "extra_columns": [],
                                  "spec_comparison": compared.model_dump(mode="json")})
    out = " ".join(capsys.readouterr().out.split())
    assert "5 rows scored with credit_risk v2 -> p.csv" in out and "differs in 1 field: columns.Amount.max" in out


def test_the_stored_spec_validates_a_batch_the_tightened_file_would_refuse(tmp_path):
    from tasks.validate import validate_frame
    from tests.helpers import builtin_periods

    data = builtin_spec_dict("credit_risk")
    meta = _metadata(data)
    data["columns"]["Amount"]["max"] = 1000  # the later period has larger loans
    write_spec(tmp_path, data)
    spec, _ = judging_spec("credit_risk", meta, tmp_path)
    current = find_spec("credit_risk", tmp_path)
    _, _, later = builtin_periods("credit_risk")
    batch = later.drop(columns=[spec.target_column])
    assert (batch["Amount"] > 1000).any()
    assert validate_frame(batch, spec, serving=True).success
    assert not validate_frame(batch, current, serving=True).success


def test_the_cli_monitors_an_existing_version_without_its_spec_file(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from typer.testing import CliRunner

    import flows.cli.monitoring as cli_monitoring
    import flows.monitoring
    from flows.cli import app

    root = tmp_path / "registry"
    shutil.copytree(LEGACY, root, ignore=shutil.ignore_patterns("README.md"))
    specs = tmp_path / "specs"
    specs.mkdir()
    monkeypatch.setenv("FINML_REGISTRY_DIR", str(root))
    monkeypatch.setenv("FINML_SPECS_DIR", str(specs))
    monkeypatch.setattr(cli_monitoring, "_check_configured_api", lambda: None)
    monkeypatch.setattr(cli_monitoring, "print_monitoring", lambda record: None)
    ran = []
    monkeypatch.setattr(flows.monitoring, "monitor_model",
                        lambda *a, **k: ran.append(a) or SimpleNamespace(verdict="stable"))
    result = CliRunner().invoke(app, ["monitor", "credit_risk", "--demo-period"], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert ran == [("credit_risk",)]
    assert f"warning: no spec named 'credit_risk' in {specs}" in result.output
    assert "credit_risk v1 is judged with the spec stored in it" in result.output
    refused = CliRunner().invoke(app, ["monitor", "loan_evaluations", "--demo-period"], env={"COLUMNS": "300"})
    assert refused.exit_code == 1 and "no spec named 'loan_evaluations'" in refused.output and len(ran) == 1

