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
from dataclasses import replace
from pathlib import Path

import numpy as np
from rich.console import Console

from bench.catalog import APP_BY_NAME, BASE_PREFIX, app_names
from bench.config import RESULTS_ROOT, Matrix, Output, Pairing, RunConfig
from bench.gate.flow import Decision, confirm
from bench.gate.render import plot, render
from bench.gate.samples import read_samples
from bench.gate.stats import Comparison, compare_within
from bench.measure.matrix import run as run_matrix
from bench.store.rundir import git_state
from shared.config import REPO_ROOT, RUN_DIR

# Short and fixed: both apps, each paired with its baseline code, read_heavy at 16 users each: ~2 min.
SUITE = Matrix(scenarios=("read_heavy",), users=(16,), repeats=6, duration_s=6.0, warmup_s=1.5)
BASELINE_REPEATS = 6
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
    """One run of the suite; with `base` (sha, source tree), the baseline code runs paired with it."""
    matrix = replace(SUITE, apps=tuple(suite_apps(apps) if base else apps), repeats=repeats or SUITE.repeats)
    cfg = RunConfig(
        matrix=matrix,
        # the baseline code is the reference: no calibration needed when it runs alongside
        output=Output(label=label, out_root=out, report=False, calibration_samples=0 if base else 10),
        pairing=Pairing(base_root=base[1], base_sha=base[0], paired=True) if base else Pairing(),
    )
    return run_matrix(cfg)


def check(
    baseline: Path,
    apps: list[str],
    console: Console,
    min_effect: float = 0.10,
    chart: bool = True,
    base_ref: str | None = None,
    repeats: int | None = None,
) -> Decision:
    """Run the suite (current and baseline code paired) and compare; if that flags a regression, run it
    again and fail only if the re-measure flags the same key (bench/gate/flow.py)."""
    base = checkout(base_ref or baseline_sha(baseline))
    console.print(
        f"baseline code: {base[0][:12]} ({base[1]}); current code: {git_state()['git_sha']}", highlight=False
    )

    def measure(label: str) -> Comparison:
        return compare_within(run_suite(apps, label, base, repeats), min_effect=min_effect)

    def show(cmp: Comparison, stage: str) -> None:
        if stage == "first":
            cmp.notes.append(drift_note(baseline, cmp.current[0]))
        else:
            console.print("[yellow]regression flagged: re-measuring once before failing[/]")
        render(cmp, console)

    decision = confirm(measure("perf-check"), lambda: measure("perf-recheck"), show)
    if chart and decision.shown.regressed:
        path = decision.first.current[0] / "charts" / "perf-gate.png"
        console.print(f"chart: {plot(decision.shown, path)}", highlight=False)
    return decision


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
