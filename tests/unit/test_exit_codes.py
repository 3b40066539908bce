"""Exit codes a script can use (issue 14 §2), the `stopped` history line of a run that bad data
stopped, and the run of a single `finml train MODEL` (its own flow, not a train-all parent)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from flows.cli import app
from models.registry import ModelRegistry

PROMOTED = {"model": "a", "gate": "passed", "promoted": True, "version": 1, "champion": 1, "reason": "passed"}
REJECTED = {"model": "b", "gate": "failed", "promoted": False, "version": None, "champion": None,
            "reason": "threshold: ROC AUC 0.61 < 0.7", "evidence": "/reports/b/run-1/rejected.json"}
ERROR = {"model": "c", "gate": "error", "promoted": False, "reason": "DataValidationError: column 'x' ..."}


def test_the_codes_are_distinct():
    from flows.cli.common import EXIT_ALARM, EXIT_ERROR, EXIT_OK, EXIT_REJECTED

    assert len({EXIT_OK, EXIT_ERROR, 2, EXIT_REJECTED, EXIT_ALARM, 130, 143}) == 7
    assert (EXIT_OK, EXIT_ERROR, EXIT_REJECTED, EXIT_ALARM) == (0, 1, 3, 4)


@pytest.mark.parametrize(("rows", "code"), [
    ([PROMOTED], 0),
    ([REJECTED], 3),
    ([ERROR], 1),
    ([PROMOTED, REJECTED], 3),  # several models: the worst outcome
    ([REJECTED, ERROR, PROMOTED], 1),  # an error before a rejection
    ([{**PROMOTED, "promoted": False, "version": None}], 3),  # gate passed, the champion moved: not promoted
])
def test_training_exit_code_is_the_worst_outcome(rows, code):
    from flows.cli.common import training_exit_code

    assert training_exit_code(rows) == code


@pytest.mark.parametrize(("verdict", "code"), [
    ("stable", 0), ("drift", 4), ("feature_drift", 4), ("performance_breach", 4), ("calibration_breach", 4),
    ("drift_and_performance_breach", 4), ("data_quality_alarm", 4), ("insufficient_data", 4),
])
def test_fail_on_alarm_code_of_each_verdict(verdict, code):
    from flows.cli.monitoring import monitoring_exit_code

    assert monitoring_exit_code(verdict) == code


def test_train_exits_3_on_a_rejection_and_prints_where_the_model_card_went(monkeypatch):
    import flows.cli.training as cli_training

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(cli_training, "preflight_train", lambda model: None)  # models "a" and "b" have no spec
    monkeypatch.setattr(cli_training, "preflight_train_all", lambda: (["a", "b", "c"], 0))  # every spec passes
    monkeypatch.setattr(cli_training, "_run_training", lambda models, reason, parent=False: [REJECTED])
    result = CliRunner().invoke(app, ["train", "b"])
    assert result.exit_code == 3, result.output
    assert "model card of the rejected run: /reports/b/run-1/model_card.md" in result.output
    monkeypatch.setattr(cli_training, "_run_training", lambda models, reason, parent=False: [PROMOTED])
    assert CliRunner().invoke(app, ["train", "a"]).exit_code == 0
    monkeypatch.setattr(cli_training, "_run_training", lambda models, reason, parent=False: [PROMOTED, REJECTED, ERROR])
    assert CliRunner().invoke(app, ["train", "--all"]).exit_code == 1


@pytest.mark.parametrize(("verdict", "flag", "code"), [
    ("drift", True, 4), ("stable", True, 0), ("insufficient_data", True, 4), ("drift", False, 0),
])
def test_monitor_fail_on_alarm(monkeypatch, verdict, flag, code):
    import flows.cli.monitoring as cli_monitoring
    import flows.monitoring

    for name in ("_check_spec_or_stored", "preflight_monitor", "_check_configured_api", "_check_version",
                 "print_monitoring"):
        monkeypatch.setattr(cli_monitoring, name, lambda *a, **k: None)
    monkeypatch.setattr(flows.monitoring, "monitor_model", lambda *a, **k: SimpleNamespace(verdict=verdict))
    flags = ["--fail-on-alarm"] if flag else []
    result = CliRunner().invoke(app, ["monitor", "credit_risk", "--demo-period", *flags])
    assert result.exit_code == code, result.output


def test_fail_on_alarm_is_refused_with_deployment():
    result = CliRunner().invoke(app, ["monitor", "credit_risk", "--demo-period", "--deployment", "--fail-on-alarm"])
    assert result.exit_code == 2
    assert "cannot be used with --deployment" in " ".join(result.output.split())


def test_exit_codes_are_in_the_help():
    text = " ".join(CliRunner().invoke(app, ["--help"]).output.split())  # rich wraps the epilog
    assert "3 rejected by the gate" in text and "4 monitoring verdict not stable" in text


def test_one_model_is_trained_in_its_own_run_not_a_train_all_parent(monkeypatch):
    import flows.cli.training as cli_training
    import flows.training

    calls = []
    monkeypatch.setattr(cli_training, "_check_configured_api", lambda: None)
    monkeypatch.setattr(flows.training, "train_one",
                        lambda name, reason, runner: calls.append(("one", name)) or PROMOTED)
    monkeypatch.setattr(flows.training, "train_all", SimpleNamespace(
        with_options=lambda **k: lambda **kw: calls.append(("all", kw["models"])) or [PROMOTED]))
    assert cli_training._run_training(["credit_risk"], "manual") == [PROMOTED]
    assert calls == [("one", "credit_risk")]
    cli_training._run_training(["credit_risk", "loan_evaluation"], "manual")
    assert calls[-1] == ("all", ["credit_risk", "loan_evaluation"])
    cli_training._run_training(["credit_risk"], "manual", parent=True)  # --all with one valid spec: the parent flow
    assert calls[-1] == ("all", ["credit_risk"])


def test_the_single_model_run_is_named_train_model():
    from flows.naming import training_run_name

    assert training_run_name("credit_risk", None, "train-credit_risk-2026-12-02T0800", label="stopped") == \
        "train-credit_risk-stopped-2026-12-02T0800"
    assert training_run_name("credit_risk", None, "train-credit_risk-2026-12-02T0800") == \
        "train-credit_risk-rejected-2026-12-02T0800"


def test_a_stopped_run_is_a_history_line_that_changes_nothing_else(tmp_path):
    from models.records.registry import Stopped
    from tasks.leakage import LeakageError
    from tasks.promote import record_stop

    reg = ModelRegistry(tmp_path, "m")
    err = LeakageError("column 'fee' predicts the target alone (ROC AUC 0.99 > leakage.max_single_feature_auc 0.95)",
                       ["fee"])
    assert record_stop("m", tmp_path, run_id="run-1", reason="manual", err=err)
    [event] = reg.history_events()
    assert isinstance(event, Stopped)
    assert (event.event, event.error, event.cause, event.run_id, event.reason, event.version) == (
        "stopped", "LeakageError", str(err), "run-1", "manual", None)
    assert event.ts and event.model == "m" and event.prev_sha256 == "0" * 64
    assert reg.list_versions() == [] and reg.champion() is None and reg._next_version() == 1


def test_a_registry_that_cannot_take_the_line_does_not_hide_the_run_error(tmp_path):
    from tasks.promote import record_stop

    (tmp_path / "m").write_text("not a folder")  # the model's folder is a file: the append fails
    assert record_stop("m", tmp_path, run_id=None, reason="manual", err=ValueError("x")) is False


def test_the_registry_commands_read_a_stopped_line(tmp_path, monkeypatch):
    from flows.cli.common import console
    from tasks.promote import record_stop
    from tasks.validate import ModellingDataError

    monkeypatch.setenv("FINML_REGISTRY_DIR", str(tmp_path))
    monkeypatch.setattr(console, "width", 300)  # the console's width was fixed at import
    record_stop("m", tmp_path, run_id="run-1", reason="manual",
                err=ModellingDataError("m: the event rate 0.71 is outside the expected range [0.05, 0.45]"))
    history = CliRunner().invoke(app, ["registry", "history", "m"])
    assert history.exit_code == 0, history.output
    assert "stopped" in history.output
    assert "ModellingDataError: m: the event rate 0.71 is outside the expected range [0.05, 0.45]" in history.output
    verify = CliRunner().invoke(app, ["registry", "verify", "m"])
    assert verify.exit_code == 0, verify.output
    listing = CliRunner().invoke(app, ["registry", "list"])
    assert listing.exit_code == 0 and "stopped" in listing.output, listing.output


def test_boolean_options_show_as_flags_in_the_help():
    """typer 0.29 printed ``<bool>`` after every flag (``--all <bool>``), as if it took a value."""
    import re

    from typer.main import get_command

    command = get_command(app)
    for name, sub in command.commands.items():
        for inner in getattr(sub, "commands", {name: sub}).values():
            args = [name] if inner is sub else [name, inner.name]
            text = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200"}).output
            assert "<bool>" not in text, (args, text)
            flags = [p for p in inner.params if getattr(p, "is_flag", False) and not p.hidden]
            for p in flags:
                assert re.search(rf"{re.escape(p.opts[0])}\s", text), (args, p.opts[0])
    assert "<bool>" not in CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"}).output
