"""Start and stop the processes of a run (apps, Locust) in their own process groups, pinned to CPUs.

Every process started here is registered, so `stop_all()` (called on exit, Ctrl-C or SIGTERM) ends
each group with SIGTERM, then SIGKILL after a grace period: a deadlocked uvicorn ignores SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
import psutil

from shared.config import REPO_ROOT

_RUNNING: list[ManagedProcess] = []


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def wait(self, timeout: float) -> int | None:
        """Its exit code, or None if it is still running after `timeout` s."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def pids(self) -> list[int]:
        """This process and its descendants (uvicorn workers, Locust workers)."""
        try:
            proc = psutil.Process(self.pid)
            return [self.pid, *(c.pid for c in proc.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def terminate(self) -> None:
        """SIGTERM the group without waiting (`stop()` then waits and cleans up)."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the group, wait up to `grace` s, then SIGKILL the group. Returns the exit code."""
        if self.alive():
            self.terminate()
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)
        # Descendants that outlived their parent (same group) go too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
        with contextlib.suppress(ValueError):
            _RUNNING.remove(self)
        return self.popen.returncode


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    cpus: Sequence[int] | None = None,
    log_path: Path | None = None,
    cwd: Path = REPO_ROOT,
) -> ManagedProcess:
    log: IO[bytes] | None = log_path.open("ab") if log_path else None
    out: IO[bytes] | int = log if log is not None else subprocess.DEVNULL
    popen = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=out,
        stderr=subprocess.STDOUT if log is not None else subprocess.DEVNULL,
        start_new_session=True,  # own process group: we signal it as a whole, the terminal does not
    )
    if cpus:
        with contextlib.suppress(ProcessLookupError, OSError):
            os.sched_setaffinity(popen.pid, set(cpus))
    proc = ManagedProcess(name, popen, log_path, log)
    _RUNNING.append(proc)
    return proc


def stop_all() -> None:
    for proc in list(reversed(_RUNNING)):
        proc.stop(grace=3.0)


@contextlib.contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """SIGTERM (and SIGHUP) behave like Ctrl-C: a run stops cleanly and keeps its finished points. Ctrl-C
    itself works even when a script started the command in the background (which leaves SIGINT ignored).
    Every `bench` command runs inside it (bench/cli), and so does every matrix run started from code."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    old[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def python_tool(module: str) -> list[str]:
    return [sys.executable, "-m", module]


def wait_healthy(
    base_url: str, proc: ManagedProcess, timeout: float = 30.0, path: str | None = "/healthz"
) -> None:
    """Poll `path` until it answers 200 (None: until the app answers at all, any status); fail early with
    the app's log tail if it exits."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with code {proc.popen.returncode}: {log_tail(proc)}")
        try:
            resp = httpx.get(f"{base_url}{path or '/'}", timeout=2.0)
            if resp.status_code == 200 or path is None:
                return
            last = f"GET {path}: HTTP {resp.status_code}: {resp.text[:200]}"
            if resp.status_code == 404:
                last += "; no such route: name one that answers 200 with --health-path"
        except httpx.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.02)
    raise RuntimeError(f"{proc.name} not healthy after {timeout:.0f}s ({last}): {log_tail(proc)}")


def log_tail(proc: ManagedProcess, lines: int = 3) -> str:
    if proc.log_path is None or not proc.log_path.exists():
        return "(no log)"
    tail = proc.log_path.read_text(errors="replace").strip().splitlines()[-lines:]
    return " | ".join(tail) or "(empty log)"


# The CPUs this process may use when the harness starts: the machine's, whatever the harness later pins
# itself to while a run lasts (harness_on).
MACHINE_CPUS: tuple[int, ...] = tuple(sorted(os.sched_getaffinity(0)))


@contextlib.contextmanager
def harness_on(cpus: Sequence[int]) -> Iterator[None]:
    """Keep the harness's own process off the app's CPUs while a run lasts: its telemetry thread samples
    during every window and its bookkeeping between points took up to half of a core there (threads it
    starts inside inherit this). Nothing to do when the run is not pinned."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(cpus))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@dataclass(frozen=True)
class Pinning:
    """Which CPUs the app, the load generator and the database get. Empty = not pinned."""

    app: tuple[int, ...]
    loadgen: tuple[int, ...]
    db: tuple[int, ...]

    @classmethod
    def plan(cls, enabled: bool = True) -> Pinning:
        cpus = list(MACHINE_CPUS)
        if not enabled or len(cpus) < 2:
            return cls((), (), ())
        half = len(cpus) // 2
        # The app under test gets the upper half to itself; Locust and MariaDB share the rest.
        return cls(tuple(cpus[half:]), tuple(cpus[:half]), tuple(cpus[:half]))

    def as_dict(self) -> dict[str, list[int]]:
        return {"app": list(self.app), "loadgen": list(self.loadgen), "db": list(self.db)}


def pin(pid: int, cpus: Sequence[int]) -> bool:
    """Pin an existing process and its threads (MariaDB's threads are what matter)."""
    if not cpus:
        return False
    try:
        proc = psutil.Process(pid)
        proc.cpu_affinity(list(cpus))
        for thread in proc.threads():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(thread.id, set(cpus))
        return True
    except (psutil.Error, OSError):
        return False
