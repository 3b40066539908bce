"""The writers' lock of one model's registry folder: an ``flock`` on ``<model>/.lock``
(``filelock``), released by every exit of the ``with`` block and by the kernel when the holding
process ends, however it ends (``kill -9`` included). Who holds it is written beside it
(``.lock.owner``) so that a writer kept waiting can name the holder. See ``docs/registry.md``
(The lock)."""

from __future__ import annotations

import errno
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from models.errors import RegistryError

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
OWNER_FILE = ".lock.owner"
"""Beside the lock: the holder's pid, host, start time and command, written once the lock is
taken and removed before it is released (left behind by a process that died: the next holder
overwrites it)."""


def _process_start(pid: int) -> float | None:
    """The process's start time (``psutil.Process.create_time``), None when it has ended."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.AccessDenied:  # another user's process: it exists
        return 0.0
    except (psutil.NoSuchProcess, ValueError):
        return None


def _owner_record() -> dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "started": _process_start(pid),
            "command": " ".join(sys.argv)[:200]}


def _write_no_follow(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, refusing to follow a symlink planted in its place (``O_NOFOLLOW``)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def holder(folder: Path) -> str:
    """Who holds (or last held) the lock of ``folder``, in words: "process 123 on host h
    (finml train m), running" or "... has ended"; "an unknown process" without a record."""
    try:
        owner = json.loads((folder / OWNER_FILE).read_text())
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return "an unknown process (no readable .lock.owner)"
    who = f"process {pid} on host {host} ({owner.get('command') or '?'})"
    if host != socket.gethostname():
        return f"{who}, on another machine"
    started = _process_start(pid)
    recorded = owner.get("started")
    if started is None or (started and recorded is not None and abs(started - float(recorded)) > 1):  # pid reused
        return (f"{who}, which has ended: a lock of an ended process is released by the kernel, so a process it "
                "started holds the lock now (or the file system does not release the locks of dead processes)")
    return f"{who}, running"


@contextmanager
def registry_lock(folder: Path, model: str, timeout: float) -> Iterator[None]:
    """Hold the writers' lock of ``folder`` (a model's registry folder, created if missing).

    Released when the block ends, by a return, an exception, ``KeyboardInterrupt`` or
    ``SystemExit`` alike; when the process dies the kernel releases the ``flock``. A writer
    that has to wait logs who holds the lock, then waits up to ``timeout`` seconds.

    Raises:
        RegistryError: the lock cannot be taken because the folder is read-only or not
            writable (naming the cause and the path), or ``timeout`` passed (naming the holder).
    """
    path = folder / LOCK_FILE
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(path), timeout=timeout)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.warning("%s: waiting up to %g s for the registry lock %s, held by %s", model, timeout, path,
                        holder(folder))
            lock.acquire()
    except Timeout:
        raise RegistryError(f"{model}: the registry lock {path} is still held after {timeout:g} s, by "
                            f"{holder(folder)}; nothing was written") from None
    except OSError as err:
        cause = ("the registry is read-only here" if err.errno in (errno.EROFS, errno.EACCES, errno.EPERM)
                 else "it cannot be opened")
        raise RegistryError(f"{model}: cannot take the registry lock {path}: {err.strerror or err} ({cause}); "
                            "nothing was written: writing commands (train, rollback, retire, gc) need a writable "
                            "registry, reading ones (list, show, history) do not") from None
    owner = folder / OWNER_FILE
    try:  # from here on, every exit releases the lock
        try:
            _write_no_follow(owner, json.dumps(_owner_record()))
        except OSError as err:  # diagnostic only: a full disk must not stop the write under the lock
            log.debug("%s: cannot write %s (%s)", model, owner, err)
        yield
    finally:
        try:
            owner.unlink(missing_ok=True)
        except OSError:
            pass
        lock.release()
