"""The registry's writers' lock (issue 13 §3): released by every exit, free again when its holder
is killed, a holder named to a writer kept waiting, a read-only registry refused in one line;
``registry show --version ²`` and version folders named ``²``."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from models.registry import ModelRegistry, RegistryError
from models.registry_lock import OWNER_FILE, holder, registry_lock
from tests.unit.test_registry import publish

ROOT = Path(__file__).resolve().parents[2]


def lock_is_free(folder: Path) -> bool:
    """Probe the ``flock`` of ``folder/.lock`` from a new open file (flock locks conflict
    between open files even within one process)."""
    fd = os.open(folder / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing releases a probe that won
    return True


@pytest.mark.parametrize("failure", [ValueError("bad"), MemoryError(), KeyboardInterrupt(), SystemExit(143)])
def test_the_lock_is_released_whatever_ends_the_write(tmp_path, failure):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    seen = []

    def write(folder, version):
        seen.append(lock_is_free(reg.dir))
        raise failure

    with pytest.raises(type(failure)):
        reg.publish(write, promote=True, history_event={"event": "promoted"})
    assert seen == [False]  # held during the write
    assert lock_is_free(reg.dir)
    assert not (reg.dir / OWNER_FILE).exists()
    assert publish(reg, "b") == 2


_HOLDER = textwrap.dedent("""
    import sys, threading, time
    sys.path.insert(0, {root!r})
    from models.registry import ModelRegistry

    def write(folder, version):
        print("holding", flush=True)
        while True:
            time.sleep(0.05)

    reg = ModelRegistry({registry!r}, "m")
    mode = sys.argv[1]
    if mode == "thread":  # the CLI's handlers, the promotion in a task runner's thread
        from flows.cli.signals import _install_interrupt_handler
        _install_interrupt_handler()
        t = threading.Thread(target=reg.publish, args=(write,), kwargs=dict(promote=True, history_event={{}}))
        t.start()
        while t.is_alive():
            t.join(0.1)
    else:
        if mode == "main":
            from flows.cli.signals import _install_interrupt_handler
            _install_interrupt_handler()
        reg.publish(write, promote=True, history_event={{}})
""")


def _start_holder(tmp_path: Path, mode: str) -> subprocess.Popen:
    code = _HOLDER.format(root=str(ROOT), registry=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", code, mode], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    line = proc.stdout.readline()
    assert line.strip() == "holding", proc.stderr.read()
    return proc


def test_a_lock_whose_holder_was_killed_is_free_and_its_record_says_so(tmp_path):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    proc = _start_holder(tmp_path, "plain")
    try:
        assert not lock_is_free(reg.dir)
        assert holder(reg.dir).startswith(f"process {proc.pid} on host ")
        assert holder(reg.dir).endswith(", running")
        held = rf"m: the registry lock .*\.lock is still held after 0.2 s, by process {proc.pid} on host .*, running"
        with pytest.raises(RegistryError, match=held + "; nothing was written"), registry_lock(reg.dir, "m", 0.2):
            pass
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert lock_is_free(reg.dir)  # the kernel released the flock of the dead process
    assert json.loads((reg.dir / OWNER_FILE).read_text())["pid"] == proc.pid  # its record stays behind...
    assert "which has ended" in holder(reg.dir)  # ...recognised as stale
    assert publish(reg, "b") == 2  # the killed run left a hidden .tmp-2 folder only: removed, never a version
    assert reg.list_versions() == [1, 2] and not list(reg.versions_dir.glob(".tmp-*"))


@pytest.mark.parametrize("mode", ["main", "thread"])
def test_sigterm_during_a_publication_ends_the_process_and_frees_the_lock(tmp_path, mode):
    """The issue's run slept holding the lock and ignored SIGTERM. With the CLI's handler a
    SIGTERM unwinds a publication in the main thread (its ``finally`` releases the lock), and ends
    the process within the grace period when the publication runs in another thread."""
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    proc = _start_holder(tmp_path, mode)
    try:
        assert not lock_is_free(reg.dir)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr.read()
    assert lock_is_free(reg.dir)
    assert reg.list_versions() == [1] and reg.champion() == 1


@pytest.fixture
def read_only_registry(tmp_path, monkeypatch):
    """A registry whose files cannot be written: ``chmod`` for a user, and for root (whom
    ``chmod`` does not stop) the kernel's answer on a read-only mount, ``EROFS``, for the lock
    file (as seen with ``mount -o remount,ro,bind``)."""
    reg = ModelRegistry(tmp_path / "registry", "m")
    publish(reg, "a")
    publish(reg, "b")
    if os.geteuid() != 0:
        for path in [reg.dir, *reg.dir.rglob("*")]:
            path.chmod(path.stat().st_mode & ~0o222)
        yield reg
        for path in [reg.dir, *reg.dir.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
        return
    real_open = os.open

    def read_only_open(path, flags, *args, **kwargs):
        if str(path).startswith(str(reg.dir)) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only_open)
    yield reg


def test_rollback_on_a_read_only_registry_is_one_line_naming_the_cause(read_only_registry, monkeypatch):
    reg = read_only_registry
    with pytest.raises(RegistryError, match=r"m: cannot take the registry lock .*/m/\.lock: .* \(the registry is "
                                            r"read-only here\); nothing was written"):
        reg.rollback(1, reason="test")
    monkeypatch.setenv("FINML_REGISTRY_DIR", str(reg.root))
    monkeypatch.setenv("COLUMNS", "400")
    result = CliRunner().invoke(app, ["registry", "rollback", "m", "--to", "1"])
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and result.output.startswith("error: m: cannot take the registry lock")
    assert reg.champion() == 2  # reading still works


def test_show_version_superscript_two_is_a_one_line_error(tmp_path, monkeypatch):
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    with pytest.raises(RegistryError, match=r"m: no alias '²'"):
        reg.resolve("²")
    monkeypatch.setenv("FINML_REGISTRY_DIR", str(tmp_path))
    monkeypatch.setenv("COLUMNS", "400")
    result = CliRunner().invoke(app, ["registry", "show", "m", "--version", "²"])
    assert result.exit_code == 1
    assert result.output == "error: m: no alias '²' (aliases: champion=1)\n"


def test_a_version_folder_named_superscript_two_does_not_break_publishing(tmp_path):
    """Fixed earlier (``models.registry_tree.is_version_name``): confirmed here."""
    reg = ModelRegistry(tmp_path, "m")
    publish(reg, "a")
    (reg.versions_dir / "²").mkdir()
    assert publish(reg, "b") == 2
    assert reg.list_versions() == [1, 2]


def test_the_owner_record_never_follows_a_planted_symlink(tmp_path):
    reg = ModelRegistry(tmp_path / "registry", "m")
    publish(reg, "a")
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (reg.dir / OWNER_FILE).symlink_to(victim)
    assert publish(reg, "b") == 2  # the record is skipped, the write goes on
    assert victim.read_text() == "keep me"
