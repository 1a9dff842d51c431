"""Per-point telemetry: ~1 Hz psutil samples of each role's processes, and MariaDB's own counters."""

from __future__ import annotations

import contextlib
import csv
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pymysql

from shared.config import Settings
from shared.db_url import build_url

COUNTERS = (
    "Com_select",
    "Com_insert",
    "Com_update",
    "Com_delete",
    "Com_commit",
    "Com_rollback",
    "Questions",
    "Threads_connected",
    "Connections",
)


@dataclass
class Sample:
    t: float
    role: str
    pids: int
    cpu_percent: float
    rss_mb: float


class DbCounters:
    """A monitoring connection to the server under test; its own queries are subtracted."""

    def __init__(self, settings: Settings) -> None:
        url = build_url(settings, "pymysql")
        self.conn = pymysql.connect(
            host=url.host, port=url.port or 3306, user=url.username, password=url.password or "",
            connect_timeout=5, ssl_disabled=True, autocommit=True,
        )  # fmt: skip
        self.own_queries = 0
        self.lock = threading.Lock()

    def read(self) -> dict[str, int]:
        names = ", ".join(f"'{n}'" for n in COUNTERS)
        with self.lock, self.conn.cursor() as cur:
            cur.execute(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})")
            self.own_queries += 1
            return {str(k): int(v) for k, v in cur.fetchall()}

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


class Sampler(threading.Thread):
    """Samples CPU% (summed over a role's processes; 100 = one core) and RSS every `interval` s."""

    def __init__(
        self,
        roles: dict[str, Callable[[], list[int]]],
        db: DbCounters | None = None,
        interval: float = 1.0,
    ) -> None:
        super().__init__(daemon=True, name="telemetry")
        self.roles = roles
        self.db = db
        self.interval = interval
        self.samples: list[Sample] = []
        self.threads_connected: list[int] = []
        self._stop_event = threading.Event()
        self._procs: dict[int, psutil.Process] = {}
        self.t0 = time.time()

    def _proc(self, pid: int) -> psutil.Process | None:
        if pid not in self._procs:
            try:
                self._procs[pid] = psutil.Process(pid)
                self._procs[pid].cpu_percent(None)  # first call primes the counter
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
        if self.db is not None:
            with contextlib.suppress(pymysql.MySQLError):
                self.threads_connected.append(self.db.read()["Threads_connected"])

    def run(self) -> None:
        for pids_of in self.roles.values():  # prime
            for pid in pids_of():
                self._proc(pid)
        while not self._stop_event.wait(self.interval):
            self.sample_once()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)

    def window(self, start: float, end: float, role: str) -> list[Sample]:
        """Samples of `role` taken inside [start, end] (+ one interval: a sample covers the second before it)."""
        return [s for s in self.samples if s.role == role and start < s.t <= end + self.interval / 2]

    def summary(self, start: float, end: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for role in self.roles:
            win = self.window(start, end, role)
            cpu = [s.cpu_percent for s in win]
            out[f"{role}_cpu_mean"] = round(sum(cpu) / len(cpu), 1) if cpu else None
            out[f"{role}_cpu_max"] = max(cpu) if cpu else None
            out[f"{role}_rss_max_mb"] = max((s.rss_mb for s in win), default=None)
        out["threads_connected_max"] = max(self.threads_connected, default=None)
        return out

    def write_csv(self, path: Path) -> None:
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["t", "role", "pids", "cpu_percent", "rss_mb"])
            for s in self.samples:
                w.writerow([f"{s.t - self.t0:.3f}", s.role, s.pids, s.cpu_percent, s.rss_mb])


@dataclass
class CounterDelta:
    before: dict[str, int]
    after: dict[str, int]
    own_queries: int = 0
    delta: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.delta = {k: self.after[k] - self.before[k] for k in self.before if k != "Threads_connected"}
        self.delta["Questions"] -= self.own_queries  # our own SHOW GLOBAL STATUS calls
