"""Per-point telemetry: ~1 Hz psutil samples of each role's processes, and the server's connection count.

Roles are fixed names (`Role`), and `summary()` returns a typed `Telemetry`: no column names are built
from strings here; the row schema (bench/store/rows.py) picks what it needs from the summary.
"""

from __future__ import annotations

import contextlib
import csv
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import psutil

from bench.backends.base import Counters


class Role(StrEnum):
    APP = "app"  # the app under test
    PARTNER = "partner"  # a paired point's second app (the gate's baseline code)
    DB = "db"  # the private database server
    LOADGEN = "locust"  # every Locust process of the point


@dataclass(frozen=True)
class Sample:
    t: float
    role: Role
    pids: int
    cpu_percent: float  # summed over the role's processes: 100 = one core
    rss_mb: float


@dataclass(frozen=True)
class RoleStats:
    cpu_mean: float | None = None
    cpu_max: float | None = None
    rss_max_mb: float | None = None


@dataclass(frozen=True)
class Telemetry:
    roles: dict[Role, RoleStats]
    connections_max: int | None

    def of(self, role: Role) -> RoleStats:
        return self.roles.get(role, RoleStats())


class Sampler(threading.Thread):
    """Samples every `interval` s until stopped; a context manager."""

    def __init__(
        self,
        roles: dict[Role, Callable[[], list[int]]],
        counters: Counters | None = None,
        interval: float = 1.0,
    ) -> None:
        super().__init__(daemon=True, name="telemetry")
        self.roles = roles
        self.counters = counters
        self.interval = interval
        self.samples: list[Sample] = []
        self.connections: list[int] = []
        self._stop_event = threading.Event()
        self._procs: dict[int, psutil.Process] = {}
        self.t0 = time.time()

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _proc(self, pid: int) -> psutil.Process | None:
        if pid not in self._procs:
            try:
                self._procs[pid] = psutil.Process(pid)
                self._procs[pid].cpu_percent(None)  # the first call primes the counter
            except psutil.Error:
                return None
        return self._procs[pid]

    def sample_once(self) -> None:
        now = time.time()
        for role, pids_of in self.roles.items():
            cpu = rss = 0.0
            pids = pids_of()
            for pid in pids:
                proc = self._proc(pid)
                if proc is None:
                    continue
                with contextlib.suppress(psutil.Error):
                    cpu += proc.cpu_percent(None)
                    rss += proc.memory_info().rss / 2**20
            self.samples.append(Sample(now, role, len(pids), round(cpu, 1), round(rss, 1)))
        if self.counters is not None:
            with contextlib.suppress(Exception):  # a server that went away mid-point: no reading
                self.connections.append(self.counters.read()["connections"])

    def run(self) -> None:
        for pids_of in self.roles.values():  # prime
            for pid in pids_of():
                self._proc(pid)
        while not self._stop_event.wait(self.interval):
            self.sample_once()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)

    def summary(self, start: float, end: float) -> Telemetry:
        """Samples taken inside [start, end] (+ half an interval: a sample covers the second before it)."""
        roles: dict[Role, RoleStats] = {}
        for role in self.roles:
            win = [
                s
                for s in self.samples
                if s.role == role and s.pids and start < s.t <= end + self.interval / 2
            ]  # a role without processes here (an external app or database) is not measured: None
            cpu = [s.cpu_percent for s in win]
            roles[role] = RoleStats(
                round(sum(cpu) / len(cpu), 1) if cpu else None,
                max(cpu) if cpu else None,
                max((s.rss_mb for s in win), default=None),
            )
        return Telemetry(roles, max(self.connections, default=None))

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["t", "role", "pids", "cpu_percent", "rss_mb"])
            for s in self.samples:
                w.writerow([f"{s.t - self.t0:.3f}", s.role.value, s.pids, s.cpu_percent, s.rss_mb])
