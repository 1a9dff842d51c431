"""`bench run` (the matrix) and `bench ui` (Locust's web UI against one app)."""

from __future__ import annotations

import socket
import traceback
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bench.backends import BACKENDS, DatabaseError, backend_names, default_backend
from bench.catalog import app_names, default_apps, locustfile, resolve_app, scenario_names
from bench.cli.common import AppDir, EnvFile, HealthPath, app_source, console, fail, ints, named
from bench.config import QUICK, AppLimits, Loadgen, Matrix, Output, RunConfig, SeedData
from bench.measure.locust import loopback
from bench.store.rundir import REPORT_ERROR_LOG

if TYPE_CHECKING:
    from bench.catalog import AppSpec
    from bench.measure.matrix import MatrixRun


def _listed(values: tuple[int, ...]) -> str:
    return ",".join(map(str, values))


QUICK_WHAT = (
    f"{', '.join(QUICK.scenarios)}, sync and async paired at {QUICK.headline_users} users, "
    f"{QUICK.paired_repeats} repeats of {QUICK.paired_duration_s:g} s (and each alone at "
    f"{_listed(QUICK.users)} users, {QUICK.repeats} repeat)"
)


def register(app: typer.Typer) -> None:
    app.command("run")(run_cmd)
    app.command("ui")(ui_cmd)


def run_cmd(
    apps: Annotated[
        list[str] | None,
        named(
            "app",
            f"App to test, repeatable: {app_names()}, or module:attr / label=module:attr, or "
            "NAME=http://host:port for an app already running elsewhere (not started; its CPU and memory not "
            "measured; database counters only with DATABASE_URL). \\[default: each --backend's default "
            "pair(s)]",
        ),
    ] = None,
    backends: Annotated[
        list[str] | None,
        named(
            "backend",
            f"Database to run on, repeatable ({backend_names()}): several run in one run, their points "
            "shuffled together. \\[default: the apps' own, else DATABASE_URL's, else mariadb]",
        ),
    ] = None,
    scenarios: Annotated[
        list[str] | None,
        named(
            "scenario",
            f"Scenario, repeatable: {scenario_names()}, or a locustfile path. \\[default: all]",
        ),
    ] = None,
    users: Annotated[
        str | None,
        typer.Option(
            help="Concurrent users of the solo points (closed loop), comma-separated. \\[default: "
            f"{_listed(Matrix.users)}]"
        ),
    ] = None,
    repeats: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=50,
            help="Repeats of every solo point: each app alone at every --users level (latency, saturation). "
            f"\\[default: {Matrix.repeats}]",
        ),
    ] = None,
    sweep_repeats: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=50,
            help="Repeats of the solo points of the latency sweep (their verdict where the CPU was not the "
            f"limit). \\[default: {Matrix.sweep_repeats}]",
        ),
    ] = None,
    paired_repeats: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=50,
            help="Repeats of every paired point: each sync/async pair (and ceiling) at the headline load "
            "over the same seconds, sharing the app CPU (the verdicts). \\[default: "
            f"{Matrix.paired_repeats}]",
        ),
    ] = None,
    headline_users: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=10_000,
            help=f"Users of each side of a paired point. \\[default: {Matrix.headline_users}, or the middle "
            "of --users when given]",
        ),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            min=1, max=3600, help=f"Measured seconds of a solo point. \\[default: {Matrix.duration_s:g}]"
        ),
    ] = None,
    paired_duration: Annotated[
        float | None,
        typer.Option(
            min=1,
            max=3600,
            help="Measured seconds of a paired point (signup and mixed_crud: twice). \\[default: "
            f"{Matrix.paired_duration_s:g}]",
        ),
    ] = None,
    warmup: Annotated[
        float | None,
        typer.Option(
            min=0, max=600, help=f"Warm-up seconds per point, discarded. \\[default: {Matrix.warmup_s:g}]"
        ),
    ] = None,
    db_ms: Annotated[
        str | None,
        typer.Option(
            "--db-ms",
            help=f"slow_db: database latencies in ms, comma-separated. \\[default: {_listed(Matrix.db_ms)}]",
        ),
    ] = None,
    sweep_users: Annotated[
        str | None,
        typer.Option(
            help="slow_db: user levels for the latency sweep. \\[default: the paired load, --headline-users]"
        ),
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
    machine_summary: Annotated[
        bool,
        typer.Option(
            "--machine-summary",
            help="Also write the run's verdicts, layers and machine to machines/<run-id>.json, for `bench "
            "machines` (make bench does; commit it when the CPU model is new to the team).",
        ),
    ] = False,
    statements: Annotated[
        bool | None,
        typer.Option(
            "--statements/--no-statements",
            help="First replay each scenario with one user per app, reading the database's statement "
            "counters after every request: statements per route, and the report says where the two sides of "
            "a comparison do different work. \\[default: when an app or a locustfile is not from the "
            "catalog, whose work is not declared]",
        ),
    ] = None,
    profile: Annotated[
        bool,
        typer.Option(
            "--profile",
            help=f"Also profile each app in each scenario (py-spy, {Matrix.profile_duration_s:g} s at the "
            "headline load, after the other points, never in a verdict): CPU per request by layer in "
            "layers.csv and the report, flame graphs in flamegraphs/.",
        ),
    ] = False,
    fresh_apps: Annotated[
        bool | None,
        typer.Option(
            "--fresh-apps/--same-apps",
            help="Start both apps anew for every paired point, so each repeat measures new processes and a "
            "process's own speed counts in the interval (about 1.5 s per paired point for the two), or keep "
            "one process per app for the whole run. \\[default: --fresh-apps]",
        ),
    ] = None,
    loadgen_processes: Annotated[
        int, typer.Option(min=1, max=256, help="Locust processes per point (>1: a master and N workers).")
    ] = Loadgen.processes,
    open_users: Annotated[
        int, typer.Option(min=1, max=10_000, help="Open loop: users taking the scheduled requests.")
    ] = Loadgen.open_users,
    loadgen_workers: Annotated[
        int,
        typer.Option(
            min=0,
            max=1024,
            help="Locust's distributed mode: run only the master here and load with N `bench worker`s on any "
            "hosts (each sends its recording to the master; no shared disk). A paired point runs two "
            "masters, on --master-port and the next port, each with all N workers (every `bench worker` "
            "serves both). Needs --master-bind.",
        ),
    ] = Loadgen.loadgen_workers,
    master_bind: Annotated[
        str | None,
        typer.Option(
            help="With --loadgen-workers: the address of this host the master listens on, reachable from "
            "every worker host ('*': all addresses)."
        ),
    ] = None,
    master_port: Annotated[
        int,
        typer.Option(
            min=1,
            max=65535,
            help="With --loadgen-workers: the master's port (paired points: also the next one, for the "
            "second side).",
        ),
    ] = Loadgen.master_port,
    worker_wait: Annotated[
        float,
        typer.Option(
            min=1,
            max=3600,
            help="With --loadgen-workers: seconds each point waits for its workers to connect. A point gives "
            "up after at most this + 15 s (invalid: loadgen_workers(k/N connected)) and the run goes on; a "
            "worker that dies mid-point makes it invalid 10 s after its window.",
        ),
    ] = Loadgen.worker_wait_s,
    app_host: Annotated[
        str,
        typer.Option(
            help="Address the apps the harness starts listen on and are loaded at: this host's address when "
            "workers run on other hosts."
        ),
    ] = Loadgen.app_host,
    app_dir: AppDir = None,
    env_file: EnvFile = None,
    health_path: HealthPath = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn workers per app.")] = AppLimits.workers,
    pool_size: Annotated[
        int, typer.Option(min=1, max=500, help="DB pool size per worker, both apps.")
    ] = AppLimits.pool_size,
    max_overflow: Annotated[
        int, typer.Option(min=0, max=500, help="DB pool overflow per worker, both apps.")
    ] = AppLimits.max_overflow,
    thread_tokens: Annotated[
        int | None,
        typer.Option(min=1, max=1000, help="AnyIO thread tokens. \\[default: pool size + overflow]"),
    ] = AppLimits.thread_tokens,
    loop: Annotated[str, typer.Option(help="Event loop: uvloop or asyncio.")] = AppLimits.event_loop,
    seed_users: Annotated[
        int, typer.Option(min=10, max=10_000_000, help="Seeded users (ids 1..N).")
    ] = SeedData.users,
    seed_items: Annotated[int, typer.Option(min=0, max=100, help="Seeded items per user.")] = SeedData.items,
    pin: Annotated[
        bool, typer.Option(help="Pin the app and the load generator to separate CPUs.")
    ] = RunConfig.pin,
    label: Annotated[
        str | None,
        typer.Option(help=f"Suffix of the run folder name. \\[default: {Output.label}, with --quick: quick]"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Results root folder. \\[default: results/]")] = None,
    quick: Annotated[
        bool,
        typer.Option("--quick", help=f"The headline verdict in about a minute and a half: {QUICK_WHAT}."),
    ] = False,
    report: Annotated[bool, typer.Option(help="Build report.html at the end.")] = Output.report,
) -> None:
    """Run the benchmark matrix and write results/<run-id>/ (Ctrl-C keeps the finished points)."""
    from bench.measure.point import plan_seconds

    source = app_source(app_dir, env_file, health_path)
    on = _backends(backends)
    cfg = RunConfig(
        matrix=_matrix(
            QUICK if quick else Matrix(),
            apps=tuple(apps) if apps else _default_apps(on, quick),
            backends=on or None,
            scenarios=tuple(scenarios) if scenarios else None,
            users=ints(users, "--users", minimum=1),
            repeats=repeats,
            sweep_repeats=sweep_repeats,
            paired_repeats=paired_repeats,
            headline_users=headline_users,
            duration_s=duration,
            paired_duration_s=paired_duration,
            warmup_s=warmup,
            db_ms=ints(db_ms, "--db-ms"),
            sweep_users=ints(sweep_users, "--sweep-users", minimum=1),
            rates=tuple(float(r) for r in ints(rate, "--rate", minimum=1) or ()) or None,
            recording_overhead=recording_overhead or None,
            fresh_apps=fresh_apps,
            profile=profile or None,
            statements=statements,
        ),
        limits=_limits(workers, pool_size, max_overflow, thread_tokens, loop),
        loadgen=_loadgen(
            loadgen_processes, open_users, loadgen_workers, master_bind, master_port, worker_wait, app_host
        ),
        seed=SeedData(seed_users, seed_items),
        output=Output(label or ("quick" if quick else Output.label), out or Output.out_root, report),
        source=source,
        pin=pin,
    )
    loadgen = cfg.loadgen
    if profile:
        _require_profiler()
    run, specs = _planned(cfg)
    remote_workers = loadgen.distributed and not loopback(loadgen.master_bind)
    if remote_workers and loopback(loadgen.app_host) and any(not spec.external for spec in specs):
        console.print(
            f"[yellow]note[/]: the apps listen on {loadgen.app_host}: workers on other hosts cannot reach "
            "them (give --app-host an address of this host)"
        )
    if (
        loadgen.distributed
        and any(p.partner for p in run.points)
        and (problem := partner_port_error(loadgen))
    ):
        fail(
            f"--master-port {loadgen.master_port}: a paired point's second side needs a master on the next "
            f"port too, {loadgen.master_port + 1}: {problem} (give another --master-port, or "
            "--paired-repeats 0)"
        )
    n, minutes = len(run.points), plan_seconds(cfg, run.points) / 60
    console.print(
        f"{n} point{'s' * (n != 1)} = ~{minutes:.1f} min (apps: "
        f"{', '.join(f'{a} ({b})' for a, b in run.backend_of.items())}; scenarios: "
        f"{', '.join(cfg.matrix.scenarios)})",
        soft_wrap=True,
    )
    _write_outputs(_measured(run), cfg, machine_summary)


def _backends(backends: list[str] | None) -> tuple[str, ...]:
    """--backend as given, each once; an unknown one fails here."""
    unknown = [b for b in backends or () if b not in BACKENDS]
    if unknown:
        fail(f"unknown --backend {unknown[0]!r}: use one of {backend_names()}")
    return tuple(dict.fromkeys(backends or ()))


def _default_apps(backends: tuple[str, ...], quick: bool) -> tuple[str, ...]:
    """The apps of a run without --app: each backend's default pair(s), only the first with --quick."""
    try:
        return default_apps(backends or (default_backend(),), first_pair=quick)
    except ValueError as exc:  # a bad DATABASE_URL
        fail(str(exc))


def _matrix(start: Matrix, **chosen: Any) -> Matrix:
    """`start` with every option that was given (None: not given)."""
    matrix = replace(start, **{k: v for k, v in chosen.items() if v is not None})
    if chosen["users"] is not None and chosen["headline_users"] is None:
        # the paired load follows the loads asked for: their middle
        return replace(matrix, headline_users=None)
    return matrix


def _limits(
    workers: int, pool_size: int, max_overflow: int, thread_tokens: int | None, loop: str
) -> AppLimits:
    """The apps' limits, the same for every app of the run."""
    if loop not in ("uvloop", "asyncio"):
        fail(f"--loop must be uvloop or asyncio (got {loop!r})")
    return AppLimits(workers, pool_size, max_overflow, thread_tokens, loop)


def _require_profiler() -> None:
    """--profile needs py-spy: without it, fail before any point."""
    from bench.measure.profile import ProfilerError, pyspy

    try:
        pyspy()
    except ProfilerError as exc:
        fail(str(exc))


def _planned(cfg: RunConfig) -> tuple[MatrixRun, list[AppSpec]]:
    """The run's points and its apps, every app and scenario checked before anything starts."""
    from bench.measure.matrix import MatrixRun

    try:
        specs = [resolve_app(name) for name in cfg.matrix.apps]
        if cfg.source.given and not any(spec.custom for spec in specs):
            raise ValueError(
                "--app-dir, --env-file and --health-path are for your own apps: give them as --app "
                "NAME=module:attr"
            )
        for scenario in cfg.matrix.scenarios:
            locustfile(scenario)
        run = MatrixRun(cfg)
    except (ValueError, DatabaseError) as exc:
        fail(str(exc))
    if not run.points:
        fail(
            "nothing to run: no app of --app serves any --scenario (read-only variants serve no writing "
            "scenario)"
        )
    return run, specs


def _measured(run: MatrixRun) -> Path:
    """Every point of the run; on Ctrl-C (or SIGTERM) every process stops and the finished points stay."""
    from bench.processes import signals_as_interrupts

    try:
        with signals_as_interrupts():
            return run.run()
    except KeyboardInterrupt:
        where = run.run_dir or "nothing written"
        console.print(f"[yellow]interrupted[/]: every process stopped; finished points kept in {where}")
        if run.run_dir is not None:
            console.print(f"report of the finished points: .venv/bin/python -m bench report {where}")
        raise typer.Exit(130) from None
    except (DatabaseError, RuntimeError) as exc:
        fail(str(exc))


def _write_outputs(run_dir: Path, cfg: RunConfig, machine_summary: bool) -> None:
    """What a finished run writes besides its points: layers, the machine summary, the report."""
    if cfg.matrix.profile:
        from bench.analyse.layers import problems, write_layers

        write_layers(run_dir)
        for problem in problems(run_dir):
            console.print(f"[yellow]no layers[/] from {problem}", highlight=False, soft_wrap=True)
    if machine_summary:
        from bench.analyse.machines import MACHINES_DIR, write_summary

        console.print(f"machine summary: {write_summary(run_dir, MACHINES_DIR)}")
    if cfg.output.report:
        from bench.analyse.report import build_report

        try:
            with console.status("building the report"):
                html, _md = build_report(run_dir)
        except Exception as exc:  # the points are kept: say so in one line, keep the traceback, exit 1
            log = run_dir / REPORT_ERROR_LOG
            log.write_text(traceback.format_exc())
            console.print(
                f"[bold red]error:[/] the report failed ({type(exc).__name__}: {exc}); every point is kept: "
                f"`bench report {run_dir}` builds it again (traceback in {log})",
                highlight=False,
                soft_wrap=True,
            )
            print(run_dir)
            raise typer.Exit(1) from None
        console.print(f"report: {html}")
    console.print(f"[green]done[/]: results in {run_dir}")
    print(run_dir)


def bind_error(host: str, port: int) -> str | None:
    """Why a TCP socket cannot listen on host:port here (None: it can)."""
    wildcard = host in ("*", "0.0.0.0", "::")
    try:
        infos = socket.getaddrinfo(
            None if wildcard else host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as exc:
        return f"cannot resolve {host!r} ({exc.strerror or exc})"
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the master does (past TIME_WAITs)
        try:
            s.bind(address)
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def partner_port_error(loadgen: Loadgen) -> str | None:
    """Why the second master of a distributed paired point cannot listen on --master-port + 1, or None."""
    if loadgen.master_bind is None:
        return None
    port = loadgen.master_port + 1
    return "there is no such port" if port > 65535 else bind_error(loadgen.master_bind, port)


def _loadgen(
    processes: int,
    open_users: int,
    workers: int,
    master_bind: str | None,
    master_port: int,
    wait: float,
    app_host: str,
) -> Loadgen:
    """The load generator's options, checked: a wrong address fails here, before any point."""
    if problem := bind_error(app_host, 0):
        fail(f"--app-host {app_host}: the apps cannot listen there: {problem} (give an address of this host)")
    if not workers:
        if master_bind is not None:
            fail("--master-bind only applies with --loadgen-workers N (the number of `bench worker`s)")
        return Loadgen(processes, open_users, app_host=app_host)
    if processes > 1:
        fail(
            "--loadgen-processes and --loadgen-workers exclude each other: run `bench worker --processes N` "
            "on a worker host instead"
        )
    if master_bind is None:
        fail(
            "--loadgen-workers needs --master-bind ADDR: an address of this host that every worker host can "
            "reach"
        )
    if problem := bind_error(master_bind, master_port):
        fail(
            f"--master-bind {master_bind} --master-port {master_port}: the Locust master cannot listen "
            f"there: {problem}"
        )
    return Loadgen(processes, open_users, workers, master_bind, master_port, wait, app_host)


def ui_cmd(
    app_name: Annotated[str, named("app", f"App to load: {app_names()}, or module:attr.")] = "sync",
    port: Annotated[int, typer.Option(min=1024, max=65535, help="Locust web UI port on 127.0.0.1.")] = 8089,
    seed_users: Annotated[int, typer.Option(min=10, help="Seeded users (ids 1..N).")] = SeedData.users,
) -> None:
    """Seed the database, start one app, and open Locust's web UI with every scenario selectable."""
    from bench import processes
    from bench.backends import backend_for, check_url_backends
    from bench.processes import Pinning, signals_as_interrupts
    from bench.stack import Stack
    from shared.config import REPO_ROOT, RUN_DIR

    try:
        spec = resolve_app(app_name)
    except ValueError as exc:
        fail(str(exc))
    try:
        backend = backend_for(spec.entry.backend if spec.entry else default_backend())
        check_url_backends([backend.name])
    except DatabaseError as exc:
        fail(str(exc))
    try:
        with (
            signals_as_interrupts(),
            Stack(
                backend,
                [spec],
                limits=AppLimits(),
                seed=SeedData(users=seed_users),
                pinning=Pinning.plan(False),
                log_dir=RUN_DIR / "ui",
            ) as stack,
        ):
            target = stack.app(spec.name)
            argv = [
                *processes.python_tool("locust"),
                "-f",
                str(REPO_ROOT / "loadtests" / "locustfile.py"),
                "--class-picker",
                "--web-host",
                "127.0.0.1",
                "--web-port",
                str(port),
                "-H",
                target.base_url,
            ]
            locust = processes.spawn(
                "locust ui", argv, env={"BENCH_SEED_USERS": str(seed_users), "BENCH_DB_MS": "20"}
            )
            console.print(
                f"{app_name} app on {target.base_url} (limits: {target.limits})\nLocust web UI: "
                f"[bold]http://127.0.0.1:{port}[/]  (Ctrl-C stops everything)"
            )
            locust.popen.wait()
    except KeyboardInterrupt:
        console.print("stopping...")
    except (DatabaseError, RuntimeError) as exc:
        fail(str(exc))
    finally:
        processes.stop_all()
