"""Fixtures: real MariaDB and PostgreSQL servers (started by the tests themselves if needed; every
server-backed test runs on each of TEST_BACKENDS) and a client per app.

The sync app is driven by FastAPI's TestClient: plain blocking code. The async app is driven by
httpx.AsyncClient over ASGITransport with its lifespan run (asgi-lifespan), on an event loop that an
AnyIO blocking portal runs in a thread, so one suite of plain test functions covers both apps.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from bench import processes
from bench.backends import Backend, backend_for
from bench.backends.base import TEST_DATABASE
from bench.catalog import APPS, DEFAULT_APPS_OF, AppEntry, resolve_app
from bench.processes import ManagedProcess
from bench.stack import settings_env, uvicorn_argv
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
    @property
    def headers(self) -> Any: ...
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


# The database products every server-backed test runs against (each a bench/backends/ module).
TEST_BACKENDS = ["mariadb", "postgres"]


@pytest.fixture(scope="session", params=TEST_BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    """A backend whose server is up: its private server (started if it is not running), or the server of
    DATABASE_URL when that names this backend (other backends are then skipped)."""
    chosen = backend_for(request.param)
    env = Settings()
    if env.database_url is not None and env.dialect.name != chosen.name:
        pytest.skip(f"DATABASE_URL names a {env.dialect.name} server, not {chosen.name}")
    chosen.ensure(env)
    return chosen


@pytest.fixture(scope="session")
def base_settings(backend: Backend) -> Settings:
    """The backend's server, pointed at the test database: tests never write to the one `make bench`
    measures in."""
    return backend.settings(Settings(), TEST_DATABASE)


@pytest.fixture(scope="session")
def settings(base_settings: Settings) -> Settings:
    """The test database with small, explicit limits."""
    return base_settings.model_copy(
        update={"pool_size": 5, "max_overflow": 0, "pool_timeout": 10.0, "argon2_memory_cost": 8192}
    )


@pytest.fixture(scope="session")
def db_engine(settings: Settings) -> Iterator[Engine]:
    """A plain engine on the test database, for the tests' own reads (the backend's sync driver)."""
    driver = settings.driver("sync")
    engine = create_engine(
        build_url(settings, driver), connect_args=connect_args(settings, driver), pool_pre_ping=True
    )  # pre-ping: the fault tests restart the server under it
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


def factory(entry: AppEntry) -> Callable[[Settings], FastAPI]:
    """The catalog entry's app factory, imported (`module:function`)."""
    module, _, name = entry.factory.partition(":")
    made: Callable[[Settings], FastAPI] = getattr(importlib.import_module(module), name)
    return made


def build(entry: AppEntry, settings: Settings) -> FastAPI:
    return factory(entry)(settings.model_copy(update=dict(entry.settings)))


# Every catalog app that serves the whole API (the proper apps on each of their drivers), on its backend.
CONTRACT_APPS = [pytest.param(entry, id=entry.name) for entry in APPS if entry.contract]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """An app runs on one backend: a test parametrised with an app (a `client`, or an `AppEntry` param) is
    deselected under the other backends (not skipped, which would list one line per app and test). A test
    that needs a database server (the `backend` fixture, directly or through another) is marked `server`."""
    keep: list[pytest.Item] = []
    other: list[pytest.Item] = []
    for item in items:
        if "backend" in getattr(item, "fixturenames", ()):  # `make test-fast` leaves these out
            item.add_marker(pytest.mark.server)
        params = getattr(getattr(item, "callspec", None), "params", {})
        backend = params.get("backend")
        entries = [v for v in params.values() if isinstance(v, AppEntry)]
        mismatch = backend is not None and any(entry.backend != backend for entry in entries)
        (other if mismatch else keep).append(item)
    if other:
        config.hook.pytest_deselected(items=other)
        items[:] = keep


@pytest.fixture(params=CONTRACT_APPS)
def client(
    request: pytest.FixtureRequest, backend: Backend, settings: Settings, db_engine: Engine
) -> Iterator[Client]:
    entry: AppEntry = request.param
    if entry.backend != backend.name:
        pytest.skip(f"{entry.name} runs on {entry.backend}")
    if entry.settings.get("sync_driver") == "mysqlclient":
        pytest.importorskip("MySQLdb", reason="mysqlclient is not installed (needs libmariadb-dev)")
    yield from make_client(entry.family, build(entry, settings))


# Every backend's default apps (its sync/async comparison), as parameters of server-backed tests.
DEFAULT_APPS = [
    pytest.param(e, id=e.name) for e in APPS if e.contract and e.name in DEFAULT_APPS_OF.get(e.backend, ())
]


def proper_app(kind: str, backend: str) -> AppEntry:
    """The proper sync or async app of a backend (the first contract app of that family)."""
    return next(e for e in APPS if e.contract and e.family == kind and e.backend == backend)


@pytest.fixture
def client_factory(backend: Backend) -> Callable[[str, Settings], Iterator[Client]]:
    """`client_factory("sync", settings)`: the backend's proper sync (or async) app with other settings."""
    return lambda kind, s: make_client(kind, build(proper_app(kind, backend.name), s))


@dataclass
class Served:
    """An app served for real: a uvicorn process on a free port of 127.0.0.1."""

    entry: AppEntry
    base_url: str
    proc: ManagedProcess
    log_path: Path

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.base_url}{path}", timeout=10, **kwargs)


@contextmanager
def serve(entry: AppEntry, settings: Settings, log_path: Path) -> Iterator[Served]:
    """Start the catalog app `entry` with `settings` (and the entry's own), stop it afterwards."""
    spec = resolve_app(entry.name)
    port = processes.free_port()
    env = settings_env(settings.model_copy(update=dict(entry.settings))) | dict(spec.env)
    proc = processes.spawn(f"app {entry.name}", uvicorn_argv(spec, port), env=env, log_path=log_path)
    try:
        processes.wait_healthy(f"http://127.0.0.1:{port}", proc)
        yield Served(entry, f"http://127.0.0.1:{port}", proc, log_path)
    finally:
        proc.stop()


def closed_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
