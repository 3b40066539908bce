"""Where the server ``finml server start`` (``make server``) started is, and whether a command
should use it: read from ``<PREFECT_HOME>/finml-server/state.json`` without importing Prefect,
so the CLI can point ``PREFECT_API_URL`` at it before Prefect reads its settings.

A command that runs flows with no ``PREFECT_API_URL`` set otherwise starts Prefect's temporary
local API server (6–11 s on a quiet 2-core machine, more on a loaded one: docs/operations.md,
"What a command costs"). ``FINML_USE_SERVER=0`` keeps the temporary server.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path

import psutil

STATE_DIR_NAME = "finml-server"
RECORDED_SERVER_NOTE = "FINML_RECORDED_SERVER"
"""Set (to ``1``) by the console script when it pointed ``PREFECT_API_URL`` at the recorded
server, so the first command that runs flows says so on stderr (once)."""
HEALTH_TIMEOUT_S = 1.5
"""Seconds to wait for the recorded server's ``/health`` before a command falls back to a
temporary server (a healthy local server answers in milliseconds)."""


def prefect_home(home: Path | None = None) -> Path:
    """The Prefect home in use: the argument, ``PREFECT_HOME``, or ``~/.prefect``."""
    if home is not None:
        return Path(home).expanduser().resolve()
    return Path(os.environ.get("PREFECT_HOME") or "~/.prefect").expanduser().resolve()


def state_dir_for(home: Path | None = None) -> Path:
    """The folder of the state ``finml server start`` saves for that Prefect home."""
    return prefect_home(home) / STATE_DIR_NAME


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone; a child of ours is reaped)."""
    if pid <= 0:
        return False
    try:
        os.waitpid(pid, os.WNOHANG)
    except OSError:
        pass
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, ValueError):
        return False


def api_healthy(api_url: str, timeout: float = HEALTH_TIMEOUT_S) -> bool:
    """True when the Prefect API at ``api_url`` answers ``/health`` with 200 within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def recorded_server(home: Path | None = None) -> str | None:
    """The API URL of the server ``finml server start`` recorded for this Prefect home, when its
    process is alive and its ``/health`` answers within :data:`HEALTH_TIMEOUT_S`; else None (no
    state file, an unreadable one, a dead process, no answer)."""
    path = state_dir_for(home) / "state.json"
    try:
        state = json.loads(path.read_text())
        api_url, pid = str(state["api_url"]), int(state["server_pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return api_url if process_alive(pid) and api_healthy(api_url) else None


def use_recorded_server(environ: dict | None = None) -> str | None:
    """Point ``PREFECT_API_URL`` at the recorded server (:func:`recorded_server`) when it is not
    set and ``FINML_USE_SERVER`` is not ``0``/``false``/``no``; call before Prefect is imported.

    Returns:
        The URL now in use, or None when nothing was changed.
    """
    env = os.environ if environ is None else environ
    if env.get("PREFECT_API_URL") or env.get("FINML_USE_SERVER", "").strip().lower() in ("0", "false", "no", "off"):
        return None
    url = recorded_server()
    if url:
        env["PREFECT_API_URL"] = url
    return url


__all__ = ["RECORDED_SERVER_NOTE", "api_healthy", "prefect_home", "process_alive", "recorded_server", "state_dir_for", "use_recorded_server"]
