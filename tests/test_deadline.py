"""shared/deadline.py on a real PostgreSQL: a call that waits for the server longer than DB_READ_TIMEOUT loses
its connection within the timeout (+ the watchdog's tick) and fails as an outage (the apps' 503), the pool
serves the next call on a new connection, and a call that ends in time is untouched. Through each
PostgreSQL app's own engine factory and driver, so what is tested is what they run; tests/test_faults.py
stalls the whole server under load."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from async_app.db import make_engine as make_async_engine
from bench.backends import Backend
from bench.catalog import APPS, AppEntry
from shared.config import Settings
from shared.deadline import TICK_S
from shared.dialects import outage
from sync_app.db import make_engine

SLOW = text("SELECT pg_sleep(3)")  # the server answers after 3 s: longer than the 1 s read timeout
FAST = text("SELECT pg_sleep(0.2)")
# Deselected under MariaDB, whose drivers have a read timeout of their own (tests/conftest.py).
WATCHED = [pytest.param(e, id=e.name) for e in APPS if e.contract and e.backend == "postgres"]


def calls(entry: AppEntry, settings: Settings) -> tuple[float, DBAPIError]:
    """A call in time, one past the timeout (how long it waited, and its error), then one more on the pool."""
    s = settings.model_copy(update={"db_read_timeout": 1, **dict(entry.settings)})
    driver = s.driver(entry.family)
    if entry.family == "sync":
        engine = make_engine(s, driver)
        try:
            with engine.connect() as conn:
                conn.execute(FAST)
                started = time.monotonic()
                with pytest.raises(DBAPIError) as caught:
                    conn.execute(SLOW)
                waited = time.monotonic() - started
            with engine.connect() as conn:  # the pool replaced the lost connection
                assert conn.execute(text("SELECT 1")).scalar() == 1
            return waited, caught.value
        finally:
            engine.dispose()

    async def scenario() -> tuple[float, DBAPIError]:
        engine = make_async_engine(s, driver)
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

    return asyncio.run(scenario())


@pytest.mark.parametrize("entry", WATCHED)
def test_a_call_past_the_read_timeout_fails_as_an_outage(
    entry: AppEntry, backend: Backend, settings: Settings
) -> None:
    waited, error = calls(entry, settings)
    assert 1 <= waited < 1 + TICK_S + 0.5, waited
    assert outage(error), error
