"""Faults injected under load: the database killed and restarted, the database stalled, and nothing that
was acknowledged lost. Each app is served for real (a uvicorn process) and loaded by a few client threads;
the faults are backend operations (bench/backends/base.py: kill, stalled, ensure), so they run on every
backend the tests cover.

Guarantees checked, per app:
- while the database is down every request answers 503 with "Database unavailable" at once (never a 500,
  never a wait longer than the connect timeout), and 200 again within 2 s of the database being back;
- while the database is stalled (SIGSTOP) every answer is a 503, no request waits longer than the pool,
  connect and read timeouts together (a request may also outlive the stall and succeed), and afterwards no
  connection leaks: the pool's checked-out count returns to 0 and the server's
  connections settle back to what they were before;
- the app process never restarts, and every user and item answered 201 exists afterwards.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text

from bench.backends import Backend
from bench.catalog import APP_BY_NAME, AppEntry
from shared.config import Settings
from tests.conftest import DEFAULT_APPS, Served, serve

pytestmark = pytest.mark.e2e
CLIENTS = 4
# Short timeouts, so a fault shows within seconds (the defaults are 5 s connect, 30 s read, 30 s pool).
FAULT = {
    "pool_size": 3,
    "max_overflow": 0,
    "pool_timeout": 2.0,
    "db_connect_timeout": 1,
    "db_read_timeout": 2,
    "argon2_memory_cost": 8192,
}
RECOVERY_S = 2.0
STEADY_CALLS = 20  # answered calls that show the load running (a state to wait for, not a time)


@dataclass(frozen=True)
class Call:
    start: float
    end: float
    method: str
    status: int  # 0: no HTTP answer (connection error)
    detail: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass
class Load:
    """CLIENTS threads sending a mix of reads and writes until stopped; every answer kept."""

    base_url: str
    users: list[int]
    calls: list[Call] = field(default_factory=list)
    acked: dict[str, set[int]] = field(default_factory=lambda: {"users": set(), "items": set()})
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self, n: int) -> None:
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            i = 0
            while not self.stop.is_set():
                i += 1
                uid = self.users[(n + i) % len(self.users)]
                kind = i % 4
                if kind == 0:
                    self.send(
                        http,
                        "POST",
                        "/users",
                        "users",
                        {
                            "email": f"fault-{n}-{i}-{time.monotonic_ns()}@example.com",
                            "password": "a long enough",
                        },
                    )
                elif kind == 1:
                    self.send(http, "POST", f"/users/{uid}/items", "items", {"title": f"item {n}-{i}"})
                else:
                    self.send(http, "GET", f"/users/{uid}", None, None)
                time.sleep(0.01)

    def send(self, http: httpx.Client, method: str, path: str, table: str | None, body: object) -> None:
        start = time.monotonic()
        try:
            resp = http.request(method, path, json=body)
            status, payload = resp.status_code, resp.json() if resp.content else {}
        except (httpx.HTTPError, ValueError) as exc:
            status, payload = 0, {"detail": type(exc).__name__}
        with self.lock:
            self.calls.append(Call(start, time.monotonic(), method, status, str(payload.get("detail", ""))))
            if status == 201 and table is not None:
                self.acked[table].add(int(payload["id"]))

    @contextmanager
    def running(self) -> Iterator[Load]:
        self.threads = [threading.Thread(target=self.client, args=(n,), daemon=True) for n in range(CLIENTS)]
        for t in self.threads:
            t.start()
        try:
            yield self
        finally:
            self.finish()

    def finish(self) -> None:
        self.stop.set()
        for t in getattr(self, "threads", []):
            t.join(timeout=60)

    def between(self, start: float, end: float) -> list[Call]:
        """Calls sent and answered inside [start, end]."""
        return [c for c in self.calls if c.start >= start and c.end <= end]

    def sent_after(self, t: float) -> list[Call]:
        return [c for c in self.calls if c.start >= t]

    def answered(self, *statuses: int, after: float = 0.0) -> int:
        """How many calls sent after `after` were answered with one of `statuses`."""
        with self.lock:
            return sum(1 for c in self.calls if c.start >= after and c.status in statuses)


@pytest.fixture
def fault_settings(settings: Settings, backend: Backend, db_engine: Engine) -> Settings:
    if settings.database_url is not None:
        pytest.skip("faults are injected into the private server only (DATABASE_URL names another)")
    return settings.model_copy(update=FAULT)


@contextmanager
def loaded_app(entry: AppEntry, settings: Settings, log: Path) -> Iterator[tuple[Served, Load, int]]:
    with serve(entry, settings, log) as app:
        users = [
            httpx.post(
                f"{app.base_url}/users", json={"email": f"seed{i}@example.com", "password": "a long enough"}
            ).json()["id"]
            for i in range(8)
        ]
        pid = app.get("/limits").json()["pid"]
        load = Load(app.base_url, users)
        load.acked["users"].update(users)
        with load.running():
            assert wait_until(lambda: load.answered(200, 201) >= STEADY_CALLS, 10), "no steady load"
            yield app, load, pid


def wait_until(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def assert_nothing_lost(load: Load, db_engine: Engine) -> None:
    """Every id answered 201 exists in the database (InnoDB/WAL: a commit survives a crash)."""
    for table, ids in load.acked.items():
        if ids:
            with db_engine.connect() as conn:
                found: int = conn.execute(
                    text(f"SELECT COUNT(*) FROM {table} WHERE id IN ({','.join(map(str, ids))})")
                ).scalar_one()
            assert found == len(ids), f"{len(ids) - found} acknowledged {table} lost"


def assert_same_process(app: Served, pid: int) -> None:
    assert app.proc.alive(), "the app process died"
    assert app.get("/limits").json()["pid"] == pid, "the app process was replaced"


def assert_no_server_errors(load: Load) -> None:
    bad = [c for c in load.calls if c.status >= 500 and c.status != 503 or c.status == 0]
    assert not bad, bad[:5]


@pytest.mark.parametrize("entry", DEFAULT_APPS)
def test_database_killed_and_restarted(
    entry: AppEntry,
    backend: Backend,
    fault_settings: Settings,
    db_engine: Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    s = fault_settings
    with loaded_app(entry, s, tmp_path / "app.log") as (app, load, pid):
        killed = time.monotonic()
        backend.kill()
        time.sleep(2.0)
        restarting = time.monotonic()
        backend.ensure(Settings())  # restart: returns once the server accepts logins and is provisioned
        back = time.monotonic()
        # until the load has run a while past recovery: successes sent after it, the checks below read them
        assert wait_until(lambda: load.answered(200, 201, after=back + RECOVERY_S) >= STEADY_CALLS, 30)
        load.finish()
        assert_same_process(app, pid)
    outage = load.between(killed + 0.05, restarting)
    assert outage, "no request was answered while the database was down"
    odd = [c for c in outage if c.status != 503 or not c.detail.startswith("Database unavailable")]
    assert not odd, odd[:5]
    slowest = max(c.seconds for c in outage)
    assert slowest < s.db_connect_timeout + 0.5, (
        f"a request waited {slowest:.2f} s while the database was down"
    )
    after = load.sent_after(back)
    first_ok = min((c.end for c in after if c.status in (200, 201)), default=float("inf"))
    assert first_ok - back < RECOVERY_S, f"first success {first_ok - back:.2f} s after the database was back"
    recovered = load.sent_after(back + RECOVERY_S)
    assert recovered and all(c.status in (200, 201) for c in recovered), "errors after recovery"
    assert_no_server_errors(load)
    assert_nothing_lost(load, db_engine)
    with capsys.disabled():
        print(
            f"\n  kill/restart {app.entry.name} on {backend.name}: {len(outage)} requests during the outage, "
            f"all 503, slowest {slowest * 1000:.0f} ms; first 2xx {(first_ok - back) * 1000:.0f} ms after "
            f"the restart; {sum(map(len, load.acked.values()))} acknowledged writes all present"
        )


# and the one app whose driver has no read timeout of its own beside the watchdog's (aiomysql, a variant)
STALLED_APPS = [*DEFAULT_APPS, pytest.param(APP_BY_NAME["async-aiomysql"], id="async-aiomysql")]


@pytest.mark.parametrize("entry", STALLED_APPS)
def test_database_stalled_then_resumed(
    entry: AppEntry,
    backend: Backend,
    fault_settings: Settings,
    db_engine: Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A stall turns into 503s within the timeouts: the driver's own read timeout (PyMySQL, asyncmy), or,
    for the drivers that have none (psycopg, asyncpg, aiomysql: a stopped server's kernel still acknowledges
    TCP, so no keepalive helps), shared/deadline.py's. A driver with neither would make requests wait for the
    server as long as it stalls: it fails here."""
    s = fault_settings.model_copy(update=dict(entry.settings))
    driver = s.driver(entry.family)
    assert driver in s.dialect.read_timeout_options or driver in s.dialect.watchdog_drivers, (
        f"{driver} has no read timeout: give it one (Dialect.read_timeout_options) or the watchdog's"
    )
    counters = backend.counters(s)
    try:
        with loaded_app(entry, s, tmp_path / "app.log") as (app, load, pid):
            steady = counters.read()["connections"]
            with backend.stalled():
                stalled = time.monotonic()
                time.sleep(5.0)
            resumed = time.monotonic()
            settle = resumed + s.db_read_timeout + RECOVERY_S
            assert wait_until(
                lambda: load.answered(200, 201, after=settle) >= STEADY_CALLS, settle - time.monotonic() + 30
            )
            load.finish()
            assert_same_process(app, pid)
            assert wait_until(lambda: app.get("/pool").json()["checked_out"] == 0, 5), app.get("/pool").json()
        bound = s.pool_timeout + s.db_connect_timeout + s.db_read_timeout + 0.5
        # Sent and answered while the server was stopped. (A request whose work the server finished just
        # before the stop may still be answered 2xx late: its session waits on the reset-on-return ROLLBACK.)
        during = load.between(stalled + 0.05, resumed)
        slowest = max(c.seconds for c in load.calls if c.end > stalled)
        assert during and all(c.status == 503 for c in during), during[:5]
        assert slowest < bound, f"a request waited {slowest:.2f} s (bound {bound:.1f} s)"
        after_stall = load.sent_after(settle)
        assert after_stall and all(c.status in (200, 201) for c in after_stall), "errors after the stall"
        assert wait_until(lambda: counters.read()["connections"] <= steady, 15), (counters.read(), steady)
        assert_no_server_errors(load)
        assert_nothing_lost(load, db_engine)
    finally:
        counters.close()
    with capsys.disabled():
        print(
            f"\n  stall {entry.name} on {backend.name}: {len(during)} requests answered during the stall, "
            f"all 503, slowest {slowest:.2f} s (bound {bound:.1f} s); pool back to 0 checked out, server "
            f"connections back to {steady}"
        )
