"""Each error printed once (issue 14 §2): the console filter that keeps Prefect from repeating an
error the command prints itself, the debug switch that turns it off, and the summary's error line."""

from __future__ import annotations

import logging

import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.cli.common import QuietRunProgress, ShowErrorsOnce, debug_enabled, quiet_prefect_console
from models.errors import SHOWN_BY_CALLER, DataError, LeakageError


def _record(name: str, msg: str, exc: BaseException | None = None, level: int = logging.ERROR, **extra):
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    record = logging.LogRecord(name, level, __file__, 1, msg, (), exc_info)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_prefect_failure_lines_of_our_errors_are_dropped_with_their_finished_line():
    quiet = ShowErrorsOnce()
    err = LeakageError("m: probable target leakage: 'fee' ...", ["fee"], "leakage.max_single_feature_auc")
    task = {"task_run_id": "t-1", "flow_run_id": "f-1"}
    assert not quiet.filter(_record("prefect.task_runs", f"Task run failed with exception: {err!r}", err, **task))
    assert not quiet.filter(_record("prefect.task_runs", f"Finished in state Failed('{err}')", **task))
    assert not quiet.filter(_record("prefect.flow_runs", f"Encountered exception during execution: {err!r}", err,
                                    flow_run_id="f-1"))
    assert not quiet.filter(_record("prefect.flow_runs", "Finished in state Failed('Flow run encountered ...')",
                                    level=logging.INFO, flow_run_id="f-1"))
    # other runs' lines, and this run's other lines, pass
    assert quiet.filter(_record("prefect.task_runs", "Finished in state Failed('x')", task_run_id="t-2", flow_run_id="f-1"))
    assert quiet.filter(_record("prefect.flow_runs", "Beginning flow run 'x'", level=logging.INFO, flow_run_id="f-1"))


def test_a_bug_keeps_its_prefect_lines_and_traceback():
    quiet = ShowErrorsOnce()
    try:
        raise KeyError("income")
    except KeyError as bug:
        record = _record("prefect.task_runs", "Task run failed with exception: KeyError('income')", bug,
                         task_run_id="t-1")
    assert quiet.filter(record) and record.exc_info is not None
    assert quiet.filter(_record("prefect.task_runs", "Finished in state Failed('KeyError')", task_run_id="t-1"))


def test_our_error_logged_by_another_logger_passes():
    """Only Prefect's run-failure lines repeat what the command prints: a candidate's logged failure does not."""
    record = _record("tasks.train", "candidate gbm of m failed", DataError("m: column 'x' ..."))
    assert ShowErrorsOnce().filter(record)


def test_a_record_marked_shown_by_caller_is_dropped():
    quiet = ShowErrorsOnce()
    assert not quiet.filter(_record("flows.training", "m failed: ...", **{SHOWN_BY_CALLER: True}))
    assert quiet.filter(_record("flows.training", "m failed: ..."))


def test_the_filter_sits_on_prefects_console_handler_once_and_not_in_debug(monkeypatch):
    from prefect.logging.handlers import PrefectConsoleHandler

    monkeypatch.delenv("FINML_DEBUG", raising=False)
    consoles = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    before = {id(h): list(h.filters) for h in consoles}
    try:
        assert quiet_prefect_console() is True
        assert quiet_prefect_console() is True  # twice: still one filter
        consoles = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
        assert consoles
        for h in consoles:
            assert sum(isinstance(f, ShowErrorsOnce) for f in h.filters) == 1
        # the run loggers' own handlers (Prefect's API log) get no filter: the run history keeps the failure
        for name in ("prefect.task_runs", "prefect.flow_runs"):
            for h in logging.getLogger(name).handlers:
                assert not any(isinstance(f, ShowErrorsOnce) for f in h.filters)
    finally:
        for h in consoles:
            h.filters[:] = before.get(id(h), [f for f in h.filters
                                              if not isinstance(f, (ShowErrorsOnce, QuietRunProgress))])
    monkeypatch.setenv("FINML_DEBUG", "1")
    assert debug_enabled() and quiet_prefect_console() is False


@pytest.mark.parametrize(("value", "on"), [("1", True), ("true", True), ("yes", True), ("0", False), ("", False)])
def test_finml_debug_values(monkeypatch, value, on):
    monkeypatch.setenv("FINML_DEBUG", value)
    assert debug_enabled() is on


def test_the_debug_option_sets_finml_debug(monkeypatch, tmp_path):
    import os

    monkeypatch.delenv("FINML_DEBUG", raising=False)
    monkeypatch.setenv("FINML_SPECS_DIR", str(tmp_path))
    try:
        result = CliRunner().invoke(app, ["--debug", "models"])
        assert result.exit_code in (0, 1), result.output
        assert os.environ.get("FINML_DEBUG") == "1"
    finally:  # the option set it in os.environ itself: monkeypatch would restore its "1" at teardown
        os.environ.pop("FINML_DEBUG", None)
    help_text = " ".join(CliRunner().invoke(app, ["--help"]).output.split())
    assert "--debug" in help_text and "FINML_DEBUG=1" in help_text


def test_a_failed_run_is_one_error_line_on_stderr(monkeypatch, capsys):
    from flows.cli import training

    rows = [{"model": "applications", "gate": "error", "promoted": False,
             "reason": "applications: data validation failed (1 critical expectation(s))"},
            {"model": "other", "gate": "error", "promoted": False, "reason": "KeyError: 'x'"}]
    training.print_summary(rows, "Training summary")
    out, err = capsys.readouterr()
    assert "data validation failed" not in out
    assert err.count("data validation failed") == 1
    assert "error: applications: data validation failed" in err and "applications: applications:" not in err
    assert "error: other: KeyError: 'x'" in err


def test_debug_prints_the_traceback_before_the_error_line(monkeypatch, capsys):
    from flows.cli import common

    monkeypatch.setenv("FINML_DEBUG", "1")
    try:
        raise DataError("m: column 'x' is missing")
    except DataError:
        common._error_line("m: column 'x' is missing")
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().endswith("error: m: column 'x' is missing")
    monkeypatch.delenv("FINML_DEBUG")
    try:
        raise DataError("m: column 'x' is missing")
    except DataError:
        common._error_line("m: column 'x' is missing")
    assert "Traceback" not in capsys.readouterr().err


def test_run_progress_stays_off_the_console_and_each_flows_start_and_warnings_stay():
    quiet = QuietRunProgress()
    info = logging.INFO
    assert not quiet.filter(_record("prefect.task_runs", "Finished in state Completed()", level=info))
    assert not quiet.filter(_record("prefect.flow_runs", "Finished in state Completed()", level=info))
    assert not quiet.filter(_record("prefect.flow_runs", "spec: judged with the spec stored with v1", level=info))
    assert not quiet.filter(_record("great_expectations.data_context.types.base", "Created temporary directory",
                                    level=info))
    assert quiet.filter(_record("prefect.flow_runs", "Beginning flow run 'x' for flow 'train-model'", level=info))
    assert quiet.filter(_record("prefect.flow_runs", "View at http://127.0.0.1:4200/runs/flow-run/1", level=info))
    assert quiet.filter(_record("prefect.flow_runs", "validation: 3 values out of range", level=logging.WARNING))
    assert quiet.filter(_record("prefect", "Starting temporary server on http://127.0.0.1:8308", level=info))


def test_the_command_log_file_keeps_every_info_line(tmp_path, monkeypatch):
    import flows.cli.common as common
    from prefect.logging.handlers import PrefectConsoleHandler

    monkeypatch.delenv("FINML_DEBUG", raising=False)
    monkeypatch.setenv("FINML_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setattr(common, "_LOG_FILE", [])
    root = logging.getLogger()
    handlers = list(root.handlers)
    consoles = [h for h in handlers if isinstance(h, PrefectConsoleHandler)]
    filters = {id(h): list(h.filters) for h in consoles}
    try:
        assert quiet_prefect_console() is True
        assert common.command_log_file() is None  # created on its first line
        logging.getLogger("prefect.task_runs").info("Finished in state Completed()")
        for h in root.handlers:
            h.flush()
        path = common.command_log_file()
        assert path is not None and path.parent == tmp_path / "reports" / "logs"
        assert path.read_text().strip().endswith("INFO    prefect.task_runs | Finished in state Completed()")
    finally:
        for h in root.handlers:
            if h not in handlers:
                h.close()
        root.handlers[:] = handlers
        for h in consoles:
            h.filters[:] = filters[id(h)]
