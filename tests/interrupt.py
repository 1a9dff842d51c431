"""Interrupt a bench command the way a user does, and check that it ends cleanly: exit 130, says so, and
leaves none of the processes it started running. Used by tests/test_harness.py and tests/test_perfgate.py."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable

import psutil
import pytest


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def interrupt_when(
    proc: subprocess.Popen[str],
    ready: Callable[[list[psutil.Process]], bool],
    sig: int = signal.SIGINT,
    *,
    within: float = 120,
) -> str:
    """Wait until `ready(children)` holds, send `sig`, and assert the clean end; returns stderr."""
    seen: set[int] = set()
    try:
        deadline = time.time() + within
        while time.time() < deadline:
            kids = descendants(proc.pid)
            seen |= {k.pid for k in kids}
            if ready([k for k in kids if k.is_running()]):
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"not ready to interrupt within {within:.0f} s")
        seen |= {k.pid for k in descendants(proc.pid)}
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted" in err
    alive = [
        pid for pid in seen if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    ]
    assert not alive, f"left running: {alive}"
    return err


def cmdline(process: psutil.Process) -> str:
    """A child's command line ('' once it is gone)."""
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""
