"""Ceiling: `def` routes on raw PyMySQL with a plain pool (a queue of connections, as many as the ORM
apps' pool): no ORM, no Session, no response-model validation. Read routes, /io/sleep, /healthz, /limits."""

from __future__ import annotations

import queue
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pymysql
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from shared import schemas
from shared.config import Settings, get_settings
from shared.web import apply_limits, limits
from variants import raw


class Pool:
    """At most `size` connections, opened on demand, reused last-in first-out; a broken one is dropped."""

    def __init__(self, settings: Settings) -> None:
        timeouts = {"read_timeout": settings.db_read_timeout, "write_timeout": settings.db_read_timeout}
        self.kwargs = {**raw.connect_kwargs(settings), **timeouts, "ssl_disabled": True}
        self.timeout = settings.pool_timeout
        self.free: queue.LifoQueue[pymysql.Connection[Any]] = queue.LifoQueue()
        self.slots = threading.BoundedSemaphore(settings.pool_size + settings.max_overflow)

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        if not self.slots.acquire(timeout=self.timeout):
            raise TimeoutError("no free connection in the pool")
        try:
            try:
                conn = self.free.get_nowait()
            except queue.Empty:
                conn = pymysql.connect(**self.kwargs)
            try:
                with conn.cursor() as cur:
                    yield cur
            except pymysql.MySQLError:
                conn.close()
                raise
            self.free.put(conn)
        finally:
            self.slots.release()

    def close(self) -> None:
        while not self.free.empty():
            self.free.get_nowait().close()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    apply_limits(app)
    app.state.pool = Pool(app.state.settings)
    try:
        yield
    finally:
        app.state.pool.close()


router = APIRouter(tags=["raw"])


def users_with_items(pool: Pool, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    with pool.cursor() as cur:
        cur.execute(sql, params)
        return raw.users_json(cur.fetchall())


@router.get("/users/{user_id}", response_model=None)
def get_user(*, request: Request, user_id: schemas.UserId) -> JSONResponse:
    found = users_with_items(request.app.state.pool, raw.USER_BY_ID, (user_id,))
    return JSONResponse(found[0]) if found else raw.not_found(user_id)


@router.get("/users", response_model=None)
def list_users(*, request: Request, skip: schemas.Skip = 0, limit: schemas.Limit = 10) -> JSONResponse:
    return JSONResponse(users_with_items(request.app.state.pool, raw.USERS_PAGE, (limit, skip)))


@router.get("/io/sleep", response_model=None)
def io_sleep(*, request: Request, ms: schemas.SleepMs = 0) -> JSONResponse:
    with request.app.state.pool.cursor() as cur:
        cur.execute(raw.SLEEP, (ms / 1000,))
        cur.fetchall()
    return JSONResponse({"slept_ms": ms})


@router.get("/healthz", response_model=None)
def healthz(*, request: Request) -> JSONResponse:
    with request.app.state.pool.cursor() as cur:
        cur.execute(raw.PING)
        cur.fetchall()
    return JSONResponse({"status": "ok", "detail": None})


@router.get("/limits", response_model=schemas.Limits)
def get_limits(*, request: Request) -> schemas.Limits:
    return limits(request.app, kind="sync", driver="pymysql")


def create_app(settings: Settings | None = None) -> FastAPI:
    return raw.create(
        title="Users CRUD (sync, raw PyMySQL)",
        variant="raw",
        routers=[router],
        lifespan=lifespan,
        settings=settings or get_settings(),
        driver_errors=(pymysql.MySQLError,),
    )
