"""Ceiling: `async def` routes on raw asyncmy with its own pool (as many connections as the ORM apps'
pool): no ORM, no AsyncSession, no response-model validation. Read routes, /io/sleep, /healthz, /limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncmy
from asyncmy.errors import MySQLError
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse

from shared import schemas
from shared.config import Settings, get_settings
from shared.web import apply_limits, limits
from variants import raw


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    apply_limits(app)
    s: Settings = app.state.settings
    kwargs = raw.connect_kwargs(s) | {"read_timeout": s.db_read_timeout}
    app.state.pool = await asyncmy.create_pool(minsize=0, maxsize=s.pool_size + s.max_overflow, **kwargs)
    try:
        yield
    finally:
        app.state.pool.close()
        await app.state.pool.wait_closed()


@asynccontextmanager
async def cursor(request: Request) -> AsyncIterator[Any]:
    pool = request.app.state.pool
    async with asyncio.timeout(request.app.state.settings.pool_timeout):
        conn = await pool.acquire()
    try:
        async with conn.cursor() as cur:
            yield cur
    finally:
        pool.release(conn)  # a connection that failed is closed; the pool drops closed ones


router = APIRouter(tags=["raw"])


async def users_with_items(request: Request, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    async with cursor(request) as cur:
        await cur.execute(sql, params)
        return raw.users_json(await cur.fetchall())


@router.get("/users/{user_id}", response_model=None)
async def get_user(*, request: Request, user_id: schemas.UserId) -> JSONResponse:
    found = await users_with_items(request, raw.USER_BY_ID, (user_id,))
    return JSONResponse(found[0]) if found else raw.not_found(user_id)


@router.get("/users", response_model=None)
async def list_users(*, request: Request, skip: schemas.Skip = 0, limit: schemas.Limit = 10) -> JSONResponse:
    return JSONResponse(await users_with_items(request, raw.USERS_PAGE, (limit, skip)))


@router.get("/io/sleep", response_model=None)
async def io_sleep(*, request: Request, ms: schemas.SleepMs = 0) -> JSONResponse:
    async with cursor(request) as cur:
        await cur.execute(raw.SLEEP, (ms / 1000,))
        await cur.fetchall()
    return JSONResponse({"slept_ms": ms})


@router.get("/healthz", response_model=None)
async def healthz(*, request: Request) -> JSONResponse:
    async with cursor(request) as cur:
        await cur.execute(raw.PING)
        await cur.fetchall()
    return JSONResponse({"status": "ok", "detail": None})


@router.get("/limits", response_model=schemas.Limits)
async def get_limits(*, request: Request) -> schemas.Limits:
    return limits(request.app, kind="async", driver="asyncmy")


def create_app(settings: Settings | None = None) -> FastAPI:
    return raw.create(
        title="Users CRUD (async, raw asyncmy)",
        variant="raw",
        routers=[router],
        lifespan=lifespan,
        settings=settings or get_settings(),
        driver_errors=(MySQLError,),
    )
