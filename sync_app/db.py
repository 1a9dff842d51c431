from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.db_url import bound_reads, build_url, engine_options


def make_engine(settings: Settings, driver: str | None = None) -> Engine:
    driver = driver or settings.driver("sync")
    engine = create_engine(build_url(settings, driver), **engine_options(settings, driver))
    bound_reads(engine, settings, driver)
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
