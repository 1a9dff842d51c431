"""The harness's parsing and checking code, on small fixture files with known answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.measure.workcheck import check_statements
from bench.store.loadgen import percentiles_ms, read_loadgen

FIXTURES = Path(__file__).parent / "fixtures"


def test_loadgen_files_of_two_workers_merge_counts_and_histograms() -> None:
    lg = read_loadgen(FIXTURES / "point-two-workers")
    assert lg.files == 2 and lg.requests == 5 and lg.failures == 1 and lg.late == 2
    assert lg.per_second == {0: 3, 1: 2}
    assert lg.by_name == {"GET /users/{id}": {"requests": 5, "failures": 1}}
    assert lg.acked == {"users": [101, 102], "items": []}
    assert lg.window == (100.0, 102.0)
    assert lg.expected_statements == {"GET /users/{id}": {"select": 2}}
    # The merged histogram holds all five values: its median is the union's median (3 ms), not an
    # average of the two workers' medians (2 ms and 100 ms).
    p = percentiles_ms(lg.hdr)
    assert p["p50_ms"] == pytest.approx(3.0, rel=1e-3)  # 3 significant digits
    assert p["max_ms"] == pytest.approx(100.0, rel=1e-3) and p["mean_ms"] is not None
    assert percentiles_ms(lg.hdr_uncorrected)["p50_ms"] == pytest.approx(1.5, rel=1e-3)


def test_an_empty_point_folder_reads_as_no_output(tmp_path: Path) -> None:
    lg = read_loadgen(tmp_path)
    assert lg.files == 0 and lg.requests == 0 and lg.hdr is None
    assert percentiles_ms(None)["p99_ms"] is None


DECLARED: dict[str, dict[str, float]] = {
    "GET /users/{id}": {"select": 2},
    "PATCH /users/{id}": {"select": 2, "update": 1, "commit": 1},
}


def test_counters_matching_the_declared_work_pass() -> None:
    by_name = {"GET /users/{id}": {"requests": 1000}, "PATCH /users/{id}": {"requests": 100}}
    counters = {"select": 2203, "update": 100, "commit": 99, "insert": 0}
    work = check_statements(by_name, DECLARED, counters, in_flight=4)
    assert work is not None and work.ok, work
    assert work.expected["select"] == 2200 and "select 2.00/req ok" in work.summary


def test_an_n_plus_one_query_and_a_silent_no_op_are_caught() -> None:
    by_name = {"GET /users/{id}": {"requests": 1000}, "PATCH /users/{id}": {"requests": 100}}
    counters = {"select": 3200, "update": 0, "commit": 100}
    work = check_statements(by_name, DECLARED, counters, in_flight=4)
    assert work is not None and not work.ok
    assert any(p.startswith("select 3200") for p in work.problems)
    assert any(p.startswith("update 0") for p in work.problems)


def test_undeclared_routes_are_not_judged() -> None:
    assert check_statements({"GET /x": {"requests": 5}}, DECLARED, {"select": 0}, 1) is None
    assert check_statements({"GET /x": {"requests": 5}}, {}, {"select": 0}, 1) is None
