"""The async anti-pattern: `async def` routes calling the *blocking* Session.

Every query stalls the event loop, so the app serves one request at a time however many arrive: the seed's
"will it block other requests?" answered. Reuses the sync app's CRUD, lifespan and system routes. Serves
the read routes, /io/sleep, sign-up (Argon2 on the loop) and /cpu (pure Python on the loop): what the
interference experiment needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from fastapi import APIRouter, FastAPI, Request, status
from sqlalchemy.orm import Session

from shared import models, schemas
from shared.config import Settings, get_settings
from shared.security import hash_password
from shared.web import CONFLICT, NOT_FOUND, build_app
from shared.work import burn_cpu
from sync_app import crud
from sync_app.main import lifespan
from sync_app.routes import system

router = APIRouter(tags=["blocking"])


@contextmanager
def blocking_session(request: Request) -> Iterator[Session]:
    """Opened and closed inside the async route, as code written this way does: every step blocks."""
    with request.app.state.sessionmaker() as session:
        yield session


@router.get("/users/{user_id}", response_model=schemas.User, responses=NOT_FOUND)
async def get_user(*, request: Request, user_id: schemas.UserId) -> models.User:
    with blocking_session(request) as db:
        return crud.get_user(db, user_id)  # blocks the event loop for the whole query


@router.get("/users", response_model=list[schemas.User])
async def list_users(
    *, request: Request, skip: schemas.Skip = 0, limit: schemas.Limit = 10
) -> Sequence[models.User]:
    with blocking_session(request) as db:
        return crud.list_users(db, skip=skip, limit=limit)


@router.get("/io/sleep", response_model=schemas.Slept)
async def io_sleep(*, request: Request, ms: schemas.SleepMs = 0) -> schemas.Slept:
    with blocking_session(request) as db:
        crud.sleep(db, ms)
    return schemas.Slept(slept_ms=ms)


@router.post("/users", response_model=schemas.User, status_code=status.HTTP_201_CREATED, responses=CONFLICT)
async def create_user(*, request: Request, body: schemas.UserCreate) -> models.User:
    settings = request.app.state.settings
    with blocking_session(request) as db:
        return crud.create_user(db, body, hash_password(body.password, settings))  # Argon2 on the loop


@router.get("/cpu", response_model=schemas.Burned)
async def cpu(*, ms: schemas.CpuMs = 0) -> schemas.Burned:
    burn_cpu(ms)  # on the event loop: nothing else runs meanwhile
    return schemas.Burned(cpu_ms=ms)


def create_app(settings: Settings | None = None) -> FastAPI:
    return build_app(
        title="Users CRUD (async def over the blocking Session)",
        lifespan=lifespan,
        routers=[router, system.router],
        settings=settings or get_settings(),
        variant="blocking",
    )
