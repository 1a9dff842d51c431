"""`bench compare`: two runs made at different times (or the two sides of one perf-check run), judged,
re-measured with a second run when asked, and printed."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from bench.config import MIN_EFFECT
from bench.gate.flow import confirm
from bench.gate.render import plot, render
from bench.gate.stats import CompareError, Comparison, compare_runs, compare_within


def compare_command(
    baseline: Path,
    current: Path | None,
    chart: Path | None = None,
    *,
    remeasure: Path | None = None,
    console: Console | None = None,
    min_effect: float = MIN_EFFECT,
) -> int:
    """Print the comparison; exit code 1 on a (confirmed, if `remeasure` is given) regression, else 0;
    2 with one line when a folder is missing or nothing is comparable. The chart is written on regression.
    `current` None: `baseline` is one perf-check run, compared within (its `base:` apps are the baseline).
    """
    out = console or Console()
    err = console or Console(stderr=True)
    for folder in (baseline, current, remeasure):
        if folder is not None and not folder.is_dir():
            err.print(f"[bold red]error:[/] no run folder at {folder}", highlight=False, soft_wrap=True)
            return 2

    def measure(run: Path) -> Comparison:
        if current is None:
            return compare_within(run, min_effect=min_effect)
        return compare_runs(baseline, run, min_effect=min_effect)

    def show(cmp: Comparison, stage: str) -> None:
        if stage == "re-measure":
            out.print(f"\nre-measure: {cmp.current[0].name}")
        render(cmp, out)

    try:
        decision = confirm(
            measure(current or baseline),
            (lambda: measure(remeasure)) if remeasure is not None else None,
            show,
        )
    except CompareError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    if chart is not None and decision.shown.regressed:
        out.print(f"chart: {plot(decision.shown, chart)}", highlight=False)
    if decision.second is not None and not decision.failed:
        out.print("[bold]not confirmed by the re-measure: pass[/]")
    return 1 if decision.failed else 0
