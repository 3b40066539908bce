"""What every ``finml`` command shares: the consoles, the one-line error exit, the wording of an
error that ended a run, value formatting, and the registry look-ups of the registry commands.

Importing it sets the offline-friendly environment defaults (an explicit setting wins).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer
from rich.console import Console

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


def _fail(message: str, code: int = 1) -> None:
    """Print ``error: <message>`` on stderr and end the command with exit code ``code``.

    Raises:
        typer.Exit: always.
    """
    _error_line(message)
    raise typer.Exit(code)


def _error_line(message: str) -> None:
    """Print ``error: <message>`` on stderr, as one line whatever the terminal's width."""
    from rich.markup import escape

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


class _QuietUserErrors:
    """Logging filter: a user-facing error (bad data, bad spec ...) is logged by Prefect as one
    line instead of a full traceback; the CLI then prints the message once."""

    def filter(self, record) -> bool:
        from models.errors import FinmlError

        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and isinstance(exc, FinmlError):
            record.exc_info = None
            record.exc_text = None
        return True
