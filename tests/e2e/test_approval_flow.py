"""Four-eyes promotion through Prefect's embedded API (issue 18 §2): a real training run of a spec
with ``governance.approval: required`` leaves its passing version pending and the champion
unchanged, through the ``train-model`` flow and ``finml train``; a local run never suspends; the
run's own user is refused; a listed approver moves the champion; rollback cannot skip it."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from models.audit import audit_model
from models.registry import ModelRegistry
from tests.helpers import builtin_spec_dict, write_spec

pytestmark = pytest.mark.usefixtures("prefect_api")


def _four_eyes_spec(folder) -> None:
    spec = builtin_spec_dict("mortgage_approval")
    spec["candidates"] = [c for c in spec["candidates"] if c["estimator"] != "keras_mlp"]  # seconds, no Keras
    spec["governance"] = {"owner": "Mortgage credit risk modelling", "tier": 1, "approval": "required",
                          "approvers": ["bob"]}
    write_spec(folder, spec)


def test_the_training_flow_leaves_a_pending_version_that_only_a_listed_approver_promotes(finml_env, monkeypatch):
    from flows.cli import app
    from flows.training import train_model

    _four_eyes_spec(finml_env["specs"])
    monkeypatch.setenv("FINML_USER", "alice")
    summary = train_model("mortgage_approval")
    reg = ModelRegistry(finml_env["registry"], "mortgage_approval")
    assert (summary["gate"], summary["promoted"], summary["pending"], summary["version"], summary["champion"]) == (
        "passed", False, True, 1, None)
    assert reg.champion() is None and reg.list_versions() == [1]
    [line] = reg.history()
    assert (line["event"], line["who"], line["approvers"], line["version"]) == ("pending", "alice", ["bob"], 1)
    meta = reg.read_metadata(1)
    assert meta["decision"]["pending"] is True and meta["decision"]["promoted"] is False and meta["reference"]
    card = (reg.version_dir(1) / "model_card.md").read_text()
    assert "v1 (pending approval, not promoted)" in card

    runner = CliRunner()
    rollback = runner.invoke(app, ["registry", "rollback", "mortgage_approval", "--to", "1"])
    assert rollback.exit_code == 1 and "version 1 is pending" in rollback.output and reg.champion() is None
    own = runner.invoke(app, ["approve", "mortgage_approval", "--version", "1", "--comment", "mine"])
    assert own.exit_code == 1 and "refused" in own.output and reg.champion() is None
    monkeypatch.setenv("FINML_USER", "bob")
    ok = runner.invoke(app, ["approve", "mortgage_approval", "--version", "1", "--comment", "fair-lending review done"])
    assert ok.exit_code == 0, ok.output
    assert reg.champion() == 1
    assert [(e["event"], e["who"]) for e in reg.history()] == [
        ("pending", "alice"), ("approval_refused", "alice"), ("approved", "bob")]
    assert audit_model(reg).ok


def test_finml_train_exits_3_with_the_version_pending(finml_env, monkeypatch):
    from flows.cli import app

    _four_eyes_spec(finml_env["specs"])
    monkeypatch.setenv("FINML_USER", "alice")
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["train", "mortgage_approval"])
    assert result.exit_code == 3, result.output
    assert "version 1 is pending an approval by bob" in result.output
    reg = ModelRegistry(finml_env["registry"], "mortgage_approval")
    assert reg.champion() is None and [e["event"] for e in reg.history()] == ["pending"]
