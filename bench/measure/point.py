"""One point: Locust against a running app for warm-up + duration seconds, and what was observed.

Only requests that complete inside the measurement window count (the plugin in loadtests/recording.py does
that); telemetry and the database's statement counters are taken over the same window. A paired point
(the regression gate) loads an app and its `base:` twin at the same time, each with its own Locust.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from bench.backends.base import COUNTER_KINDS
from bench.catalog import (
    BASE_PREFIX,
    SCENARIO_BY_NAME,
    AppSpec,
    app_packages,
    pairs_among,
    scenario_name,
    serves,
    sweeps_db_ms,
)
from bench.config import RunConfig
from bench.measure import locust
from bench.measure.profile import Profile
from bench.measure.telemetry import Role, RoleStats, Sampler, Telemetry
from bench.measure.validity import Observed, invalid_reasons
from bench.measure.workcheck import check_statements
from bench.stack import RunningApp, Stack, settings_env
from bench.store.loadgen import LoadgenResult, percentiles_ms, read_loadgen
from bench.store.rows import PointKey, PointRow
from bench.store.rundir import PROFILE_SUMMARY, STATEMENTS_SUMMARY, write_json

# A paired point's two new app processes (Stack.restart_apps: the old ones stop while the new ones start),
# until both are healthy: about 1.5 s on this machine (scripts/point-gaps on run def1: 4.0 s before a paired
# point, 2.0 s before a solo one, 0.5 s of that difference the second Locust's start-up).
PAIR_RESTART_S = 1.5
AFTER_S = 0.5  # after a window: Locust quits (loadtests/options.py QUIT_AFTER_S), rows, database reset
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
    profile: bool = False  # py-spy on the app over the window (bench run --profile): never a verdict's point
    statements: bool = False  # the statement pass: one user, counters read after every request; no verdict

    @property
    def key(self) -> PointKey:
        return PointKey(self.app, scenario_name(self.scenario), self.users, self.db_ms, self.rate)

    @property
    def point_id(self) -> str:
        extra = "prof" if self.profile else "stmt" if self.statements else ""
        return self.key.point_id(self.repeat, self.record, self.partner, extra)


def plan_points(cfg: RunConfig, apps: list[AppSpec]) -> list[Point]:
    """Every point of the matrix, shuffled within each repeat so drift does not favour one app: the solo
    points of the matrix's apps, and the paired points of its pairs (the catalog's pairs among its apps,
    or the gate's explicit ones), closed loop at the headline load. An app is left out of scenarios it
    cannot serve (read-only variants and writing ones) or is not measured in (its catalog entry says)."""
    m = cfg.matrix
    by_name = {a.name: a for a in apps}
    headline = m.headline_users or sorted(m.users)[len(m.users) // 2]
    pairs = m.pairs if m.pairs is not None else tuple(pairs_among(m.apps))

    def own_users(app: AppSpec) -> tuple[int, ...] | None:
        return app.entry.users if app.entry and app.entry.users else None

    def levels(app: AppSpec, scenario: str) -> tuple[int, ...]:
        own = app.entry.db_ms if app.entry and app.entry.db_ms else None
        return (own or m.db_ms) if sweeps_db_ms(scenario) else (0,)

    sweep_repeats = m.repeats if m.sweep_repeats is None else m.sweep_repeats
    points: list[Point] = []
    for repeat in range(1, max(m.repeats, sweep_repeats, m.paired_repeats) + 1):
        block: list[Point] = []
        for app in (by_name[a] for a in m.apps):
            for scenario in (s for s in m.scenarios if serves(app, s)):
                if repeat > (sweep_repeats if sweeps_db_ms(scenario) else m.repeats):
                    continue
                if m.rates:
                    block += [
                        Point(app.name, scenario, 1, d, repeat, r)
                        for r in m.rates
                        for d in levels(app, scenario)
                    ]
                    continue
                loads = own_users(app) or (
                    m.sweep_users or (headline,) if sweeps_db_ms(scenario) else m.users
                )
                block += [
                    Point(app.name, scenario, u, d, repeat) for u in loads for d in levels(app, scenario)
                ]
        for first, second in pairs if repeat <= m.paired_repeats else ():
            a, b = by_name[first], by_name[second]
            users = (own_users(a) or (headline,))[0]
            for scenario in (s for s in m.scenarios if serves(a, s) and serves(b, s)):
                block += [
                    Point(first, scenario, users, d, repeat, partner=second) for d in levels(a, scenario)
                ]
        if m.recording_overhead:
            block += [replace(p, record=False) for p in block if p.partner is None]
        random.Random(m.shuffle_seed + repeat).shuffle(block)
        points += block
    return points


def plan_profiles(cfg: RunConfig, apps: list[AppSpec]) -> list[Point]:
    """`bench run --profile`: one profiled point per app (started by the harness) and scenario it serves, at
    the headline load (or the app's own) and the first database-time level: where the CPU is the limit."""
    m = cfg.matrix
    headline = m.headline_users or sorted(m.users)[len(m.users) // 2]
    out = []
    for app in (a for a in apps if a.name in m.apps and not a.external):
        users = app.entry.users[0] if app.entry and app.entry.users else headline
        db_ms = app.entry.db_ms[0] if app.entry and app.entry.db_ms else min(m.db_ms, default=0)
        for scenario in (s for s in m.scenarios if serves(app, s)):
            out.append(
                Point(app.name, scenario, users, db_ms if sweeps_db_ms(scenario) else 0, 1, profile=True)
            )
    return out


def plan_statements(cfg: RunConfig, apps: list[AppSpec]) -> list[Point]:
    """The statement pass: each app the harness starts, in each scenario it serves, with one user (at the
    first database-time level of a sweeping scenario)."""
    m = cfg.matrix
    return [
        Point(
            app.name,
            scenario,
            1,
            min(m.db_ms, default=0) if sweeps_db_ms(scenario) else 0,
            1,
            statements=True,
        )
        for app in apps
        if app.name in m.apps and not app.external
        for scenario in m.scenarios
        if serves(app, scenario)
    ]


def duration(point: Point, cfg: RunConfig) -> float:
    """Measured seconds of a point: paired or solo, times the scenario's factor (a profiled point: the
    profiler's whole seconds, without the factor)."""
    m = cfg.matrix
    if point.profile:
        return float(max(1, round(m.profile_duration_s)))
    if point.statements:
        return m.statements_duration_s
    entry = SCENARIO_BY_NAME.get(scenario_name(point.scenario))
    return (m.paired_duration_s if point.partner else m.duration_s) * (
        entry.duration_factor if entry else 1.0
    )


def plan_seconds(cfg: RunConfig, points: list[Point]) -> float:
    """How long the points take, about (for the estimate printed before a run)."""
    connect = 3.0 if cfg.loadgen.distributed else 0.0  # remote workers reconnect between points
    fresh = PAIR_RESTART_S if cfg.matrix.fresh_apps else 0.0  # both apps start anew for a paired point
    return sum(
        locust.STARTUP_S * (2 if p.partner else 1)
        + cfg.matrix.warmup_s
        + duration(p, cfg)
        + AFTER_S
        + connect
        + (fresh if p.partner else 0.0)
        for p in points
    )


def _sleep_until(t: float) -> None:
    delay = t - time.time()
    if delay > 0:
        time.sleep(delay)


def measure(
    stack: Stack, point: Point, cfg: RunConfig, run_dir: Path, order: int, say: Callable[[str], None] = print
) -> list[PointRow]:
    """Run one point; a row for it (and one for its partner, over the same window). `say` gets the lines
    a user must read now (a distributed point waiting for its workers)."""
    sides = [point] + ([replace(point, app=point.partner, partner=point.app)] if point.partner else [])
    apps = [stack.app(p.app) for p in sides]
    folders = [run_dir / "points" / p.point_id for p in sides]
    users = cfg.loadgen.open_users if point.rate else point.users
    m, problem = cfg.matrix, None
    seconds = duration(point, cfg)
    planned = (
        None if cfg.loadgen.distributed else locust.Window.plan(time.time(), m.warmup_s, seconds, len(sides))
    )
    locusts = [
        locust.launch(
            scenario=p.scenario,
            users=users,
            rate=p.rate,
            db_ms=p.db_ms,
            record=p.record,
            host=app.base_url,
            folder=folder,
            window=planned,
            loadgen=cfg.loadgen,
            seed=cfg.seed,
            cpus=stack.pinning.loadgen,
            warmup_s=m.warmup_s,
            duration_s=seconds,
            statements=point.statements,
            env=settings_env(stack.settings) if point.statements else None,
            partner=(i, folders[1 - i]) if cfg.loadgen.distributed and len(sides) > 1 else None,
        )
        for i, (p, app, folder) in enumerate(zip(sides, apps, folders, strict=True))
    ]
    window = planned
    if window is None:  # each master plans it once its workers are connected (a pair's two: the same one)
        for proc, folder in zip(locusts, folders, strict=True):
            got, problem = locust.await_window(proc, folder, cfg.loadgen, say, stack.pinning.loadgen)
            if got is not None and window is not None and abs(got.start - window.start) > 0.01:
                problem = (
                    "paired_windows_differ"  # not expected: both masters plan from the same two instants
                )
            window = window or got
            if problem:
                break
        if problem or window is None:
            window = locust.Window(time.time(), time.time(), time.time())
    roles = {Role.APP: apps[0].pids, Role.DB: stack.db_pids}
    roles[Role.LOADGEN] = lambda: [pid for proc in locusts for pid in proc.pids()]
    if len(apps) > 1:
        roles[Role.PARTNER] = apps[1].pids
    # Statement counters and acknowledged writes only where the harness reaches the apps' database.
    counters = stack.backend.counters(stack.settings) if all(a.db_measured for a in apps) else None
    before = after = None
    profiler: Profile | None = None
    profiled: dict[str, object] = {}
    try:
        with Sampler(roles, counters, cpus=stack.pinning.app) as sampler:
            _sleep_until(window.start)
            if point.profile and apps[0].proc is not None:
                profiler = Profile.start(
                    apps[0].proc.pid,
                    folders[0],
                    seconds,
                    stack.pinning.loadgen,
                    processes=stack.limits.workers,
                )
            before = counters.read() if counters else None
            _sleep_until(window.end)
            after = counters.read() if counters else None
            if profiler is not None:
                profiled = profiler.finish(timeout=max(5.0, window.end + 10 - time.time()))
            for proc in locusts:
                proc.wait(timeout=max(1.0, window.end + m.warmup_s + LOCUST_GRACE_S - time.time()))
    finally:
        if profiler is not None:
            profiler.stop()
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
    rows = [
        _row(
            p,
            order,
            run_dir.name,
            app,
            folder,
            role,
            telemetry,
            delta,
            together,
            stack,
            cfg,
            len(sides),
            problem,
        )
        for p, app, folder, role in zip(sides, apps, folders, (Role.APP, Role.PARTNER), strict=False)
    ]
    if point.statements:  # not a row of points.csv: the counts are in its loadgen file
        write_json(folders[0] / STATEMENTS_SUMMARY, {"point": asdict(rows[0])})
    if point.profile:  # not a row of points.csv: its own record beside the stacks
        summary = {"profiler": profiled, "point": asdict(rows[0]), "app_packages": app_packages(apps[0].spec)}
        write_json(folders[0] / PROFILE_SUMMARY, summary)
    return rows


def _row(
    point: Point,
    order: int,
    run_id: str,
    app: RunningApp,
    folder: Path,
    role: Role,
    telemetry: Telemetry,
    delta: dict[str, int] | None,
    together: LoadgenResult,
    stack: Stack,
    cfg: RunConfig,
    sides: int,
    problem: str | None = None,
) -> PointRow:
    lg = read_loadgen(folder)
    acked = len(lg.acked["users"]) + len(lg.acked["items"])
    missing = acked - stack.count_acked(lg.acked) if delta is not None else None
    users = cfg.loadgen.open_users if point.rate else point.users
    # A gate pair runs two versions of the code, whose statements may differ: the gate's statement-count
    # check compares them exactly, route by route; here the server's counters could not tell them apart.
    two_codes = BASE_PREFIX in point.app + (point.partner or "")
    work = (
        check_statements(together.by_name, lg.expected_statements, delta, in_flight=users * sides)
        if delta is not None and not two_codes
        else None
    )
    own: RoleStats = telemetry.of(role)
    loadgen = telemetry.of(Role.LOADGEN)
    # The busiest load generator: every local Locust process summed (telemetry), or one process's own
    # reading (a remote worker's comes with its recording).
    loadgen_cpu = max((c for c in (loadgen.cpu_max, lg.loadgen_cpu_max) if c is not None), default=None)
    others = telemetry.others_on_app_cpus()  # anything else on the app's CPUs (both rows of a pair: the same)
    reasons = invalid_reasons(
        Observed(
            loadgen_files=lg.files,
            requests=lg.requests,
            failures=lg.failures,
            missing_writes=missing or 0,
            loadgen_cpu_max=loadgen_cpu,
            open_loop=bool(point.rate),
            late=lg.late,
            app_alive=app.alive(),
            work=work,
            loadgen_expected=cfg.loadgen.load_processes,
            loadgen_problem=problem,
            clock_offset_s=lg.clock_offset_max,
            app_cpus_others=others,
            loadgen_error=None if lg.files else locust.failure_line(folder / "locust.log"),
        )
    )
    counted = delta or {}  # empty columns: not measured
    if delta is None:
        statements_check = "not measured: the app's database is not reachable (set DATABASE_URL)"
    elif two_codes:
        statements_check = "not judged: baseline and current code may differ (the gate counts each exactly)"
    else:
        statements_check = work.summary if work else "not declared by the scenario"
    window = lg.window[1] - lg.window[0] if lg.window else duration(point, cfg)
    latency = percentiles_ms(lg.hdr)
    db = telemetry.of(Role.DB)
    limits = app.limits
    return PointRow(
        run_id=run_id,
        point_id=point.point_id,
        app=point.app,
        partner=point.partner or "",
        backend=stack.backend.name,
        variant=limits.get("variant"),
        driver=limits.get("driver"),
        scenario=point.key.scenario,
        users=point.users,
        db_ms=point.db_ms,
        repeat=point.repeat,
        order=order,
        mode="open" if point.rate else "closed",
        recorded=point.record,
        target_rps=point.rate,
        warmup_s=cfg.matrix.warmup_s,
        duration_s=round(window, 3),
        requests=lg.requests,
        failures=lg.failures,
        rps=round(lg.requests / window, 2) if window > 0 else None,
        p50_ms=latency["p50_ms"],
        p90_ms=latency["p90_ms"],
        p95_ms=latency["p95_ms"],
        p99_ms=latency["p99_ms"],
        max_ms=latency["max_ms"],
        mean_ms=latency["mean_ms"],
        p99_uncorrected_ms=percentiles_ms(lg.hdr_uncorrected)["p99_ms"] if lg.hdr_uncorrected else None,
        late=lg.late,
        locust_cpu_max=loadgen_cpu,
        locust_cpu_mean=loadgen.cpu_mean,
        app_cpu_mean=own.cpu_mean,
        app_cpus_others=others,
        app_cpus_irq=telemetry.irq_on_app_cpus(),
        app_rss_max_mb=own.rss_max_mb,
        db_cpu_mean=db.cpu_mean,
        db_rss_max_mb=db.rss_max_mb,
        threads_connected_max=telemetry.connections_max,
        com_select=counted.get("select"),
        com_insert=counted.get("insert"),
        com_update=counted.get("update"),
        com_delete=counted.get("delete"),
        com_commit=counted.get("commit"),
        com_rollback=counted.get("rollback"),
        questions=counted.get("questions"),
        statements_expected=sum(work.expected.values()) if work else None,
        statements_check=statements_check,
        acked_writes=acked,
        missing_writes=missing,
        valid=not reasons,
        invalid_reasons=";".join(reasons),
        workers=limits.get("workers"),
        thread_tokens=limits.get("thread_tokens"),
        pool_size=limits.get("pool_size"),
        max_overflow=limits.get("max_overflow"),
        event_loop=limits.get("event_loop"),
        app_pid=app.proc.pid if app.proc is not None else None,
    )
