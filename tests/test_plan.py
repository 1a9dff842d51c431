"""plan_points: which points a run measures, in which order (pure: no server, nothing started)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

from bench.catalog import resolve_app
from bench.config import Matrix, RunConfig
from bench.measure.point import Point, plan_points


def plan(**matrix: Any) -> list[Point]:
    m = replace(Matrix(), **matrix)
    return plan_points(RunConfig(matrix=m), [resolve_app(a) for a in m.apps])


def test_solo_points_every_app_scenario_and_load_each_repeat() -> None:
    points = plan(
        apps=("sync", "async"), scenarios=("read_heavy",), users=(8, 32), repeats=3, paired_repeats=0
    )
    assert Counter((p.app, p.users) for p in points) == {
        ("sync", 8): 3,
        ("sync", 32): 3,
        ("async", 8): 3,
        ("async", 32): 3,
    }
    assert all(p.partner is None and p.db_ms == 0 and p.rate is None for p in points)
    # repeat by repeat: every point of repeat 1 before any of repeat 2
    assert [p.repeat for p in points] == sorted(p.repeat for p in points)


def test_paired_points_at_the_headline_load_for_the_catalogs_pairs() -> None:
    points = plan(
        apps=("sync", "async"),
        scenarios=("read_heavy", "write_heavy"),
        users=(16, 64),
        repeats=0,
        paired_repeats=5,
        headline_users=16,
    )
    assert len(points) == 2 * 5 and all(p.partner for p in points)
    assert {(p.app, p.partner, p.users) for p in points} == {("sync", "async", 16)}
    assert Counter(p.scenario for p in points) == {"read_heavy": 5, "write_heavy": 5}


def test_the_latency_sweep_covers_every_database_time_at_its_own_repeats() -> None:
    points = plan(
        apps=("sync",),
        scenarios=("slow_db", "read_heavy"),
        users=(16, 64),
        repeats=1,
        sweep_repeats=4,
        paired_repeats=0,
        db_ms=(0, 20),
        headline_users=16,
    )
    sweep = [p for p in points if p.scenario == "slow_db"]
    assert Counter((p.users, p.db_ms) for p in sweep) == {(16, 0): 4, (16, 20): 4}  # at the headline load
    assert Counter(p.users for p in points if p.scenario == "read_heavy") == {16: 1, 64: 1}


def test_read_only_apps_are_left_out_of_writing_scenarios() -> None:
    points = plan(
        apps=("sync", "sync-raw"),
        scenarios=("read_heavy", "write_heavy"),
        users=(8,),
        repeats=1,
        paired_repeats=0,
    )
    assert {(p.app, p.scenario) for p in points} == {
        ("sync", "read_heavy"),
        ("sync", "write_heavy"),
        ("sync-raw", "read_heavy"),
    }


def test_open_loop_rates_replace_the_user_levels() -> None:
    points = plan(
        apps=("sync",),
        scenarios=("read_heavy",),
        users=(8, 32),
        repeats=2,
        paired_repeats=0,
        rates=(50.0, 100.0),
    )
    assert Counter((p.rate, p.users) for p in points) == {(50.0, 1): 2, (100.0, 1): 2}


def test_the_order_is_shuffled_within_a_repeat_and_repeats_exactly() -> None:
    kw: dict[str, Any] = {
        "apps": ("sync", "async"),
        "scenarios": ("read_heavy", "write_heavy", "mixed_crud"),
        "users": (4, 8, 16, 32),
        "repeats": 2,
        "paired_repeats": 2,
    }
    first, again = plan(**kw), plan(**kw)
    assert first == again  # the seed fixes the order
    block = [p for p in first if p.repeat == 1]
    canonical = sorted(block, key=lambda p: (p.app, p.scenario, p.users, p.partner or ""))
    assert (
        block != canonical
        and sorted(block, key=lambda p: (p.app, p.scenario, p.users, p.partner or "")) == canonical
    )
    assert plan(**kw, shuffle_seed=7) != first


def test_recording_overhead_adds_an_unrecorded_twin_of_every_solo_point() -> None:
    points = plan(
        apps=("sync",),
        scenarios=("read_heavy",),
        users=(8,),
        repeats=1,
        paired_repeats=0,
        recording_overhead=True,
    )
    assert sorted(p.record for p in points) == [False, True]
