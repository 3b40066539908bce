"""The one decorator for the platform's Prefect tasks.

Every step takes its inputs as arguments and returns plain data; none is cached (results would be
cloudpickled DataFrames and models, and caching on DataFrame inputs often misses, see
``docs/operations.md``). I/O that can fail transiently passes ``retries``.

A process that runs no flow (``finml validate``) may call :func:`without_prefect` before it
imports any module of steps: each step is then a :class:`PlainStep` and Prefect is never imported
(about 2 s saved on a command that should answer in seconds).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

_plain = False
_made = 0  # Prefect tasks made so far: once there is one, the process has Prefect loaded anyway


class PlainStep:
    """A step's function left as it is (see :func:`without_prefect`): calling it calls the
    function; ``.fn`` is the function, ``.name`` the step's name, as on a Prefect task. Any other
    attribute of a Prefect task (``submit``, ``with_options`` …) raises AttributeError saying why."""

    def __init__(self, fn: Callable[..., Any], name: str):
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __getattr__(self, attr: str) -> Any:
        raise AttributeError(f"step {self.name!r} is a plain function in this process (tasks.step.without_prefect "
                             f"was called: no flow runs here), so it has no Prefect attribute {attr!r}")


def without_prefect() -> bool:
    """Make every step defined from now on a :class:`PlainStep` instead of a Prefect task.

    For a process that runs no flow and must not pay for importing Prefect (``finml validate``).
    Returns True when that is in effect; False, changing nothing, when a Prefect task was already
    made (a module of steps was imported: Prefect is loaded and the steps must stay tasks).
    """
    global _plain
    if _made and not _plain:
        return False
    _plain = True
    return True


def step(name: str, **options: Any):
    """``@step("split")``: a Prefect task called ``name``, without result caching.

    Args:
        name: the task's name in the Prefect UI (lowercase words joined by ``-``).
        options: further ``prefect.task`` options (``task_run_name``, ``retries``,
            ``retry_delay_seconds``).
    """
    if _plain:
        return lambda fn: PlainStep(fn, name)
    global _made
    from prefect import task
    from prefect.cache_policies import NO_CACHE

    _made += 1
    return task(name=name, cache_policy=NO_CACHE, **options)
