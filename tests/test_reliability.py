"""Reliability: the sync app cannot deadlock on its thread pool; the naive variant shows why it matters."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from sqlalchemy import Engine

import async_app.main
import variants.blocking
import variants.naive
from shared.config import Settings
from tests.conftest import Client, SyncClient, make_client

TIGHT = {"pool_size": 2, "max_overflow": 0, "thread_tokens": 2, "pool_timeout": 2.0}


def burst(client: Client, n: int = 24) -> list[int]:
    return [r.status_code for r in client.concurrently([("GET", "/users", {})] * n)]


def test_sync_app_survives_more_in_flight_requests_than_pool_plus_tokens(
    client_factory: Callable[[str, Settings], Iterator[Client]], settings: Settings, db_engine: Engine
) -> None:
    for c in client_factory("sync", settings.model_copy(update=TIGHT)):
        assert burst(c) == [200] * 24


def test_naive_variant_deadlocks_until_the_pool_timeout(settings: Settings, db_engine: Engine) -> None:
    """The same burst against the naive dependency: threads wait on connections held by requests
    that wait for a thread. Only the pool timeout breaks the cycle, as 503s (never 500s)."""
    app = variants.naive.create_app(settings.model_copy(update=TIGHT))
    for c in make_client("sync", app):
        assert isinstance(c, SyncClient)
        codes = burst(c)
        assert 503 in codes, codes
        assert set(codes) <= {200, 503}, codes


def test_the_async_anti_pattern_serves_one_request_at_a_time(settings: Settings, db_engine: Engine) -> None:
    """async def routes on the blocking Session: 6 concurrent 100 ms queries take 6 x 100 ms, because
    each one stalls the event loop; the proper async app overlaps them."""
    timings = {}
    for name, app in (
        ("blocking", variants.blocking.create_app(settings)),
        ("async", async_app.main.create_app(settings)),
    ):
        for c in make_client("async", app):
            c.request("GET", "/healthz")  # connect first
            start = time.perf_counter()
            codes = [r.status_code for r in c.concurrently([("GET", "/io/sleep?ms=100", {})] * 6)]
            timings[name] = time.perf_counter() - start
            assert codes == [200] * 6
    assert timings["blocking"] >= 0.6, timings
    assert timings["async"] < 0.45, timings
