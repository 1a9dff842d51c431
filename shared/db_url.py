"""Build a SQLAlchemy URL (and driver options) for a given driver from Settings."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import URL, Engine, make_url

from shared.config import Settings
from shared.deadline import bound_waits


def build_url(settings: Settings, driver: str, database: str | None = None) -> URL:
    """The database URL for `driver`; DATABASE_URL keeps its parts and only changes the driver."""
    dialect = settings.dialect
    if driver not in dialect.drivers:
        raise ValueError(
            f"driver {driver!r} does not fit {dialect.name}: use one of {', '.join(dialect.drivers)}"
        )
    if settings.database_url is not None:
        url = make_url(settings.database_url.get_secret_value()).set(drivername=dialect.drivers[driver])
    else:
        url = URL.create(
            dialect.drivers[driver],
            username=settings.db_user,
            password=settings.db_password.get_secret_value() or None,
            host=settings.db_host,
            port=settings.db_port,
            database=settings.db_name,
        )
    if database is not None:
        url = url.set(database=database)
    return url.update_query_dict(dict(dialect.url_query)) if dialect.url_query else url


def connect_args(settings: Settings, driver: str) -> dict[str, Any]:
    """Per-driver options: connect and read timeouts, and whatever the driver needs (shared/dialects.py)."""
    return settings.dialect.connect_args(driver, settings.db_connect_timeout, settings.db_read_timeout)


def bound_reads(engine: Engine, settings: Settings, driver: str) -> None:
    """DB_READ_TIMEOUT for the drivers without a read timeout of their own (shared/deadline.py)."""
    if driver in settings.dialect.watchdog_drivers:
        bound_waits(engine, settings.db_read_timeout)


def engine_options(settings: Settings, driver: str) -> dict[str, Any]:
    """Identical pool options for both apps: the fair part of the comparison."""
    return {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
        "pool_recycle": 3600,
        "pool_pre_ping": False,
        # The Session always ends its transaction (commit, or rollback when it closes), so the pool's own
        # ROLLBACK when a connection comes back would be a second, useless statement per request.
        "pool_reset_on_return": None,
        "connect_args": connect_args(settings, driver),
    }
