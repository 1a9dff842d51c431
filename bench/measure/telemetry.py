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
    APP_CPUS = "app_cpus"  # the app's pinned CPUs, busy with anything at all (per-CPU times, not processes)
    # ...of which in the kernel's interrupt handlers (irq + softirq): with load arriving over a network
    # (a veth or a NIC), the packet work for the app's own traffic runs on the app's CPU, in no process
    APP_CPUS_IRQ = "app_cpus_irq"


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

    def others_on_app_cpus(self) -> float | None:
        """% of one core the app's CPUs spent on anything but the apps under test and the kernel's interrupt
        work (other programs, the kernel's own threads); None when the apps are not pinned or not measured."""
        busy, app = self.of(Role.APP_CPUS).cpu_mean, self.of(Role.APP).cpu_mean
        if busy is None or app is None:
            return None
        irq = self.irq_on_app_cpus() or 0.0
        return round(max(0.0, busy - irq - app - (self.of(Role.PARTNER).cpu_mean or 0.0)), 1)

    def irq_on_app_cpus(self) -> float | None:
        """% of one core the app's CPUs spent in interrupt handlers (irq + softirq: mostly the network work
        of the app's own traffic); None when not pinned."""
        return self.of(Role.APP_CPUS_IRQ).cpu_mean


class Sampler(threading.Thread):
    """Samples every `interval` s until stopped; a context manager."""

    def __init__(
        self,
        roles: dict[Role, Callable[[], list[int]]],
        counters: Counters | None = None,
        interval: float = 1.0,
        cpus: tuple[int, ...] = (),
    ) -> None:
        super().__init__(daemon=True, name="telemetry")
        self.roles = roles
        self.cpus = cpus  # the app's pinned CPUs: their busy time is sampled as Role.APP_CPUS
        self._cpu_times: tuple[float, float, float] | None = None  # busy, irq seconds on `cpus`; time.time()
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
        if (busy := self._app_cpus_busy(now)) is not None:
            self.samples.append(Sample(now, Role.APP_CPUS, len(self.cpus), busy[0], 0.0))
            self.samples.append(Sample(now, Role.APP_CPUS_IRQ, len(self.cpus), busy[1], 0.0))
        if self.counters is not None:
            with contextlib.suppress(Exception):  # a server that went away mid-point: no reading
                self.connections.append(self.counters.read()["connections"])

    def _app_cpus_busy(self, now: float) -> tuple[float, float] | None:
        """% of one core the app's CPUs were busy since the last call, and how much of it in interrupt
        handlers (None on the first call, and unpinned)."""
        if not self.cpus:
            return None
        per_cpu = psutil.cpu_times(percpu=True)
        # Busy as psutil's own cpu_percent counts it: not idle, not waiting on I/O, and guest time once
        # (Linux counts a guest VM's time in user/nice as well as in guest/guest_nice).
        left_out = ("idle", "iowait", "guest", "guest_nice")
        mine = [t._asdict() for i, t in enumerate(per_cpu) if i in self.cpus]
        busy = sum(float(v) for fields in mine for k, v in fields.items() if k not in left_out)
        irq = sum(float(fields.get(k, 0.0)) for fields in mine for k in ("irq", "softirq"))
        last, self._cpu_times = self._cpu_times, (busy, irq, now)
        if last is None or now <= last[2]:
            return None
        span = now - last[2]
        return round(100 * (busy - last[0]) / span, 1), round(100 * (irq - last[1]) / span, 1)

    def run(self) -> None:
        for pids_of in self.roles.values():  # prime
            for pid in pids_of():
                self._proc(pid)
        self._app_cpus_busy(time.time())
        while not self._stop_event.wait(self.interval):
            self.sample_once()

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)

    def summary(self, start: float, end: float) -> Telemetry:
        """Samples taken inside [start, end] (+ half an interval: a sample covers the second before it)."""
        roles: dict[Role, RoleStats] = {}
        for role in [*self.roles, *([Role.APP_CPUS, Role.APP_CPUS_IRQ] if self.cpus else [])]:
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
