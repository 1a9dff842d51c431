"""Reliability: the sync app cannot deadlock on its thread pool; the naive variant shows why it matters."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlalchemy import Engine

from shared.config import Settings
from sync_app.variants import create_variant
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
    app = create_variant("naive")
    app.state.settings = settings.model_copy(update=TIGHT)
    for c in make_client("sync", app):
        assert isinstance(c, SyncClient)
        codes = burst(c)
        assert 503 in codes, codes
        assert set(codes) <= {200, 503}, codes
