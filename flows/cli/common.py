"""What every ``finml`` command shares: the consoles, the one-line error exit, the wording of an
error that ended a run, the console filter that keeps Prefect from printing that error again (and
the ``FINML_DEBUG`` switch that turns it off), value formatting, and the registry look-ups of the
registry commands.

Importing it sets the offline-friendly environment defaults (an explicit setting wins).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

# Offline-friendly defaults; an explicit environment setting wins.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Prefect's temporary API server gets 20 s to start by default; on a busy 2-core machine it took
# longer and the run failed with "Timed out while attempting to connect to ephemeral Prefect API".
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")

# Piped output (CI logs, `make demo | tee`) gets a wide console instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() or "COLUMNS" in os.environ else 140)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() or "COLUMNS" in os.environ else 140)

EPHEMERAL_TIMEOUT = "Timed out while attempting to connect to ephemeral Prefect API server"
"""The start of the error Prefect raises when its temporary API server does not start in time."""


EXIT_OK = 0
"""The command did what was asked: ``finml train`` promoted (every model, with ``--all``)."""
EXIT_ERROR = 1
"""An error ended the command: bad data or spec, a run stopped before its gate, a failed flow run."""
EXIT_USAGE = 2
"""Bad command-line arguments (also Typer's own code for them)."""
EXIT_REJECTED = 3
"""``finml train``: the gate rejected the challenger (nothing promoted; the run printed where its model card went)."""
EXIT_ALARM = 4
"""``finml monitor --fail-on-alarm``: the verdict is not ``stable`` (an alarm, or too few rows to judge)."""
EXIT_CODES_HELP = ("Exit codes: 0 done (promoted; monitoring measured, whatever the verdict without --fail-on-alarm), "
                   "1 error (a run stopped by bad data too), 2 usage, 3 rejected by the gate, "
                   "4 monitoring verdict not stable with --fail-on-alarm, 130/143 interrupted (128 + signal).")
"""The exit codes in one sentence, for the ``--help`` texts (table in ``docs/operations.md``)."""


def training_exit_code(rows: list[dict[str, Any]]) -> int:
    """The exit code of a training command from its summaries (one per model): the worst outcome,
    an error (:data:`EXIT_ERROR`) before a rejection (:data:`EXIT_REJECTED`) before
    :data:`EXIT_OK`. A row's ``gate`` is ``passed``, ``failed`` or ``error``; a passed gate whose
    version was not promoted (the champion moved meanwhile) counts as a rejection."""
    if any(r.get("gate") == "error" for r in rows):
        return EXIT_ERROR
    if any(r.get("gate") == "failed" or not r.get("promoted", r.get("gate") == "passed") for r in rows):
        return EXIT_REJECTED
    return EXIT_OK


def deployment_rejected(outcome) -> bool:
    """Whether a completed training deployment run was rejected by the gate: its training-summary
    artifact says ``not promoted`` (:attr:`flows.deploy.RunOutcome.summary`, the artifact's first
    line ``Training <model>: not promoted; ...``), or its name says ``-rejected-``
    (:func:`flows.naming.training_run_name`)."""
    head = (outcome.summary or "").split(": ", 1)[-1]
    if getattr(outcome, "suspended", False):  # waiting for an approval: not promoted (yet)
        return True
    return head.startswith(("not promoted", "pending approval")) or "-rejected-" in (outcome.name or "")


def deployment_training_exit_code(outcomes) -> int:
    """``finml train --deployment``'s exit code from its completed runs' outcomes, the codes of a
    local run: :data:`EXIT_REJECTED` when the gate rejected a model (:func:`deployment_rejected`),
    else :data:`EXIT_OK`. (A run that did not complete already ended the command with
    :data:`EXIT_ERROR`.)"""
    return EXIT_REJECTED if any(deployment_rejected(o) for o in outcomes) else EXIT_OK


def model_card_line(outcome) -> str | None:
    """The line of a rejected run's training-summary artifact that names its model card
    (:data:`tasks.report.MODEL_CARD_LINE`), as ``<MODEL_CARD_LINE> <path or URL>`` (the markdown's
    backticks or autolink brackets, :func:`tasks.ui_files.file_reference`, taken off), or None."""
    from tasks.report import MODEL_CARD_LINE

    for artifact in outcome.artifacts or []:
        if (artifact.get("key") or "").endswith("-training-summary"):
            for line in (artifact.get("data") or "").splitlines():
                if line.startswith(MODEL_CARD_LINE):
                    target = line[len(MODEL_CARD_LINE):].strip()
                    if len(target) > 1 and (target[0], target[-1]) in (("`", "`"), ("<", ">")):
                        target = target[1:-1]
                    return f"{MODEL_CARD_LINE} {target}"
    return None


def _fail(message: str, code: int = 1) -> None:
    """Print ``error: <message>`` on stderr and end the command with exit code ``code``.

    Raises:
        typer.Exit: always.
    """
    _error_line(message)
    raise typer.Exit(code)


def _error_line(message: str) -> None:
    """Print ``error: <message>`` on stderr, as one line whatever the terminal's width; with
    :func:`debug_enabled`, inside an ``except`` block, the traceback of the error being handled first."""
    from rich.markup import escape

    if debug_enabled() and sys.exc_info()[1] is not None:
        err_console.print_exception()
    # escape: data examples such as "[inf]" would otherwise be read as rich markup and vanish
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _error_message(err: BaseException) -> str:
    """One line for an error that ended a run: the message alone for bad input (the class name
    tells a user nothing), a hint for Prefect's temporary server not starting, else type and message."""
    from models.errors import FinmlError

    if isinstance(err, FinmlError):
        return str(err)
    if isinstance(err, RuntimeError) and EPHEMERAL_TIMEOUT in str(err):
        limit = os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "20")
        return (f"Prefect's temporary API server did not start within {limit} s (this machine is busy?); "
                "raise PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS, or start a server once (make server) "
                "and set PREFECT_API_URL")
    return f"{type(err).__name__}: {err}"


def _fmt(value: Any) -> str:
    """A value as the tables show it (``-`` when missing); see :func:`tasks.report.fmt_value`."""
    from tasks.report import fmt_value

    return fmt_value(value, missing="-")


class _registry_errors:
    """Context manager: a registry or spec problem ends the command with a one-line error."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        from models.errors import FinmlError

        if exc is not None and isinstance(exc, FinmlError):
            _fail(str(exc))
        return False


def _existing_model(model: str):
    """The model's registry folder; a one-line error when the name is unsafe or unknown."""
    from models.registry import ModelRegistry
    from models.settings import get_settings

    reg = ModelRegistry(get_settings().registry_dir, model)
    if not reg.exists():
        _fail(f"no model named {model!r} in the registry at {reg.root.resolve()}")
    return reg


RUN_FAILURE_LOGGERS = ("prefect.task_runs", "prefect.flow_runs")
"""Prefect's loggers of task and flow runs, which log a run's failure (twice each: the exception,
then ``Finished in state Failed(...)``)."""


def debug_enabled() -> bool:
    """True when ``FINML_DEBUG`` is set to ``1``/``true``/``yes`` (``finml --debug`` sets it): every
    Prefect log line reaches the console, and an error that ends a command is followed by its
    traceback."""
    return os.environ.get("FINML_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


class ShowErrorsOnce:
    """Logging filter for Prefect's console handler: a failure the command prints itself is not
    printed again by Prefect.

    Dropped (console only; Prefect's API handler sits on the run loggers and still receives them,
    so the run's logs in the UI keep the failure and its traceback):

    - a record of :data:`RUN_FAILURE_LOGGERS` carrying a :class:`models.errors.FinmlError`
      (``Task run failed with exception: ...``, ``Encountered exception during execution: ...``);
    - the ``Finished in state Failed(...)`` record of the same task or flow run (matched by its
      ``task_run_id`` / ``flow_run_id``; it carries no exception);
    - a record marked :data:`models.errors.SHOWN_BY_CALLER`.

    Anything else, any other exception (a bug) included, passes with its traceback.
    """

    def __init__(self) -> None:
        self._failed_runs: set[str] = set()

    @staticmethod
    def _run_id(record) -> str | None:
        run = getattr(record, "task_run_id", None) or getattr(record, "flow_run_id", None)
        return str(run) if run else None

    def filter(self, record) -> bool:
        from models.errors import SHOWN_BY_CALLER, FinmlError

        if getattr(record, SHOWN_BY_CALLER, False):
            return False
        if record.name not in RUN_FAILURE_LOGGERS:
            return True
        run = self._run_id(record)
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, FinmlError):
            if run:
                self._failed_runs.add(run)
            return False
        return not (run in self._failed_runs and str(record.msg).startswith("Finished in state"))


KEPT_RUN_LINES = ("Beginning flow run", "View at ")
"""The INFO lines of a run that stay on the console by default: where each flow run starts and
its page in the Prefect UI."""


QUIET_LIBRARIES = ("great_expectations",)
"""Libraries whose INFO lines (a temporary docs folder per validation) stay off the console too."""


class QuietRunProgress:
    """Logging filter for Prefect's console handler (not with ``--debug``): the INFO lines of
    task and flow runs (``Finished in state Completed()`` once per task, a flow's own progress
    lines) stay off the console, which shows the command's summary and tables; each flow's
    :data:`KEPT_RUN_LINES`, every warning and every error pass. The command's log file
    (:func:`command_log_file`) and the run's logs in Prefect keep every line."""

    def filter(self, record) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        if record.name.startswith(QUIET_LIBRARIES):
            return False
        return record.name not in RUN_FAILURE_LOGGERS or str(record.msg).startswith(KEPT_RUN_LINES)


_LOG_FILE: list[Path] = []


def command_log_file() -> Path | None:
    """This process's log file (every Prefect log line at INFO and above, :func:`quiet_prefect_console`),
    once a line was written to it; None otherwise."""
    return next((p for p in _LOG_FILE if p.exists() and p.stat().st_size), None)


def _attach_log_file() -> None:
    """A file handler on the root logger at INFO: ``<FINML_REPORTS_DIR>/logs/finml-<UTC time>-<pid>.log``
    (created on its first line). Nothing when that folder cannot be made (the command reports an
    unwritable reports folder itself)."""
    from datetime import datetime, timezone

    from models.settings import get_settings

    folder = Path(get_settings().reports_dir) / "logs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return
    path = folder / f"finml-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}-{os.getpid()}.log"
    handler = logging.FileHandler(path, delay=True, encoding="utf-8")
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s | %(message)s"))
    logging.getLogger().addHandler(handler)
    _LOG_FILE.append(path)


def quiet_prefect_console() -> bool:
    """Install :class:`ShowErrorsOnce` and :class:`QuietRunProgress` on Prefect's console handler
    (the root logger's ``PrefectConsoleHandler``, see Prefect's ``logging.yml``) and the command's
    log file, once per process; nothing with :func:`debug_enabled` (every line on the console).
    Imports Prefect (its import configures logging). Returns whether the filters are in place."""
    if debug_enabled():
        return False
    import prefect.main  # noqa: F401 - configures Prefect's logging (setup_logging) on import
    from prefect.logging.handlers import PrefectConsoleHandler

    installed = False
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            if not any(isinstance(f, ShowErrorsOnce) for f in handler.filters):
                handler.addFilter(ShowErrorsOnce())
                handler.addFilter(QuietRunProgress())
            installed = True
    if installed and not _LOG_FILE:
        _attach_log_file()
    return installed


class _PlainWarning:
    """A logging formatter for :func:`plain_console_logging`: ``warning: <message>`` (the level in
    lower case, as the commands' own ``error:`` and ``warning:`` lines)."""

    def format(self, record) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


def plain_console_logging() -> None:
    """For a command that runs without Prefect (``finml validate``): with no logging handler
    configured, Python's last-resort handler prints every warning on stderr, those the command prints
    itself in its report included (marked :data:`models.errors.SHOWN_BY_CALLER`: values made missing,
    rows sorted into time order, a file that looks sorted by a feature). Install one stderr handler
    on the root logger that prints the others, at WARNING and above, as ``warning: <message>``, and
    skips the marked ones. Nothing when the root logger has a handler (Prefect's, pytest's)."""
    import logging

    root = logging.getLogger()
    if root.handlers:
        return
    from models.errors import SHOWN_BY_CALLER

    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_PlainWarning())  # type: ignore[arg-type]  # duck-typed: logging calls .format(record)
    handler.addFilter(lambda record: not getattr(record, SHOWN_BY_CALLER, False))
    root.addHandler(handler)


READABLE_CELL = 8
"""Characters a column needs to stay readable: a table whose columns cannot each get this much
(or their longest cell, when shorter) is printed one row per block (:class:`CliTable`)."""


class CliTable(Table):
    """A rich table whose cells wrap (``overflow="fold"``) instead of being cut off; on a terminal
    too narrow for every column to stay readable (:data:`READABLE_CELL`), each row is printed as a
    block of ``header  value`` lines instead (as ``psql``'s expanded display), so no column is
    dropped nor folded to two characters."""

    def _needed_width(self, console: Console) -> int:
        from rich.measure import Measurement

        total = 1  # the left border
        for column in self.columns:
            cells = [column.header, *column.cells]
            longest = max(Measurement.get(console, console.options, c).maximum for c in cells) if cells else 0
            total += min(longest, READABLE_CELL) + 3  # padding and the border
        return total

    def __rich_console__(self, console, options):
        if not self.row_count or self._needed_width(console) <= options.max_width:
            yield from super().__rich_console__(console, options)
            return
        columns = [list(column.cells) for column in self.columns]
        for r in range(self.row_count):
            block = Table(title=f"{self.title} ({r + 1}/{self.row_count})" if self.title else None, show_header=False,
                          title_justify="left")
            block.add_column(style="bold", overflow="fold")
            block.add_column(overflow="fold")
            for column, cells in zip(self.columns, columns):
                block.add_row(column.header, cells[r])
            yield from block.__rich_console__(console, options)


def cli_table(title: str, columns) -> Table:
    """A :class:`CliTable` for the terminal with the headers ``columns``, in order: at 80–100
    columns every column stays shown (wrapped, or row by row when too many); no column is ``no_wrap``."""
    table = CliTable(title=title)
    for col in columns:
        table.add_column(col, overflow="fold")
    return table
