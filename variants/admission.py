"""Admission control for the async app: at most N requests in progress (N = the pool's connections, as
the sync app's thread tokens), the rest wait in line, first come first served; none is refused.

Why not uvicorn's `--limit-concurrency`: it answers 503 beyond the limit, which sheds load (errors the
client must retry) rather than queueing it; the sync app queues on its thread tokens, so the fair
comparison of tails is a queue too. The line is AnyIO's CapacityLimiter (FIFO wake-ups), in a pure ASGI
middleware in front of the unchanged async app.
"""

from __future__ import annotations

import anyio
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from async_app.main import lifespan
from async_app.routes import system, users
from shared.config import Settings, get_settings
from shared.web import build_app


class AdmissionLimit:
    """Pure ASGI middleware: HTTP requests take one of `limit` places, in arrival order."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.limiter: anyio.CapacityLimiter | None = None  # made on the event loop, at the first request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.limiter is None:
            self.limiter = anyio.CapacityLimiter(self.limit)
        async with self.limiter:
            await self.app(scope, receive, send)


def create_app(settings: Settings | None = None) -> FastAPI:
    s = settings or get_settings()
    app = build_app(
        title="Users CRUD (async, admission control)",
        lifespan=lifespan,
        routers=[users.router, system.router],
        settings=s,
        variant="admission",
    )
    app.add_middleware(AdmissionLimit, limit=s.pool_size + s.max_overflow)
    return app
