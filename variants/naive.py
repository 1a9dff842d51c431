"""naive sync: `def` routes whose Session comes from a `yield` dependency with the default scope.

The Session is closed only after the response is serialized, which needs a second thread-pool token.
Once in-flight requests exceed pool + tokens, every thread waits for a connection that only a waiting
request can free: nothing is served until `pool_timeout` (FastAPI issue #3205). Read routes only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request
from sqlalchemy.orm import Session

from shared import models, schemas
from shared.config import Settings, get_settings
from shared.web import NOT_FOUND, build_app
from sync_app import crud
from sync_app.main import lifespan
from sync_app.routes import system


def naive_get_db(request: Request) -> Iterator[Session]:
    """The tutorial form: a sync generator (its exit also needs a thread token), default scope."""
    with request.app.state.sessionmaker() as session:
        yield session


NaiveSessionDep = Annotated[Session, Depends(naive_get_db)]  # closed after the response is sent

router = APIRouter(tags=["naive"])


@router.get("/users/{user_id}", response_model=schemas.User, responses=NOT_FOUND)
def get_user(*, db: NaiveSessionDep, user_id: schemas.UserId) -> models.User:
    return crud.get_user(db, user_id)


@router.get("/users", response_model=list[schemas.User])
def list_users(
    *, db: NaiveSessionDep, skip: schemas.Skip = 0, limit: schemas.Limit = 10
) -> Sequence[models.User]:
    return crud.list_users(db, skip=skip, limit=limit)


@router.get("/io/sleep", response_model=schemas.Slept)
def io_sleep(*, db: NaiveSessionDep, ms: schemas.SleepMs = 0) -> schemas.Slept:
    crud.sleep(db, ms)
    return schemas.Slept(slept_ms=ms)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The variant's routes come first, so they shadow the system router's /io/sleep."""
    return build_app(
        title="Users CRUD (sync, naive variant)",
        lifespan=lifespan,
        routers=[router, system.router],
        settings=settings or get_settings(),
        variant="naive",
    )
