"""The sync app with a known extra cost inside its driver's code: every `pymysql.connections.Connection.query`
first spins for `DRIVER_BURN_US` microseconds (default 200) in a function whose code object belongs to
pymysql's own file, as a busy loop written in the driver would. A profiler that attributes CPU to layers
must show the extra cost in the driver layer, and nowhere else (tests/test_layers.py).

    DRIVER_BURN_US=200 bench run --profile -a burn=tests.profiling.driver_burn:sync_app ...
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pymysql.connections

from sync_app.main import create_app

_SOURCE = """
from pymysql.converters import escape_item

VALUES = ("it's", 1, 2.5, None, b"bytes")


def spin(seconds, clock):
    end = clock() + seconds
    while clock() < end:
        for value in VALUES:
            escape_item(value, "utf8mb4")
"""
_namespace: dict[str, Any] = {}
exec(compile(_SOURCE, pymysql.connections.__file__, "exec"), _namespace)  # noqa: S102 - our own source
spin: Callable[[float, Callable[[], float]], None] = _namespace["spin"]

BURN_S = float(os.environ.get("DRIVER_BURN_US", "200")) / 1e6
_query = pymysql.connections.Connection.query


def query(self: pymysql.connections.Connection, sql: str | bytes, unbuffered: bool = False) -> int:
    spin(BURN_S, time.perf_counter)
    return _query(self, sql, unbuffered)


pymysql.connections.Connection.query = query  # type: ignore[method-assign,assignment]
sync_app = create_app()
