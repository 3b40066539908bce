"""A registry written by the code before typed records (commit fcfdb5e, no ``schema_version``)
reads with today's code, and today's writes keep its hash and commit rules.

The fixtures and how they were made: tests/data/legacy_registry/README.md.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.records.monitoring import MONITORING_SCHEMA_VERSION, MonitoringRecord
from models.records.registry import (
    HISTORY_SCHEMA_VERSION,
    LEGACY_SCHEMA_VERSION,
    METADATA_SCHEMA_VERSION,
    ChampionRetired,
    HistoryEvent,
    Promoted,
    Rejected,
    RolledBack,
    VersionMetadata,
    parse_event,
)
from models.registry import ModelRegistry

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_registry"
MODELS = ("credit_risk", "loan_evaluation", "market_direction", "market_forecast", "mortgage_approval")


@pytest.fixture
def legacy(tmp_path) -> Path:
    """A writable copy of the legacy registry root."""
    root = tmp_path / "registry"
    shutil.copytree(LEGACY, root, ignore=shutil.ignore_patterns("README.md"))
    return root


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _without_version(data: dict) -> dict:
    return {k: v for k, v in data.items() if k != "schema_version"}


def test_the_fixtures_are_the_original_codes_files():
    files = sorted(p.relative_to(LEGACY).as_posix() for p in LEGACY.rglob("*") if p.is_file())
    assert "credit_risk/versions/1/model/network.keras" in files and "credit_risk/.lock" not in files
    assert sum((LEGACY / f).stat().st_size for f in files) < 2_000_000
    for name in files:
        if name.endswith((".json", ".jsonl")):
            assert "schema_version" not in (LEGACY / name).read_text(), name  # written before the field existed


def test_every_legacy_history_line_reads_as_its_event_type():
    kinds = {"promoted": Promoted, "rejected": Rejected, "rolled_back": RolledBack,
             "champion_retired": ChampionRetired}
    seen = []
    for model in MODELS:
        for line in _lines(LEGACY / model / "history.jsonl"):
            event = parse_event(line)
            assert type(event) is kinds[line["event"]]
            assert event.schema_version == LEGACY_SCHEMA_VERSION and event.model == model
            assert _without_version(event.to_json()) == line  # nothing lost, nothing added
            seen.append(event.event)
    assert sorted(set(seen)) == sorted(kinds)
    events = ModelRegistry(LEGACY, "credit_risk").history_events()
    assert [e.event for e in events] == ["promoted", "rejected", "rejected", "champion_retired", "rolled_back"]
    promoted, rejected = events[0], events[1]
    assert promoted.version == 1 and promoted.champion_after == 1 and promoted.candidate == "keras_mlp"
    assert len(promoted.metadata_sha256) == 64 and promoted.value == pytest.approx(0.8627, abs=5e-5)
    assert rejected.version is None and rejected.champion_before == 1
    assert rejected.failed_rules[0].startswith("roc_auc 0.8627 vs champion v1")
    assert events[3].reason == "fixture" and events[4].previous_champion is None and events[4].reason == "restore"


def test_every_legacy_monitoring_line_reads_as_a_monitoring_record():
    read = 0
    for model in MODELS:
        raw = _lines(LEGACY / model / "monitoring.jsonl") if (LEGACY / model / "monitoring.jsonl").exists() else []
        typed = ModelRegistry(LEGACY, model).monitoring_records()
        assert len(typed) == len(raw)
        for line, record in zip(raw, typed):
            assert record.schema_version == LEGACY_SCHEMA_VERSION and record.model == model
            assert _without_version(record.to_json()) == line
            read += 1
    assert read == 4
    credit = ModelRegistry(LEGACY, "credit_risk").monitoring_records()[0]
    assert credit.verdict == "stable" and credit.batch.rows == 891 and credit.drift.tested == 13
    assert credit.drift.features["Expenses"].status == "moderate"
    assert credit.drift.features["Expenses"].psi == pytest.approx(0.2337, abs=1e-4)
    assert credit.performance.changes["roc_auc"].tolerance == 0.05
    assert credit.performance.calibration.observed_rate == pytest.approx(0.2985, abs=1e-4)
    assert credit.evidently.per_column["Debt"].drifted is True  # the typed Evidently summary, read from a legacy line


def test_every_legacy_metadata_file_reads_as_version_metadata():
    for path in sorted(LEGACY.glob("*/versions/*/metadata.json")):
        raw = json.loads(path.read_text())
        meta = VersionMetadata.from_stored(raw)
        assert meta.schema_version == LEGACY_SCHEMA_VERSION and meta.version == 1
        assert meta.model == path.parts[-4] and meta.primary_metric in meta.metrics
        assert _without_version(meta.to_json()) == raw
    forecast = VersionMetadata.from_stored(json.loads((LEGACY / "market_forecast/versions/1/metadata.json").read_text()))
    assert forecast.task == "regression" and forecast.primary_metric == "rmse"


def test_the_legacy_champion_verifies_loads_and_scores_as_when_it_was_written(legacy):
    from models.estimators import predict_scores

    reg = ModelRegistry(legacy, "credit_risk")
    assert reg.champion() == 1
    meta = reg.version_metadata(1)  # every recorded hash checked first
    assert meta.selected_candidate.estimator == "keras_mlp" and len(meta.files) == 10
    pipeline, version, stored = reg.load_model()
    assert version == 1 and stored == json.loads((reg.version_dir(1) / "metadata.json").read_text())
    reference = pd.read_parquet(reg.version_dir(1) / "reference.parquet")
    scores = predict_scores(pipeline, reference[meta.features], "binary_classification")
    # reference.parquet holds the scores the deployed pipeline gave these rows when it was written
    np.testing.assert_allclose(scores, reference["score"].to_numpy(), rtol=1e-5, atol=1e-7)


def test_the_legacy_alias_reconciles_from_the_history(legacy):
    reg = ModelRegistry(legacy, "credit_risk")
    assert reg._champion_from_history() == (True, 1)  # the last line is the rollback to v1
    reg.aliases_path.write_text("{}")  # as if a crash came between that line and the alias write
    assert reg.champion() == 1 and reg.stored_aliases() == {}  # readers follow the history, never write
    reg.append_history({"event": "rejected", "version": None})  # an append does not reconcile ...
    assert reg.champion() == 1 and reg.stored_aliases() == {}
    assert reg.publish(lambda folder, version: {"note": "x"}, promote=False,
                       history_event={"event": "registered"}) == 2  # ... the next versioned writer does
    assert reg.champion() == 1 and reg.stored_aliases() == {"champion": 1}


def test_new_writes_to_a_legacy_history_keep_its_lines_and_the_commit_rules(legacy):
    reg = ModelRegistry(legacy, "credit_risk")
    before = reg.history_path.read_bytes()
    old_meta = VersionMetadata.from_stored(reg.read_metadata(1))

    def write(folder: Path, version: int) -> VersionMetadata:
        (folder / "model").mkdir()
        (folder / "model" / "weights.bin").write_bytes(b"w" * 64)
        return old_meta.model_copy(update={"created_at": "2026-12-02T04:00:00+00:00", "files": None, "version": None})

    event = Promoted(run_id="new-run", reason="test", candidate="keras_mlp", primary_metric="roc_auc", value=0.87,
                     champion_before=1, gate="all rules passed")
    assert reg.publish(write, promote=True, history_event=event, expected_champion=1) == 2
    assert reg.history_path.read_bytes().startswith(before)  # the legacy lines are untouched
    stored = json.loads((reg.version_dir(2) / "metadata.json").read_text())
    assert stored["schema_version"] == METADATA_SCHEMA_VERSION and stored["version"] == 2
    assert set(stored["files"]) == {"model/weights.bin"}
    last = reg.history()[-1]
    assert last["schema_version"] == HISTORY_SCHEMA_VERSION and last["event"] == "promoted"
    assert last["metadata_sha256"] == (reg.version_dir(2) / "metadata.sha256").read_text().strip()
    assert last["champion_after"] == 2 and last["champion_before"] == 1 and last["run_id"] == "new-run"
    assert reg.champion() == 2 and reg.verify(1) and reg.verify(2)["version"] == 2
    assert reg.version_metadata(2).schema_version == METADATA_SCHEMA_VERSION
    assert reg.rollback(1, reason="back") == 2 and reg.retire_champion(reason="retire") == 1
    assert reg.rollback(1, reason="restore again") is None and reg.champion() == 1
    events = reg.history_events()
    assert [e.schema_version for e in events] == [LEGACY_SCHEMA_VERSION] * 5 + [HISTORY_SCHEMA_VERSION] * 4
    assert [type(e) for e in events[5:]] == [Promoted, RolledBack, ChampionRetired, RolledBack]
    new_lines = _lines(reg.history_path)[5:]
    # the same keys as the original code wrote for these events, plus schema_version, the hash chain and who
    legacy_keys = {line["event"]: set(line) for line in _lines(LEGACY / "credit_risk" / "history.jsonl")}
    for line in new_lines:
        assert set(line) == legacy_keys[line["event"]] | {"schema_version", "prev_sha256", "who"}, line["event"]
    assert "repaired_alias_file" not in new_lines[1]  # written only when a damaged alias file was rewritten
    monitoring = MonitoringRecord.from_stored(reg.monitoring_history()[0])
    reg.append_monitoring(monitoring)
    again = reg.monitoring_history()
    assert again[-1]["schema_version"] == MONITORING_SCHEMA_VERSION
    assert _without_version(again[-1]) == {**_without_version(again[0]), "prev_sha256": again[-1]["prev_sha256"]}
    assert [r.schema_version for r in reg.monitoring_records()] == [LEGACY_SCHEMA_VERSION, MONITORING_SCHEMA_VERSION]


def test_an_unknown_event_kind_and_extra_keys_are_kept():
    line = {"event": "approved", "ts": "2027-01-01T00:00:00+00:00", "model": "m", "version": 3, "approver": "ana"}
    event = parse_event(line)
    assert type(event) is HistoryEvent and event.model_extra == {"approver": "ana"}
    assert event.to_json() == {**line, "run_id": None, "reason": None, "schema_version": HISTORY_SCHEMA_VERSION}
    promoted = parse_event({"event": "promoted", "version": 2, "future_field": [1, 2]})
    assert type(promoted) is Promoted and promoted.to_json()["future_field"] == [1, 2]


def test_a_line_that_is_not_a_record_is_named(legacy):
    from models.errors import RegistryError

    reg = ModelRegistry(legacy, "credit_risk")
    with open(reg.monitoring_path, "a") as fh:
        fh.write(json.dumps({"verdict": "stable"}) + "\n")
    assert reg.monitoring_history()[-1] == {"verdict": "stable"}  # the stored JSON still reads
    with pytest.raises(RegistryError, match=r"monitoring.jsonl: line 2 is not a valid record: ts: Field required"):
        reg.monitoring_records()
    with open(reg.history_path, "a") as fh:
        fh.write(json.dumps({"event": "promoted", "version": "two"}) + "\n")
    with pytest.raises(RegistryError, match=r"history.jsonl: line 6 is not a valid record: version"):
        reg.history_events()


def test_the_cli_reads_the_legacy_registry(legacy, monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app

    monkeypatch.setenv("FINML_REGISTRY_DIR", str(legacy))
    runner = CliRunner()
    env = {"COLUMNS": "300"}
    listed = runner.invoke(app, ["registry", "list"], env=env)
    # the three models without their model files fail their hash check, each on its own row
    assert "credit_risk" in listed.output and "0.8627" in listed.output and "rolled_back" in listed.output
    assert listed.exit_code == 1 and "damaged: loan_evaluation, market_forecast, mortgage_approval" in listed.output
    shown = runner.invoke(app, ["registry", "show", "credit_risk"], env=env)
    assert shown.exit_code == 0, shown.output
    assert "credit_risk v1" in shown.output and "keras_mlp" in shown.output and "(hashes verified)" in shown.output
    history = runner.invoke(app, ["registry", "history", "credit_risk"], env=env)
    assert history.exit_code == 0 and "champion_retired" in history.output and "restore" in history.output
    listed_json = runner.invoke(app, ["registry", "list", "--json"], env=env)
    assert listed_json.exit_code == 1  # the damaged models, as in the table
    rows = {r["model"]: r for r in json.loads(listed_json.stdout)["models"]}
    assert rows["credit_risk"]["value"] == pytest.approx(0.8627, abs=5e-5) and "damaged" in rows["loan_evaluation"]
    events = json.loads(runner.invoke(app, ["registry", "history", "credit_risk", "--json"], env=env).stdout)["events"]
    lines = (legacy / "credit_risk" / "history.jsonl").read_text().splitlines()
    assert [e["event"] for e in events] == [json.loads(x)["event"] for x in lines if json.loads(x).get("event")]
    assert "champion_retired" in [e["event"] for e in events]
    runs = runner.invoke(app, ["monitor-history", "credit_risk"], env=env)
    assert runs.exit_code == 0 and "stable" in runs.output and "out-of-time period" in runs.output
    as_json = runner.invoke(app, ["monitor-history", "credit_risk", "--json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    records = json.loads(as_json.output)["runs"]
    lines = (legacy / "credit_risk" / "monitoring.jsonl").read_text().splitlines()
    assert len(records) == len(lines) and records[0]["verdict"] == json.loads(lines[0])["verdict"] == "stable"


def test_every_stored_spec_reads_back_with_the_lenient_reader():
    """A version keeps a dump of its spec; the reader of stored specs accepts what the code of its day
    wrote, also without the intended use and limitations that spec files must now give."""
    from models.spec import SpecError, parse_spec, stored_spec

    for path in sorted(LEGACY.glob("*/versions/*/metadata.json")):
        dump = json.loads(path.read_text())["spec"]
        spec = stored_spec(dump, origin=str(path))
        assert spec.name == path.parents[2].name and spec.intended_use == dump["intended_use"]
        written_then = {k: v for k, v in dump.items() if k not in ("intended_use", "limitations")}
        with pytest.raises(SpecError, match="field 'intended_use': required field is missing"):
            parse_spec(written_then, origin="x.yaml")
        old = stored_spec(written_then)
        assert (old.intended_use, old.limitations) == ("", [])
        blank = stored_spec({**dump, "intended_use": " ", "limitations": []})
        assert (blank.intended_use, blank.limitations) == (" ", [])
        assert blank.feature_columns == spec.feature_columns
    with pytest.raises(SpecError, match=r"credit_risk v1: invalid stored spec: field 'colour': unknown key"):
        stored_spec({**dump, "colour": "blue"}, origin="credit_risk v1")
