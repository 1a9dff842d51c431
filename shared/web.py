"""FastAPI pieces both apps share: errors, limits, OpenAPI responses, startup of the thread pool."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from shared.config import Settings
from shared.dialects import outage, violation
from shared.schemas import ErrorDetail, Limits, PoolStatus

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


def unavailable(exc: BaseException) -> bool:
    """A real availability problem: the pool timed out, or the server refused, dropped or stalled a
    connection. Anything else the database says is a bug of ours (bad input that got through), not an
    outage, and must not be reported as one."""
    # No connection (or a closed one); asyncpg lets the socket's own errors through at connect time.
    if isinstance(exc, PoolTimeoutError | InterfaceError | ConnectionError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and outage(exc)


def allowed_methods(request: Request) -> list[str]:
    """Every method the document lists for this path (HEAD with GET). Starlette's own 405 names only the
    methods of the first route whose path matched."""
    app: FastAPI = request.app
    if not hasattr(app.state, "path_methods"):
        app.state.path_methods = [
            (compile_path(path)[0], {m.upper() for m in ops} | ({"HEAD"} if "get" in ops else set()))
            for path, ops in app.openapi()["paths"].items()
        ]
    path = request.url.path
    return sorted({m for regex, methods in app.state.path_methods if regex.match(path) for m in methods})


def install_error_handlers(app: FastAPI) -> None:
    """404/409 from the domain errors; 422 for every invalid request (an unparsable body included); 405
    with the path's real `Allow`; 503 when the database cannot serve; a database error that is not an
    outage is a 500 that says nothing of the input (the tests must never see one)."""

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == status.HTTP_405_METHOD_NOT_ALLOWED:
            headers = {"Allow": ", ".join(allowed_methods(request))}
            return JSONResponse(
                {"detail": "Method Not Allowed"}, status_code=exc.status_code, headers=headers
            )
        if exc.status_code == status.HTTP_400_BAD_REQUEST:  # FastAPI: a body that is not UTF-8 JSON text
            error = {
                "type": "body_unparsable",
                "loc": ["body"],
                "msg": "The body is not valid UTF-8 JSON text",
            }
            return JSONResponse({"detail": [error]}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)
        return await http_exception_handler(request, exc)

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
    @app.exception_handler(ConnectionError)
    @app.exception_handler(TimeoutError)
    async def _db_error(request: Request, exc: Exception) -> JSONResponse:
        # Never log str(exc): SQLAlchemy appends the statement's parameters (emails, password hashes).
        what = f"{type(exc).__name__} ({type(getattr(exc, 'orig', None)).__name__})"
        if unavailable(exc):
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path, what)
            return JSONResponse(
                {"detail": f"Database unavailable ({type(exc).__name__})"},
                status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        log.error("database error on %s %s: %s", request.method, request.url.path, what)
        return JSONResponse(
            {"detail": "Internal error: the database rejected the request"},
            status_code=status.HTTP_500_INTERNAL_SERVER_ERROR,
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
        connect_timeout=settings.db_connect_timeout,
        read_timeout=settings.db_read_timeout,
        event_loop=app.state.event_loop,
        pid=os.getpid(),
    )


def pool_status(app: FastAPI) -> PoolStatus:
    pool = app.state.engine.pool  # the same QueuePool API behind Engine and AsyncEngine
    return PoolStatus(
        size=pool.size(), checked_out=pool.checkedout(), overflow=pool.overflow(), pid=os.getpid()
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
