"""Where a request's CPU goes: py-spy's stacks -> CPU per request by layer (bench/analyse/layers.py).

The attribution rules on stacks written by hand, and, end to end, a known cost placed in one layer of one
app (tests/profiling/driver_burn.py: a busy loop in the driver's own file) that must show in that layer, for
that app, within 20% of its size, and in no other layer beyond the run's noise.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from bench.analyse.interference import waited_for
from bench.analyse.layers import (
    MEASURED,
    compared,
    layer_of,
    on_main_thread,
    parse_frame,
    parse_stacks,
    placed,
    read_layers,
    speedscope,
)
from bench.catalog import LAYERS
from tests.runs import bench_env, flags, run_bench

BURN_US = 300
ROOT = 'process 42:"python -m uvicorn x"'


def stack(*frames: str) -> list:  # type: ignore[type-arg]
    return [parse_frame(f) for f in frames]


def test_the_innermost_frame_of_a_known_package_names_the_layer() -> None:
    route = (
        "Thread.run (threading.py:1)",
        "run_endpoint_function (fastapi/routing.py:2)",
        "read_user (sync_app/routes/users.py:3)",
        "Session.get (sqlalchemy/orm/session.py:4)",
        "Cursor.execute (pymysql/cursors.py:5)",
        "SocketIO.readinto (socket.py:6)",
    )
    assert layer_of(stack(*route)) == "driver"  # socket.py is no package's: its caller's layer
    assert layer_of(stack(*route[:4])) == "orm"
    assert layer_of(stack(*route[:3])) == "app"
    assert layer_of(stack(*route[:2])) == "framework"
    assert layer_of(stack(*route[:1])) == "thread_handoff"
    assert layer_of(stack("main (x.py:1)", "loads (json/decoder.py:2)")) == "other"
    assert layer_of(stack("f (mypkg/api.py:1)"), app_packages=("mypkg",)) == "app"
    bridge = stack(
        "greenlet_spawn (sqlalchemy/util/_concurrency_py3k.py:1)", "execute (sqlalchemy/engine/base.py:2)"
    )
    assert layer_of(bridge) == "sql_core" and layer_of(bridge[:1]) == "async_bridge"
    worker = stack("AsyncIOBackend.run_sync_in_worker_thread (anyio/_backends/_asyncio.py:1)")
    assert layer_of(worker) == "thread_handoff"
    assert layer_of(stack("TaskGroup.__aexit__ (anyio/_backends/_asyncio.py:1)")) == "framework"
    # absolute paths (py-spy without a short name) are cut at site-packages or the stdlib
    frame = parse_frame("query (/venv/lib/python3.11/site-packages/pymysql/connections.py:557)")
    assert (frame.function, frame.path, frame.line) == ("query", "pymysql/connections.py", 557)


def test_threads_and_the_raw_format() -> None:
    text = (
        f"{ROOT};thread (42): MainThread;run (uvicorn/server.py:1) 7\n{ROOT};thread (43): AnyIO worker "
        "thread;Thread.run (threading.py:1);q (pymysql/c.py:2) 3\njunk line without a count\n"
    )
    stacks = parse_stacks(text)
    assert [n for _, n in stacks] == [7, 3]
    assert [on_main_thread(s) for s, _ in stacks] == [True, False]
    assert [layer_of(s) for s, _ in stacks] == ["server", "driver"]
    profile = speedscope(stacks, "p")
    assert profile["profiles"][0]["weights"] == [7, 3] and profile["profiles"][0]["endValue"] == 10
    frames = profile["shared"]["frames"]
    assert [frames[i]["name"] for i in profile["profiles"][0]["samples"][1]][-1] == "q"


PROFILES_ONLY: dict[str, Any] = {
    "repeats": 0,
    "sweep_repeats": 0,
    "paired_repeats": 0,
    "duration": None,
    "warmup": None,
}


@pytest.mark.e2e
def test_a_known_cost_in_the_driver_shows_in_the_driver_layer_only(tmp_path: Path) -> None:
    """300 µs of busy loop in pymysql's own file before every query (one per request in slow_db at 0 ms),
    against the same app without it, each profiled alone in the same run."""
    burn = "burn=tests.profiling.driver_burn:sync_app"
    # only the profiled points, at their own length: no solo, sweep or paired ones
    options = flags(
        apps=["sync", burn], scenarios=["slow_db"], db_ms=0, users=8, profile=True, **PROFILES_ONLY
    )
    run = run_bench(*options, out=tmp_path, env=bench_env() | {"DRIVER_BURN_US": str(BURN_US)})
    assert not (run / "points.csv").exists()  # profiled points give no row for a verdict
    for summary in run.glob("points/*/profile.json"):
        point = json.loads(summary.read_text())["point"]
        assert point["valid"], point["invalid_reasons"]
        assert point["com_select"] / point["requests"] == pytest.approx(1, abs=0.01)  # one query per request
    assert len(list((run / "flamegraphs").glob("*.speedscope.json"))) == 2
    layers = read_layers(run)
    assert set(layers["layer"]) == {*LAYERS, MEASURED}
    per = layers.pivot_table(index="layer", columns="app", values="us_per_request")
    diff = per["burn"] - per["sync"]
    assert 0.8 * BURN_US <= diff["driver"] <= 1.2 * BURN_US, per
    # No other layer moved by more than 15% of the cost, beyond what the run's own noise moved the measured
    # CPU (two processes, minutes apart: 288-530 µs for this 300 µs in four runs, the driver 288-324).
    noise = abs(diff[MEASURED] - BURN_US)
    others = diff.drop(["driver", MEASURED])
    assert (others.abs() <= 0.15 * BURN_US + noise).all(), per
    held = layers.pivot_table(index="layer", columns="app", values="gil_us")
    for app in ("sync", "burn"):  # the layers account for the CPU the telemetry measured
        assert per[app].drop(MEASURED).sum() == pytest.approx(per[app][MEASURED], rel=0.05), per
        # most of it seen on the GIL holder's stack (the rest placed by the running threads' samples)
        assert 0.6 <= held[app][MEASURED] / per[app][MEASURED] <= 1.3, held


def test_cpu_without_the_gil_is_placed_where_the_running_threads_were() -> None:
    gil = Counter({"driver": 100.0, "orm": 300.0})
    running = Counter({"driver": 400.0, "orm": 300.0, "app": 200.0})  # more than the GIL holder's: 300 + 200
    layers = placed(gil, running, measured=900.0)
    assert layers["driver"] == pytest.approx(100 + 500 * 300 / 500)
    assert layers["app"] == pytest.approx(500 * 200 / 500) and layers["orm"] == 300
    assert sum(layers.values()) == pytest.approx(900)
    # more GIL-holder CPU than measured: scaled down to it, in its own proportions
    assert placed(gil, running, measured=200.0) == Counter({"driver": 50.0, "orm": 150.0})
    assert sum(placed(gil, running, measured=200.0).values()) == pytest.approx(200)
    # no running threads' samples, or no measurement: the GIL holder's alone
    assert placed(gil, None, measured=900.0) == gil and placed(gil, running, math.nan) == gil
    # nothing in the running threads beyond the GIL holder's: the rest is `other`
    assert placed(gil, Counter(gil), measured=500.0)["other"] == pytest.approx(100)


def test_compared_pairs_sides_of_a_catalog_pair() -> None:
    rows = [
        {
            "backend": "mariadb",
            "app": app,
            "scenario": "read_heavy",
            "users": 16,
            "db_ms": 0,
            "layer": layer,
            "us_per_request": us,
            "samples": 1,
        }
        for app, values in (("sync", (100, 40, 140)), ("async", (60, 90, 150)))
        for layer, us in zip(("orm", "async_bridge", MEASURED), values, strict=True)
    ]
    table = compared(pd.DataFrame(rows))
    got = table.set_index("layer")["diff_us"].to_dict()
    assert got == {"orm": -40, "async_bridge": 50, MEASURED: 10}
    assert set(table["sync"]) == {"sync"} and set(table["async_"]) == {"async"}


def test_what_the_probes_waited_for_is_named_from_the_profile() -> None:
    """probe_waits()'s columns in words: the GIL, the CPU, the event loop, or a wait py-spy cannot see."""

    def words(busy: float, gil: float, loop: float = 0.1) -> str:
        return waited_for(pd.Series({"cpu_busy": busy, "gil_share": gil, "loop_share": loop}))

    assert words(1.0, 0.99).startswith("the GIL, and the CPU")
    assert words(1.0, 0.13).startswith("the CPU, not the GIL")
    assert words(1.0, 0.5).startswith("the GIL part of the time")
    assert words(0.93, 0.13, loop=1.0).startswith("the event loop")
    assert words(0.04, 0.6, loop=1.0).startswith("not the CPU")
    assert "busy 100%, 41% of it holding the GIL" in words(1.0, 0.41)
    assert words(math.nan, math.nan) == ""
