from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

from shared.config import Settings
from shared.db_url import Driver, build_url, engine_options


def make_engine(settings: Settings, driver: Driver | None = None) -> Engine:
    driver = driver or settings.sync_driver
    return create_engine(build_url(settings, driver), **engine_options(settings, driver))


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
