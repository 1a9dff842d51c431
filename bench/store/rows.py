"""The row schema of points.csv, defined once: `PointRow`'s fields are the columns, in order.

The runner writes one row per point (`append_row`); the analysis, the report, the charts and the gate read
the columns by these names. `PointKey` is the one identity of a measured configuration: it names the
point's folder, the gate's keys and the report's workload labels.
"""

from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple


class PointKey(NamedTuple):
    app: str
    scenario: str
    users: int
    db_ms: int
    rate: float | None = None  # open loop: target req/s (then `users` is the open-loop user count)

    def point_id(
        self, repeat: int, recorded: bool = True, partner: str | None = None, extra: str = ""
    ) -> str:
        """The point's folder name, e.g. `sync__read_heavy__u16__d0__r1` (`...__r1__vs.async` for the sync
        side of a paired point, `...__r1__prof` for a profiled point, `...__stmt` for the statement pass)."""
        load = f"rate{self.rate:g}" if self.rate else f"u{self.users}"
        norec = "" if recorded else "__norec"
        vs = f"__vs.{partner.replace(':', '.')}" if partner else ""
        app = self.app.replace(":", ".")
        return f"{app}__{self.scenario}__{load}__d{self.db_ms}__r{repeat}{norec}{vs}{extra and '__' + extra}"

    @property
    def label(self) -> str:
        """One line for the console: `sync read_heavy u16 d20`."""
        load = f"rate{self.rate:g}" if self.rate else f"u{self.users}"
        return f"{self.app} {self.scenario} {load}" + (f" d{self.db_ms}" if self.db_ms else "")


@dataclass(frozen=True)
class PointRow:
    """One measured point. Units: seconds, requests/s, milliseconds, % of one core, MB."""

    run_id: str
    point_id: str
    app: str
    partner: str  # the app loaded over the same seconds (a paired point), else empty
    backend: str  # the database product (bench/backends/): mariadb, postgres
    variant: str | None
    driver: str | None
    scenario: str
    users: int
    db_ms: int
    repeat: int
    order: int
    mode: str  # closed | open
    recorded: bool
    target_rps: float | None
    warmup_s: float
    duration_s: float
    requests: int
    failures: int
    rps: float | None
    p50_ms: float | None
    p90_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    mean_ms: float | None
    p99_uncorrected_ms: float | None
    late: int
    locust_cpu_max: float | None
    locust_cpu_mean: float | None
    app_cpu_mean: float | None
    app_cpus_others: float | None  # % of one core the app's CPUs gave to anything else (None: not pinned)
    app_cpus_irq: float | None  # ...and to the kernel's interrupt work (irq + softirq: its network traffic)
    app_rss_max_mb: float | None
    db_cpu_mean: float | None
    db_rss_max_mb: float | None
    threads_connected_max: int | None
    com_select: int | None
    com_insert: int | None
    com_update: int | None
    com_delete: int | None
    com_commit: int | None
    com_rollback: int | None
    questions: int | None
    statements_expected: float | None
    statements_check: str
    acked_writes: int
    missing_writes: int | None  # None: not measured (the app's database is not reachable)
    valid: bool
    invalid_reasons: str  # ';'-separated, empty when valid
    workers: int | None
    thread_tokens: int | None
    pool_size: int | None
    max_overflow: int | None
    event_loop: str | None
    app_pid: int | None  # the app's main process: a new one means the app was (re)started before this point


POINT_COLUMNS: list[str] = [f.name for f in fields(PointRow)]
TEXT_COLUMNS = (
    "run_id",
    "point_id",
    "app",
    "partner",
    "backend",
    "variant",
    "driver",
    "scenario",
    "mode",
    "statements_check",
    "invalid_reasons",
    "event_loop",
)


def append_row(run_dir: Path, row: PointRow | dict[str, Any]) -> None:
    """Append one row to points.csv (header first); a dict may leave columns out (tests, fixtures)."""
    values = asdict(row) if isinstance(row, PointRow) else row
    path = run_dir / "points.csv"
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=POINT_COLUMNS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: ("" if values.get(k) is None else values.get(k)) for k in POINT_COLUMNS})
