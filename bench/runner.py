"""The matrix loop: database, seed, apps, then every point (Locust headless) in a shuffled order.

One point = one Locust process against one running app for warm-up + duration seconds. Only requests
that complete inside the measurement window count (the plugin in loadtests/common.py does that);
telemetry and the database's counters are taken over the same window.
"""

from __future__ import annotations

import math
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench import calibrate, database, processes
from bench.apps import BASE_PREFIX, AppSpec, resolve_app
from bench.processes import ManagedProcess, Pinning
from bench.results import (
    RESULTS_ROOT,
    append_point,
    environment,
    new_run_dir,
    now_iso,
    percentiles_ms,
    read_loadgen,
    write_json,
)
from bench.telemetry import CounterDelta, DbCounters, Sampler
from bench.workcheck import check_statements
from shared.config import REPO_ROOT, Settings

SCENARIOS = ("read_heavy", "write_heavy", "mixed_crud", "slow_db", "signup")
LOCUST_STARTUP_S = 1.0  # from launch to all users running, on this machine (imports + spawn)
LOADGEN_CPU_LIMIT = 90.0
console = Console(stderr=True)


@dataclass
class RunConfig:
    apps: list[str] = field(default_factory=lambda: ["sync", "async"])
    scenarios: list[str] = field(default_factory=lambda: list(SCENARIOS))
    users: list[int] = field(default_factory=lambda: [4, 16, 64])
    repeats: int = 3
    duration_s: float = 4.0
    warmup_s: float = 1.5
    db_ms: list[int] = field(default_factory=lambda: [0, 5, 20, 50])
    sweep_users: list[int] | None = None  # slow_db's user levels; default: the middle of `users`
    rates: list[float] = field(default_factory=list)  # open-loop target req/s; empty = closed loop
    recording_overhead: bool = False  # also run every point without latency recording
    calibration_samples: int = 10  # 0: skip the machine calibration
    loadgen_processes: int = 1  # >1: Locust --processes N (one master, N workers) for bigger machines
    open_users: int = 64  # open loop: users that take the scheduled requests (more than ever in flight)
    workers: int = 1
    pool_size: int = 10
    max_overflow: int = 0
    thread_tokens: int | None = None
    event_loop: str = "uvloop"
    seed_users: int = 10_000
    seed_items: int = 3
    pin: bool = True
    shuffle_seed: int = 20261124
    label: str = "bench"
    base_root: Path | None = None  # source tree of the `base:` apps (the regression gate's baseline code)
    base_sha: str | None = None  # the commit it holds
    paired: bool = False  # run each app at the same time as its `base:` app, sharing the app's CPUs
    out_root: Path = RESULTS_ROOT
    report: bool = True
    argv: list[str] = field(default_factory=lambda: list(sys.argv))


@dataclass(frozen=True)
class Point:
    app: str
    scenario: str
    users: int
    db_ms: int
    repeat: int
    rate: float | None = None
    record: bool = True  # False: the load generator only counts requests (to measure recording's cost)
    partner: str | None = None  # an app loaded at the same time, with its own Locust (the gate's baseline)

    @property
    def point_id(self) -> str:
        scen = Path(self.scenario).stem if self.scenario.endswith(".py") else self.scenario
        load = f"rate{self.rate:g}" if self.rate else f"u{self.users}"
        norec = "" if self.record else "__norec"
        return f"{self.app.replace(':', '.')}__{scen}__{load}__d{self.db_ms}__r{self.repeat}{norec}"


def locustfile(scenario: str) -> Path:
    path = Path(scenario) if scenario.endswith(".py") else REPO_ROOT / "loadtests" / f"{scenario}.py"
    if not path.exists():
        raise ValueError(
            f"unknown scenario {scenario!r}: use one of {', '.join(SCENARIOS)} or a locustfile path"
        )
    return path.resolve()


def plan_points(cfg: RunConfig) -> list[Point]:
    """Every point of the matrix; shuffled within each repeat so drift does not favour one app."""
    sweep = cfg.sweep_users or [sorted(cfg.users)[len(cfg.users) // 2]]
    points: list[Point] = []
    for repeat in range(1, cfg.repeats + 1):
        block: list[Point] = []
        names = [resolve_app(a, cfg.base_root).name for a in cfg.apps]
        for app in names:
            partner = BASE_PREFIX + app if cfg.paired and BASE_PREFIX + app in names else None
            if cfg.paired and partner is None:
                continue  # a `base:` app: measured as the partner of its current app
            for scenario in cfg.scenarios:
                db_levels = cfg.db_ms if scenario == "slow_db" else [0]
                if cfg.rates:
                    block += [
                        Point(app, scenario, 1, d, repeat, r, partner=partner)
                        for r in cfg.rates
                        for d in db_levels
                    ]
                else:
                    levels = sweep if scenario == "slow_db" else cfg.users
                    block += [
                        Point(app, scenario, u, d, repeat, partner=partner) for u in levels for d in db_levels
                    ]
        if cfg.recording_overhead:
            block += [replace(p, record=False) for p in block]
        random.Random(cfg.shuffle_seed + repeat).shuffle(block)
        points += block
    return points


def point_seconds(cfg: RunConfig) -> float:
    return LOCUST_STARTUP_S + cfg.warmup_s + cfg.duration_s + 1.0


@dataclass
class RunningApp:
    spec: AppSpec
    port: int
    proc: ManagedProcess
    limits: dict[str, Any]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class Runner:
    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        self.settings = Settings()
        self.pinning = Pinning.plan(cfg.pin)
        self.specs = {s.name: s for s in (resolve_app(a, cfg.base_root) for a in cfg.apps)}  # label -> app
        self.apps: dict[str, RunningApp] = {}
        self.db_info: database.DatabaseInfo | None = None
        self.run_dir: Path | None = None
        self.meta: dict[str, Any] = {}

    # --- set-up ------------------------------------------------------------------------------------

    def app_env(self, spec: AppSpec) -> dict[str, str]:
        env = {
            **self.db_env(),
            "POOL_SIZE": str(self.cfg.pool_size),
            "MAX_OVERFLOW": str(self.cfg.max_overflow),
            "WEB_CONCURRENCY": str(self.cfg.workers),
            "EVENT_LOOP": self.cfg.event_loop,
            **spec.env,
        }
        if self.cfg.thread_tokens is not None:
            env["THREAD_TOKENS"] = str(self.cfg.thread_tokens)
        if spec.root is not None:
            env["PYTHONPATH"] = str(spec.root)
        return env

    def db_env(self) -> dict[str, str]:
        """The database settings, explicit: an app started from another source tree has no .run/db.env."""
        s = self.settings
        if s.database_url is not None:
            return {"DATABASE_URL": s.database_url.get_secret_value()}
        return {
            "DB_HOST": s.db_host, "DB_PORT": str(s.db_port), "DB_USER": s.db_user,
            "DB_PASSWORD": s.db_password.get_secret_value(), "DB_NAME": s.db_name,
        }  # fmt: skip

    def start_app(self, name: str) -> RunningApp:
        spec = self.specs[name]
        port = processes.free_port()
        assert self.run_dir is not None
        argv = [
            *processes.python_tool("uvicorn"), spec.target, "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(self.cfg.workers), "--loop", self.cfg.event_loop, "--no-access-log",
            "--log-level", "warning",
        ]  # fmt: skip
        log = self.run_dir / "logs" / f"app-{spec.name.replace(':', '.')}.log"
        log.parent.mkdir(exist_ok=True)
        proc = processes.spawn(
            f"app {spec.name}", argv, env=self.app_env(spec), cpus=self.pinning.app, log_path=log,
            cwd=spec.root or REPO_ROOT,
        )  # fmt: skip
        processes.wait_healthy(f"http://127.0.0.1:{port}", proc)
        limits = httpx.get(f"http://127.0.0.1:{port}/limits", timeout=5).json()
        return RunningApp(spec, port, proc, limits)

    def ensure_app(self, name: str) -> RunningApp:
        """The app, restarted if it died or stopped answering (a deadlocked variant, say)."""
        app = self.apps.get(name)
        if app is not None and app.proc.alive():
            try:
                if httpx.get(f"{app.base_url}/healthz", timeout=3).status_code == 200:
                    return app
            except httpx.HTTPError:
                pass
        if app is not None:
            app.proc.stop()
        self.apps[name] = self.start_app(name)
        return self.apps[name]

    def setup(self) -> None:
        self.db_info = database.ensure_database(self.settings)
        self.settings = Settings()  # .run/db.env may be new
        if self.db_info.private and self.db_info.pid:
            processes.pin(self.db_info.pid, self.pinning.db)
        database.seed(self.settings, self.cfg.seed_users, self.cfg.seed_items)
        for name in self.specs:
            self.apps[name] = self.start_app(name)

    def calibrate(self) -> dict[str, Any]:
        """The machine's speed on the app's CPUs, for the regression gate's normalisation."""
        if self.cfg.calibration_samples <= 0:
            return {}
        try:
            return calibrate.measure(list(self.pinning.app) or None, samples=self.cfg.calibration_samples)
        except calibrate.CalibrationError as exc:
            self.meta.setdefault("warnings", []).append(f"calibration failed: {exc}")
            return {}

    # --- one point ---------------------------------------------------------------------------------

    def run_point(self, point: Point, order: int) -> list[dict[str, Any]]:
        """One point: a row; a paired point: a row for the app and one for its partner (same window)."""
        assert self.run_dir is not None and self.db_info is not None
        cfg = self.cfg
        sides = [(point, self.ensure_app(point.app))]
        if point.partner:
            sides.append((replace(point, app=point.partner, partner=None), self.ensure_app(point.partner)))
        launch = time.time()
        start = launch + LOCUST_STARTUP_S + cfg.warmup_s
        end = start + cfg.duration_s
        dirs = [self.run_dir / "points" / p.point_id for p, _ in sides]
        locusts = [
            self.launch_locust(p, app, d, launch, start, end) for (p, app), d in zip(sides, dirs, strict=True)
        ]
        db_pid = self.db_info.pid
        counters = DbCounters(self.settings)
        roles: dict[str, Callable[[], list[int]]] = {
            f"app{i or ''}": app.proc.pids for i, (_, app) in enumerate(sides)
        }
        roles["db"] = lambda: [db_pid] if db_pid else []
        roles["locust"] = lambda: [pid for locust in locusts for pid in locust.pids()]
        sampler = Sampler(roles, db=counters)
        sampler.start()
        try:
            _sleep_until(start)
            before = counters.read()
            own_before = counters.own_queries
            _sleep_until(end)
            after = counters.read()
            delta = CounterDelta(before, after, counters.own_queries - own_before)
            for locust in locusts:
                try:
                    locust.popen.wait(timeout=max(1.0, end + cfg.warmup_s + 30 - time.time()))
                except Exception:
                    locust.stop()
        finally:
            sampler.stop()
            for locust in locusts:
                locust.stop()
            counters.close()
        sampler.write_csv(dirs[0] / "telemetry.csv")
        write_json(dirs[0] / "counters.json", {"before": before, "after": after, "delta": delta.delta})
        tele = sampler.summary(start, end)
        rows = []
        for i, ((p, app), pdir) in enumerate(zip(sides, dirs, strict=True)):
            own = (
                {k.replace(f"app{i}_", "app_"): v for k, v in tele.items() if k.startswith(f"app{i}_")}
                if i
                else {}
            )
            side_tele = {**{k: v for k, v in tele.items() if not k.startswith("app1_")}, **own}
            rows.append(self.point_row(p, order, pdir, app, side_tele, delta, start, end, others=dirs))
        return rows

    def launch_locust(
        self, point: Point, app: RunningApp, pdir: Path, launch: float, start: float, end: float
    ) -> ManagedProcess:
        cfg = self.cfg
        pdir.mkdir(parents=True, exist_ok=True)
        env = {
            "BENCH_OUT_DIR": str(pdir),
            "BENCH_WINDOW_START": f"{start:.3f}",
            "BENCH_WINDOW_END": f"{end:.3f}",
            "BENCH_SEED_USERS": str(cfg.seed_users),
            "BENCH_SEED_ITEMS": str(cfg.seed_items),
            "BENCH_DB_MS": str(point.db_ms),
            "BENCH_MODE": "open" if point.rate else "closed",
            "BENCH_RATE": f"{(point.rate or 0) / cfg.loadgen_processes:g}",  # per Locust process
            "BENCH_RECORD": "1" if point.record else "0",
        }
        users = cfg.open_users if point.rate else point.users
        argv = [
            *processes.python_tool("locust"), "-f", str(locustfile(point.scenario)), "--headless",
            "-u", str(users), "-r", str(users), "-t", f"{math.ceil(end - launch + 0.5)}s",
            "-H", app.base_url, "--csv", str(pdir / "locust"), "--csv-full-history", "--only-summary",
            "--stop-timeout", "2", "--loglevel", "WARNING", "--exit-code-on-error", "0",
        ]  # fmt: skip
        if cfg.loadgen_processes > 1:
            argv += ["--processes", str(cfg.loadgen_processes)]
        return processes.spawn(
            "locust", argv, env=env, cpus=self.pinning.loadgen, log_path=pdir / "locust.log"
        )

    def point_row(
        self,
        point: Point,
        order: int,
        pdir: Path,
        app: RunningApp,
        tele: dict[str, Any],
        delta: CounterDelta,
        start: float,
        end: float,
        others: list[Path] | None = None,
    ) -> dict[str, Any]:
        """`others`: every point folder loaded in the same window (a pair): the database's counters
        cover all of them, so the work check adds up their requests."""
        cfg = self.cfg
        lg = read_loadgen(pdir)
        together = read_loadgen(*others) if others else lg
        acked = len(lg.acked["users"]) + len(lg.acked["items"])
        present = database.count_existing(
            self.settings, "users", lg.acked["users"]
        ) + database.count_existing(self.settings, "items", lg.acked["items"])
        reasons: list[str] = []
        if lg.files == 0:
            reasons.append("no_loadgen_output")
        elif lg.requests == 0:
            reasons.append("no_requests")
        if lg.failures:
            reasons.append(f"failures({lg.failures})")
        if acked - present:
            reasons.append(f"missing_writes({acked - present})")
        if (tele.get("locust_cpu_max") or 0) > LOADGEN_CPU_LIMIT:
            reasons.append(f"loadgen_cpu>{LOADGEN_CPU_LIMIT:.0f}%")
        if point.rate and lg.late > 0.01 * max(lg.requests, 1):
            reasons.append(f"late_sends({lg.late})")
        if not app.proc.alive():
            reasons.append("app_crashed")
        users = cfg.open_users if point.rate else point.users
        sides = len(others) if others else 1
        work = check_statements(
            together.by_name, lg.expected_statements, delta.delta, in_flight=users * sides
        )
        if work is not None and not work.ok and not lg.failures:
            reasons.append(f"db_counters({', '.join(work.problems)})")
        uncorrected = percentiles_ms(lg.hdr_uncorrected)["p99_ms"] if lg.hdr_uncorrected else None
        window = lg.window[1] - lg.window[0] if lg.window else cfg.duration_s
        return {
            "run_id": self.run_dir.name if self.run_dir else "",
            "point_id": point.point_id,
            "app": point.app,
            "variant": app.limits.get("variant"),
            "driver": app.limits.get("driver"),
            "scenario": Path(point.scenario).stem if point.scenario.endswith(".py") else point.scenario,
            "users": point.users,
            "db_ms": point.db_ms,
            "repeat": point.repeat,
            "order": order,
            "mode": "open" if point.rate else "closed",
            "recorded": point.record,
            "target_rps": point.rate,
            "warmup_s": cfg.warmup_s,
            "duration_s": round(window, 3),
            "requests": lg.requests,
            "failures": lg.failures,
            "rps": round(lg.requests / window, 2) if window > 0 else None,
            **percentiles_ms(lg.hdr),
            "p99_uncorrected_ms": uncorrected,
            "late": lg.late,
            **tele,
            "com_select": delta.delta.get("Com_select"),
            "com_insert": delta.delta.get("Com_insert"),
            "com_update": delta.delta.get("Com_update"),
            "com_delete": delta.delta.get("Com_delete"),
            "com_commit": delta.delta.get("Com_commit"),
            "com_rollback": delta.delta.get("Com_rollback"),
            "questions": delta.delta.get("Questions"),
            "statements_expected": sum(work.expected.values()) if work else None,
            "statements_check": work.summary if work else "not declared by the scenario",
            "acked_writes": acked,
            "missing_writes": acked - present,
            "valid": not reasons,
            "invalid_reasons": ";".join(reasons),
            **{
                k: app.limits.get(k)
                for k in ("workers", "thread_tokens", "pool_size", "max_overflow", "event_loop")
            },
        }

    # --- the whole run -----------------------------------------------------------------------------

    def run(self, on_point: Callable[[Point, dict[str, Any]], None] | None = None) -> Path:
        cfg = self.cfg
        points = plan_points(cfg)
        self.run_dir = new_run_dir(cfg.label, cfg.out_root)
        self.meta = {
            "run_id": self.run_dir.name,
            "command": " ".join(["bench", *cfg.argv[1:]]) if cfg.argv else "",
            "argv": cfg.argv,
            "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
            **environment(),
            "pinning": self.pinning.as_dict(),
            "started_at": now_iso(),
            "finished_at": None,
            "complete": False,
            "points_planned": len(points),
            "points_done": 0,
        }
        write_json(self.run_dir / "meta.json", self.meta)
        interrupted = False
        calibration: dict[str, Any] = {}
        try:
            with _status("calibrating the machine (a fixed CPU loop on the app's CPUs)"):
                calibration["before"] = self.calibrate()
            with _status("starting the database, seeding, starting the apps"):
                self.setup()
            assert self.db_info is not None
            self.meta.update(
                database={
                    "private": self.db_info.private, "version": self.db_info.version,
                    "max_connections": self.db_info.max_connections, "host": self.db_info.host,
                    "port": self.db_info.port, "pid": self.db_info.pid,
                },
                limits={name: app.limits for name, app in self.apps.items()},
            )  # fmt: skip
            write_json(self.run_dir / "meta.json", self.meta)
            self.run_points(points, on_point)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            processes.stop_all()
            if self.db_info is not None and self.db_info.private and self.db_info.pid:
                processes.pin(self.db_info.pid, sorted(os.sched_getaffinity(0)))
            if self.db_info is not None and self.db_info.started:
                database.stop_database()
            if not interrupted and calibration.get("before"):
                calibration["after"] = self.calibrate()
            if calibration.get("before"):  # none measured (the gate's paired runs): no file
                write_json(self.run_dir / calibrate.CALIBRATION_FILE, calibration)
            self.meta["finished_at"] = now_iso()
            self.meta["complete"] = not interrupted and self.meta["points_done"] == len(points)
            write_json(self.run_dir / "meta.json", self.meta)
        if interrupted:
            raise KeyboardInterrupt
        return self.run_dir

    def run_points(
        self, points: list[Point], on_point: Callable[[Point, dict[str, Any]], None] | None
    ) -> None:
        assert self.run_dir is not None
        columns = [
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("elapsed"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        ]  # fmt: skip
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task("points", total=len(points))
            for order, point in enumerate(points, 1):
                progress.update(task, description=point.point_id + (" + partner" if point.partner else ""))
                rows = self.run_point(point, order)
                for row in rows:
                    append_point(self.run_dir, row)
                    if not row["valid"] and not row["requests"]:
                        # A stalled app (a deadlocked variant) holds connections and open transactions:
                        # stop it now; ensure_app starts a fresh one for its next point.
                        self.apps[row["app"]].proc.stop()
                database.reset_to_seed(self.settings, self.cfg.seed_users, self.cfg.seed_items)
                self.meta["points_done"] = order
                write_json(self.run_dir / "meta.json", self.meta)
                for row in rows:
                    if not row["valid"]:
                        progress.console.print(
                            f"[yellow]invalid[/] {row['point_id']}: {row['invalid_reasons']}"
                        )
                    if on_point is not None:
                        on_point(point, row)
                progress.advance(task)


def _sleep_until(t: float) -> None:
    delay = t - time.time()
    if delay > 0:
        time.sleep(delay)


@contextmanager
def _status(message: str) -> Iterator[None]:
    with console.status(message):
        yield


@contextmanager
def signals_as_interrupts() -> Iterator[None]:
    """SIGTERM (and SIGHUP) behave like Ctrl-C: the run stops cleanly and keeps its finished points."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def run(cfg: RunConfig) -> Path:
    with signals_as_interrupts():
        return Runner(cfg).run()
