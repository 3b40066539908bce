"""Task runners for scale-out: a thread pool by default, Dask when a scheduler is configured
(``docs/operations.md``, "Production layout")."""

from __future__ import annotations

import os

from prefect.task_runners import ThreadPoolTaskRunner

from models.errors import OrchestrationError
from models.settings import Settings, get_settings
from tasks.preflight import runner_problem


def thread_runner(settings: Settings | None = None) -> ThreadPoolTaskRunner:
    """A thread pool of ``max_workers`` threads (one per core by default), or of one thread
    when ``task_runner`` is ``sequential``."""
    settings = settings or get_settings()
    if settings.task_runner == "sequential":
        return ThreadPoolTaskRunner(max_workers=1)
    return ThreadPoolTaskRunner(max_workers=settings.max_workers or os.cpu_count() or 2)


def make_task_runner(settings: Settings | None = None):
    """The task runner the settings ask for.

    - ``threads`` (default): ``ThreadPoolTaskRunner`` with ``max_workers`` threads (default:
      one per core). Keras fits are serialised inside a process (``models.keras_net``), so
      parallel runs stay reproducible.
    - ``sequential``: a pool of one thread.
    - ``dask``, or any ``dask_address``: ``prefect_dask.DaskTaskRunner`` on that scheduler.

    Raises:
        OrchestrationError: the problem :func:`runner_problem` names.
    """
    settings = settings or get_settings()
    problem = runner_problem(settings)
    if problem:
        raise OrchestrationError(problem)
    if settings.task_runner == "dask" or settings.dask_address:
        from prefect_dask import DaskTaskRunner

        if settings.dask_address:
            return DaskTaskRunner(address=settings.dask_address)
        return DaskTaskRunner()
    return thread_runner(settings)
