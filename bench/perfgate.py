"""The regression gate's fixed suite: run it, compare it with the baseline, re-measure once, or make it
the baseline. The decision itself is bench/compare.py; this module only orchestrates runs."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from bench.compare import Comparison, compare_runs, decide_with_remeasure, plot, render
from bench.results import RESULTS_ROOT
from bench.runner import RunConfig, Runner, signals_as_interrupts

# Short and fixed: both apps, read_heavy at 16 users, 4 repeats of 8 s (6 per-second samples each after
# trimming the edges): about 2 minutes here, including the calibration. The baseline is measured once
# with 10 repeats, so its own noise weighs little in every later comparison.
SUITE = {"scenarios": ["read_heavy"], "users": [16], "repeats": 4, "duration_s": 8.0, "warmup_s": 2.0}
BASELINE_REPEATS = 10
DEFAULT_APPS = ["sync", "async"]
BASELINE = RESULTS_ROOT / "baseline"
BASELINE_FILES = ("meta.json", "points.csv", "calibration.json", "points/*/loadgen-*.json")


def run_suite(apps: list[str], label: str, out: Path = RESULTS_ROOT, repeats: int | None = None) -> Path:
    cfg = RunConfig(apps=apps, label=label, out_root=out, report=False)
    for key, value in SUITE.items():
        setattr(cfg, key, value)
    cfg.repeats = repeats or cfg.repeats
    with signals_as_interrupts():
        return Runner(cfg).run()


@dataclass
class CheckResult:
    failed: bool
    first_run: Path
    first: Comparison
    second_run: Path | None = None
    second: Comparison | None = None


def check(
    baseline: Path, apps: list[str], console: Console, min_effect: float = 0.10, chart: bool = True
) -> CheckResult:
    """Run the suite and compare; if that flags a regression, run it again and fail only if the
    re-measure flags the same key."""
    run = run_suite(apps, "perf-check")
    first = compare_runs(baseline, run, min_effect=min_effect)
    render(first, console)
    result = CheckResult(False, run, first)
    if first.regressed:
        console.print("[yellow]regression flagged: re-measuring once before failing[/]")
        result.second_run = run_suite(apps, "perf-recheck")
        result.second = compare_runs(baseline, result.second_run, min_effect=min_effect)
        render(result.second, console)
    result.failed = decide_with_remeasure(first, result.second)
    shown = result.second or first
    if chart and shown.regressed:
        console.print(f"chart: {plot(shown, run / 'charts' / 'perf-gate.png')}", highlight=False)
    return result


def write_baseline(apps: list[str], baseline: Path = BASELINE) -> Path:
    """Run the suite and keep only what the gate reads (a few hundred KB) as the baseline."""
    run = run_suite(apps, "perf-baseline", repeats=BASELINE_REPEATS)
    if baseline.exists():
        shutil.rmtree(baseline)
    for pattern in BASELINE_FILES:
        for src in run.glob(pattern):
            dst = baseline / src.relative_to(run)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return run
