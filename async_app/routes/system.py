"""Health, the simulated slow query, and the effective limits. Mirror of sync_app/routes/system.py."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from async_app import crud
from async_app.deps import SessionDep, SettingsDep
from shared import schemas
from shared.web import UNAVAILABLE, limits, pool_status
from shared.work import burn_cpu

router = APIRouter(tags=["system"])


@router.get("/healthz", response_model=schemas.Health, responses=UNAVAILABLE)
async def healthz(*, db: SessionDep) -> schemas.Health:
    await crud.ping(db)
    return schemas.Health(status="ok")


@router.get("/io/sleep", response_model=schemas.Slept, responses=UNAVAILABLE)
async def io_sleep(*, db: SessionDep, ms: schemas.SleepMs = 0) -> schemas.Slept:
    await crud.sleep(db, ms)
    return schemas.Slept(slept_ms=ms)


@router.get("/cpu", response_model=schemas.Burned)
async def cpu(*, ms: schemas.CpuMs = 0) -> schemas.Burned:
    await run_in_threadpool(burn_cpu, ms)  # off the event loop, as Argon2 is
    return schemas.Burned(cpu_ms=ms)


@router.get("/pool", response_model=schemas.PoolStatus)
async def get_pool(*, request: Request) -> schemas.PoolStatus:
    return pool_status(request.app)


@router.get("/limits", response_model=schemas.Limits)
async def get_limits(*, request: Request, settings: SettingsDep) -> schemas.Limits:
    return limits(request.app, kind="async", driver=settings.driver("async"))
