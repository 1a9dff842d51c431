"""The regression gate for real: `bench perf-check` against the committed results/baseline/.

Each check first counts the statements of every route (current and baseline code side by side, on the real
database), then runs the throughput suite on the real apps, MariaDB and Locust: each current app paired
with the baseline commit's app over the same seconds. Here the sync app alone on a 2-repeat suite keeps
`make test` short; the gate's power and false-alarm rate over many full runs are in docs/perf-gate.md.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.catalog import resolve_app
from bench.gate.perfcheck import BASELINE, PRODUCT_DIRS, PerfGateError, baseline_sha, checkout, suite_apps
from shared.config import REPO_ROOT
from tests.interrupt import cmdline, interrupt_when
from tests.runs import command

SHORT = ["--repeats", "2", "--backend", "mariadb"]


def perf_check(*args: str, out: Path, burn_us: int = 0) -> subprocess.CompletedProcess[str]:
    """The gate as CI runs it, writing its runs, gate.md and gate.json into `out` (never into results/)."""
    env = {**os.environ, "DB_NAME": "app_test", "PERFGATE_BURN_US": str(burn_us), "COLUMNS": "100"}
    return command("perf-check", *args, "--out", str(out), env=env, timeout=900)


def test_the_baseline_is_committed_small_and_names_a_commit_of_this_history() -> None:
    files = [p for p in BASELINE.rglob("*") if p.is_file()]
    assert (BASELINE / "points.csv").exists() and (BASELINE / "meta.json").exists()
    assert sum(p.stat().st_size for p in files) < 1_000_000
    assert not any(p.name.startswith("locust") for p in files)
    sha = baseline_sha(BASELINE)
    assert checkout(sha)[0] == sha  # reachable: CI's clone can measure the baseline code


def test_the_baseline_code_is_the_product_code_of_that_commit(tmp_path: Path) -> None:
    sha, root = checkout("HEAD")
    assert sorted(p.name for p in root.iterdir()) == sorted(PRODUCT_DIRS)  # no tests, no harness
    shown = subprocess.run(["git", "show", f"{sha}:shared/config.py"], cwd=REPO_ROOT, capture_output=True)
    assert (root / "shared" / "config.py").read_bytes() == shown.stdout
    spec = resolve_app("base:sync", root)
    assert (spec.name, spec.target, spec.factory, spec.root) == (
        "base:sync",
        "sync_app.main:create_app",
        True,
        root,
    )
    with pytest.raises(ValueError, match="catalog app"):
        resolve_app("base:sync")  # no source tree given
    with pytest.raises(PerfGateError, match="not in this clone"):
        checkout("0" * 40)


def test_the_suite_pairs_every_app_with_its_baseline_code() -> None:
    assert suite_apps(["sync", "async"]) == ["sync", "async", "base:sync", "base:async"]
    slow = ["sync=tests.perfgate.slow_app:sync_app"]
    assert suite_apps(slow) == [*slow, "base:sync"]
    with pytest.raises(PerfGateError, match="catalog apps"):
        suite_apps(["tests.perfgate.slow_app:sync_app"])


def gate_report(out: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((out / "gate.json").read_text())
    assert (out / "gate.md").read_text().startswith(("✅", "❌"))
    return data


@pytest.mark.e2e
def test_perf_check_passes_on_unchanged_code(tmp_path: Path) -> None:
    proc = perf_check("-a", "sync", *SHORT, out=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = proc.stderr
    assert "perf-check passed" in out and f"baseline code: {baseline_sha(BASELINE)[:12]}" in out
    assert "statements sync on mariadb: 12 routes" in out
    (run,) = tmp_path.glob("*-perf-check")  # the suite ran once: nothing to re-measure
    with (run / "points.csv").open() as f:
        apps = {row["app"] for row in csv.DictReader(f) if row["valid"] == "True"}
    assert apps == {"sync", "base:sync"}  # both sides, in one run
    meta = json.loads((run / "meta.json").read_text())
    assert meta["config"]["base_sha"] == baseline_sha(BASELINE) and meta["complete"]
    report = gate_report(tmp_path)
    assert report["verdict"] == "pass" and report["throughput"]
    assert set(report["statements"]["mariadb"]["sync"]) == {"current", "baseline"}  # type: ignore[index]


@pytest.mark.e2e
def test_ctrl_c_stops_a_background_perf_check_during_its_statement_count(tmp_path: Path) -> None:
    """Started as a background job does it (SIGINT ignored), Ctrl-C still stops the check, here in its first
    step, with exit 130 and no app or server process of its own left behind."""
    env = {**os.environ, "DB_NAME": "app_test", "COLUMNS": "100"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "perf-check", "-a", "sync", *SHORT, "--out", str(tmp_path)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # noqa: PLW1509 - what a shell does to `cmd &`
    )
    # until the statement check serves its first app
    interrupt_when(proc, lambda kids: any("uvicorn" in cmdline(k) for k in kids))


@pytest.mark.e2e
def test_perf_check_fails_at_once_on_an_extra_query(tmp_path: Path) -> None:
    """One more SELECT on PATCH /users/{id}: the statement counts fail the gate before any throughput run."""
    proc = perf_check("-a", "sync=tests.perfgate.extra_query:sync_app", *SHORT, out=tmp_path)
    assert proc.returncode == 1, proc.stderr[-4000:]
    out = " ".join(proc.stderr.split())  # rich wraps long lines
    assert "PATCH /users/{id}: SELECT 1 → 2 per request" in out and "FAILED: more statements" in out
    assert "perf gate: current vs base" not in out  # no throughput suite ran
    assert gate_report(tmp_path)["verdict"] == "fail"


@pytest.mark.e2e
def test_perf_check_fails_on_an_injected_slowdown(tmp_path: Path) -> None:
    """The sync app behind a middleware burning 1.5 ms of CPU per request (roughly a third fewer requests/s):
    a real slowdown fails the gate end to end (suite, comparison, re-measure, exit code); how small a
    slowdown the full suite catches, and how often, is measured in docs/perf-gate.md."""
    proc = perf_check("-a", "sync=tests.perfgate.slow_app:sync_app", *SHORT, out=tmp_path, burn_us=1500)
    assert proc.returncode == 1, proc.stderr[-4000:]
    out = proc.stderr
    assert "re-measuring once" in out and "regression confirmed" in out
    assert "SLOWER" in out and "slower; p99 +" in out  # plain words: what, by how much, how sure
    assert gate_report(tmp_path)["verdict"] == "fail"
