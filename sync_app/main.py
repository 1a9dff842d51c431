"""The sync app: `uvicorn sync_app.main:app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI

from shared.config import Settings, get_settings
from shared.web import apply_limits, build_app
from sync_app.db import make_engine, make_sessionmaker
from sync_app.routes import system, users


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    apply_limits(app)
    app.state.engine = engine = make_engine(app.state.settings)
    app.state.sessionmaker = make_sessionmaker(engine)
    settings = app.state.settings
    app.state.close_limiter = anyio.CapacityLimiter(settings.pool_size + settings.max_overflow)
    try:
        yield
    finally:
        engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(
        title="Users CRUD (sync)",
        lifespan=lifespan,
        routers=[users.router, system.router],
        settings=settings or get_settings(),
        variant="proper",
    )


app = create_app()
