"""shared/deadline.py on a real PostgreSQL: a call that waits for the server longer than DB_READ_TIMEOUT loses
its connection within the timeout (+ the watchdog's tick) and fails as an outage (the apps' 503), the pool
serves the next call on a new connection, and a call that ends in time is untouched. The apps' own engine
factories, so what is tested is what they run; tests/test_faults.py stalls the whole server under load."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from async_app.db import make_engine as make_async_engine
from bench.backends import Backend
from shared.config import Settings
from shared.deadline import TICK_S
from shared.dialects import outage
from sync_app.db import make_engine

SLOW = text("SELECT pg_sleep(3)")  # the server answers after 3 s: longer than the 1 s read timeout
FAST = text("SELECT pg_sleep(0.2)")


@pytest.fixture
def pg(backend: Backend, settings: Settings) -> Settings:
    if backend.name != "postgres":
        pytest.skip("the watchdog serves PostgreSQL's drivers (MariaDB's have a read timeout of their own)")
    return settings.model_copy(update={"db_read_timeout": 1})


def test_psycopg_sync_call_past_the_timeout_fails_as_an_outage(pg: Settings) -> None:
    engine = make_engine(pg, "psycopg")
    try:
        with engine.connect() as conn:
            conn.execute(FAST)  # in time: untouched
            started = time.monotonic()
            with pytest.raises(DBAPIError) as caught:
                conn.execute(SLOW)
            waited = time.monotonic() - started
        assert pg.db_read_timeout <= waited < pg.db_read_timeout + TICK_S + 0.5, waited
        assert outage(caught.value), caught.value
        with engine.connect() as conn:  # the pool replaced the lost connection
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize("driver", ["psycopg", "asyncpg"])
def test_async_call_past_the_timeout_fails_as_an_outage(pg: Settings, driver: str) -> None:
    async def scenario() -> tuple[float, DBAPIError]:
        engine = make_async_engine(pg, driver)
        try:
            async with engine.connect() as conn:
                await conn.execute(FAST)
                started = time.monotonic()
                with pytest.raises(DBAPIError) as caught:
                    await conn.execute(SLOW)
                waited = time.monotonic() - started
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar() == 1
            return waited, caught.value
        finally:
            await engine.dispose()

    waited, error = asyncio.run(scenario())
    assert pg.db_read_timeout <= waited < pg.db_read_timeout + TICK_S + 0.5, waited
    assert outage(error), error
