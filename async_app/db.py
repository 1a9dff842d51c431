from __future__ import annotations

from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.config import Settings
from shared.db_url import bound_reads, build_url, engine_options


def make_engine(settings: Settings, driver: str | None = None) -> AsyncEngine:
    driver = driver or settings.driver("async")
    engine = create_async_engine(build_url(settings, driver), **engine_options(settings, driver))
    bound_reads(engine.sync_engine, settings, driver)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
