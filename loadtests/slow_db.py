"""slow_db: GET /io/sleep?ms=N, a query that waits N ms in the database (BENCH_DB_MS or --db-ms).

The sweep over N (0, 5, 20, 50 ms) shows where waiting on I/O starts to favour async."""

from __future__ import annotations

from typing import Any

from locust import task

from loadtests.common import BenchUser, expect
from loadtests.options import Params

expect({"GET /io/sleep": {"select": 1}})


class SlowDb(BenchUser):
    @task
    def sleep(self) -> None:
        ms = Params.db_ms

        def check(body: Any) -> str | None:
            return None if body == {"slept_ms": ms} else f"unexpected body {body!r}"

        self.call("GET", f"/io/sleep?ms={ms}", name="/io/sleep", status=200, check=check)
