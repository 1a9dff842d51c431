"""The sync app's dependencies, and the router that closes each route's Session in the route's thread.

Why: FastAPI validates and serializes a `def` route's return value in the thread pool too, and even a
`scope="function"` dependency is closed only after that. A Session closed there holds its pooled
connection while waiting for a second thread token; once in-flight requests exceed pool + tokens,
every token waits for a connection that only a token-less request can free (FastAPI issue #3205; the
`naive` variant in sync_app/variants.py shows it). `SessionRouter` wraps every route so its Session is
closed in the same thread, right after the route body returns, before serialization starts.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from shared.config import Settings
from shared.web import app_settings


async def get_db(request: Request) -> AsyncIterator[Session]:
    """A Session for one route. Creating it does no I/O; SessionRouter closes it in the route's thread.
    The close here is only a safety net, on its own limiter so it never competes for request tokens."""
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        if session.in_transaction():
            await anyio.to_thread.run_sync(session.close, limiter=request.app.state.close_limiter)


def closes_session(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a `def` route (keyword-only `db`) so its Session is closed before the route returns."""

    @functools.wraps(endpoint)
    def route(*args: Any, **kwargs: Any) -> Any:
        try:
            return endpoint(*args, **kwargs)
        finally:
            db = kwargs.get("db")
            if isinstance(db, Session):
                db.close()

    return route


class SessionRouter(APIRouter):
    """An APIRouter whose routes release their database connection before the response is built."""

    def add_api_route(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().add_api_route(path, closes_session(endpoint), **kwargs)


SessionDep = Annotated[Session, Depends(get_db)]
SettingsDep = Annotated[Settings, Depends(app_settings)]
