"""The hash chain of history.jsonl and monitoring.jsonl, and `finml registry verify` (issue 13 §4):
a clean registry passes; an edited, removed or reordered line, a changed file or an uncommitted
folder is named as the first break; legacy lines without the chain are counted, not failed."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
from pathlib import Path

import pytest

from models.audit import audit_model
from models.integrity import GENESIS
from models.registry import ModelRegistry, RegistryError
from tests.forgery import writable

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_registry"


def write(folder: Path, version: int) -> dict:
    (folder / "model_card.md").write_text(f"# card v{version}\n")
    return {"model": "m", "metrics": {"roc_auc": 0.8}}


def _registry(root: Path, versions: int = 3) -> ModelRegistry:
    reg = ModelRegistry(root, "m")
    for i in range(versions):
        reg.publish(write, promote=True, history_event={"event": "promoted", "reason": f"run {i}"})
    return reg


def _raw(path: Path) -> list[bytes]:
    return [line for line in path.read_bytes().split(b"\n") if line.strip()]


def _verify(*args: str):
    from typer.testing import CliRunner

    from flows.cli import app

    return CliRunner().invoke(app, ["registry", "verify", *args], env={"COLUMNS": "400"})


def test_every_history_and_monitoring_line_names_the_sha256_of_the_line_before(tmp_path):
    reg = _registry(tmp_path)
    reg.rollback(1, reason="back")
    reg.append_monitoring({"verdict": "stable"})
    reg.append_monitoring({"verdict": "drift"})
    for path in (reg.history_path, reg.monitoring_path):
        lines = _raw(path)
        assert json.loads(lines[0])["prev_sha256"] == GENESIS
        for before, line in itertools.pairwise(lines):
            assert json.loads(line)["prev_sha256"] == hashlib.sha256(before).hexdigest()
    assert len(_raw(reg.history_path)) == 4
    report = audit_model(reg)
    assert report.ok and report.verified == [1, 2, 3] and report.history.legacy == 0, report.breaks


def test_verify_passes_on_a_clean_registry(finml_env):
    _registry(finml_env["registry"])
    result = _verify()
    assert result.exit_code == 0, result.output
    assert "m: OK (unsigned mode); history.jsonl: 3 line(s), chain intact; versions verified: 1, 2, 3" in result.output


def test_verify_names_an_edited_history_line(finml_env):
    reg = _registry(finml_env["registry"])
    lines = reg.history_path.read_text().splitlines()
    lines[1] = lines[1].replace('"reason": "run 1"', '"reason": "run X"')  # an edit keeping valid JSON
    reg.history_path.write_text("\n".join(lines) + "\n")
    result = _verify("m")
    assert result.exit_code == 1
    assert ("m: BROKEN first break: history.jsonl line 3: prev_sha256 does not match line 2 (a line before it was "
            "edited, removed or reordered)") in result.output


def test_verify_names_a_removed_and_a_reordered_history_line(tmp_path):
    reg = _registry(tmp_path, versions=4)
    original = _raw(reg.history_path)
    reg.history_path.write_bytes(b"\n".join([original[0], original[2], original[3]]) + b"\n")  # line 2 removed
    breaks = audit_model(reg).breaks
    assert breaks[0].startswith("history.jsonl line 2: prev_sha256 does not match line 1")
    assert any(b.startswith("version 2: its folder has no commit line") for b in breaks)  # its commit line is gone
    reg.history_path.write_bytes(b"\n".join([original[0], original[2], original[1], original[3]]) + b"\n")
    assert audit_model(reg).breaks[0].startswith("history.jsonl line 2: prev_sha256 does not match line 1")
    reg.history_path.write_bytes(b"\n".join(original[1:]) + b"\n")  # the first line removed
    assert audit_model(reg).breaks[0] == ("history.jsonl line 1: prev_sha256 names a predecessor but this is the "
                                          "first line (lines removed from the start)")


def test_verify_names_a_changed_file_and_an_uncommitted_folder(finml_env):
    reg = _registry(finml_env["registry"])
    card = reg.version_dir(2) / "model_card.md"
    writable(reg.version_dir(2))
    card.write_text("# a changed card\n")
    result = _verify("m")
    assert result.exit_code == 1
    assert ("first break: m version 2 failed its integrity check: model_card.md: SHA-256 differs from the recorded "
            "hash") in result.output
    shutil.copytree(reg.version_dir(1), reg.versions_dir / "4")  # a folder no history line commits
    breaks = audit_model(reg).breaks
    assert len(breaks) == 2 and breaks[1].startswith("version 4: its folder has no commit line in history.jsonl")


def test_an_edited_monitoring_line_is_named(tmp_path):
    reg = _registry(tmp_path, versions=1)
    for verdict in ("stable", "drift", "stable"):
        reg.append_monitoring({"verdict": verdict})
    text = reg.monitoring_path.read_text().replace('"verdict": "drift"', '"verdict": "stable"')
    reg.monitoring_path.write_text(text)
    assert audit_model(reg).breaks == [("monitoring.jsonl line 3: prev_sha256 does not match line 2 (a line before "
                                        "it was edited, removed or reordered)")]


def test_an_unchained_line_after_chained_ones_is_a_break(tmp_path):
    reg = _registry(tmp_path, versions=2)
    with open(reg.history_path, "a") as fh:
        fh.write(json.dumps({"event": "rolled_back", "version": 1, "champion_after": 1}) + "\n")
    assert audit_model(reg).breaks == [("history.jsonl line 3 has no prev_sha256 after chained lines (inserted, or "
                                        "edited without the chain)")]


def test_an_append_after_a_torn_line_chains_to_the_last_whole_line(tmp_path):
    reg = _registry(tmp_path, versions=1)
    with open(reg.history_path, "a") as fh:
        fh.write('{"event": "rejected", "ver')  # a crash in the middle of an append
    assert audit_model(reg).history.torn_last_line  # skipped, as readers skip it; not a break
    assert audit_model(reg).ok
    reg.append_history({"event": "rejected", "version": None})  # cuts the torn line off
    lines = _raw(reg.history_path)
    assert len(lines) == 2 and json.loads(lines[1])["prev_sha256"] == hashlib.sha256(lines[0]).hexdigest()
    assert audit_model(reg).ok


def test_a_legacy_registry_verifies_and_its_chain_starts_at_the_first_new_line(tmp_path, finml_env):
    root = finml_env["registry"]
    shutil.copytree(LEGACY / "credit_risk", root / "credit_risk")
    result = _verify("credit_risk")
    assert result.exit_code == 0, result.output
    assert ("credit_risk: OK (unsigned mode); history.jsonl: 5 line(s), chain intact, unchained legacy lines: 5; "
            "versions verified: 1; monitoring.jsonl: 1 line(s), chain intact, unchained legacy lines: 1"
            in result.output)
    reg = ModelRegistry(root, "credit_risk")
    reg.retire_champion(reason="test")
    reg.rollback(1, reason="test")
    report = audit_model(reg)
    assert report.ok and report.history.legacy == 5 and report.history.lines == 7, report.breaks
    lines = _raw(reg.history_path)
    assert json.loads(lines[5])["prev_sha256"] == hashlib.sha256(lines[4]).hexdigest()  # linked to the last legacy
    edited = lines[4].replace(b'"rolled_back"', b'"promoted"')  # the last legacy line is covered by the link
    reg.history_path.write_bytes(b"\n".join([*lines[:4], edited, *lines[5:]]) + b"\n")
    assert audit_model(reg).breaks[0].startswith("history.jsonl line 6: prev_sha256 does not match line 5")


@pytest.mark.parametrize("model", ["nosuch"])
def test_verify_of_an_unknown_model_is_one_line(finml_env, model):
    _registry(finml_env["registry"], versions=1)
    result = _verify(model)
    assert result.exit_code == 1 and "nosuch" in result.output and "Traceback" not in result.output


def test_a_damaged_history_line_is_named_by_verify_and_the_audit(tmp_path):
    reg = _registry(tmp_path, versions=2)
    lines = _raw(reg.history_path)
    reg.history_path.write_bytes(b"\n".join([b"{not json", lines[1]]) + b"\n")
    with pytest.raises(RegistryError, match="history.jsonl: line 1 is damaged"):
        reg.verify(2)
    assert audit_model(reg).breaks[0].startswith("history.jsonl line 1 is damaged")


def test_verify_counts_a_damaged_line_and_names_it_once(finml_env):
    """A new-user trial: line 2 of 3 replaced by `{not json` was counted as '2 line(s)' and reported
    twice (as the history's break and again as each version's)."""
    reg = _registry(finml_env["registry"])
    lines = _raw(reg.history_path)
    reg.history_path.write_bytes(b"\n".join([lines[0], b"{not json", lines[2]]) + b"\n")
    result = _verify("m")
    assert result.exit_code == 1
    assert ("m: BROKEN first break: history.jsonl line 2 is damaged (Expecting property name enclosed in double "
            "quotes: line 1 column 2 (char 1))\n") in result.output
    assert "also:" not in result.output and result.output.count("line 2 is damaged") == 1, result.output
    assert ("m: history.jsonl: 3 line(s) (1 damaged), BROKEN; versions verified: none; versions not checked "
            "(history.jsonl is damaged, so every load refuses them): 1, 2, 3; monitoring.jsonl: 0 line(s), chain "
            "intact\n") in result.output
    report = audit_model(reg)
    assert report.history.lines == 3 and report.history.damaged_lines == 1 and len(report.breaks) == 1
