"""The regression gate for real: `bench perf-check` against the committed results/baseline/.

Each check runs the fixed suite on the real apps, MariaDB and Locust (about 2 minutes; twice when the
first run flags a regression). The gate's power and false-alarm rate over many runs are in
docs/perf-gate.md; here one run of each kind must come out right.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bench.perfgate import BASELINE
from shared.config import REPO_ROOT

pytestmark = pytest.mark.e2e
SLOW_APPS = ["-a", "sync=tests.perfgate.slow_app:sync_app", "-a", "async=tests.perfgate.slow_app:async_app"]


def perf_check(*args: str, burn_us: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DB_NAME": "app_test", "PERFGATE_BURN_US": str(burn_us), "COLUMNS": "100"}
    return subprocess.run(
        [sys.executable, "-m", "bench", "perf-check", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def test_the_baseline_is_committed_and_small() -> None:
    files = [p for p in BASELINE.rglob("*") if p.is_file()]
    assert (BASELINE / "points.csv").exists() and (BASELINE / "calibration.json").exists()
    assert sum(p.stat().st_size for p in files) < 1_000_000
    assert not any(p.name.startswith("locust") for p in files)


def test_perf_check_passes_on_unchanged_code() -> None:
    proc = perf_check()
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "perf-check passed" in proc.stderr


def test_perf_check_fails_on_an_injected_slowdown() -> None:
    """Both apps behind a middleware burning 1.5 ms of CPU per request (roughly a third fewer requests/s).

    Large on purpose: this machine's speed drifts by up to ±25% between runs minutes apart, and this test
    checks that a real slowdown fails the gate end to end (suite, comparison, re-measure, exit code).
    How small a slowdown the gate catches, and how often, is measured in docs/perf-gate.md."""
    proc = perf_check(*SLOW_APPS, burn_us=1500)
    assert proc.returncode == 1, proc.stderr[-4000:]
    out = proc.stderr
    assert "re-measuring once" in out and "regression confirmed" in out
    assert "SLOWER" in out and "slower; p99 +" in out  # plain words: what, by how much, how sure
