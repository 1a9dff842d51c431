"""FastAPI pieces both apps share: errors, limits, OpenAPI responses, startup of the thread pool."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from shared.config import Settings
from shared.dialects import violation
from shared.schemas import ErrorDetail, Limits

log = logging.getLogger("app")

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorDetail, "description": "Not found"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorDetail, "description": "Email already registered"}
}
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": ErrorDetail, "description": "Database unavailable"}
}

EMAIL_TAKEN = "Email already registered"


class NotFound(Exception):
    def __init__(self, what: str, ident: int) -> None:
        super().__init__(f"{what} {ident} not found")


class EmailTaken(Exception):
    pass


def integrity_error(exc: IntegrityError, *, user_id: int | None) -> Exception:
    """Map a constraint violation to the API's error: 409 for a taken email, 404 for a gone owner."""
    kind = violation(exc)
    if kind == "duplicate_key":
        return EmailTaken()
    if kind == "missing_parent" and user_id is not None:
        return NotFound("User", user_id)
    return exc


def install_error_handlers(app: FastAPI) -> None:
    """404/409 from the domain errors; 503 (never 500) when the database cannot serve."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the offending input, which can be the whole body, password and all.
        errors = [{"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)

    @app.exception_handler(EmailTaken)
    async def _taken(_: Request, __: EmailTaken) -> JSONResponse:
        return JSONResponse({"detail": EMAIL_TAKEN}, status_code=status.HTTP_409_CONFLICT)

    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(DBAPIError)
    async def _db_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return JSONResponse(
            {"detail": f"Database unavailable ({type(exc).__name__})"},
            status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        )


def apply_limits(app: FastAPI) -> None:
    """At startup, on the app's event loop: set AnyIO's thread limiter (used by `def` routes and
    run_in_threadpool; 40 tokens by default, per loop) and note what the app really runs with."""
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = app.state.settings.effective_thread_tokens
    app.state.thread_tokens = int(limiter.total_tokens)
    app.state.event_loop = running_loop_name()


def running_loop_name() -> str:
    loop = type(asyncio.get_running_loop())
    return "uvloop" if loop.__module__.startswith("uvloop") else "asyncio"


def limits(app: FastAPI, *, kind: str, driver: str) -> Limits:
    settings: Settings = app.state.settings
    return Limits(
        app=kind,
        variant=app.state.variant,
        driver=driver,
        workers=settings.workers,
        thread_tokens=app.state.thread_tokens,
        pool_size=settings.pool_size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.pool_timeout,
        event_loop=app.state.event_loop,
        pid=os.getpid(),
    )


def app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def build_app(*, title: str, lifespan: Any, routers: list[Any], settings: Settings, variant: str) -> FastAPI:
    """The app skeleton both apps share; only the routers and the lifespan differ."""
    app = FastAPI(
        title=title,
        version="1.0.0",
        lifespan=lifespan,
        description="Users CRUD: one of the two mirror apps of the sync-vs-async harness.",
    )
    app.state.settings = settings
    app.state.variant = variant
    install_error_handlers(app)
    for router in routers:
        app.include_router(router)
    return app
