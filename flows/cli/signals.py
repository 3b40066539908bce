"""Ctrl-C and ``kill`` during a command: stop its children, let ``finally`` blocks run, and exit
with 128 + the signal number within :data:`SIGNAL_GRACE_SECONDS`. Details: ``docs/operations.md``
("Signals")."""

from __future__ import annotations

import os

from flows.cli.common import err_console

SIGNAL_GRACE_SECONDS = 3.0
"""How long an interrupted command may take to unwind (``finally`` blocks, Prefect marking its run
Crashed) before it is ended regardless (a library's bare ``except:`` can swallow the exit)."""

_stopping: list[int] = []
"""Empty until the first signal; then holds the exit code (128 + the signal number)."""
_finishing: list[bool] = []
"""Set once the command has returned: the interpreter is running its exit handlers, where a
raised ``SystemExit`` would be printed as "Exception ignored" and lost (exit code 0)."""


def _stop_children() -> None:
    """End this process's children (Prefect's temporary API server and its watchdog)."""
    import psutil

    from flows.lifetime import terminate_tree

    terminate_tree([p.pid for p in psutil.Process().children()], grace=SIGNAL_GRACE_SECONDS)


def _begin_stop(signum: int) -> bool:
    """The first signal: say so and arm the timer that ends the process; False for a repeated one."""
    import signal
    import threading

    if _stopping:
        return False
    _stopping.append(128 + signum)
    err_console.print(f"\n[bold red]interrupted[/] ({signal.Signals(signum).name}): stopping now; the registry "
                      "keeps its last complete state", highlight=False)
    timer = threading.Timer(SIGNAL_GRACE_SECONDS, _exit_now)
    timer.daemon = True
    timer.start()
    return True


def _install_interrupt_handler() -> None:
    """Ctrl-C (SIGINT) or ``kill`` (SIGTERM): stop the children, exit with 128 + the signal number.

    The exit is a ``SystemExit`` raised where the command is, so ``finally`` blocks run (a
    half-written output file removes itself) and Prefect records the run's end; a timer ends the
    process after :data:`SIGNAL_GRACE_SECONDS` should that unwinding hang (Prefect's task runner
    waits for running tasks; a library's bare ``except:`` can swallow the exit). A repeated signal
    is ignored. Details: ``docs/operations.md`` ("Signals").
    """
    import atexit
    import signal

    def stop(signum, frame):  # noqa: ARG001 - signal handler signature
        if _begin_stop(signum) and not _finishing:
            raise SystemExit(128 + signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    # Registered before Prefect's own exit handlers, so it runs after them (atexit is last in,
    # first out): a signal that arrived while they ran still gives its exit code.
    atexit.register(_exit_if_stopped)


def mark_finishing() -> None:
    """The command has returned: a signal from now on sets the exit code instead of raising."""
    _finishing.append(True)


def _exit_if_stopped() -> None:
    """Last exit handler: after a signal, end with its exit code (128 + the signal number)."""
    if _stopping:
        import sys

        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_stopping[0])


def _arm_timer_on_prefect_sigterm() -> None:
    """While a flow runs, Prefect's SIGTERM handler replaces ours: it raises ``TerminationSignal``
    (the run is marked Crashed) and passes the signal on only once the flow has unwound, which waits
    for the tasks still running. Wrap it so that a SIGTERM also arms the exit timer."""
    import prefect.utilities.engine as engine

    bridge = engine._prefect_sigterm_handler
    if getattr(bridge, "finml_wrapped", False):
        return

    def handler(signum, *args):
        if _begin_stop(signum):
            bridge(signum, *args)

    handler.finml_wrapped = True
    engine._prefect_sigterm_handler = handler


def _exit_now() -> None:
    """Stop the children and end the process at once with the code of the first signal."""
    _stop_children()
    os._exit(_stopping[0])
