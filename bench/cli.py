"""The `bench` command line (typer). Commands only: the work lives in the modules below it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from bench.database import DatabaseError, ensure_database, stop_database

app = typer.Typer(
    help="Sync vs async FastAPI on a real MariaDB: run the benchmark, report it, gate regressions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="The database: a private MariaDB under .run/ (or DATABASE_URL).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@db_app.command("up")
def db_up() -> None:
    """Start (or reuse) the database, create the app and test databases, the app user and the tables."""
    try:
        info = ensure_database()
    except DatabaseError as exc:
        fail(str(exc))
    except ValidationError as exc:
        fail(f"bad database settings in the environment: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}")
    where = "private MariaDB" if info.private else "DATABASE_URL"
    pid = f", pid {info.pid}" if info.pid else ""
    console.print(f"database ready: {where} {info.version} on {info.host}:{info.port}/{info.name}{pid}")


@db_app.command("down")
def db_down() -> None:
    """Stop the private MariaDB (by the PID it wrote). Data stays in .run/mariadb/data."""
    pid = stop_database()
    console.print(f"stopped private MariaDB (pid {pid})" if pid else "private MariaDB was not running")


def _ints(text: str | None, what: str) -> list[int] | None:
    if text is None:
        return None
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        fail(f"{what} must be comma-separated integers, like 4,16,64 (got {text!r})")
    if not values or any(v < 0 for v in values):
        fail(f"{what} must list at least one non-negative integer (got {text!r})")
    return values


QUICK = {"scenarios": ["read_heavy", "slow_db", "signup"], "users": [8, 32], "repeats": 1,
         "duration_s": 4.0, "warmup_s": 1.0, "db_ms": [20], "label": "quick"}  # fmt: skip


@app.command("run")
def run_cmd(
    apps: Annotated[
        list[str] | None,
        typer.Option(
            "--app",
            "-a",
            help="App to test, repeatable: sync, async, sync-mysqlclient, async-aiomysql, or module:attr. [default: sync, async]",
        ),
    ] = None,
    scenarios: Annotated[
        list[str] | None,
        typer.Option(
            "--scenario",
            "-s",
            help="Scenario, repeatable: read_heavy, write_heavy, mixed_crud, slow_db, signup, or a locustfile path. [default: all five]",
        ),
    ] = None,
    users: Annotated[
        str | None, typer.Option(help="Concurrent users (closed loop), comma-separated. [default: 4,16,64]")
    ] = None,
    repeats: Annotated[
        int | None,
        typer.Option(min=1, max=50, help="Repeats of every point (order shuffled per repeat). [default: 3]"),
    ] = None,
    duration: Annotated[
        float | None, typer.Option(min=1, max=3600, help="Measured seconds per point. [default: 4]")
    ] = None,
    warmup: Annotated[
        float | None,
        typer.Option(min=0, max=600, help="Warm-up seconds per point, discarded. [default: 1.5]"),
    ] = None,
    db_ms: Annotated[
        str | None,
        typer.Option(
            "--db-ms", help="slow_db: database latencies in ms, comma-separated. [default: 0,5,20,50]"
        ),
    ] = None,
    sweep_users: Annotated[
        str | None,
        typer.Option(help="slow_db: user levels for the latency sweep. [default: the middle of --users]"),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(help="Open loop: target requests/s per point, comma-separated (replaces --users)."),
    ] = None,
    recording_overhead: Annotated[
        bool,
        typer.Option(
            "--recording-overhead",
            help="Also run every point without latency recording, to measure what recording costs.",
        ),
    ] = False,
    loadgen_processes: Annotated[
        int,
        typer.Option(min=1, max=256, help="Locust processes per point (>1: a master and N workers)."),
    ] = 1,
    open_users: Annotated[
        int, typer.Option(min=1, max=10_000, help="Open loop: users taking the scheduled requests.")
    ] = 64,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn workers per app.")] = 1,
    pool_size: Annotated[int, typer.Option(min=1, max=500, help="DB pool size per worker, both apps.")] = 10,
    max_overflow: Annotated[
        int, typer.Option(min=0, max=500, help="DB pool overflow per worker, both apps.")
    ] = 0,
    thread_tokens: Annotated[
        int | None, typer.Option(min=1, max=1000, help="AnyIO thread tokens. [default: pool size + overflow]")
    ] = None,
    loop: Annotated[str, typer.Option(help="Event loop: uvloop or asyncio.")] = "uvloop",
    seed_users: Annotated[
        int, typer.Option(min=10, max=10_000_000, help="Seeded users (ids 1..N).")
    ] = 10_000,
    seed_items: Annotated[int, typer.Option(min=0, max=100, help="Seeded items per user.")] = 3,
    pin: Annotated[bool, typer.Option(help="Pin the app and the load generator to separate CPUs.")] = True,
    label: Annotated[str | None, typer.Option(help="Suffix of the run folder name. [default: bench]")] = None,
    out: Annotated[Path | None, typer.Option(help="Results root folder. [default: results/]")] = None,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick", help="Small matrix (~2 min): read_heavy, slow_db@20ms, signup; 8,32 users; 1 repeat."
        ),
    ] = False,
    report: Annotated[bool, typer.Option(help="Build report.html at the end.")] = True,
) -> None:
    """Run the benchmark matrix and write results/<run-id>/ (Ctrl-C keeps the finished points)."""
    from bench.apps import resolve_app
    from bench.runner import (
        RunConfig,
        Runner,
        locustfile,
        plan_points,
        point_seconds,
        signals_as_interrupts,
    )

    if loop not in ("uvloop", "asyncio"):
        fail(f"--loop must be uvloop or asyncio (got {loop!r})")
    preset = QUICK if quick else {}
    cfg = RunConfig()
    chosen = {
        "apps": apps, "scenarios": scenarios, "users": _ints(users, "--users"), "repeats": repeats,
        "duration_s": duration, "warmup_s": warmup, "db_ms": _ints(db_ms, "--db-ms"),
        "sweep_users": _ints(sweep_users, "--sweep-users"), "label": label,
    }  # fmt: skip
    for key, value in chosen.items():
        if value is not None:
            setattr(cfg, key, value)
        elif key in preset:
            setattr(cfg, key, preset[key])
    if rate is not None:
        cfg.rates = [float(r) for r in (_ints(rate, "--rate") or [])]
        if 0 in cfg.rates:
            fail("--rate values must be positive requests/s")
    cfg.open_users, cfg.recording_overhead = open_users, recording_overhead
    cfg.loadgen_processes = loadgen_processes
    cfg.workers, cfg.pool_size, cfg.max_overflow, cfg.thread_tokens = (
        workers,
        pool_size,
        max_overflow,
        thread_tokens,
    )
    cfg.event_loop, cfg.seed_users, cfg.seed_items, cfg.pin, cfg.report = (
        loop,
        seed_users,
        seed_items,
        pin,
        report,
    )
    if out is not None:
        cfg.out_root = out
    if any(u == 0 for u in cfg.users):
        fail("--users values must be at least 1")
    try:
        for name in cfg.apps:
            resolve_app(name)
        for scenario in cfg.scenarios:
            locustfile(scenario)
    except ValueError as exc:
        fail(str(exc))
    n = len(plan_points(cfg))
    console.print(
        f"{n} points x ~{point_seconds(cfg):.0f}s = ~{n * point_seconds(cfg) / 60:.1f} min "
        f"(apps: {', '.join(cfg.apps)}; scenarios: {', '.join(cfg.scenarios)})"
    )
    runner = Runner(cfg)
    try:
        with signals_as_interrupts():
            run_dir = runner.run()
    except KeyboardInterrupt:
        where = runner.run_dir or "nothing written"
        console.print(f"[yellow]interrupted[/]: every process stopped; finished points kept in {where}")
        if runner.run_dir is not None:
            console.print(f"report of the finished points: .venv/bin/python -m bench report {where}")
        raise typer.Exit(130) from None
    except (DatabaseError, RuntimeError) as exc:
        fail(str(exc))
    if cfg.report:
        from bench.report import build_report

        with console.status("building the report"):
            html, _md = build_report(run_dir)
        console.print(f"report: {html}")
    console.print(f"[green]done[/]: results in {run_dir}")
    print(run_dir)


@app.command("ui")
def ui_cmd(
    app_name: Annotated[
        str, typer.Option("--app", "-a", help="App to load: sync, async, or another app name.")
    ] = "sync",
    port: Annotated[int, typer.Option(min=1024, max=65535, help="Locust web UI port on 127.0.0.1.")] = 8089,
    seed_users: Annotated[int, typer.Option(min=10, help="Seeded users (ids 1..N).")] = 10_000,
) -> None:
    """Seed the database, start one app, and open Locust's web UI with every scenario selectable."""
    from bench import processes
    from bench.apps import resolve_app
    from bench.runner import RunConfig, Runner, signals_as_interrupts
    from shared.config import REPO_ROOT

    try:
        resolve_app(app_name)
    except ValueError as exc:
        fail(str(exc))
    runner = Runner(RunConfig(apps=[app_name], seed_users=seed_users, pin=False))
    runner.run_dir = REPO_ROOT / ".run" / "ui"
    runner.run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with signals_as_interrupts():
            runner.setup()
            target = runner.apps[resolve_app(app_name).name]
            argv = [
                *processes.python_tool("locust"), "-f", str(REPO_ROOT / "loadtests" / "locustfile.py"),
                "--class-picker", "--web-host", "127.0.0.1", "--web-port", str(port), "-H", target.base_url,
            ]  # fmt: skip
            env = {"BENCH_SEED_USERS": str(seed_users), "BENCH_DB_MS": "20"}
            locust = processes.spawn("locust ui", argv, env=env)
            console.print(
                f"{app_name} app on {target.base_url} (limits: {target.limits})\n"
                f"Locust web UI: [bold]http://127.0.0.1:{port}[/]  (Ctrl-C stops everything)"
            )
            locust.popen.wait()
    except KeyboardInterrupt:
        console.print("stopping...")
    except (DatabaseError, RuntimeError) as exc:
        fail(str(exc))
    finally:
        processes.stop_all()


@app.command("report")
def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run folder, for example results/20261125-110245-bench.")],
) -> None:
    """(Re)build charts/, report.html and report.md of a run folder from its points.csv and raw files."""
    from bench.report import report_command

    report_command(run_dir)


@app.command("compare")
def compare_cmd(
    baseline: Annotated[
        Path,
        typer.Argument(
            help="Baseline run folder, or a perf-check run alone (its base: apps are the baseline)."
        ),
    ],
    current: Annotated[
        Path | None, typer.Argument(help="Current run folder (omit for a perf-check run).")
    ] = None,
    chart: Annotated[
        Path | None, typer.Option(help="Where to draw baseline vs current when something regressed (PNG).")
    ] = None,
    remeasure: Annotated[
        Path | None,
        typer.Option(help="A second current run: fail only if it confirms the first one's regression."),
    ] = None,
    min_effect: Annotated[
        float, typer.Option(min=0.01, max=0.9, help="Smallest throughput drop that counts (0.10 = 10%).")
    ] = 0.10,
) -> None:
    """Compare two runs point by point (or the two sides of one perf-check run); exit 1 on a significant
    throughput regression, 0 otherwise."""
    from bench.compare import compare_command

    raise typer.Exit(compare_command(baseline, current, chart, remeasure=remeasure, min_effect=min_effect))


PerfApps = Annotated[
    list[str] | None,
    typer.Option("--app", "-a", help="Apps of the suite, as in `bench run`. [default: sync, async]"),
]
BASELINE_DIR = Path("results/baseline")


@app.command("perf-check")
def perf_check_cmd(
    apps: PerfApps = None,
    baseline: Annotated[
        Path, typer.Option(help="The committed baseline (its commit is the baseline code).")
    ] = (BASELINE_DIR),
    base_ref: Annotated[
        str | None,
        typer.Option(help="Measure this commit as the baseline code instead (e.g. the merge base)."),
    ] = None,
    min_effect: Annotated[float, typer.Option(min=0.01, max=0.9, help="Smallest drop that counts.")] = 0.10,
    repeats: Annotated[
        int | None,
        typer.Option(min=1, max=50, help="Repeats per app (fewer: quicker, catches only bigger drops)."),
    ] = None,
) -> None:
    """Run the short fixed suite (~2 min): each current app at the same time as the same app from the
    baseline commit, sharing its CPU. On a regression, run it once more and fail (exit 1) only if the
    re-measure confirms it."""
    from bench import perfgate
    from bench.compare import CompareError

    if base_ref is None and not (baseline / "meta.json").exists():
        fail(f"no baseline at {baseline}: create one with `make perf-baseline`")
    try:
        result = perfgate.check(
            baseline, apps or perfgate.DEFAULT_APPS, console, min_effect, base_ref=base_ref
        )
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: every process stopped")
        raise typer.Exit(130) from None
    except (CompareError, DatabaseError, RuntimeError, ValueError) as exc:  # PerfGateError is a RuntimeError
        fail(str(exc))
    verdict = "[red]FAILED: regression confirmed by the re-measure" if result.failed else "[green]passed"
    console.print(f"perf-check {verdict}[/] (run: {result.first_run})")
    raise typer.Exit(1 if result.failed else 0)


@app.command("perf-baseline")
def perf_baseline_cmd(
    apps: PerfApps = None,
    baseline: Annotated[Path, typer.Option(help="Where to write the baseline.")] = BASELINE_DIR,
) -> None:
    """Run the perf suite and make it the baseline (only the files the gate reads); commit it afterwards."""
    from bench import perfgate

    try:
        run = perfgate.write_baseline(apps or perfgate.DEFAULT_APPS, baseline)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: every process stopped; baseline unchanged")
        raise typer.Exit(130) from None
    except (DatabaseError, RuntimeError) as exc:  # PerfGateError (uncommitted code) is a RuntimeError
        fail(str(exc))
    console.print(f"baseline written to {baseline} (from {run}); commit it")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
