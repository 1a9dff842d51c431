"""`bench report` (the report of a run folder) and `bench compare` (two runs, or one perf-check run)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bench.cli.common import MinEffect
from bench.config import MIN_EFFECT


def register(app: typer.Typer) -> None:
    app.command("report")(report_cmd)
    app.command("compare")(compare_cmd)
    app.command("machines")(machines_cmd)


def report_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run folder, for example results/20261125-110245-bench.")],
) -> None:
    """(Re)build charts/, report.html and report.md of a run folder from its points.csv and raw files.

    RUN_DIR is a run folder such as results/20251125-120000-bench. report.html is self-contained
    (charts embedded) and opens with the verdict: sync or async for each workload, and by how much.
    """
    from bench.analyse.report import write_report
    from bench.cli.common import fail, warn
    from bench.store.run import RunFolderError, load_run

    try:
        data = load_run(run_dir)
        html_path, md_path = write_report(data)
    except RunFolderError as exc:
        fail(str(exc))
    for problem in data.problems:
        warn(problem)
    for label, path in (
        ("report", html_path),
        ("markdown", md_path),
        ("charts", html_path.parent / "charts"),
    ):
        Console().print(f"[green]{label}[/]: {path}", highlight=False, soft_wrap=True)


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
    min_effect: MinEffect = MIN_EFFECT,
) -> None:
    """Compare two runs point by point (or the two sides of one perf-check run); exit 1 on a significant
    throughput regression, 0 otherwise, 2 when the runs cannot be compared."""
    from bench.cli.compare import compare_command

    raise typer.Exit(compare_command(baseline, current, chart, remeasure=remeasure, min_effect=min_effect))


def machines_cmd(
    folder: Annotated[
        Path, typer.Argument(help="The folder of machine summaries (`make bench` writes one per run there).")
    ] = Path("machines"),
) -> None:
    """The answer on every machine measured: each committed summary side by side (async/sync with its 95%
    interval per workload, one column per machine), printed and written as machines.md and machines.png."""
    from bench.analyse.machines import render
    from bench.cli.common import fail

    if not folder.is_dir():
        fail(f"no folder {folder}: give the folder of machine summaries (make bench writes machines/)")
    try:
        text, chart = render(folder)
    except ValueError as exc:
        fail(str(exc))
    print(text)
    print(f"table: {folder / 'machines.md'}" + (f"; chart: {chart}" if chart else ""))
