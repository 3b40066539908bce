"""Nothing outlives its owner: owner tags, the watchdog, the CLI's signal handling."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import psutil

from flows.lifetime import OWNER_PREFIX, owner_gone, owner_tag


def test_an_owner_tag_tells_a_live_process_from_a_dead_one():
    mine = owner_tag()
    assert mine.startswith(f"{OWNER_PREFIX}{socket.gethostname()}:{os.getpid()}:")
    assert owner_gone(mine) is False
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    tag = owner_tag(done.pid)
    done.wait()
    assert owner_gone(tag) is True
    host, pid, started = mine[len(OWNER_PREFIX):].rsplit(":", 2)
    assert owner_gone(f"{OWNER_PREFIX}{host}:{pid}:{int(started) - 100}") is True  # the pid, reused by a later process
    assert owner_gone(f"{OWNER_PREFIX}elsewhere:{pid}:{started}") is False  # another host's: not ours to judge
    assert owner_gone("finml-owner:garbage") is False


def test_the_watchdog_stops_what_its_owner_started_when_the_owner_is_killed_9():
    """The owner starts a long-lived child (standing in for Prefect's server) and a watchdog on
    itself; after kill -9 of the owner the child is gone within a few seconds."""
    code = ("import subprocess, sys, time\n"
            "from flows.lifetime import watch_owner\n"
            "child = subprocess.Popen(['sleep', '60'])\n"
            "watch_owner(__import__('os').getpid(), [child.pid])\n"
            "print(child.pid, flush=True)\n"
            "time.sleep(60)\n")
    owner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(owner.stdout.readline())
    assert psutil.pid_exists(child)
    time.sleep(0.5)  # the watchdog is up
    owner.send_signal(signal.SIGKILL)
    owner.wait(10)
    started = time.monotonic()
    while psutil.pid_exists(child) and psutil.Process(child).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() - started < 5, "the child outlived its owner"
        time.sleep(0.1)


def test_the_watchdog_leaves_when_what_it_watches_has_ended():
    from flows.lifetime import watch_owner

    child = subprocess.Popen(["sleep", "0.5"])
    dog = watch_owner(os.getpid(), [child.pid])
    child.wait(5)
    assert dog.wait(5) == 0


def test_a_watchdogs_loop_ends_with_its_owner_or_once_it_is_no_longer_needed():
    from flows.lifetime import outlive_owner

    assert outlive_owner(None, lambda: True) is True  # the owner was gone before the watchdog started
    assert outlive_owner(psutil.Process(), lambda: False) is False  # owner alive, nothing left to watch
    owner = subprocess.Popen(["sleep", "0.5"])
    looks: list[int] = []
    started = time.monotonic()
    assert outlive_owner(psutil.Process(owner.pid), lambda: looks.append(1) or True) is True  # a zombie is gone
    assert 0.4 < time.monotonic() - started < 5 and len(looks) >= 2
    owner.wait(5)


def test_a_signal_ends_a_command_with_its_code_and_runs_finally_blocks(tmp_path):
    """`kill PID` while the command writes: SystemExit unwinds, so the temporary file removes itself."""
    marker = tmp_path / "tmp-file"
    code = ("import os, sys, time\n"
            "from flows.cli import _install_interrupt_handler\n"
            "_install_interrupt_handler()\n"
            f"tmp = {str(marker)!r}\n"
            "try:\n"
            "    open(tmp, 'w').close(); print('writing', flush=True); time.sleep(30)\n"
            "finally:\n"
            "    os.unlink(tmp)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 128 + signal.SIGTERM
    assert "interrupted (SIGTERM): stopping now" in proc.stderr.read()
    assert not marker.exists()
