"""Fixtures: a real MariaDB (started by the tests themselves if needed) and a client per app.

The sync app is driven by FastAPI's TestClient: plain blocking code. The async app is driven by
httpx.AsyncClient over ASGITransport with its lifespan run (asgi-lifespan), on an event loop that an
AnyIO blocking portal runs in a thread, so one suite of plain test functions covers both apps.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

import async_app.main
import sync_app.main
from bench.database import create_schema, ensure_database, settings_for, test_database_name
from shared.config import Settings
from shared.db_url import build_url, connect_args

Call = tuple[str, str, dict[str, Any]]


class Response(Protocol):
    """What the tests read of a response (httpx's, or httpx2's from TestClient)."""

    @property
    def status_code(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def content(self) -> bytes: ...
    def json(self) -> Any: ...


class Client(Protocol):
    kind: str
    app: FastAPI

    def request(self, method: str, url: str, **kwargs: Any) -> Response: ...
    def concurrently(self, calls: list[Call]) -> list[Response]: ...


@dataclass
class SyncClient:
    """The sync app through TestClient; concurrent calls come from real threads."""

    client: TestClient
    app: FastAPI
    kind: str = "sync"

    def request(self, method: str, url: str, **kwargs: Any) -> Response:
        return self.client.request(method, url, **kwargs)

    def concurrently(self, calls: list[Call]) -> list[Response]:
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            return list(pool.map(lambda c: self.request(c[0], c[1], **c[2]), calls))


@dataclass
class AsyncClient:
    """The async app through httpx.AsyncClient + ASGITransport; concurrent calls are gathered."""

    portal: BlockingPortal
    client: httpx.AsyncClient
    app: FastAPI
    kind: str = "async"

    def request(self, method: str, url: str, **kwargs: Any) -> Response:
        return self.portal.call(partial(self.client.request, method, url, **kwargs))

    def concurrently(self, calls: list[Call]) -> list[Response]:
        async def gather() -> list[Response]:
            return list(await asyncio.gather(*(self.client.request(m, u, **kw) for m, u, kw in calls)))

        return list(self.portal.call(gather))


@asynccontextmanager
async def _async_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://test") as client,
    ):
        yield client


@pytest.fixture(scope="session")
def base_settings() -> Settings:
    """The configured server (private MariaDB by default), started if it is not running."""
    ensure_database()
    return Settings()


@pytest.fixture(scope="session")
def settings(base_settings: Settings) -> Settings:
    """Settings pointing at the separate test database, with small, explicit limits."""
    s = settings_for(base_settings, test_database_name(base_settings))
    s = s.model_copy(
        update={"pool_size": 5, "max_overflow": 0, "pool_timeout": 10.0, "argon2_memory_cost": 8192}
    )
    create_schema(s)
    return s


@pytest.fixture(scope="session")
def db_engine(settings: Settings) -> Iterator[Engine]:
    engine = create_engine(build_url(settings, "pymysql"), connect_args=connect_args(settings, "pymysql"))
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def clean_tables(request: pytest.FixtureRequest) -> None:
    """Each test that touches the database starts from empty tables."""
    if "db_engine" not in request.fixturenames and "client" not in request.fixturenames:
        return
    engine: Engine = request.getfixturevalue("db_engine")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM items"))
        conn.execute(text("DELETE FROM users"))


def make_client(kind: str, app: FastAPI) -> Iterator[Client]:
    if kind == "sync":
        with TestClient(app) as tc:
            yield SyncClient(tc, app)
    else:
        with start_blocking_portal() as portal, portal.wrap_async_context_manager(_async_client(app)) as ac:
            yield AsyncClient(portal, ac, app)


APP_FACTORIES: dict[str, Callable[[Settings], FastAPI]] = {
    "sync": sync_app.main.create_app,
    "async": async_app.main.create_app,
}


# Each app with its default driver, and with the other driver of its like-for-like pair.
CLIENT_PARAMS = [
    pytest.param(("sync", {}), id="sync"),
    pytest.param(("async", {}), id="async"),
    pytest.param(("sync", {"sync_driver": "mysqlclient"}), id="sync-mysqlclient"),
    pytest.param(("async", {"async_driver": "aiomysql"}), id="async-aiomysql"),
]


@pytest.fixture(params=CLIENT_PARAMS)
def client(request: pytest.FixtureRequest, settings: Settings, db_engine: Engine) -> Iterator[Client]:
    kind, overrides = request.param
    if overrides.get("sync_driver") == "mysqlclient":
        pytest.importorskip("MySQLdb", reason="mysqlclient is not installed (needs libmariadb-dev)")
    yield from make_client(kind, APP_FACTORIES[kind](settings.model_copy(update=overrides)))


@pytest.fixture
def client_factory(settings: Settings) -> Callable[[str, Settings], Iterator[Client]]:
    return lambda kind, s: make_client(kind, APP_FACTORIES[kind](s))


def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
