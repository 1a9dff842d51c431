"""The real apps with one extra query on one write route: every PATCH /users/{id} first runs `SELECT 1`
through the app's own engine (an injected N+1, as a careless change would add).

    bench perf-check --app sync=tests.perfgate.extra_query:sync_app --app
    async=tests.perfgate.extra_query:async_app

The gate's statement-count check must fail on it at once: `PATCH /users/{id}: select 1 → 2 per request`.
"""

from __future__ import annotations

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy import Engine, text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Receive, Scope, Send


class ExtraQuery:
    """Pure ASGI middleware: PATCH requests to /users/... cost one more SELECT."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "PATCH" and scope["path"].startswith("/users/"):
            engine = self.app.state.engine
            if isinstance(engine, AsyncEngine):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            else:
                await anyio.to_thread.run_sync(_select_one, engine)
        await self.app(scope, receive, send)


def _select_one(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


_built: dict[str, ExtraQuery] = {}


def __getattr__(name: str) -> ExtraQuery:
    """`sync_app` and `async_app`, built on first access (uvicorn does getattr(module, attr))."""
    if name not in ("sync_app", "async_app"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if name not in _built:
        if name == "sync_app":
            from sync_app.main import create_app
        else:
            from async_app.main import create_app
        _built[name] = ExtraQuery(create_app())
    return _built[name]
