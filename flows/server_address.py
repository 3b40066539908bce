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


def bind_host(host: str) -> str:
    """``host`` as a socket binds it: an IPv6 address written as in a URL (``[::1]``) without its
    brackets; any other host unchanged (``::1``, ``127.0.0.1``, ``localhost``, ``0.0.0.0``).

    Raises:
        ValueError: brackets around something that is not an IPv6 address (``[localhost]``), or
        unbalanced ones; the message says what to write.
    """
    import ipaddress

    text = host.strip()
    if text.startswith("[") or text.endswith("]"):
        inner = text[1:-1] if text.startswith("[") and text.endswith("]") else None
        try:
            ipaddress.IPv6Address(inner or "")
        except ValueError:
            raise ValueError(f"--host {host!r}: brackets go only around an IPv6 address ([::1]); write a host "
                             "name or an IPv4 address without them") from None
        return inner
    return text


def http_url(host: str, port: int) -> str:
    """``http://<host>:<port>``, an IPv6 address in brackets (``http://[::1]:4400``, RFC 3986)."""
    host = bind_host(host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _recorded_state(home: Path | None = None) -> dict | None:
    """``state.json`` of that Prefect home as a dict, or None (missing, unreadable, not an object)."""
    try:
        state = json.loads((state_dir_for(home) / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return state if isinstance(state, dict) else None


def recorded_server(home: Path | None = None) -> str | None:
    """The API URL of the server ``finml server start`` recorded for this Prefect home, when its
    process is alive and its ``/health`` answers within :data:`HEALTH_TIMEOUT_S`; else None (no
    state file, an unreadable one, a dead process, no answer)."""
    state = _recorded_state(home)
    try:
        api_url, pid = str(state["api_url"]), int(state["server_pid"])
    except (ValueError, KeyError, TypeError):
        return None
    return api_url if process_alive(pid) and api_healthy(api_url) else None


def recorded_ui(home: Path | None = None) -> str | None:
    """The address of the web front end (``finml ui``) that ``finml server start`` recorded beside
    its server (``finml_ui_url`` in ``state.json``), when its process (``ui_pid``) is alive; else None
    (none recorded, started with ``--no-ui``, stopped, an unreadable state file). Not asked over HTTP:
    the address only goes into the artifacts' links."""
    state = _recorded_state(home) or {}
    url, pid = state.get("finml_ui_url"), state.get("ui_pid")
    if not isinstance(url, str) or not url:
        return None
    try:
        return url if process_alive(int(pid)) else None
    except (ValueError, TypeError):
        return None


def use_recorded_server(environ: dict | None = None) -> str | None:
    """Point ``PREFECT_API_URL`` at the recorded server (:func:`recorded_server`) when it is not
    set and ``FINML_USE_SERVER`` is not ``0``/``false``/``no``; call before Prefect is imported.
    When it does, and ``FINML_UI_URL`` is not set (an empty value counts as set: no links), that
    is set too from the recorded front end (:func:`recorded_ui`), so that the command's artifacts
    link to it as the workers' do (``models.settings.get_settings`` reads the environment on each
    call, nothing to refresh).

    Returns:
        The API URL now in use, or None when nothing was changed.
    """
    env = os.environ if environ is None else environ
    if env.get("PREFECT_API_URL") or env.get("FINML_USE_SERVER", "").strip().lower() in ("0", "false", "no", "off"):
        return None
    url = recorded_server()
    if url:
        env["PREFECT_API_URL"] = url
        ui = recorded_ui() if "FINML_UI_URL" not in env else None
        if ui:
            env["FINML_UI_URL"] = ui
    return url


__all__ = ["RECORDED_SERVER_NOTE", "api_healthy", "bind_host", "http_url", "prefect_home", "process_alive", "recorded_server", "recorded_ui", "state_dir_for", "use_recorded_server"]
