"""Reliability: the sync app cannot deadlock on its thread pool; the naive variant shows why it matters."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine

import async_app.main
import variants.blocking
import variants.naive
from bench.backends import Backend
from bench.catalog import APP_BY_NAME, AppEntry
from shared.config import Settings
from tests.conftest import Client, SyncClient, make_client, serve

TIGHT = {"pool_size": 2, "max_overflow": 0, "thread_tokens": 2, "pool_timeout": 2.0}


def burst(client: Client, n: int = 24) -> list[int]:
    return [r.status_code for r in client.concurrently([("GET", "/users", {})] * n)]


def test_sync_app_survives_more_in_flight_requests_than_pool_plus_tokens(
    client_factory: Callable[[str, Settings], Iterator[Client]], settings: Settings, db_engine: Engine
) -> None:
    for c in client_factory("sync", settings.model_copy(update=TIGHT)):
        assert burst(c) == [200] * 24


@pytest.mark.parametrize("naive", [APP_BY_NAME["sync-naive"]], ids=lambda e: e.name)
def test_naive_variant_deadlocks_until_the_pool_timeout(
    naive: AppEntry, settings: Settings, db_engine: Engine
) -> None:
    """The same burst against the naive dependency: threads wait on connections held by requests
    that wait for a thread. Only the pool timeout breaks the cycle, as 503s (never 500s). (The variant is
    catalogued on MariaDB; the deadlock is FastAPI's, whatever the database.)"""
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


@pytest.mark.parametrize("raw", [APP_BY_NAME["sync-raw"], APP_BY_NAME["async-raw"]], ids=lambda e: e.name)
def test_the_raw_ceilings_answer_what_the_orm_apps_answer(
    raw: AppEntry, backend: Backend, settings: Settings, db_engine: Engine, tmp_path: Path
) -> None:
    """Same routes, same bodies, same statements (one SELECT per read, as the ORM apps after the lean
    change), without the ORM: otherwise the ceiling would not measure what the ORM costs."""
    backend.seed(settings, 30, 3)
    orm = APP_BY_NAME[raw.family]
    with serve(raw, settings, tmp_path / "raw.log") as r, serve(orm, settings, tmp_path / "orm.log") as o:
        for path in ("/users/7", "/users?skip=3&limit=5", "/users/999999", "/io/sleep?ms=1", "/users/0"):
            a, b = r.get(path), o.get(path)
            assert (a.status_code, a.json()) == (b.status_code, b.json()), path
        counters = backend.counters(settings)
        try:
            for app in (r, o):
                before = counters.read()
                for _ in range(20):
                    app.get("/users/7")
                after = counters.read()
                assert after["select"] - before["select"] == 20, app.entry.name
        finally:
            counters.close()


@pytest.mark.parametrize("admission", [APP_BY_NAME["async-admission"]], ids=lambda e: e.name)
def test_admission_control_keeps_pool_size_requests_in_progress_and_queues_the_rest(
    admission: AppEntry, backend: Backend, settings: Settings, db_engine: Engine, tmp_path: Path
) -> None:
    """Limit 2: six concurrent 200 ms queries run two at a time (about 600 ms), none refused; the plain
    async app with 8 connections runs them all at once (about 200 ms)."""
    timings = {}
    for entry, pool in ((admission, 2), (APP_BY_NAME["async"], 8)):
        with serve(
            entry, settings.model_copy(update={"pool_size": pool}), tmp_path / f"{entry.name}.log"
        ) as app:
            app.get("/healthz")
            start = time.perf_counter()
            with ThreadPoolExecutor(6) as threads:
                codes = list(threads.map(lambda _: app.get("/io/sleep?ms=200").status_code, range(6)))
            timings[entry.name] = time.perf_counter() - start
            assert codes == [200] * 6
    assert timings["async-admission"] >= 0.55, timings
    assert timings["async"] < 0.45, timings
