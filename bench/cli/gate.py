"""`bench perf-check` (the regression gate) and `bench perf-baseline`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from bench.backends import DatabaseError
from bench.catalog import DEFAULT_APPS, locustfile
from bench.cli.common import AppDir, EnvFile, HealthPath, MinEffect, app_source, console, fail, named
from bench.config import MIN_EFFECT, RESULTS_ROOT

PerfApps = Annotated[
    list[str] | None,
    named("app", "Apps of the suite, as in `bench run`. \\[default: sync, async]"),
]
BASELINE_DIR = Path("results/baseline")


def register(app: typer.Typer) -> None:
    app.command("perf-check")(perf_check_cmd)
    app.command("perf-baseline")(perf_baseline_cmd)


def perf_check_cmd(
    apps: PerfApps = None,
    baseline: Annotated[
        Path, typer.Option(help="The committed baseline (its commit is the baseline code).")
    ] = BASELINE_DIR,
    base_ref: Annotated[
        str | None,
        typer.Option(help="Measure this commit as the baseline code instead (e.g. the merge base)."),
    ] = None,
    min_effect: MinEffect = MIN_EFFECT,
    repeats: Annotated[
        int | None,
        typer.Option(min=1, max=50, help="Repeats per app (fewer: quicker, catches only bigger drops)."),
    ] = None,
    backend: Annotated[
        list[str] | None,
        named(
            "backend",
            "Backends of the statement-count check, repeatable. \\[default: mariadb, postgres]",
        ),
    ] = None,
    scenarios: Annotated[
        list[str] | None,
        named(
            "scenario",
            "Your own apps: the locustfile(s) of the suite. \\[default: read_heavy, write_heavy]",
        ),
    ] = None,
    app_dir: AppDir = None,
    env_file: EnvFile = None,
    health_path: HealthPath = None,
    out: Annotated[Path, typer.Option(help="Folder for the runs, gate.md and gate.json.")] = RESULTS_ROOT,
) -> None:
    """First count the statements every route sends, current vs baseline code, on each backend: any increase
    fails at once (exit 1). Then run the short fixed suite (under 3 min here): each current app at the same
    time as the same app from the baseline commit, sharing its CPU; on a throughput regression run it once
    more and fail (exit 1) only if the re-measure confirms it. Writes gate.md and gate.json."""
    from bench.gate import perfcheck
    from bench.gate.samples import CompareError

    source = app_source(app_dir, env_file, health_path) if app_dir or env_file or health_path else None
    if source is not None and base_ref is None:
        fail(
            "your own apps (--app-dir) need --base-ref: the commit of your repository to compare with, e.g. "
            "the merge base"
        )
    if base_ref is None and not (baseline / "meta.json").exists():
        fail(f"no baseline at {baseline}: create one with `make perf-baseline`")
    try:
        for scenario in scenarios or ():
            locustfile(scenario)
        result = perfcheck.check(
            baseline,
            apps or list(DEFAULT_APPS),
            console,
            min_effect,
            base_ref=base_ref,
            repeats=repeats,
            backends=tuple(backend or perfcheck.STATEMENT_BACKENDS),
            scenarios=tuple(scenarios) if scenarios else None,
            source=source,
            out=out,
        )
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: every process stopped")
        raise typer.Exit(130) from None
    except (CompareError, DatabaseError, RuntimeError, ValueError) as exc:  # PerfGateError is a RuntimeError
        fail(str(exc))
    if result.statements.failed:
        verdict = "[red]FAILED: more statements per request"
    elif result.failed:
        verdict = "[red]FAILED: regression confirmed by the re-measure"
    else:
        verdict = "[green]passed"
    console.print(f"perf-check {verdict}[/] (report: {result.report_dir / 'gate.md'})", highlight=False)
    raise typer.Exit(1 if result.failed else 0)


def perf_baseline_cmd(
    apps: PerfApps = None,
    baseline: Annotated[Path, typer.Option(help="Where to write the baseline.")] = BASELINE_DIR,
) -> None:
    """Run the perf suite and make it the baseline (only the files the gate reads); commit it afterwards."""
    from bench.gate import perfcheck

    try:
        run = perfcheck.write_baseline(apps or list(DEFAULT_APPS), baseline)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: every process stopped; baseline unchanged")
        raise typer.Exit(130) from None
    except (DatabaseError, RuntimeError) as exc:  # PerfGateError (uncommitted code) is a RuntimeError
        fail(str(exc))
    console.print(f"baseline written to {baseline} (from {run}); commit it")
