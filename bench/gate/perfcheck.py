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

from bench.analyse.work import DIFFERENT, route_statements
from bench.analyse.work import KINDS as WORK_KINDS
from bench.catalog import APP_BY_NAME, BASE_PREFIX, app_names
from bench.config import MIN_EFFECT, RESULTS_ROOT, AppSource, Matrix, Output, Pairing, RunConfig
from bench.gate.flow import Decision, confirm
from bench.gate.render import GateView, plot, render, render_statements, write_gate_report
from bench.gate.samples import read_samples
from bench.gate.statements import Change, StatementCheck, statement_check
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
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    if resolved.returncode != 0:
        raise PerfGateError(
            f"the baseline commit {ref[:12]} is not in this clone: `git fetch --unshallow` (or run `make "
            "perf-baseline` on this commit)"
        )
    sha = resolved.stdout.strip()
    root = CHECKOUTS / sha
    if root.is_dir():
        return sha, root
    _extract(REPO_ROOT, sha, PRODUCT_DIRS, root)
    return sha, root


def _extract(repo: Path, sha: str, paths: tuple[str, ...], root: Path) -> None:
    """`git archive` of `paths` at `sha` into `root` (written whole, then renamed: never half there)."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", sha, "--", *paths], cwd=repo, capture_output=True
    )
    if archive.returncode != 0:
        detail = archive.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise PerfGateError(f"cannot extract {', '.join(paths)} at {sha[:12]}: {' '.join(detail)}")
    tmp = root.with_name(f"{root.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tmp, filter="data")
    tmp.rename(root)


def checkout_user(ref: str, app_dir: Path) -> tuple[str, Path]:
    """A user's app at commit `ref` of the git repository holding `app_dir`: that folder extracted once into
    .run/perf-base/user-<sha>/; returns (sha, the folder's copy)."""

    def git(*args: str) -> str | None:
        done = subprocess.run(["git", *args], cwd=app_dir, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    if top is None:
        raise PerfGateError(
            f"--app-dir {app_dir} is not in a git repository: the gate measures a commit of it"
        )
    sha = git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    if sha is None:
        raise PerfGateError(
            f"--base-ref {ref}: no such commit in {top} (fetch it, e.g. `git fetch --unshallow`)"
        )
    rel = app_dir.resolve().relative_to(Path(top).resolve())
    root = CHECKOUTS / f"user-{sha}"
    if not root.is_dir():
        _extract(Path(top), sha, (str(rel),), root)
    return sha, root / rel


def user_head(app_dir: Path) -> str:
    """The user's current code: their HEAD, `-dirty` with uncommitted changes (the working tree runs)."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=app_dir, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "HEAD")[:12] or "working tree"
    return f"{head[:6]}-dirty" if git("status", "--porcelain", "--", ".") else head


def base_name(app: str) -> str:
    """The baseline twin of an app of the suite: `base:sync`, or `base:sync=their.module:app`."""
    label, _, target = app.rpartition("=")
    return BASE_PREFIX + (app if ":" in target else label or app)


def user_statement_check(
    apps: list[str], base: tuple[str, Path], scenarios: tuple[str, ...], source: AppSource, out: Path
) -> StatementCheck:
    """A user's apps: each route's statements per request from the statement pass (one user, the server's
    counters after every answer), current vs baseline code; more by half a statement or more fails."""
    sha, root = base
    matrix = replace(
        SUITE,
        apps=(*apps, *map(base_name, apps)),
        scenarios=scenarios,
        pairs=(),
        repeats=0,
        paired_repeats=0,
        statements=True,
    )
    cfg = RunConfig(
        matrix=matrix,
        output=Output(label="perf-statements", out_root=out, report=False, calibration_samples=0),
        pairing=Pairing(base_root=root, base_sha=sha),
        source=source,
    )
    table = route_statements(run_matrix(cfg))
    check = StatementCheck(sha)
    for app in apps:
        label = app.rpartition("=")[0] or app
        sides = {
            side: table[table["app"] == name]
            for side, name in (("current", label), ("baseline", BASE_PREFIX + label))
        }
        counts = {
            side: {str(r["route"]): {k: float(r[k]) for k in WORK_KINDS if r[k]} for _, r in rows.iterrows()}
            for side, rows in sides.items()
        }
        backend = str(table["backend"].iloc[0]) if not table.empty else "database"
        check.counts.setdefault(backend, {})[label] = counts
        for route, now in counts["current"].items():
            was = counts["baseline"].get(route)
            if was is None:
                continue
            for kind in WORK_KINDS:
                a, b = was.get(kind, 0.0), now.get(kind, 0.0)
                if abs(b - a) >= DIFFERENT:
                    (check.more if b > a else check.fewer).append(Change(backend, label, route, kind, a, b))
    if table.empty:
        check.notes.append(
            "no statements counted: the statement pass gave no valid point (see its run folder)"
        )
    return check


def suite_apps(apps: list[str], user: bool = False) -> list[str]:
    """The current apps and, for each, the same app from the baseline code (`base:` + label; a user's own
    apps, `--app-dir`: `base:` + label=module:attr, started from their baseline commit)."""
    labels = [a.rpartition("=")[0] or a for a in apps]
    unknown = [label for label in labels if label not in APP_BY_NAME]
    if unknown and not user:
        raise PerfGateError(
            f"{', '.join(unknown)}: the gate compares catalog apps ({app_names()}); run a custom app under "
            "one of their labels, e.g. sync=my.module:app"
        )
    return [
        *apps,
        *(base_name(a) if user else BASE_PREFIX + label for a, label in zip(apps, labels, strict=True)),
    ]


def run_suite(
    apps: list[str],
    label: str,
    base: tuple[str, Path] | None = None,
    repeats: int | None = None,
    out: Path = RESULTS_ROOT,
    scenarios: tuple[str, ...] | None = None,
    source: AppSource | None = None,
) -> Path:
    """One run of the suite; with `base` (sha, source tree), each app paired with its baseline code. A user's
    apps (`source`) run their own scenarios (locustfiles)."""
    n = repeats or SUITE.paired_repeats
    suite = replace(SUITE, scenarios=scenarios) if scenarios else SUITE
    if base:
        pairs = tuple(zip(apps, suite_apps(apps, source is not None)[len(apps) :], strict=True))
        matrix = replace(suite, apps=(), pairs=pairs, repeats=0, paired_repeats=n, statements=False)
    else:
        matrix = replace(suite, apps=tuple(apps), pairs=(), repeats=n, paired_repeats=0, statements=False)
    cfg = RunConfig(
        matrix=matrix,
        # the baseline code is the reference: no calibration needed when it runs alongside
        output=Output(label=label, out_root=out, report=False, calibration_samples=0 if base else 10),
        pairing=Pairing(base_root=base[1], base_sha=base[0]) if base else Pairing(),
        source=source or AppSource(),
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
    min_effect: float = MIN_EFFECT,
    chart: bool = True,
    base_ref: str | None = None,
    repeats: int | None = None,
    backends: tuple[str, ...] = STATEMENT_BACKENDS,
    out: Path = RESULTS_ROOT,
    scenarios: tuple[str, ...] | None = None,
    source: AppSource | None = None,
) -> GateResult:
    """First the exact statement counts per route (fail at once on any increase); then the throughput suite
    (current and baseline code paired) and, if that flags a regression, the suite again: fail only if the
    re-measure flags the same key (bench/gate/flow.py). Writes gate.md and gate.json. With `source` (a user's
    own apps, `--app-dir`), the baseline is `base_ref` of their repository and the suite runs `scenarios`."""
    if source is not None:
        if base_ref is None:
            raise PerfGateError(
                "your own apps (--app-dir) need --base-ref: the commit of your repository to compare with"
            )
        base = checkout_user(base_ref, source.app_dir or Path.cwd())
        current = user_head(source.app_dir or Path.cwd())
    else:
        base = checkout(base_ref or baseline_sha(baseline))
        current = git_state()["git_sha"] or "working tree"
    console.print(f"baseline code: {base[0][:12]} ({base[1]}); current code: {current}", highlight=False)
    report_dir = new_run_dir("perf-gate", out)
    with console.status("counting statements per route: current vs baseline code"):
        if source is not None:
            statements = user_statement_check(apps, base, scenarios or SUITE.scenarios, source, out)
        else:
            statements = statement_check(apps, base, backends)
    render_statements(statements, console)
    if statements.failed:
        console.print("[bold red]statement counts grew: failing without a throughput run[/]")
        result = GateResult(statements, None, report_dir)
        write_gate_report(result_view(result, base[0], current))
        return result

    def measure(label: str) -> Comparison:
        run = run_suite(apps, label, base, repeats, out, scenarios, source)
        return compare_within(run, min_effect=min_effect)

    def show(cmp: Comparison, stage: str) -> None:
        if stage == "first":
            if source is None:  # the committed baseline is our apps'
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
    return GateView(
        base_sha,
        current,
        result.statements,
        d.shown if d else None,
        d.second is not None if d else False,
        result.failed,
        result.report_dir,
    )


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
