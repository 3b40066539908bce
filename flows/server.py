"""A local Prefect server, a worker per work pool of ``prefect.yaml``, and every deployment.

``finml server start`` (``make server``) starts them in the background and returns;
``finml server stop`` (``make server-stop``) stops them and checks that no process is left. Every
process started here carries ``FINML_SERVER_TAG=<state dir>`` in its environment, which is how
``stop`` finds them again. Why it is built this way (and not on ``prefect server start
--background``), and what dies with what: ``docs/operations.md``. Nothing here imports Prefect
at module import (the CLI's ``--help`` stays fast).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from flows.lifetime import (
    ZOMBIE_AUTOMATION,  # noqa: F401 (re-exported)
    ensure_zombie_automation,
    outlive_owner,
    spawn_watchdog,
    zombie_window_seconds,  # noqa: F401 (re-exported)
)
from flows.lifetime import client_for as _client
from flows.server_address import STATE_DIR_NAME, prefect_home, state_dir_for  # noqa: F401 (re-exported)
from flows.server_address import api_healthy, http_url, process_alive
from models.errors import OrchestrationError
from models.files import write_json_atomic
from tasks.load import redact

PROJECT_DIR = Path(__file__).resolve().parents[1]
TAG_VAR = "FINML_SERVER_TAG"


class ServerError(OrchestrationError):
    """The server, a worker or the deployment step could not be started (the message says why)."""


@dataclass
class ServerOptions:
    """What to start.

    Attributes:
        project_dir: the folder holding ``prefect.yaml`` (the deployments and the work pools).
        home: ``PREFECT_HOME`` of the server, the worker and the deploy step (default: the
            environment's ``PREFECT_HOME``, else ``~/.prefect``); state and logs go to
            ``<home>/finml-server/``.
        host, port: where the API and UI listen.
        database_url: the server's database; default: the one Prefect is configured with
            (:func:`configured_database_url`), else SQLite in ``<home>/server.db`` (kept apart from the
            ``prefect.db`` that embedded runs use, so both can run at once).
        worker: start one worker per work pool named in ``prefect.yaml``.
        deploy: run ``prefect deploy --all`` (after creating the work pools).
        env: extra environment for every process (e.g. ``FINML_REGISTRY_DIR``,
            ``PREFECT_WORKER_QUERY_SECONDS``); a value of None removes the variable.
        timeout: seconds to wait for each step (server healthy, deploy, worker registered).
        owner: a process id whose end stops everything started here (a test session); None
            (``make server``) for processes meant to outlive the command that started them.
        ui, ui_port: start the registry's web front end (``finml ui``) beside the server, on ``ui_port`` (None: a free port).
    """

    project_dir: Path = PROJECT_DIR
    home: Path | None = None
    host: str = "127.0.0.1"
    port: int = 4200
    database_url: str | None = None
    worker: bool = True
    deploy: bool = True
    env: dict[str, str | None] = field(default_factory=dict)
    timeout: float = 180.0
    owner: int | None = None
    ui: bool = True
    ui_port: int | None = None


@dataclass
class ServerState:
    """What was started; saved as ``<home>/finml-server/state.json``."""

    state_dir: str
    tag: str
    api_url: str
    ui_url: str
    database: str
    server_pid: int
    worker_pids: dict[str, int]
    pools: list[str]
    deployments: list[str]
    logs: dict[str, str]
    started_at: float
    finml_ui_url: str | None = None
    ui_pid: int = 0

    def save(self) -> None:
        write_json_atomic(Path(self.state_dir) / "state.json", asdict(self), durable=False)

    @classmethod
    def load(cls, state_dir: Path) -> "ServerState | None":
        path = Path(state_dir) / "state.json"
        if not path.exists():
            return None
        return cls(**json.loads(path.read_text()))


def work_pools(project_dir: Path = PROJECT_DIR) -> list[str]:
    """The work pools the deployments of ``prefect.yaml`` name, in order of first use."""
    import yaml

    config = yaml.safe_load((Path(project_dir) / "prefect.yaml").read_text())
    pools: list[str] = []
    for dep in config.get("deployments") or []:
        name = (dep.get("work_pool") or {}).get("name")
        if name and name not in pools:
            pools.append(name)
    return pools


def _prefect_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("prefect")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("prefect")
    return [found] if found else [sys.executable, "-m", "prefect"]


def _family(host: str) -> int:
    """The address family a socket bound to ``host`` needs (IPv6 for ``::1``; IPv4 otherwise)."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _port_free(host: str, port: int) -> bool:
    """True when a TCP socket can bind ``host`` (an IPv4 or IPv6 address, or a name) on ``port`` now."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- processes


def tagged_processes(tag: str) -> list[int]:
    """Live processes whose environment holds ``FINML_SERVER_TAG=<tag>`` (those we may read)."""
    found = []
    for proc in psutil.process_iter():
        if proc.pid == os.getpid():
            continue
        try:
            if proc.environ().get(TAG_VAR) == tag and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return sorted(found)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children ...); [] when it is gone."""
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except OSError:
        pass


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait until every process has ended (or ``timeout`` seconds); returns those still running."""
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    deadline = time.monotonic() + timeout
    left = [p.pid for p in procs if process_alive(p.pid)]
    while left and time.monotonic() < deadline:
        psutil.wait_procs([p for p in procs if p.pid in left], timeout=0.2)
        left = [pid for pid in left if process_alive(pid)]
    return left


def _spawn(cmd: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the caller's terminal does not reach it; stop() does
        )


# --------------------------------------------------------------------------- start / stop / status


def start(options: ServerOptions | None = None, echo=lambda message: None) -> ServerState:
    """Start the server, create the work pools, deploy ``prefect.yaml``, start the workers.

    Returns the state (also saved in ``<home>/finml-server/state.json``). On any failure every
    process started so far is stopped before ``ServerError`` is raised.
    """
    o = options or ServerOptions()
    home = prefect_home(o.home)
    state_dir = home / STATE_DIR_NAME
    state_dir.mkdir(parents=True, exist_ok=True)
    existing = ServerState.load(state_dir)
    if existing and process_alive(existing.server_pid):
        raise ServerError(f"a server started from {state_dir} is already running (pid {existing.server_pid}, "
                          f"{existing.ui_url}); stop it first: finml server stop")
    if tagged_processes(str(state_dir)):
        stop(state_dir)  # leftovers of a run whose state file was lost
    if not _port_free(o.host, o.port):
        raise ServerError(f"port {o.port} on {o.host} is in use (another Prefect server?); choose another with "
                          f"--port / FINML_SERVER_PORT")
    ui_port = o.ui_port or free_port(o.host)
    if o.ui and not _port_free(o.host, ui_port):  # the web front end's port (finml ui)
        raise ServerError(f"port {ui_port} on {o.host} is in use (another finml ui?); choose another with --ui-port")
    project_dir = Path(o.project_dir).resolve()
    api_url = f"{http_url(o.host, o.port)}/api"
    database = o.database_url or configured_database_url() or f"sqlite+aiosqlite:///{home / 'server.db'}"
    tag = str(state_dir)
    env = {k: v for k, v in {**os.environ, **o.env}.items() if v is not None}  # None in o.env removes a variable
    env.update({
        "PREFECT_HOME": str(home), "PREFECT_API_URL": api_url, TAG_VAR: tag,
        "PREFECT_SERVER_ANALYTICS_ENABLED": env.get("PREFECT_SERVER_ANALYTICS_ENABLED", "false"),
        "FINML_PROJECT_DIR": env.get("FINML_PROJECT_DIR", str(project_dir)),
    })
    env.pop("PREFECT_SERVER_DATABASE_CONNECTION_URL", None)
    env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
    server_env = {**env, "PREFECT_SERVER_DATABASE_CONNECTION_URL": database}
    logs = {"server": str(state_dir / "server.log"), "deploy": str(state_dir / "deploy.log")}
    for path in logs.values():
        Path(path).unlink(missing_ok=True)

    state = ServerState(
        state_dir=str(state_dir), tag=tag, api_url=api_url, ui_url=http_url(o.host, o.port),
        database=redact(database), server_pid=0, worker_pids={}, pools=[], deployments=[], logs=logs,
        started_at=time.time(),
    )
    try:
        echo(f"starting the Prefect server on {state.ui_url} (database {state.database})")
        server = _spawn([*_prefect_cmd(), "server", "start", "--host", o.host, "--port", str(o.port)],
                        server_env, Path(logs["server"]), project_dir)
        state.server_pid = server.pid
        state.save()
        if o.owner is not None:  # from now on the owner's death (kill -9 too) stops everything
            watch_server(o.owner, state_dir, env={k: v for k, v in env.items() if k != TAG_VAR})
        deadline = time.monotonic() + o.timeout
        while not api_healthy(api_url, timeout=3):
            if server.poll() is not None:
                raise ServerError(f"the Prefect server exited with code {server.returncode}:\n{_tail(Path(logs['server']))}")
            if time.monotonic() > deadline:
                raise ServerError(f"the Prefect server was not healthy after {o.timeout:.0f} s:\n{_tail(Path(logs['server']))}")
            time.sleep(0.5)
        state.pools = work_pools(project_dir)
        _ensure_pools(api_url, state.pools)
        ensure_zombie_automation(api_url)
        if o.ui:  # before the workers: their environment gets FINML_UI_URL (their artifacts link to it)
            from flows.ui import launch

            state.ui_pid, state.finml_ui_url = launch(o.host, ui_port, env, state_dir, project_dir, o.timeout, state.logs)
            state.save()
        if o.deploy:
            echo(f"deploying {project_dir / 'prefect.yaml'} (prefect deploy --all)")
            with open(logs["deploy"], "wb") as out:
                done = subprocess.run([*_prefect_cmd(), "--no-prompt", "deploy", "--all"], cwd=project_dir, env=env,
                                      stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=o.timeout)
            if done.returncode != 0:
                raise ServerError(f"prefect deploy --all failed (code {done.returncode}):\n{_tail(Path(logs['deploy']))}")
            state.deployments = _deployment_names(api_url)
        if o.worker:
            host = socket.gethostname().split(".")[0] or "local"
            for pool in state.pools:
                name = f"finml-{host}-{pool}"
                log = state_dir / f"worker-{pool}.log"
                log.unlink(missing_ok=True)
                logs[f"worker-{pool}"] = str(log)
                echo(f"starting a worker for the work pool {pool}")
                worker = _spawn([*_prefect_cmd(), "worker", "start", "--pool", pool, "--type", "process",
                                 "--name", name], env, log, project_dir)
                state.worker_pids[pool] = worker.pid
                state.save()
                _wait_worker(api_url, pool, name, worker, log, o.timeout)
        state.save()
        return state
    except BaseException as err:
        state.save()
        stop(state_dir)
        if isinstance(err, (ServerError, KeyboardInterrupt)):
            raise
        raise ServerError(f"{type(err).__name__}: {err}") from err


def configured_database_url() -> str | None:
    """The database Prefect is configured with, or None when that is Prefect's default SQLite file.

    Read through Prefect's settings, so ``PREFECT_SERVER_DATABASE_CONNECTION_URL``, its older
    alias ``PREFECT_API_DATABASE_CONNECTION_URL`` and the active profile all count.
    """
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    url = settings.server.database.connection_url
    value = url.get_secret_value() if url is not None else None
    if not value or value == f"sqlite+aiosqlite:///{settings.home}/prefect.db":
        return None
    return value


def _ensure_pools(api_url: str, pools: list[str]) -> None:
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with _client(api_url) as client:
        for pool in pools:
            try:
                client.read_work_pool(pool)
            except ObjectNotFound:
                client.create_work_pool(WorkPoolCreate(name=pool, type="process"))


def _deployment_names(api_url: str) -> list[str]:
    with _client(api_url) as client:
        flows = {f.id: f.name for f in client.read_flows()}
        return sorted(f"{flows.get(d.flow_id, '?')}/{d.name}" for d in client.read_deployments())


def deployment_rows(api_url: str) -> list[dict[str, Any]]:
    """Every deployment on the server: name, cron schedules, work pool, whether a trigger starts it."""
    with _client(api_url) as client:
        flows = {f.id: f.name for f in client.read_flows()}
        triggered = set()
        for automation in client.read_automations():
            for action in automation.actions:
                if getattr(action, "deployment_id", None):
                    triggered.add(action.deployment_id)
        rows = [{"name": f"{flows.get(d.flow_id, '?')}/{d.name}",
                 "schedules": [getattr(s.schedule, "cron", None) or str(s.schedule) for s in d.schedules],
                 "work_pool": d.work_pool_name, "triggered": d.id in triggered}
                for d in client.read_deployments()]
    return sorted(rows, key=lambda r: r["name"])


def _wait_worker(api_url: str, pool: str, name: str, proc: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with _client(api_url) as client:
        while True:
            if proc.poll() is not None:
                raise ServerError(f"the worker for {pool} exited with code {proc.returncode}:\n{_tail(log)}")
            if any(w.name == name for w in client.read_workers_for_work_pool(pool)):
                return
            if time.monotonic() > deadline:
                raise ServerError(f"the worker for {pool} did not register within {timeout:.0f} s:\n{_tail(log)}")
            time.sleep(0.5)


@dataclass
class StopReport:
    """How ``stop`` ended each process: ``{pid: "SIGINT" | "SIGTERM" | "SIGKILL" | "gone"}``, and what is left."""

    stopped: dict[int, str] = field(default_factory=dict)
    left: list[int] = field(default_factory=list)


def stop(state_dir: Path | None = None, grace: float = 30.0, echo=lambda message: None) -> StopReport:
    """Stop the flow runs the workers started (SIGTERM), the workers (SIGINT), the server (SIGTERM),
    then anything else tagged.

    A process that does not end within ``grace`` seconds is killed (SIGKILL). Returns what was
    stopped and how; ``left`` lists processes that survived everything (it should be empty).
    """
    state_dir = Path(state_dir) if state_dir else state_dir_for()
    state = ServerState.load(state_dir)
    tag = state.tag if state else str(state_dir.resolve())
    report = StopReport()

    def end(pids: list[int], first: int, label: str) -> None:
        pids = [p for p in pids if p and process_alive(p)]
        if not pids:
            return
        for p in pids:
            echo(f"stopping {label} (pid {p}) with {signal.Signals(first).name}")
            _signal(p, first)
            report.stopped[p] = signal.Signals(first).name
        for p in _wait_gone(pids, grace):
            echo(f"{label} (pid {p}) still runs after {grace:.0f} s: SIGKILL")
            _signal(p, signal.SIGKILL)
            report.stopped[p] = "SIGKILL"
        _wait_gone(pids, 10)

    # flow runs first, while worker and server are up to hear their final state (docs/operations.md)
    workers = [p for p in (state.worker_pids.values() if state else []) if p and process_alive(p)]
    runs = sorted({d for w in workers for d in descendants(w)} - set(workers))
    if runs:
        end(runs, signal.SIGTERM, "flow run process")
    if state:
        end(list(state.worker_pids.values()), signal.SIGINT, "worker")  # SIGTERM is ignored by prefect workers
        end([state.server_pid], signal.SIGTERM, "server")
        end([state.ui_pid], signal.SIGTERM, "web front end")
    rest = tagged_processes(tag)
    if rest:
        end(rest, signal.SIGTERM, "left-over process")
    report.left = tagged_processes(tag)
    if state and not report.left:
        (state_dir / "state.json").unlink(missing_ok=True)
    return report


def watch_server(owner: int, state_dir: Path, env: dict[str, str] | None = None):
    """Start a watchdog process that, when ``owner`` dies (``kill -9`` too), stops the server of
    ``state_dir`` with :func:`stop`; it ends by itself once the server was stopped normally
    (``stop`` removes the state file). Returns its ``subprocess.Popen``."""
    return spawn_watchdog("flows.server:_watch_server", [str(owner), str(state_dir)], env)


def _watch_server(owner: str, state_dir: str) -> None:  # pragma: no cover - runs in the watchdog process
    """The loop of the watchdog of :func:`watch_server`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        owner_proc = psutil.Process(int(owner))
    except psutil.NoSuchProcess:
        owner_proc = None
    if outlive_owner(owner_proc, (Path(state_dir) / "state.json").exists):
        stop(Path(state_dir), grace=10)


def status(state_dir: Path | None = None) -> dict[str, Any]:
    """The saved state with each process's liveness and the server's health."""
    state_dir = Path(state_dir) if state_dir else state_dir_for()
    state = ServerState.load(state_dir)
    if state is None:
        return {"running": False, "state_dir": str(state_dir), "tagged": tagged_processes(str(state_dir.resolve()))}
    return {
        "running": process_alive(state.server_pid), "healthy": api_healthy(state.api_url, timeout=3), **asdict(state),
        "alive": {"server": process_alive(state.server_pid), **{f"worker {k}": process_alive(v) for k, v in state.worker_pids.items()},
                  **({"finml ui": process_alive(state.ui_pid)} if state.ui_pid else {})},
        "tagged": tagged_processes(state.tag),
    }
