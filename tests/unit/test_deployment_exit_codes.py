"""`finml train --deployment` gives the exit codes of a local run (issue 14 §2): a run the gate
rejected exits 3 and prints where its model card went (before: 0, a rejection is a completed
deployment run); a run that did not complete exits 1."""

from __future__ import annotations

from types import SimpleNamespace

from typer.testing import CliRunner

from flows.cli import app
from flows.cli.common import (
    deployment_rejected,
    deployment_training_exit_code,
    model_card_line,
)
from tasks.report import training_summary_markdown

DECISION_REJECTED = {"promoted": False, "version": None, "champion_after": 1, "reason": "threshold: ROC AUC 0.61 < 0.7",
                     "evidence_path": "/reports/b/run-1/rejected.json"}
DECISION_PROMOTED = {"promoted": True, "version": 2, "champion_after": 2, "reason": "all rules passed",
                     "evidence_path": None}
DATA = {"rows": 300, "development_rows": 300, "sha256": "ab" * 32}


def _summary(decision) -> str:
    return training_summary_markdown("b", decision, {"roc_auc": 0.61}, "roc_auc", [], {"verdicts": []},
                                     "binary_classification", DATA)


def _outcome(decision, name: str, state: str = "COMPLETED"):
    markdown = _summary(decision)
    first = markdown.splitlines()[0].lstrip("# ").replace("**", "")  # as flows.deploy.describe_run reads it
    return SimpleNamespace(deployment="train-model/train-b", name=name, state=state, state_name=state.title(),
                           completed=state == "COMPLETED", summary=first, message=None, ui_url=None,
                           artifacts=[{"key": "b-training-summary", "type": "markdown", "data": markdown}])


REJECTED = _outcome(DECISION_REJECTED, "train-b-rejected-2026-12-02T0800")
PROMOTED = _outcome(DECISION_PROMOTED, "train-b-v2-2026-12-02T0800")


def test_the_summary_artifact_names_a_rejected_runs_model_card():
    assert "Model card of the rejected run: `/reports/b/run-1/model_card.md`" in _summary(DECISION_REJECTED)
    assert "Model card" not in _summary(DECISION_PROMOTED)


def test_a_rejected_deployment_run_is_told_by_its_summary_or_its_name():
    assert deployment_rejected(REJECTED) and not deployment_rejected(PROMOTED)
    unnamed = SimpleNamespace(**{**vars(REJECTED), "name": "train-b-2026-12-02T0800"})  # the rename failed
    assert deployment_rejected(unnamed)
    no_artifact = SimpleNamespace(**{**vars(REJECTED), "summary": None, "artifacts": []})
    assert deployment_rejected(no_artifact)
    assert deployment_training_exit_code([PROMOTED]) == 0
    assert deployment_training_exit_code([PROMOTED, REJECTED]) == 3
    assert model_card_line(REJECTED) == "Model card of the rejected run: /reports/b/run-1/model_card.md"
    assert model_card_line(PROMOTED) is None


def _invoke(monkeypatch, outcomes):
    import flows.cli.training as cli_training
    import flows.deploy

    monkeypatch.setenv("COLUMNS", "300")
    monkeypatch.setattr(cli_training, "_check_spec", lambda name: None)
    monkeypatch.setattr(flows.deploy, "run_and_wait", lambda requests, timeout: outcomes)
    return CliRunner().invoke(app, ["train", "b", "--deployment"])


def test_train_deployment_exits_3_on_a_rejection_and_names_the_model_card(monkeypatch):
    result = _invoke(monkeypatch, [REJECTED])
    assert result.exit_code == 3, result.output
    assert "Model card of the rejected run: /reports/b/run-1/model_card.md" in " ".join(result.output.split())


def test_train_deployment_exits_0_on_a_promotion_and_1_on_a_failed_run(monkeypatch):
    assert _invoke(monkeypatch, [PROMOTED]).exit_code == 0
    failed = _outcome(DECISION_PROMOTED, "train-b-stopped-2026-12-02T0800", state="FAILED")
    assert _invoke(monkeypatch, [failed]).exit_code == 1
    assert _invoke(monkeypatch, [REJECTED, failed]).exit_code == 1  # an error before a rejection
