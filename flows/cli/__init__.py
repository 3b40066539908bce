"""The ``finml`` command line: the Typer apps and the console script's entry point.

Each group of commands lives in its own module (``training``, ``monitoring``, ``registry``,
``server``, ``serve``); this module registers them, in the order ``finml --help`` lists them. Heavy libraries
(Prefect, TensorFlow, Great Expectations, Evidently) are imported inside the commands that need
them, so ``finml --help`` stays fast.
"""

from __future__ import annotations

import os
import sys

import typer

from flows.cli import approval, backtest, inventory, monitoring, registry, serve, server, training, ui, validate
from flows.cli.common import (
    EPHEMERAL_TIMEOUT,
    EXIT_CODES_HELP,
    _error_message,
    _fail,
    console,
    err_console,
)
from flows.cli.monitoring import print_monitoring
from flows.cli.signals import (
    SIGNAL_GRACE_SECONDS,
    _arm_timer_on_prefect_sigterm,
    _exit_now,
    _install_interrupt_handler,
    _stopping,
    mark_finishing,
)
from flows.cli.training import print_summary, summary_table

__all__ = [
    "EPHEMERAL_TIMEOUT", "SIGNAL_GRACE_SECONDS", "app", "console", "err_console", "main", "print_monitoring",
    "print_summary", "registry_app", "server_app", "summary_table",
    "_arm_timer_on_prefect_sigterm", "_error_message", "_fail", "_install_interrupt_handler",
]

app = typer.Typer(help="finml: an MLOps platform for financial models, orchestrated by Prefect.", no_args_is_help=True,
                  epilog=EXIT_CODES_HELP)
registry_app = typer.Typer(help="Inspect the model registry and move its aliases (champion, challenger, your own).", no_args_is_help=True)
app.add_typer(registry_app, name="registry")
server_app = typer.Typer(help="A local Prefect server with a worker and every deployment of prefect.yaml.",
                         no_args_is_help=True)
app.add_typer(server_app, name="server")



@app.callback()
def _options(
    debug: bool = typer.Option(
        False, "--debug",
        help="Show every Prefect log line, each failure with its traceback (also: FINML_DEBUG=1). By default an "
             "error that ends a run is printed once, as one line; the run's logs in Prefect keep it in full."),
) -> None:
    if debug:
        import os

        os.environ["FINML_DEBUG"] = "1"


app.command("models")(training.models_cmd)
app.command("validate")(validate.validate_cmd)
app.command("train")(training.train_cmd)
app.command("demo")(training.demo_cmd)
app.command("monitor")(monitoring.monitor_cmd)
app.command("score")(monitoring.score_cmd)
app.command("monitor-history")(monitoring.monitor_history_cmd)
app.command("serve")(serve.serve_cmd)
app.command("ui")(ui.ui_cmd)
app.command("inventory")(inventory.inventory_cmd)
app.command("review")(inventory.review_cmd)
app.command("approve")(approval.approve_cmd)
app.command("reject")(approval.reject_cmd)
app.command("pending")(approval.pending_cmd)
backtest.register(app)

registry_app.command("list")(registry.registry_list)
registry_app.command("show")(registry.registry_show)
registry_app.command("rollback")(registry.registry_rollback)
registry_app.command("retire")(registry.registry_retire)
registry_app.command("alias")(registry.registry_alias)
registry_app.command("history")(registry.registry_history)
registry_app.command("gc")(registry.registry_gc)
registry_app.command("verify")(registry.registry_verify)
registry_app.command("sign")(registry.registry_sign)
registry_app.command("keygen")(registry.registry_keygen)

server_app.command("start")(server.server_start)
server_app.command("stop")(server.server_stop)
server_app.command("status")(server.server_status)


def main() -> None:  # pragma: no cover - console script entry point
    """Run ``finml``: install the interrupt handler (:mod:`flows.cli.signals`), run the app; after a
    signal, exit at once with 128 + its number. (A command that runs flows here keeps Prefect's
    console from repeating the error it prints: :func:`flows.cli.common.quiet_prefect_console`.)"""
    _install_interrupt_handler()
    from flows.server_address import RECORDED_SERVER_NOTE, use_recorded_server

    if use_recorded_server():  # before Prefect reads its settings; said by the commands that run flows
        os.environ[RECORDED_SERVER_NOTE] = "1"
    try:
        validate.standalone()  # this process runs one command: `finml validate` needs no Prefect
        app()
    except BaseException:
        if not _stopping:
            raise
    finally:
        mark_finishing()
        from flows.cli.common import command_log_file

        log = command_log_file()
        if log is not None:  # Prefect's INFO lines were kept off the console: say where they are
            err_console.print(f"Prefect's log of this command: {log}", highlight=False, soft_wrap=True)
    if _stopping:  # unwound after a signal: do not wait for Prefect's exit handlers
        _exit_now()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
