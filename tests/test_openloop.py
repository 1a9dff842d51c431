"""Open loop end to end (`bench run --rate`): a schedule of sends that does not wait for the answers, the
latency measured from each send's due time (the coordinated-omission correction), and sends that ran late.
One rate the sync app holds easily, one it cannot, on the real database with real Locust."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

import pytest

from shared.config import REPO_ROOT
from tests.test_harness import bench, bench_env, only_run_dir

pytestmark = pytest.mark.e2e

HELD, TOO_MANY = 100, 5000  # req/s: the sync app serves about 600-900 alone on this 2-core machine


def test_a_rate_the_app_holds_and_one_it_cannot(tmp_path: Path) -> None:
    argv = bench(
        "-a",
        "sync",
        "-s",
        "read_heavy",
        "--rate",
        f"{HELD},{TOO_MANY}",
        "--open-users",
        "32",
        "--repeats",
        "1",
        "--paired-repeats",
        "0",
        "--sweep-repeats",
        "0",
        "--duration",
        "3",
        out=tmp_path,
    )
    proc = subprocess.run(argv, cwd=REPO_ROOT, env=bench_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    with (only_run_dir(tmp_path) / "points.csv").open() as f:
        rows = {float(r["target_rps"]): r for r in csv.DictReader(f)}
    held, over = rows[HELD], rows[TOO_MANY]
    assert {r["mode"] for r in rows.values()} == {"open"}
    # Held: every due send went out on time, at the rate asked, and the correction changes next to nothing.
    assert held["valid"] == "True", held["invalid_reasons"]
    assert int(held["late"]) == 0 and float(held["rps"]) == pytest.approx(HELD, rel=0.05)
    assert float(held["p99_ms"]) <= float(held["p99_uncorrected_ms"]) + 20
    # Not held: the sends fall behind (late, and the point invalid for it), and the corrected p99, from each
    # send's due time, rises far above the response time alone.
    assert float(over["rps"]) < 0.5 * TOO_MANY
    assert int(over["late"]) > 0.5 * int(over["requests"]), over
    assert over["valid"] == "False" and "late_sends" in over["invalid_reasons"]
    assert float(over["p99_ms"]) > 5 * float(over["p99_uncorrected_ms"]), over
