"""The one decorator for the platform's Prefect tasks.

Every step takes its inputs as arguments and returns plain data; none is cached (results would be
cloudpickled DataFrames and models, and caching on DataFrame inputs often misses, see
``docs/operations.md``). I/O that can fail transiently passes ``retries``.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE


def step(name: str, **options: Any):
    """``@step("split")``: a Prefect task called ``name``, without result caching.

    Args:
        name: the task's name in the Prefect UI (lowercase words joined by ``-``).
        options: further ``prefect.task`` options (``task_run_name``, ``retries``,
            ``retry_delay_seconds``).
    """
    return task(name=name, cache_policy=NO_CACHE, **options)
