"""One point: Locust against a running app for warm-up + duration seconds, and what was observed.

Only requests that complete inside the measurement window count (the plugin in loadtests/common.py does
that); telemetry and the database's statement counters are taken over the same window. A paired point
(the regression gate) loads an app and its `base:` twin at the same time, each with its own Locust.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from bench.backends.base import COUNTER_KINDS
from bench.catalog import BASE_PREFIX, SCENARIO_BY_NAME, AppSpec, scenario_name, serves
from bench.config import RunConfig
from bench.measure import locust
from bench.measure.telemetry import Role, RoleStats, Sampler, Telemetry
from bench.measure.validity import Observed, invalid_reasons
from bench.measure.workcheck import check_statements
from bench.stack import RunningApp, Stack
from bench.store.loadgen import LoadgenResult, percentiles_ms, read_loadgen
from bench.store.rows import PointKey, PointRow
from bench.store.rundir import write_json

LOCUST_GRACE_S = 30.0  # after the window: Locust's own stop plus writing its files


@dataclass(frozen=True)
class Point:
    app: str
    scenario: str  # a catalog name or a locustfile path
    users: int
    db_ms: int
    repeat: int
    rate: float | None = None
    record: bool = True  # False: the load generator only counts requests (to measure recording's cost)
    partner: str | None = None  # an app loaded at the same time, with its own Locust (the gate's baseline)

    @property
    def key(self) -> PointKey:
        return PointKey(self.app, scenario_name(self.scenario), self.users, self.db_ms, self.rate)

    @property
    def point_id(self) -> str:
        return self.key.point_id(self.repeat, self.record)


def plan_points(cfg: RunConfig, apps: list[AppSpec]) -> list[Point]:
    """Every point of the matrix, shuffled within each repeat so drift does not favour one app. A paired
    run plans each current app with its `base:` twin as partner. Apps that cannot serve a scenario (the
    read-only variants and a writing one) are left out of it."""
    m = cfg.matrix
    sweep = m.sweep_users or (sorted(m.users)[len(m.users) // 2],)
    names = [a.name for a in apps]
    points: list[Point] = []
    for repeat in range(1, m.repeats + 1):
        block: list[Point] = []
        for app in apps:
            partner = (
                BASE_PREFIX + app.name if cfg.pairing.paired and BASE_PREFIX + app.name in names else None
            )
            if cfg.pairing.paired and partner is None:
                continue  # a `base:` app: measured as the partner of its current app
            for scenario in m.scenarios:
                if not serves(app, scenario):
                    continue
                entry = SCENARIO_BY_NAME.get(scenario_name(scenario))
                sweeps = entry is not None and entry.sweeps_db_ms
                db_levels = m.db_ms if sweeps else (0,)
                if m.rates:
                    block += [
                        Point(app.name, scenario, 1, d, repeat, r, partner=partner)
                        for r in m.rates
                        for d in db_levels
                    ]
                else:
                    levels = sweep if sweeps else m.users
                    block += [
                        Point(app.name, scenario, u, d, repeat, partner=partner)
                        for u in levels
                        for d in db_levels
                    ]
        if m.recording_overhead:
            block += [replace(p, record=False) for p in block]
        random.Random(m.shuffle_seed + repeat).shuffle(block)
        points += block
    return points


def point_seconds(cfg: RunConfig) -> float:
    connect = 3.0 if cfg.loadgen.distributed else 0.0  # remote workers reconnect between points
    return locust.STARTUP_S + cfg.matrix.warmup_s + cfg.matrix.duration_s + 1.0 + connect


def _sleep_until(t: float) -> None:
    delay = t - time.time()
    if delay > 0:
        time.sleep(delay)


def measure(
    stack: Stack, point: Point, cfg: RunConfig, run_dir: Path, order: int, say: Callable[[str], None] = print
) -> list[PointRow]:
    """Run one point; a row for it (and one for its partner, over the same window). `say` gets the lines
    a user must read now (a distributed point waiting for its workers)."""
    sides = [point] + ([replace(point, app=point.partner, partner=None)] if point.partner else [])
    apps = [stack.app(p.app) for p in sides]
    folders = [run_dir / "points" / p.point_id for p in sides]
    users = cfg.loadgen.open_users if point.rate else point.users
    m, problem = cfg.matrix, None
    planned = None if cfg.loadgen.distributed else locust.Window.plan(time.time(), m.warmup_s, m.duration_s)
    locusts = [
        locust.launch(
            scenario=p.scenario, users=users, rate=p.rate, db_ms=p.db_ms, record=p.record, host=app.base_url,
            folder=folder, window=planned, loadgen=cfg.loadgen, seed=cfg.seed, cpus=stack.pinning.loadgen,
            warmup_s=m.warmup_s, duration_s=m.duration_s,
        )
        for p, app, folder in zip(sides, apps, folders, strict=True)
    ]  # fmt: skip
    window = planned
    if window is None:  # the master plans it once its workers are connected
        window, problem = locust.await_window(locusts[0], folders[0], cfg.loadgen, say)
        if window is None:
            window = locust.Window(time.time(), time.time(), time.time())
    roles = {Role.APP: apps[0].pids, Role.DB: stack.db_pids}
    roles[Role.LOADGEN] = lambda: [pid for proc in locusts for pid in proc.pids()]
    if len(apps) > 1:
        roles[Role.PARTNER] = apps[1].pids
    # Statement counters and acknowledged writes only where the harness reaches the apps' database.
    counters = stack.backend.counters(stack.settings) if all(a.db_measured for a in apps) else None
    before = after = None
    try:
        with Sampler(roles, counters) as sampler:
            _sleep_until(window.start)
            before = counters.read() if counters else None
            _sleep_until(window.end)
            after = counters.read() if counters else None
            for proc in locusts:
                proc.wait(timeout=max(1.0, window.end + m.warmup_s + LOCUST_GRACE_S - time.time()))
    finally:
        for proc in locusts:
            proc.stop()
        if counters is not None:
            counters.close()
    delta = {k: after[k] - before[k] for k in COUNTER_KINDS} if before and after else None
    sampler.write_csv(folders[0] / "telemetry.csv")
    if delta is not None:
        write_json(folders[0] / "counters.json", {"before": before, "after": after, "delta": delta})
    telemetry = sampler.summary(window.start, window.end)
    together = read_loadgen(*folders)  # the database's counters cover every side of the point
    return [
        _row(p, order, run_dir.name, app, folder, role, telemetry, delta, together, stack, cfg, len(sides), problem)
        for p, app, folder, role in zip(sides, apps, folders, (Role.APP, Role.PARTNER), strict=False)
    ]  # fmt: skip


def _row(
    point: Point, order: int, run_id: str, app: RunningApp, folder: Path, role: Role, telemetry: Telemetry,
    delta: dict[str, int] | None, together: LoadgenResult, stack: Stack, cfg: RunConfig, sides: int,
    problem: str | None = None,
) -> PointRow:  # fmt: skip
    lg = read_loadgen(folder)
    acked = len(lg.acked["users"]) + len(lg.acked["items"])
    missing = acked - stack.count_acked(lg.acked) if delta is not None else None
    users = cfg.loadgen.open_users if point.rate else point.users
    work = (
        check_statements(together.by_name, lg.expected_statements, delta, in_flight=users * sides)
        if delta is not None
        else None
    )
    own: RoleStats = telemetry.of(role)
    loadgen = telemetry.of(Role.LOADGEN)
    # The busiest load generator: every local Locust process summed (telemetry), or one process's own
    # reading (a remote worker's comes with its recording).
    loadgen_cpu = max((c for c in (loadgen.cpu_max, lg.loadgen_cpu_max) if c is not None), default=None)
    reasons = invalid_reasons(
        Observed(
            loadgen_files=lg.files, requests=lg.requests, failures=lg.failures, missing_writes=missing or 0,
            loadgen_cpu_max=loadgen_cpu, open_loop=bool(point.rate), late=lg.late, app_alive=app.alive(),
            work=work, loadgen_expected=cfg.loadgen.load_processes, loadgen_problem=problem,
            clock_offset_s=lg.clock_offset_max,
        )
    )  # fmt: skip
    counted = delta or {}  # empty columns: not measured
    if delta is None:
        statements_check = "not measured: the app's database is not reachable (set DATABASE_URL)"
    else:
        statements_check = work.summary if work else "not declared by the scenario"
    window = lg.window[1] - lg.window[0] if lg.window else cfg.matrix.duration_s
    latency = percentiles_ms(lg.hdr)
    db = telemetry.of(Role.DB)
    limits = app.limits
    return PointRow(
        run_id=run_id, point_id=point.point_id, app=point.app, backend=stack.backend.name, variant=limits.get("variant"),
        driver=limits.get("driver"), scenario=point.key.scenario, users=point.users, db_ms=point.db_ms,
        repeat=point.repeat, order=order, mode="open" if point.rate else "closed", recorded=point.record,
        target_rps=point.rate, warmup_s=cfg.matrix.warmup_s, duration_s=round(window, 3), requests=lg.requests,
        failures=lg.failures, rps=round(lg.requests / window, 2) if window > 0 else None,
        p50_ms=latency["p50_ms"], p90_ms=latency["p90_ms"], p95_ms=latency["p95_ms"], p99_ms=latency["p99_ms"],
        max_ms=latency["max_ms"], mean_ms=latency["mean_ms"],
        p99_uncorrected_ms=percentiles_ms(lg.hdr_uncorrected)["p99_ms"] if lg.hdr_uncorrected else None,
        late=lg.late, locust_cpu_max=loadgen_cpu, locust_cpu_mean=loadgen.cpu_mean,
        app_cpu_mean=own.cpu_mean, app_rss_max_mb=own.rss_max_mb, db_cpu_mean=db.cpu_mean,
        db_rss_max_mb=db.rss_max_mb, threads_connected_max=telemetry.connections_max,
        com_select=counted.get("select"), com_insert=counted.get("insert"), com_update=counted.get("update"),
        com_delete=counted.get("delete"), com_commit=counted.get("commit"), com_rollback=counted.get("rollback"),
        questions=counted.get("questions"), statements_expected=sum(work.expected.values()) if work else None,
        statements_check=statements_check, acked_writes=acked,
        missing_writes=missing, valid=not reasons, invalid_reasons=";".join(reasons),
        workers=limits.get("workers"), thread_tokens=limits.get("thread_tokens"), pool_size=limits.get("pool_size"),
        max_overflow=limits.get("max_overflow"), event_loop=limits.get("event_loop"),
    )  # fmt: skip
