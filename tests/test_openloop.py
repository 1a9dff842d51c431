"""Open loop end to end (`bench run --rate`): a schedule of sends that does not wait for the answers, the
latency measured from each send's due time (the coordinated-omission correction), and sends that ran late.
One rate the sync app holds easily, one it cannot, on the real database with real Locust."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.runs import flags, run_bench

pytestmark = pytest.mark.e2e

HELD, TOO_MANY = 100, 5000  # req/s: the sync app serves about 600-900 alone on this 2-core machine


def test_a_rate_the_app_holds_and_one_it_cannot(tmp_path: Path) -> None:
    rates = f"{HELD},{TOO_MANY}"
    options = flags(
        users=None, warmup=None, rate=rates, open_users=32, paired_repeats=0, sweep_repeats=0, duration=3
    )
    with (run_bench(*options, out=tmp_path) / "points.csv").open() as f:
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
