"""Two wrong ways to serve the sync app's CRUD, kept as benchmark variants (read routes only).

- `naive_app`: `def` routes whose Session comes from a `yield` dependency with the default scope, so
  it is closed only after the response is serialized, which needs a second thread-pool token. Once
  in-flight requests exceed pool + tokens, every thread waits for a connection that only a waiting
  request can free: nothing is served until `pool_timeout` (FastAPI issue #3205).
- `blocking_app`: `async def` routes calling the *blocking* Session: every query stalls the event loop,
  so the app serves one request at a time however many arrive. The seed's GIL question, answered.

Both reuse sync_app's crud, lifespan and system routes; only the route signatures differ.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from sqlalchemy.orm import Session

from shared import models, schemas
from shared.config import get_settings
from shared.web import NOT_FOUND, build_app
from sync_app import crud
from sync_app.main import lifespan
from sync_app.routes import system


def naive_get_db(request: Request) -> Iterator[Session]:
    """The tutorial form: a sync generator (its exit also needs a thread token), default scope."""
    with request.app.state.sessionmaker() as session:
        yield session


NaiveSessionDep = Annotated[Session, Depends(naive_get_db)]  # closed after the response is sent

naive = APIRouter(tags=["naive"])


@naive.get("/users/{user_id}", response_model=schemas.User, responses=NOT_FOUND)
def get_user(*, db: NaiveSessionDep, user_id: schemas.UserId) -> models.User:
    return crud.get_user(db, user_id)


@naive.get("/users", response_model=list[schemas.User])
def list_users(
    *, db: NaiveSessionDep, skip: schemas.Skip = 0, limit: schemas.Limit = 10
) -> Sequence[models.User]:
    return crud.list_users(db, skip=skip, limit=limit)


@naive.get("/io/sleep", response_model=schemas.Slept)
def io_sleep(*, db: NaiveSessionDep, ms: schemas.SleepMs = 0) -> schemas.Slept:
    crud.sleep(db, ms)
    return schemas.Slept(slept_ms=ms)


blocking = APIRouter(tags=["blocking"])


@contextmanager
def blocking_session(request: Request) -> Iterator[Session]:
    """Opened and closed inside the async route, as code written this way does: every step blocks."""
    with request.app.state.sessionmaker() as session:
        yield session


@blocking.get("/users/{user_id}", response_model=schemas.User, responses=NOT_FOUND)
async def get_user_blocking(*, request: Request, user_id: schemas.UserId) -> models.User:
    with blocking_session(request) as db:
        return crud.get_user(db, user_id)  # blocks the event loop for the whole query


@blocking.get("/users", response_model=list[schemas.User])
async def list_users_blocking(
    *, request: Request, skip: schemas.Skip = 0, limit: schemas.Limit = 10
) -> Sequence[models.User]:
    with blocking_session(request) as db:
        return crud.list_users(db, skip=skip, limit=limit)


@blocking.get("/io/sleep", response_model=schemas.Slept)
async def io_sleep_blocking(*, request: Request, ms: schemas.SleepMs = 0) -> schemas.Slept:
    with blocking_session(request) as db:
        crud.sleep(db, ms)
    return schemas.Slept(slept_ms=ms)


def create_variant(variant: str) -> FastAPI:
    """The variant's routes come first, so they shadow the system router's /io/sleep."""
    router = {"naive": naive, "blocking": blocking}[variant]
    return build_app(
        title=f"Users CRUD (sync, {variant} variant)",
        lifespan=lifespan,
        routers=[router, system.router],
        settings=get_settings(),
        variant=variant,
    )


naive_app = create_variant("naive")
blocking_app = create_variant("blocking")
