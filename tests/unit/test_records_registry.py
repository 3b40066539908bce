"""The stored-record rules: the schema version written, the legacy version read, omitted keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from models.records.monitoring import MonitoringSkipped
from models.records.registry import (
    HISTORY_SCHEMA_VERSION,
    LEGACY_SCHEMA_VERSION,
    METADATA_SCHEMA_VERSION,
    ChampionRetired,
    Rejected,
    RolledBack,
    VersionMetadata,
    parse_event,
)


def test_a_record_made_by_this_code_carries_the_current_version_and_a_stored_one_without_it_the_legacy_one():
    assert Rejected(candidate="x").schema_version == HISTORY_SCHEMA_VERSION == 3
    assert Rejected.from_stored({"event": "rejected"}).schema_version == LEGACY_SCHEMA_VERSION == 1
    assert Rejected.from_stored({"event": "rejected", "schema_version": 2}).schema_version == 2
    # whatever it was read as, this code writes its own version
    assert Rejected.from_stored({"event": "rejected"}).to_json()["schema_version"] == HISTORY_SCHEMA_VERSION


def test_optional_keys_the_original_code_wrote_only_sometimes_stay_out_of_the_json():
    plain = RolledBack(version=1, previous_champion=2, champion_after=1, reason="r").to_json()
    assert "repaired_alias_file" not in plain and plain["previous_champion"] == 2
    repaired = RolledBack(version=1, champion_after=1, reason="r", repaired_alias_file="bad json").to_json()
    assert repaired["repaired_alias_file"] == "bad json"
    retired = ChampionRetired(version=3, reason="r").to_json()
    assert retired == {"event": "champion_retired", "version": 3, "champion_after": None, "reason": "r",
                       "run_id": None, "ts": None, "model": None, "schema_version": HISTORY_SCHEMA_VERSION}


def test_event_kinds_are_checked():
    with pytest.raises(ValidationError):
        parse_event({"version": 1})  # no event kind
    with pytest.raises(ValidationError):
        Rejected.from_stored({"event": "promoted"})  # a promotion is not a rejection
    with pytest.raises(ValidationError, match="value"):
        parse_event({"event": "rejected", "value": "high"})


def test_rejected_run_metadata_has_no_version_or_files_keys():
    meta = VersionMetadata(model="m", task="regression", created_at="t", spec_sha256="s", spec={}, features=["x"],
                           target="y", holdout={"rows": 3}, selected_candidate={"name": "a", "estimator": "ridge"},
                           primary_metric="rmse", metrics={"rmse": 0.1}, gate={"verdicts": [], "champion_version": None}, decision={"promoted": False,
                                                                                             "reason": "no"})
    out = meta.to_json()
    assert "version" not in out and "files" not in out and out["schema_version"] == METADATA_SCHEMA_VERSION
    assert VersionMetadata.from_stored(out) == meta
    with pytest.raises(ValidationError, match="primary_metric"):
        VersionMetadata.from_stored({k: v for k, v in out.items() if k != "primary_metric"})


def test_an_insufficient_data_result_says_so():
    skipped = MonitoringSkipped(model="m", version=1, summary="too few", batch={"label": "b", "rows": 5})
    assert skipped.verdict == "insufficient_data" and skipped.batch.rows == 5
