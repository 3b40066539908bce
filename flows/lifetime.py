"""Nothing outlives its owner: watchdogs that stop a Prefect server when the process that owns it
dies, and the marking of flow runs whose process is gone as ``Crashed``.

A CLI command that runs flows locally tags its flow runs with its owner (host, pid and start time
of the process); the next command that talks to the same API marks the runs of a dead owner
``Crashed``. Prefect's temporary API server (``PREFECT_API_URL`` unset) gets a watchdog process that
stops it within a second or so of its owner's death, ``kill -9`` included. Background and
reasons: ``docs/operations.md`` ("What dies with what").
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import psutil

PROJECT_DIR = Path(__file__).resolve().parents[1]
LOCAL_TAG = "finml-local"
"""Tag of every flow run a finml command runs in its own process (not through a worker)."""
OWNER_PREFIX = "finml-owner:"
"""Prefix of the tag ``finml-owner:<host>:<pid>:<process start time, s>`` naming a run's process."""
WATCH_INTERVAL = 0.25
"""Seconds between a watchdog's looks at its owner."""
ZOMBIE_AUTOMATION = "finml: crash flow runs that stopped sending heartbeats"
"""Name of the automation :func:`ensure_zombie_automation` keeps on a server (one, not one per start)."""


def client_for(api_url: str):
    """A synchronous Prefect client of the server at ``api_url``, with the configured credentials
    (``PREFECT_API_AUTH_STRING`` for basic authentication, ``PREFECT_API_KEY``)."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_KEY

    return SyncPrefectClient(api_url, auth_string=PREFECT_API_AUTH_STRING.value(), api_key=PREFECT_API_KEY.value())


# --------------------------------------------------------------------------- owners and dead runs


def owner_tag(pid: int | None = None) -> str:
    """``finml-owner:<host>:<pid>:<start time>`` of a process (default: this one); the start time
    tells a reused pid from the original."""
    proc = psutil.Process(pid or os.getpid())
    return f"{OWNER_PREFIX}{socket.gethostname()}:{proc.pid}:{int(proc.create_time())}"


def owner_gone(tag: str) -> bool:
    """True when the tag names a process of this host that no longer runs (a zombie counts as
    gone, so does a pid now used by a later process); False for a live one or another host's."""
    try:
        host, pid, started = tag[len(OWNER_PREFIX):].rsplit(":", 2)
        pid, started = int(pid), int(started)
    except ValueError:
        return False
    if not tag.startswith(OWNER_PREFIX) or host != socket.gethostname():
        return False
    try:
        proc = psutil.Process(pid)
        return int(proc.create_time()) != started or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def crash_dead_runs(api_url: str) -> list[str]:
    """Mark ``Crashed`` every flow run of a finml command (tag :data:`LOCAL_TAG`) left ``Running``
    or ``Pending`` whose owner process is gone; returns the names of the runs marked."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateType, FlowRunFilterTags
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    marked = []
    with client_for(api_url) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[LOCAL_TAG]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING]))))
        for run in runs:
            owners = [t for t in run.tags if t.startswith(OWNER_PREFIX)]
            if owners and all(owner_gone(t) for t in owners):
                client.set_flow_run_state(run.id, Crashed(message="the process that ran it is gone (killed?)"),
                                          force=True)
                marked.append(run.name)
    return marked


_OWNER_TAGS: Any = None


def claim_local_runs(api_url: str | None) -> list[str]:
    """Prepare this process to run flows itself; returns the dead runs marked ``Crashed``.

    Tags every later flow run of this process with :data:`LOCAL_TAG` and :func:`owner_tag`. With
    ``api_url`` (a configured server) dead runs are marked at once; without it Prefect's temporary
    server is tied to this process (:func:`tie_ephemeral_server`) and dead runs are marked as soon
    as it is up.
    """
    global _OWNER_TAGS
    from prefect import tags

    if _OWNER_TAGS is None:
        _OWNER_TAGS = tags(LOCAL_TAG, owner_tag())
        _OWNER_TAGS.__enter__()  # for the rest of the process: a CLI command runs its flows and exits
    if api_url is None:
        tie_ephemeral_server()
        return []
    return crash_dead_runs(api_url)


# --------------------------------------------------------------------------- watchdogs


def spawn_watchdog(target: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a watchdog process that runs ``target(*args)`` (``target`` is ``"module:function"``,
    ``args`` are strings) from the project folder, with the project on ``PYTHONPATH``.

    The watchdog runs in its own session (a terminal's Ctrl-C does not reach it); ``env`` is its
    environment (default: this process's).
    """
    module, function = target.split(":")
    env = dict(env if env is not None else os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_DIR), env.get("PYTHONPATH")) if p)
    return subprocess.Popen([sys.executable, "-c", f"import sys; from {module} import {function}; {function}(*sys.argv[1:])",
                             *args], cwd=PROJECT_DIR, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def watch_owner(owner: int, pids: list[int] = (), env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a watchdog process that, when ``owner`` dies, stops ``pids``, each with its
    descendants (SIGTERM, SIGKILL after 5 s); it ends by itself once those processes have ended.
    (``flows.server.watch_server`` is the watchdog that stops a server instead.)
    """
    return spawn_watchdog("flows.lifetime:_watch", [str(owner), ",".join(map(str, pids))], env)


def outlive_owner(owner: psutil.Process | None, still_needed: Callable[[], bool]) -> bool:
    """A watchdog's loop: wait while ``owner`` runs and ``still_needed()`` holds, looking every
    :data:`WATCH_INTERVAL` seconds. True once the owner is gone (``None``: gone before the watchdog
    started), False once the watchdog is no longer needed."""
    while owner is not None and _alive(owner):
        if not still_needed():
            return False
        time.sleep(WATCH_INTERVAL)
    return True


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def terminate_tree(pids: list[int], grace: float = 5.0) -> None:
    """SIGTERM each process and its descendants; SIGKILL what still runs after ``grace`` seconds."""
    procs = []
    for pid in pids:
        try:
            top = psutil.Process(pid)
            procs += [top, *top.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    for proc in procs:
        try:
            proc.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def _watch(owner: str, pids: str) -> None:  # pragma: no cover - runs in the watchdog process
    """The loop of the watchdog of :func:`watch_owner`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        owner_proc = psutil.Process(int(owner))
        watched = [psutil.Process(int(p)) for p in pids.split(",") if p]
    except psutil.NoSuchProcess:
        watched, owner_proc = [], None
    if outlive_owner(owner_proc, lambda: any(_alive(p) for p in watched)):
        terminate_tree([p.pid for p in watched if _alive(p)])


def tie_ephemeral_server() -> None:
    """Give every temporary API server Prefect starts in this process (``PREFECT_API_URL`` unset) a
    watchdog on this process, and mark dead runs ``Crashed`` once it is up.

    Prefect starts it with ``subprocess.Popen`` in ``SubprocessASGIServer._run_uvicorn_command``
    and offers no option for its lifetime, so that method (and ``start``) are wrapped; a second
    call changes nothing.
    """
    from prefect.server.api.server import SubprocessASGIServer

    if getattr(SubprocessASGIServer, "_finml_tied", False):
        return
    spawn, start = SubprocessASGIServer._run_uvicorn_command, SubprocessASGIServer.start

    def run_uvicorn_command(self):
        proc = spawn(self)
        watch_owner(os.getpid(), [proc.pid])
        return proc

    def start_and_reap(self, *args, **kwargs):
        fresh = not self.running
        start(self, *args, **kwargs)
        if fresh and self.running:
            try:
                crash_dead_runs(self.api_url)
            except Exception as err:  # housekeeping must never stop a run
                print(f"finml: could not mark dead flow runs Crashed: {err}", file=sys.stderr)

    SubprocessASGIServer._run_uvicorn_command = run_uvicorn_command
    SubprocessASGIServer.start = start_and_reap
    SubprocessASGIServer._finml_tied = True


# --------------------------------------------------------------------------- the server's zombie automation


def zombie_window_seconds() -> int:
    """Seconds without a heartbeat after which a running flow run counts as dead: three heartbeat
    intervals (Prefect's guide "How to detect and respond to zombie flows",
    docs.prefect.io/v3/advanced/detect-zombie-flows) of at least Prefect's default 180 s, so 540 s
    unless ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` is set higher."""
    from prefect.settings import get_current_settings

    return 3 * max(int(get_current_settings().flows.heartbeat_frequency or 180), 180)


def ensure_zombie_automation(api_url: str, within_seconds: int | None = None, runs: str = "prefect.flow-run.*",
                             name: str = ZOMBIE_AUTOMATION) -> str:
    """Make sure the server marks dead flow runs ``Crashed``; returns the automation's id.

    A proactive trigger: after each ``prefect.flow-run.heartbeat`` of a run, expect another
    heartbeat, a final state or a suspension (a run waiting for an approval, which has no process)
    within ``within_seconds``, else set the run ``Crashed`` (which frees
    its deployment's concurrency slot; see ``docs/operations.md``). An automation of the same
    name is updated, not duplicated.

    Args:
        within_seconds: default :func:`zombie_window_seconds`.
        runs: the flow-run resources it watches (a glob on ``prefect.resource.id``).
    """
    from datetime import timedelta

    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    within = int(within_seconds or zombie_window_seconds())
    automation = AutomationCore(
        name=name,
        description=f"A flow run that sent no heartbeat and reached no final state for {within} s is marked Crashed "
                    "(its process is gone), which releases its concurrency slot.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed",
                    # a run suspended for an approval (tasks.approval) has no process and sends no heartbeat
                    "prefect.flow-run.Suspended", "prefect.flow-run.Paused"},
            match=ResourceSpecification({"prefect.resource.id": [runs]}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=within),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"no heartbeat for {within} s: the flow run's process is gone")],
    )
    with client_for(api_url) as client:
        existing = client.read_automations_by_name(name)
        if existing:
            client.update_automation(existing[0].id, automation)
            return str(existing[0].id)
        return str(client.create_automation(automation))
