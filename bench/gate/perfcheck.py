"""The regression gate's fixed suite: run it, compare, re-measure once, or make it the baseline.

`results/baseline/` names the baseline *code* (its commit, `git_sha` in meta.json) and keeps what that
code measured when it was recorded. A check does not trust those old numbers: this machine's speed drifts
by 15-30% within an hour and by ±10% from one 10-second point to the next, more than the 10% the gate
must catch. Instead it extracts the baseline commit's product code (`git archive`, into
.run/perf-base/<sha>/) and runs it *at the same time* as the current code: `base:sync` and `sync` share
the app's CPU (the kernel splits it evenly between the two process groups), each loaded by its own Locust
over the same seconds, so whatever slows the machine in a second slows both. The decision is
bench/gate/stats.py (`compare_within`, paired per second); this module only orchestrates runs.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from rich.console import Console

from bench.catalog import APP_BY_NAME, BASE_PREFIX, app_names
from bench.config import RESULTS_ROOT, Matrix, Output, Pairing, RunConfig
from bench.gate.flow import Decision, confirm
from bench.gate.render import GateView, plot, render, render_statements, write_gate_report
from bench.gate.samples import read_samples
from bench.gate.statements import StatementCheck, statement_check
from bench.gate.stats import Comparison, compare_within, stack_notes
from bench.measure.matrix import run as run_matrix
from bench.store.rundir import git_state, new_run_dir
from shared.config import REPO_ROOT, RUN_DIR

# Short and fixed: both apps, each paired with its baseline code, a read and a write workload at 16 users
# each, 3 repeats of 8 s (24 paired seconds per key; fewer, longer points spend less on Locust's start and
# stop than 4 of 6 s did): about 2.3 minutes.
SUITE = Matrix(
    apps=(),
    scenarios=("read_heavy", "write_heavy"),
    users=(16,),
    repeats=0,
    paired_repeats=3,
    paired_duration_s=8.0,
    warmup_s=1.0,
    fresh_apps=False,  # one process per side, as in the trials that measured the gate (docs/perf-gate.md)
)
BASELINE_REPEATS = 6
STATEMENT_BACKENDS = ("mariadb", "postgres")
BASELINE = RESULTS_ROOT / "baseline"
BASELINE_FILES = ("meta.json", "points.csv", "calibration.json", "points/*/loadgen-*.json")
PRODUCT_DIRS = ("shared", "sync_app", "async_app")  # what the apps import: the code under test
CHECKOUTS = RUN_DIR / "perf-base"


class PerfGateError(RuntimeError):
    """The baseline's code cannot be found or started; the message says how to fix it."""


def baseline_sha(baseline: Path) -> str:
    try:
        sha = json.loads((baseline / "meta.json").read_text())["git_sha"]
    except (OSError, ValueError, KeyError) as exc:
        raise PerfGateError(
            f"{baseline}/meta.json has no git_sha: refresh it with `make perf-baseline`"
        ) from exc
    if not sha:
        raise PerfGateError(f"{baseline} was recorded outside git: refresh it with `make perf-baseline`")
    return str(sha)


def checkout(ref: str) -> tuple[str, Path]:
    """The product code of commit `ref`, extracted once into .run/perf-base/<sha>/ (no git worktree)."""
    resolved = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"],
        cwd=REPO_ROOT, capture_output=True, text=True,
    )  # fmt: skip
    if resolved.returncode != 0:
        raise PerfGateError(
            f"the baseline commit {ref[:12]} is not in this clone: `git fetch --unshallow` "
            "(or run `make perf-baseline` on this commit)"
        )
    sha = resolved.stdout.strip()
    root = CHECKOUTS / sha
    if root.is_dir():
        return sha, root
    archive = subprocess.run(
        ["git", "archive", "--format=tar", sha, *PRODUCT_DIRS], cwd=REPO_ROOT, capture_output=True
    )
    if archive.returncode != 0:
        detail = archive.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise PerfGateError(f"cannot extract {', '.join(PRODUCT_DIRS)} at {sha[:12]}: {' '.join(detail)}")
    tmp = root.with_name(f"{sha}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tmp, filter="data")
    tmp.rename(root)
    return sha, root


def suite_apps(apps: list[str]) -> list[str]:
    """The current apps and, for each, the same registered app from the baseline code (`base:` + label)."""
    labels = [a.rpartition("=")[0] or a for a in apps]
    unknown = [label for label in labels if label not in APP_BY_NAME]
    if unknown:
        raise PerfGateError(
            f"{', '.join(unknown)}: the gate compares catalog apps ({app_names()}); "
            "run a custom app under one of their labels, e.g. sync=my.module:app"
        )
    return [*apps, *(BASE_PREFIX + label for label in labels)]


def run_suite(
    apps: list[str],
    label: str,
    base: tuple[str, Path] | None = None,
    repeats: int | None = None,
    out: Path = RESULTS_ROOT,
) -> Path:
    """One run of the suite; with `base` (sha, source tree), each app paired with its baseline code."""
    n = repeats or SUITE.paired_repeats
    if base:
        pairs = tuple(zip(apps, suite_apps(apps)[len(apps) :], strict=True))
        matrix = replace(SUITE, apps=(), pairs=pairs, repeats=0, paired_repeats=n)
    else:
        matrix = replace(SUITE, apps=tuple(apps), pairs=(), repeats=n, paired_repeats=0)
    cfg = RunConfig(
        matrix=matrix,
        # the baseline code is the reference: no calibration needed when it runs alongside
        output=Output(label=label, out_root=out, report=False, calibration_samples=0 if base else 10),
        pairing=Pairing(base_root=base[1], base_sha=base[0]) if base else Pairing(),
    )
    return run_matrix(cfg)


@dataclass
class GateResult:
    statements: StatementCheck
    decision: Decision | None  # None: the statement check failed first, no throughput suite ran
    report_dir: Path

    @property
    def failed(self) -> bool:
        return self.statements.failed or (self.decision is not None and self.decision.failed)


def check(
    baseline: Path,
    apps: list[str],
    console: Console,
    min_effect: float = 0.10,
    chart: bool = True,
    base_ref: str | None = None,
    repeats: int | None = None,
    backends: tuple[str, ...] = STATEMENT_BACKENDS,
    out: Path = RESULTS_ROOT,
) -> GateResult:
    """First the exact statement counts per route (fail at once on any increase); then the throughput suite
    (current and baseline code paired) and, if that flags a regression, the suite again: fail only if the
    re-measure flags the same key (bench/gate/flow.py). Writes gate.md and gate.json."""
    base = checkout(base_ref or baseline_sha(baseline))
    current = git_state()["git_sha"] or "working tree"
    console.print(f"baseline code: {base[0][:12]} ({base[1]}); current code: {current}", highlight=False)
    report_dir = new_run_dir("perf-gate", out)
    with console.status("counting statements per route: current vs baseline code"):
        statements = statement_check(apps, base, backends)
    render_statements(statements, console)
    if statements.failed:
        console.print("[bold red]statement counts grew: failing without a throughput run[/]")
        result = GateResult(statements, None, report_dir)
        write_gate_report(result_view(result, base[0], current))
        return result

    def measure(label: str) -> Comparison:
        return compare_within(run_suite(apps, label, base, repeats), min_effect=min_effect)

    def show(cmp: Comparison, stage: str) -> None:
        if stage == "first":
            cmp.notes.append(drift_note(baseline, cmp.current[0]))
            cmp.notes += stack_notes([baseline], cmp.current[:1])  # the drift may be a new stack's
        else:
            console.print("[yellow]regression flagged: re-measuring once before failing[/]")
        render(cmp, console)

    decision = confirm(measure("perf-check"), lambda: measure("perf-recheck"), show)
    result = GateResult(statements, decision, report_dir)
    chart_path = plot(decision.shown, report_dir / "perf-gate.png") if chart else None
    write_gate_report(result_view(result, base[0], current), chart_path)
    console.print(f"gate report: {report_dir / 'gate.md'}", highlight=False)
    return result


def result_view(result: GateResult, base_sha: str, current: str) -> GateView:
    d = result.decision
    return GateView(base_sha, current, result.statements, d.shown if d else None, d.second is not None if d else False,
                    result.failed, result.report_dir)  # fmt: skip


def drift_note(baseline: Path, run: Path) -> str:
    """How far the machine moved since the baseline was recorded: the baseline code then vs now."""

    def base_medians(path: Path) -> dict[str, float]:
        data = read_samples(path)
        return {
            k.app.removeprefix(BASE_PREFIX): float(np.median(np.concatenate(v)))
            for k, v in data.repeats.items()
            if k.app.startswith(BASE_PREFIX)
        }

    try:
        then, now = base_medians(baseline), base_medians(run)
    except Exception:  # noqa: BLE001 - informational only
        return "machine drift since the baseline was recorded: unknown"
    parts = [f"{app} {now[app] / then[app] - 1:+.0%}" for app in sorted(then) if app in now and then[app] > 0]
    return (
        f"baseline code now vs when recorded ({baseline.name}): {', '.join(parts) or 'no common points'} "
        "(the machine's drift: why both sides run at the same time)"
    )


def write_baseline(apps: list[str], baseline: Path = BASELINE) -> Path:
    """Run the suite (the current commit paired with itself) and keep what the gate reads (a few hundred
    KB) as the baseline. The product code must be committed: the baseline is that commit, which every
    later check measures again, side by side with the code under test."""
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", *PRODUCT_DIRS], cwd=REPO_ROOT, capture_output=True, text=True
    ).stdout.strip()
    if dirty:
        raise PerfGateError(
            f"uncommitted changes in {', '.join(PRODUCT_DIRS)}: commit them first (the baseline is a commit)"
        )
    run = run_suite(apps, "perf-baseline", checkout("HEAD"), BASELINE_REPEATS)  # paired with itself: an A/A
    if baseline.exists():
        shutil.rmtree(baseline)
    for pattern in BASELINE_FILES:
        for src in run.glob(pattern):
            dst = baseline / src.relative_to(run)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return run
