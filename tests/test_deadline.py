"""shared/deadline.py on a real server: a call that waits for the server longer than DB_READ_TIMEOUT loses its
connection within the timeout (+ the watchdog's tick) and fails as an outage (the apps' 503), the pool serves
the next call on a new connection, and a call that ends in time is untouched. Through the own engine factory
and driver of each app whose driver has no read timeout (the PostgreSQL apps, and aiomysql on MariaDB), so
what is tested is what they run; tests/test_faults.py stalls the whole server under load."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from async_app.db import make_engine as make_async_engine
from bench.backends import Backend
from bench.catalog import APPS, AppEntry
from shared.config import Settings
from shared.deadline import TICK_S
from shared.dialects import DIALECTS, db_sleep, outage
from sync_app.db import make_engine

SLOW = select(db_sleep(3))  # the server answers after 3 s: longer than the 1 s read timeout
FAST = select(db_sleep(0.2))


def driver(entry: AppEntry) -> str:
    return str(
        dict(entry.settings).get(f"{entry.family}_driver")
        or DIALECTS[entry.backend].default_driver(entry.family)
    )


# Each runs under its own backend only (tests/conftest.py deselects it under the other).
WATCHED = [
    pytest.param(e, id=e.name)
    for e in APPS
    if e.contract and driver(e) in DIALECTS[e.backend].watchdog_drivers
]


def calls(entry: AppEntry, settings: Settings) -> tuple[float, DBAPIError]:
    """A call in time, one past the timeout (how long it waited, and its error), then one more on the pool."""
    s = settings.model_copy(update={"db_read_timeout": 1, **dict(entry.settings)})
    name = s.driver(entry.family)
    assert name == driver(entry), name
    if entry.family == "sync":
        engine = make_engine(s, name)
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
        engine = make_async_engine(s, name)
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
