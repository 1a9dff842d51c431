"""The async app: `uvicorn async_app.main:app`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from async_app.db import make_engine, make_sessionmaker
from async_app.routes import system, users
from shared.config import Settings, get_settings
from shared.web import apply_limits, build_app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    apply_limits(app)
    app.state.engine = engine = make_engine(app.state.settings)
    app.state.sessionmaker = make_sessionmaker(engine)
    try:
        yield
    finally:
        await engine.dispose()  # else a second app instance fails: "attached to a different loop"


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(
        title="Users CRUD (async)",
        lifespan=lifespan,
        routers=[users.router, system.router],
        settings=settings or get_settings(),
        variant="proper",
    )


app = create_app()
