"""Four-eyes promotion (issue 18 §2): a passing run of a model whose spec requires an approval
leaves a ``pending`` version and the champion unchanged; the run's own user and unlisted names are
refused (and recorded); a listed approver moves the champion; an undecided request expires as
rejected after 14 days; every step is a typed history line that ``finml registry verify`` checks."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from models.aliases import CHALLENGER, move_alias, promote_alias
from models.approvals import (
    ApprovalRefusedError,
    AwaitingApprovalError,
    ChampionMovedError,
    decide_approval,
    expire_overdue,
    open_requests,
    parse_time,
    requests,
)
from models.audit import audit_model
from models.errors import RegistryError
from models.records.gate import GateResult, RuleVerdict
from models.records.registry import ApprovalRefused, Approved, Expired, Pending, Rejected, parse_event
from models.registry import ModelRegistry
from models.spec.governance import GovernanceSpec
from tasks.inventory import champion_facts


def write(folder: Path, version: int) -> dict:
    (folder / "model").mkdir()
    (folder / "model" / "weights.bin").write_bytes(f"weights {version}".encode())
    return {"model": "m", "spec": {"governance": {"owner": "risk", "tier": 1, "approval": "required",
                                                  "approvers": ["bob", "dana"]}}}


def _verdict(rule: str, passed: bool) -> RuleVerdict:
    return RuleVerdict(rule=rule, metric="roc_auc", value=0.8, bound=">= 0.7", passed=passed, sentence=f"{rule} {passed}")


GOV = GovernanceSpec(owner="credit risk team", tier=1, approval="required", approvers=["bob", "dana"])


def _evidence(run_id: str = "run-7", champion: int | None = 1, governance=GOV):
    gate = GateResult(verdicts=[_verdict("threshold", True), _verdict("champion", True)], champion_version=champion)
    return SimpleNamespace(spec=SimpleNamespace(name="m", gate=SimpleNamespace(primary_metric="roc_auc"),
                                                governance=governance),
                           run_id=run_id, reason="manual", best=SimpleNamespace(spec=SimpleNamespace(name="gbm")),
                           metrics={"roc_auc": 0.8}, gate=gate, started_at="2026-12-02T00:00:00+00:00",
                           who=None, register_as=None)


@pytest.fixture
def pending(tmp_path, monkeypatch):
    """alice's run leaves v2 pending; v1 (promoted without approval, before the rule) is the champion."""
    import tasks.promote as promote

    monkeypatch.setenv("FINML_USER", "alice")
    reg = ModelRegistry(tmp_path / "registry", "m")
    reg.publish(write, promote=True, history_event={"event": "promoted"})
    monkeypatch.setattr(promote, "version_writer", lambda ev, alias=None, pending=False: write)
    decision = promote.decide(_evidence(), tmp_path / "registry", tmp_path / "reports")
    return reg, decision


def _lines(reg: ModelRegistry) -> list[dict]:
    return [json.loads(raw) for raw in reg.history_path.read_text().splitlines() if raw.strip()]


def test_a_passing_run_leaves_a_pending_version_and_the_champion_unchanged(pending):
    reg, decision = pending
    assert (decision.promoted, decision.pending, decision.version, decision.champion_after) == (False, True, 2, 1)
    assert "pending an approval by bob, dana" in decision.reason
    assert reg.aliases() == {"champion": 1} and json.loads(reg.aliases_path.read_text()) == {"champion": 1}
    assert reg.list_versions() == [1, 2]  # written and committed, not the champion
    line = _lines(reg)[-1]
    assert {k: line[k] for k in ("event", "version", "who", "run_id", "approvers", "champion_before",
                                 "champion_after")} == {
        "event": "pending", "version": 2, "who": "alice", "run_id": "run-7", "approvers": ["bob", "dana"],
        "champion_before": 1, "champion_after": 1}
    assert parse_time(line["expires_at"]) - parse_time(line["ts"]) == timedelta(days=14)
    assert isinstance(parse_event(line), Pending) and line["metadata_sha256"]
    assert [r.version for r in open_requests(reg.history())] == [2]
    assert champion_facts(reg.history(), 1).pending == 1
    assert not (Path(reg.root).parent / "reports").exists()  # no rejection evidence


def test_approval_by_the_runs_own_user_is_refused_and_recorded(pending, monkeypatch):
    reg, _ = pending
    with pytest.raises(ApprovalRefusedError, match="alice started the run that asked for this approval"):
        decide_approval(reg, 2, approve=True, comment="looks fine to me")
    assert reg.champion() == 1
    line = _lines(reg)[-1]
    assert (line["event"], line["who"], line["attempted"], line["comment"], line["requested_by"]) == (
        "approval_refused", "alice", "approve", "looks fine to me", "alice")
    assert "run_id" not in line or line["run_id"] is None  # a refusal answers no request
    assert isinstance(parse_event(line), ApprovalRefused)
    assert champion_facts(reg.history(), 1).pending == 1  # still open for the inventory
    with pytest.raises(ApprovalRefusedError):  # rejecting one's own request is refused too
        decide_approval(reg, 2, approve=False, comment="never mind")
    assert requests(reg.history())[2].state == "pending"


def test_an_unlisted_approver_is_refused_and_a_listed_one_moves_the_champion(pending, monkeypatch):
    reg, _ = pending
    monkeypatch.setenv("FINML_USER", "carol")
    with pytest.raises(ApprovalRefusedError, match=r"carol is not on the spec's approvers list \(bob, dana\)"):
        decide_approval(reg, 2, approve=True, comment="ok")
    assert reg.champion() == 1 and _lines(reg)[-1]["event"] == "approval_refused"

    monkeypatch.setenv("FINML_USER", "bob")
    req = decide_approval(reg, 2, approve=True, comment="validated by the committee on 3 Dec")
    assert (req.state, req.decided_by) == ("approved", "bob")
    assert reg.champion() == 2 and json.loads(reg.aliases_path.read_text()) == {"champion": 2}
    line = _lines(reg)[-1]
    assert {k: line[k] for k in ("event", "version", "who", "run_id", "comment", "requested_by", "champion_before",
                                 "champion_after")} == {
        "event": "approved", "version": 2, "who": "bob", "run_id": "run-7",
        "comment": "validated by the committee on 3 Dec", "requested_by": "alice", "champion_before": 1,
        "champion_after": 2}
    assert isinstance(parse_event(line), Approved)
    assert [e["event"] for e in _lines(reg)] == ["promoted", "pending", "approval_refused", "approved"]
    facts = champion_facts(reg.history(), 2)
    assert (facts.approved_by, facts.promoted_by, facts.pending) == ("bob", "bob", 0)
    assert audit_model(reg).ok
    with pytest.raises(RegistryError, match="was approved already by bob"):
        decide_approval(reg, 2, approve=False, comment="changed my mind", who="dana")


def test_a_rejection_leaves_the_champion_and_is_final(pending):
    reg, _ = pending
    decide_approval(reg, 2, approve=False, comment="the holdout is too short", who="dana")
    assert reg.champion() == 1
    line = _lines(reg)[-1]
    assert (line["event"], line["version"], line["who"], line["comment"], line["requested_by"], line["run_id"]) == (
        "rejected", 2, "dana", "the holdout is too short", "alice", "run-7")
    assert isinstance(parse_event(line), Rejected)
    assert champion_facts(reg.history(), 1).pending == 0
    with pytest.raises(AwaitingApprovalError, match="version 2 is rejected"):
        reg.rollback(2, reason="try it anyway")
    with pytest.raises(RegistryError, match="was rejected already"):
        decide_approval(reg, 2, approve=True, comment="ok", who="bob")
    assert audit_model(reg).ok


def test_an_undecided_request_expires_after_14_days_as_rejected(pending):
    reg, _ = pending
    asked = parse_time(_lines(reg)[-1]["ts"])
    assert expire_overdue(reg, now=asked + timedelta(days=13, hours=23)) == []
    with pytest.raises(ApprovalRefusedError, match="expired at"):
        decide_approval(reg, 2, approve=True, comment="late", who="bob", now=asked + timedelta(days=14))
    line = _lines(reg)[-1]
    assert (line["event"], line["version"], line["run_id"], line["expires_at"]) == (
        "expired", 2, "run-7", (asked + timedelta(days=14)).isoformat())
    assert isinstance(parse_event(line), Expired)
    assert reg.champion() == 1 and requests(reg.history())[2].state == "expired"
    assert expire_overdue(reg, now=asked + timedelta(days=30)) == []  # written once
    with pytest.raises(AwaitingApprovalError, match="version 2 is expired"):
        reg.rollback(2, reason="bring it in")


def test_expires_after_from_the_spec(tmp_path, monkeypatch):
    import tasks.promote as promote

    monkeypatch.setenv("FINML_USER", "alice")
    monkeypatch.setattr(promote, "version_writer", lambda ev, alias=None, pending=False: write)
    gov = GovernanceSpec(owner="x", tier=1, approval="required", expires_after=3)
    promote.decide(_evidence(champion=None, governance=gov), tmp_path, tmp_path / "reports")
    reg = ModelRegistry(tmp_path, "m")
    line = _lines(reg)[-1]
    assert parse_time(line["expires_at"]) - parse_time(line["ts"]) == timedelta(days=3)
    assert (line["approvers"], reg.champion()) == ([], None)
    with pytest.raises(ApprovalRefusedError):  # an empty list: anyone but the requester
        decide_approval(reg, 1, approve=True, comment="mine", who="alice")
    decide_approval(reg, 1, approve=True, comment="ok", who="zoe")
    assert reg.champion() == 1


def test_without_an_approval_rule_a_passing_run_is_promoted_as_before(tmp_path, monkeypatch):
    import tasks.promote as promote

    monkeypatch.setattr(promote, "version_writer", lambda ev, alias=None, pending=False: write)
    gov = GovernanceSpec(owner="x", tier=1, approval="none")
    decision = promote.decide(_evidence(champion=None, governance=gov), tmp_path, tmp_path / "reports")
    assert (decision.promoted, decision.pending, decision.version) == (True, False, 1)
    assert _lines(ModelRegistry(tmp_path, "m"))[-1]["event"] == "promoted"
    tier3 = promote.decide(_evidence(champion=1, governance=GovernanceSpec(owner="x", tier=3)), tmp_path,
                           tmp_path / "reports")
    assert tier3.promoted and not promote.approval_required(SimpleNamespace(governance=GovernanceSpec(owner="x", tier=3)))
    assert promote.approval_required(SimpleNamespace(governance=GovernanceSpec(owner="x", tier=2)))  # by tier


def test_no_rollback_or_roll_forward_makes_a_pending_version_champion(pending):
    reg, _ = pending
    with pytest.raises(AwaitingApprovalError, match="version 2 is pending.*finml approve m --version 2"):
        reg.rollback(2, reason="skip the committee")
    move_alias(reg, CHALLENGER, 2, reason="shadow-score it while it waits")  # shadow scoring is allowed
    with pytest.raises(AwaitingApprovalError):
        promote_alias(reg, CHALLENGER, reason="roll it forward")
    assert reg.champion() == 1 and reg.aliases() == {"champion": 1, "challenger": 2}
    assert [e["event"] for e in _lines(reg)][-1] == "alias_moved"  # nothing written by the refusals


def test_a_version_whose_stored_spec_requires_approval_is_not_rolled_in_unapproved(tmp_path, monkeypatch):
    monkeypatch.setenv("FINML_USER", "alice")
    reg = ModelRegistry(tmp_path, "m")
    reg.publish(write, promote=True, history_event={"event": "promoted"})
    reg.publish(write, promote=False, history_event={"event": "registered"}, alias=CHALLENGER)
    with pytest.raises(AwaitingApprovalError, match="version 2 was never approved and its spec requires"):
        promote_alias(reg, CHALLENGER, reason="roll forward")
    reg.publish(write, promote=True, history_event={"event": "promoted"})
    assert reg.rollback(1, reason="back to a former champion") == 3  # was a champion: allowed


def test_approval_is_refused_when_the_champion_moved_meanwhile(pending):
    reg, _ = pending
    reg.publish(write, promote=True, history_event={"event": "promoted"})  # v3 champion, another run
    with pytest.raises(ChampionMovedError, match="judged against version 1, but the champion is now 3"):
        decide_approval(reg, 2, approve=True, comment="ok", who="bob")
    assert reg.champion() == 3 and requests(reg.history())[2].state == "pending"


def test_verify_catches_an_edited_approval_line(pending):
    reg, _ = pending
    decide_approval(reg, 2, approve=True, comment="ok", who="bob")
    raw = reg.history_path.read_text().splitlines()
    raw[-1] = raw[-1].replace('"who": "bob"', '"who": "alice"')  # the last line: no successor's link breaks
    reg.history_path.write_text("\n".join(raw) + "\n")
    assert audit_model(reg).breaks == [
        "history.jsonl record 3 (approved): alice started the run that asked for this approval (the pending line's "
        "who): four eyes need someone else"]

    raw[-1] = raw[-1].replace('"who": "alice"', '"who": "bob"')
    reg.history_path.write_text("\n".join(raw) + "\n")
    assert audit_model(reg).ok
    reg.append_history({"event": "reviewed", "version": 2, "reason": "annual"})
    raw = reg.history_path.read_text().splitlines()
    raw[2] = raw[2].replace('"comment": "ok"', '"comment": "approved by the board"')  # inside the chain
    reg.history_path.write_text("\n".join(raw) + "\n")
    assert audit_model(reg).breaks == [
        "history.jsonl line 4: prev_sha256 does not match line 3 (a line before it was edited, removed or reordered)"]


def test_verify_catches_a_forged_champion_move_to_a_pending_version(pending):
    reg, _ = pending
    reg.append_history({"event": "rolled_back", "version": 2, "previous_champion": 1, "champion_after": 2})
    assert audit_model(reg).breaks == [
        "history.jsonl record 3 (rolled_back): makes version 2 the champion, but its approval request is pending"]


def test_the_cli_approves_refuses_and_lists(pending, monkeypatch, tmp_path):
    from flows.cli import app

    reg, _ = pending
    monkeypatch.setenv("FINML_REGISTRY_DIR", str(reg.root))
    runner = CliRunner()
    listed = runner.invoke(app, ["pending"])
    assert listed.exit_code == 0 and "m: v2 pending since" in listed.output and "approvers bob, dana" in listed.output
    own = runner.invoke(app, ["approve", "m", "--version", "2", "--comment", "mine"])
    assert own.exit_code == 1 and "refused: alice started the run" in own.output
    monkeypatch.setenv("FINML_USER", "dana")
    assert runner.invoke(app, ["approve", "m", "--version", "2", "--comment", " "]).exit_code == 2
    ok = runner.invoke(app, ["approve", "m", "--version", "2", "--comment", "signed off"])
    assert ok.exit_code == 0, ok.output
    assert "v2 approved by dana; it is the champion (was v1)" in ok.output
    assert reg.champion() == 2
    assert "no version is waiting" in runner.invoke(app, ["pending", "m"]).output
    history = runner.invoke(app, ["registry", "history", "m", "--json"])
    events = [(e["event"], e.get("who")) for e in json.loads(history.output)["events"]]
    assert events == [("promoted", "alice"), ("pending", "alice"), ("approval_refused", "alice"), ("approved", "dana")]
    assert runner.invoke(app, ["registry", "verify", "m"]).exit_code == 0
    raw = reg.history_path.read_text().splitlines()
    raw[-1] = raw[-1].replace('"who": "dana"', '"who": "carol"')  # an unlisted approver written in by hand
    reg.history_path.write_text("\n".join(raw) + "\n")
    forged = runner.invoke(app, ["registry", "verify", "m"])
    assert forged.exit_code != 0 and "carol is not on the spec's approvers list" in forged.output, forged.output


def test_the_inventory_expires_overdue_requests(pending, monkeypatch):
    import models.approvals as approvals
    from flows.cli.approval import expire_all_quietly

    reg, _ = pending
    asked = parse_time(_lines(reg)[-1]["ts"])
    monkeypatch.setattr(approvals, "utc_now", lambda: asked + timedelta(days=15))
    expire_all_quietly(reg.root)
    assert _lines(reg)[-1]["event"] == "expired" and champion_facts(reg.history(), 1).pending == 0
    assert isinstance(asked, datetime)


def test_the_suspended_wait_suspends_again_after_a_refusal_with_a_new_key(pending, monkeypatch):
    """``tasks.approval.wait_for_approval`` without a server: ``suspend_flow_run`` answers as a
    resumed run's would (the input the form sent), and is asked again with a new key after a refusal."""
    import prefect.flow_runs

    from tasks.approval import ApprovalInput, approval_description, wait_for_approval, waiting_request

    reg, _ = pending
    answers = iter([{"decision": "approve", "approver": "alice", "comment": "mine"},
                    {"decision": "approve", "approver": "bob", "comment": "committee ok"}])
    asked = []

    def fake_suspend(wait_for_input, key, timeout):
        asked.append((key, timeout, wait_for_input._description))
        return ApprovalInput(**next(answers))

    monkeypatch.setattr(prefect.flow_runs, "suspend_flow_run", fake_suspend)
    request = waiting_request(reg.root, "m", "run-7")
    assert (request.version, request.state) == (2, "pending") and waiting_request(reg.root, "m", "other") is None
    outcome = wait_for_approval(reg.root, "m", request)
    assert (outcome["state"], outcome["by"], outcome["comment"]) == ("approved", "bob", "committee ok")
    assert len(outcome["refusals"]) == 1 and "alice started the run" in outcome["refusals"][0]
    assert [k for k, _, _ in asked] == ["approval-v2-0", "approval-v2-1"]
    assert all(13 * 86400 < t <= 14 * 86400 for _, t, _ in asked)  # the suspension times out at the expiry
    assert "## Approve m version 2?" in asked[0][2] and "May decide: bob, dana" in asked[0][2]
    assert reg.champion() == 2 and waiting_request(reg.root, "m", "run-7").state == "approved"
    verdicts = {"gate": {"verdicts": [{"rule": "threshold", "metric": "roc_auc", "value": 0.81234, "bound": ">= 0.7",
                                       "passed": True}]}}
    text = approval_description("m", 2, verdicts, request, reg.version_dir(2) / "model_card.md")
    assert "| threshold | roc_auc | 0.8123 | >= 0.7 | pass |" in text and "model_card.md](file://" in text


def test_a_suspended_deployment_run_counts_as_not_promoted():
    from flows.cli.common import deployment_training_exit_code
    from flows.deploy import RunOutcome

    waiting = RunOutcome(deployment="train-model/train-m", flow_run_id="x", name="train-m", state="PAUSED",
                         state_name="Suspended", message=None, ui_url=None, summary="Training m: pending approval")
    assert waiting.suspended and not waiting.completed
    assert deployment_training_exit_code([waiting]) == 3


def test_finml_train_deployment_stops_waiting_at_a_suspension_and_exits_3(monkeypatch):
    import flows.cli.training as cli_training
    import flows.deploy
    from flows.cli import app
    from flows.deploy import RunOutcome

    waiting = RunOutcome(deployment="train-model/train-b", flow_run_id="x", name="train-b-2026", state="PAUSED",
                         state_name="Suspended", message=None, ui_url=None,
                         summary="Training b: pending approval as version 2; champion stays v1")
    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setattr(cli_training, "_check_spec", lambda name: None)
    monkeypatch.setattr(flows.deploy, "run_and_wait", lambda requests, timeout: [waiting])
    result = CliRunner().invoke(app, ["train", "b", "--deployment"])
    assert result.exit_code == 3, result.output  # before: 1, "did not complete"
    assert "suspended, waiting for an approval: answer its form in the Prefect UI" in result.output


def test_verify_catches_a_forged_promoted_line_for_a_pending_version(pending):
    reg, _ = pending
    digest = _lines(reg)[-1]["metadata_sha256"]
    reg.append_history({"event": "promoted", "version": 2, "metadata_sha256": digest, "champion_after": 2})
    assert reg.champion() == 2  # the history's word: the forgery takes effect for readers ...
    assert audit_model(reg).breaks == [  # ... and verify names it
        "history.jsonl record 3 (promoted): makes version 2 the champion, but its approval request is pending"]


def test_outside_a_deployment_run_nothing_suspends():
    from tasks.approval import in_deployment_run

    assert in_deployment_run() is False
