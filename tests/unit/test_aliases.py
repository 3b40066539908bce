"""Aliases beyond the champion (issue 18 §1): a challenger and named aliases set and moved with
their own history lines, reconciled from the history, part of the hash chain that `finml registry
verify` checks; a challenger rolled forward to champion; rollback to the previous champion."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from models.aliases import (
    CHALLENGER,
    move_alias,
    named_aliases_from_history,
    previous_champion,
    promote_alias,
    remove_alias,
    rollback_previous,
)
from models.audit import audit_model
from models.errors import RegistryError
from models.records.gate import GateResult, RuleVerdict
from models.records.registry import AliasMoved, AliasRemoved, Registered, RolledBack
from models.registry import ModelRegistry
from tasks.promote import registers_as

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_registry"


def write(folder: Path, version: int) -> dict:
    (folder / "model").mkdir()
    (folder / "model" / "weights.bin").write_bytes(f"weights {version}".encode())
    return {"model": "m"}


def registry(root: Path, promoted: int = 1, registered: int = 1) -> ModelRegistry:
    """``promoted`` champions in turn, then ``registered`` versions that are not."""
    reg = ModelRegistry(root, "m")
    for _ in range(promoted):
        reg.publish(write, promote=True, history_event={"event": "promoted"})
    for _ in range(registered):
        reg.publish(write, promote=False, history_event={"event": "registered"})
    return reg


@pytest.fixture(autouse=True)
def user(monkeypatch):
    monkeypatch.setenv("FINML_USER", "vera")


def _lines(reg: ModelRegistry) -> list[dict]:
    return [json.loads(raw) for raw in reg.history_path.read_text().splitlines() if raw.strip()]


def test_a_challenger_is_set_and_moved_with_its_own_history_lines(tmp_path):
    reg = registry(tmp_path, promoted=1, registered=2)  # v1 champion, v2 and v3 registered
    assert move_alias(reg, CHALLENGER, 2, reason="shadow-score the GBM") is None
    assert move_alias(reg, CHALLENGER, 3, reason="retrained with May data") == 2
    assert reg.aliases() == {"champion": 1, "challenger": 3}
    assert json.loads(reg.aliases_path.read_text()) == {"champion": 1, "challenger": 3}
    assert reg.resolve("challenger") == 3 and reg.resolve(None) == 1  # the champion is untouched
    first, second = _lines(reg)[-2:]
    assert {k: first[k] for k in ("event", "alias", "version", "previous", "reason", "who")} == {
        "event": "alias_moved", "alias": "challenger", "version": 2, "previous": None,
        "reason": "shadow-score the GBM", "who": "vera"}
    assert (second["version"], second["previous"], second["reason"]) == (3, 2, "retrained with May data")
    assert [type(e) for e in reg.history_events()[-2:]] == [AliasMoved, AliasMoved]
    assert audit_model(reg).ok


def test_a_user_named_alias_and_its_removal(tmp_path):
    reg = registry(tmp_path, promoted=2, registered=0)
    move_alias(reg, "validated-2026q2", 1, reason="the version the validators signed off")
    assert reg.aliases() == {"champion": 2, "validated-2026q2": 1}
    assert remove_alias(reg, "validated-2026q2", reason="superseded") == 1
    assert reg.aliases() == {"champion": 2}
    last = reg.history_events()[-1]
    assert isinstance(last, AliasRemoved) and (last.alias, last.version, last.who) == ("validated-2026q2", 1, "vera")
    with pytest.raises(RegistryError, match="no alias 'validated-2026q2'"):
        remove_alias(reg, "validated-2026q2", reason="again")


@pytest.mark.parametrize(("name", "to", "message"), [
    ("champion", 2, "moved by promotion, `finml registry rollback"),
    ("Challenger", 2, "is not an alias name"),
    ("7", 2, "is not an alias name"),  # would read as a version number
    ("challenger", 9, "no version 9"),
    ("challenger", 1, "version 1 is the champion; a challenger is a version that does not serve"),
])
def test_refused_alias_moves_write_nothing(tmp_path, name, to, message):
    reg = registry(tmp_path)
    before = reg.history_path.read_bytes()
    with pytest.raises(RegistryError, match=message):
        move_alias(reg, name, to, reason="x")
    assert reg.history_path.read_bytes() == before and reg.aliases() == {"champion": 1}


def test_an_alias_move_needs_a_reason(tmp_path):
    reg = registry(tmp_path)
    with pytest.raises(RegistryError, match="needs a reason"):
        move_alias(reg, CHALLENGER, 2, reason="  ")


def test_the_history_wins_over_a_stale_alias_file(tmp_path):
    """A crash between the alias line and the alias file write: every reader follows the history."""
    reg = registry(tmp_path, promoted=1, registered=2)
    move_alias(reg, CHALLENGER, 2, reason="first")
    stored = reg.aliases_path.read_text()
    move_alias(reg, CHALLENGER, 3, reason="second")
    reg.aliases_path.write_text(stored)  # the file as it was before the second move
    assert reg.stored_aliases() == {"champion": 1, "challenger": 2}
    assert reg.aliases() == {"champion": 1, "challenger": 3} and reg.resolve("challenger") == 3
    remove_alias(reg, CHALLENGER, reason="done")
    reg.aliases_path.write_text(stored)
    assert reg.aliases() == {"champion": 1}  # a removal stated by the history holds too


def test_verify_detects_an_edited_alias_line(tmp_path):
    reg = registry(tmp_path, promoted=1, registered=2)
    move_alias(reg, CHALLENGER, 2, reason="first")
    move_alias(reg, CHALLENGER, 3, reason="second")  # the alias line to edit is no longer the last
    raw = reg.history_path.read_text().splitlines()
    assert json.loads(raw[3])["event"] == "alias_moved"
    raw[3] = raw[3].replace('"version": 2', '"version": 3')
    assert '"version": 3' in raw[3]
    reg.history_path.write_text("\n".join(raw) + "\n")
    report = audit_model(reg)
    assert not report.ok
    assert report.breaks[0] == ("history.jsonl line 5: prev_sha256 does not match line 4 (a line before it was "
                                "edited, removed or reordered)")


def test_signed_mode_detects_an_edited_last_alias_line(tmp_path, monkeypatch):
    from models.signing import generate_keypair

    generate_keypair(tmp_path / "signing.pem", tmp_path / "verify.pem")
    monkeypatch.setenv("FINML_SIGNING_KEY_FILE", str(tmp_path / "signing.pem"))
    reg = registry(tmp_path / "registry", promoted=1, registered=1)
    move_alias(reg, CHALLENGER, 2, reason="shadow")
    assert audit_model(ModelRegistry(reg.root, "m")).ok
    raw = reg.history_path.read_text().replace('"previous": null', '"previous": 1')
    reg.history_path.write_text(raw)
    report = audit_model(ModelRegistry(reg.root, "m"))
    assert report.breaks and report.breaks[0].startswith("history.jsonl line 3:"), report.breaks


def test_a_run_registered_as_challenger_names_the_alias_on_its_commit_line(tmp_path):
    reg = registry(tmp_path, promoted=1, registered=0)
    failed = ["roc_auc 0.801 is not better beyond noise than champion v1"]
    version = reg.publish(write, promote=False, alias=CHALLENGER,
                          history_event=Registered(candidate="gbm", champion_before=1, failed_rules=failed))
    assert version == 2 and reg.aliases() == {"champion": 1, "challenger": 2}
    line = _lines(reg)[-1]
    assert (line["event"], line["alias"], line["champion_after"], line["failed_rules"], line["who"]) == (
        "registered", "challenger", 1, failed, "vera")
    assert named_aliases_from_history(_lines(reg)) == {"challenger": 2}
    assert audit_model(reg).ok


def _verdict(rule: str, passed: bool) -> RuleVerdict:
    return RuleVerdict(rule=rule, metric="roc_auc", value=0.8, bound=">= 0.7", passed=passed, sentence=f"{rule} {passed}")


@pytest.mark.parametrize(("verdicts", "alias", "expected"), [
    ([("threshold", True), ("champion", False)], "challenger", True),  # kept out by the champion comparison only
    ([("threshold", False), ("champion", False)], "challenger", False),  # a threshold failed too
    ([("sanity", False), ("champion", False)], "challenger", False),
    ([("baseline", False), ("champion", False)], "challenger", False),
    ([("threshold", True), ("champion", True)], "challenger", False),  # passed: promoted instead
    ([("threshold", True), ("champion", False)], None, False),  # not asked for
])
def test_only_a_run_that_fails_champion_rules_alone_is_registered_as_challenger(verdicts, alias, expected):
    gate = GateResult(verdicts=[_verdict(r, p) for r, p in verdicts], champion_version=1)
    assert registers_as(SimpleNamespace(gate=gate, register_as=alias)) is expected


def test_a_challenger_rolled_forward_to_champion_has_its_own_history_lines(tmp_path):
    reg = registry(tmp_path, promoted=1, registered=1)
    move_alias(reg, CHALLENGER, 2, reason="shadow")
    assert promote_alias(reg, CHALLENGER, reason="three months of stable shadow scores") == (1, 2)
    assert reg.aliases() == {"champion": 2} and reg.champion() == 2
    moved, removed = reg.history_events()[-2:]
    assert isinstance(moved, RolledBack) and (moved.version, moved.previous_champion, moved.from_alias) == (
        2, 1, "challenger")
    assert moved.reason == "three months of stable shadow scores" and moved.who == "vera"
    assert isinstance(removed, AliasRemoved) and (removed.alias, removed.version) == ("challenger", 2)
    assert audit_model(reg).ok
    with pytest.raises(RegistryError, match="no alias 'challenger' to roll forward"):
        promote_alias(reg, CHALLENGER, reason="again")


def test_rollback_previous_returns_to_the_champion_before_the_current_one(tmp_path):
    reg = registry(tmp_path, promoted=3, registered=0)  # champions 1, 2, 3
    assert rollback_previous(reg, reason="v3 misbehaves") == (3, 2)
    assert reg.champion() == 2
    line = _lines(reg)[-1]
    assert (line["event"], line["version"], line["previous_champion"], line["who"]) == ("rolled_back", 2, 3, "vera")
    assert rollback_previous(reg, reason="undo") == (2, 3)  # the champion before v2 took office again was v3


def test_rollback_previous_after_a_retirement_restores_the_retired_champion(tmp_path):
    reg = registry(tmp_path, promoted=2, registered=0)
    reg.retire_champion(reason="feature dropped")
    assert previous_champion(reg.history()) == 2
    assert rollback_previous(reg, reason="feature restored") == (None, 2)


def test_rollback_previous_without_an_earlier_champion_says_so(tmp_path):
    reg = registry(tmp_path, promoted=1, registered=1)
    with pytest.raises(RegistryError, match=r"no previous champion to roll back to: version 1 is the first champion "
                                            r"\(versions: \[1, 2\]\); use --to N"):
        rollback_previous(reg, reason="x")
    none = registry(tmp_path / "other", promoted=0, registered=1)
    with pytest.raises(RegistryError, match="it has never had a champion"):
        rollback_previous(none, reason="x")


def test_a_legacy_registry_takes_aliases_and_still_verifies(tmp_path):
    root = tmp_path / "registry"
    shutil.copytree(LEGACY, root, ignore=shutil.ignore_patterns("README.md"))
    reg = ModelRegistry(root, "credit_risk")
    champion = reg.champion()
    assert reg.aliases() == {"champion": champion}
    move_alias(reg, "validated", champion, reason="the legacy champion as validated")
    assert reg.aliases() == {"champion": champion, "validated": champion}
    assert audit_model(reg).ok and reg.resolve() == champion
    assert [e.who for e in reg.history_events()][-1] == "vera"
    assert all(e.who is None for e in reg.history_events()[:-1])  # old lines read without who


def test_the_cli_sets_an_alias_rolls_back_to_the_previous_champion_and_forward_a_challenger(finml_env):
    from flows.cli import app
    from models.settings import get_settings

    reg = registry(get_settings().registry_dir, promoted=1, registered=1)
    runner = CliRunner()
    result = runner.invoke(app, ["registry", "rollback", "m", "--previous"])
    assert result.exit_code == 1 and "no previous champion to roll back to" in result.output, result.output
    result = runner.invoke(app, ["registry", "alias", "m", "challenger", "--to", "2"])
    assert result.exit_code == 2 and "--reason" in result.output
    result = runner.invoke(app, ["registry", "alias", "m", "challenger", "--to", "2", "--reason", "shadow"])
    assert result.exit_code == 0 and "alias challenger set to v2" in result.output, result.output
    result = runner.invoke(app, ["registry", "rollback", "m", "--to", "challenger", "--reason", "it won"])
    assert result.exit_code == 0 and "champion moved from v1 to v2" in result.output, result.output
    assert reg.aliases() == {"champion": 2}
    result = runner.invoke(app, ["registry", "rollback", "m", "--previous", "--reason", "back"])
    assert result.exit_code == 0 and "champion moved from v2 to v1" in result.output, result.output
    result = runner.invoke(app, ["registry", "rollback", "m", "--previous", "--to", "2"])
    assert result.exit_code == 2 and "not both" in result.output
    result = runner.invoke(app, ["registry", "history", "m"], env={"COLUMNS": "250"})
    assert result.exit_code == 0 and result.output.count("vera") == len(reg.history()), result.output
    result = runner.invoke(app, ["monitor", "m", "--demo-period", "--alias", "challenger", "--version", "2"])
    assert result.exit_code == 2 and "not both" in result.output


def test_decide_registers_a_run_kept_out_by_the_champion_comparison_as_challenger(tmp_path, monkeypatch):
    import tasks.promote as promote

    reg = registry(tmp_path / "registry", promoted=1, registered=0)
    gate = GateResult(verdicts=[_verdict("threshold", True), _verdict("champion", False)], champion_version=1)
    ev = SimpleNamespace(spec=SimpleNamespace(name="m", gate=SimpleNamespace(primary_metric="roc_auc")),
                         run_id="r7", reason="schedule", best=SimpleNamespace(spec=SimpleNamespace(name="gbm")),
                         metrics={"roc_auc": 0.8}, gate=gate, started_at="2026-12-02T00:00:00+00:00",
                         who="schedule", register_as=CHALLENGER)
    monkeypatch.setattr(promote, "version_writer", lambda ev, alias=None: write)
    decision = promote.decide(ev, tmp_path / "registry", tmp_path / "reports")
    assert (decision.promoted, decision.version, decision.champion_after, decision.alias) == (False, 2, 1, "challenger")
    assert decision.reason.endswith("; registered as challenger v2")
    assert reg.aliases() == {"champion": 1, "challenger": 2}
    line = _lines(reg)[-1]
    assert (line["event"], line["alias"], line["who"], line["run_id"], line["failed_rules"]) == (
        "registered", "challenger", "schedule", "r7", ["champion False"])
    assert not (tmp_path / "reports").exists()  # a registered version is no rejection: no evidence folder


def test_verify_names_a_last_alias_line_edited_to_a_version_that_does_not_exist(tmp_path):
    """The last line has no successor whose link would break (unsigned mode): the audit still
    refuses an alias pointed at a version no line commits."""
    reg = registry(tmp_path, promoted=1, registered=1)
    move_alias(reg, CHALLENGER, 2, reason="shadow")
    raw = reg.history_path.read_text().splitlines()
    raw[-1] = raw[-1].replace('"version": 2, "who"', '"version": 9, "who"')
    reg.history_path.write_text("\n".join(raw) + "\n")
    report = audit_model(reg)
    assert report.breaks == ["history.jsonl record 3 (alias_moved): the alias challenger names version 9, which no "
                             "line commits (an edited or forged line)"]


def test_a_scoring_worker_in_signed_mode_loads_the_challenger_the_signed_history_names(tmp_path, monkeypatch):
    import pandas as pd

    from models.estimators import save_pipeline
    from models.signing import generate_keypair
    from tests.forgery import fitted_pipeline

    def pipeline_writer(folder: Path, version: int) -> dict:
        (folder / "model").mkdir()
        save_pipeline(fitted_pipeline(), folder / "model")
        pd.DataFrame({"score": [0.25, 0.75]}).to_parquet(folder / "reference.parquet", index=False)
        return {"model": "m", "features": ["x"]}

    generate_keypair(tmp_path / "signing.pem", tmp_path / "verify.pem")
    monkeypatch.setenv("FINML_SIGNING_KEY_FILE", str(tmp_path / "signing.pem"))
    reg = ModelRegistry(tmp_path / "registry", "m")
    reg.publish(pipeline_writer, promote=True, history_event={"event": "promoted"})
    reg.publish(pipeline_writer, promote=False, alias=CHALLENGER, history_event=Registered())
    monkeypatch.delenv("FINML_SIGNING_KEY_FILE")
    monkeypatch.setenv("FINML_VERIFY_KEY_FILE", str(tmp_path / "verify.pem"))
    worker = ModelRegistry(tmp_path / "registry", "m")
    (worker.aliases_path).write_text('{"champion": 1, "challenger": 1}')  # aliases.json is not signed
    pipeline, verified = worker.load_verified("challenger")
    assert verified.version == 2 and hasattr(pipeline, "predict_proba")
    assert worker.load_verified()[1].version == 1
