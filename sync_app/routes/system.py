"""Health, the simulated slow query, and the effective limits. Mirror of async_app/routes/system.py."""

from __future__ import annotations

from fastapi import Request

from shared import schemas
from shared.web import UNAVAILABLE, limits, pool_status
from shared.work import burn_cpu
from sync_app import crud
from sync_app.deps import SessionDep, SessionRouter, SettingsDep

router = SessionRouter(tags=["system"])


@router.get("/healthz", response_model=schemas.Health, responses=UNAVAILABLE)
def healthz(*, db: SessionDep) -> schemas.Health:
    crud.ping(db)
    return schemas.Health(status="ok")


@router.get("/io/sleep", response_model=schemas.Slept, responses=UNAVAILABLE)
def io_sleep(*, db: SessionDep, ms: schemas.SleepMs = 0) -> schemas.Slept:
    crud.sleep(db, ms)
    return schemas.Slept(slept_ms=ms)


@router.get("/cpu", response_model=schemas.Burned)
def cpu(*, ms: schemas.CpuMs = 0) -> schemas.Burned:
    burn_cpu(ms)  # in this route's worker thread, as the rest of a def route
    return schemas.Burned(cpu_ms=ms)


@router.get("/pool", response_model=schemas.PoolStatus)
def get_pool(*, request: Request) -> schemas.PoolStatus:
    return pool_status(request.app)


@router.get("/limits", response_model=schemas.Limits)
def get_limits(*, request: Request, settings: SettingsDep) -> schemas.Limits:
    return limits(request.app, kind="sync", driver=settings.driver("sync"))
