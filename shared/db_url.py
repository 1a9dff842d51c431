"""Build a SQLAlchemy URL (and driver options) for a given driver from Settings."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy.engine import URL, make_url

from shared.config import Settings

Driver = Literal["pymysql", "mysqlclient", "asyncmy", "aiomysql"]
DRIVER_DIALECT: dict[str, str] = {
    "pymysql": "mysql+pymysql",
    "mysqlclient": "mysql+mysqldb",
    "asyncmy": "mysql+asyncmy",
    "aiomysql": "mysql+aiomysql",
}


def build_url(settings: Settings, driver: Driver, database: str | None = None) -> URL:
    """The database URL for `driver`; DATABASE_URL (any mysql/mariadb URL) keeps its parts."""
    if settings.database_url is not None:
        url = make_url(settings.database_url.get_secret_value())
        if url.get_backend_name() not in ("mysql", "mariadb"):
            raise ValueError(f"DATABASE_URL must be a MySQL/MariaDB URL, got {url.get_backend_name()!r}")
        url = url.set(drivername=DRIVER_DIALECT[driver])
    else:
        url = URL.create(
            DRIVER_DIALECT[driver],
            username=settings.db_user,
            password=settings.db_password.get_secret_value() or None,
            host=settings.db_host,
            port=settings.db_port,
            database=settings.db_name,
        )
    if database is not None:
        url = url.set(database=database)
    return url.update_query_dict({"charset": "utf8mb4"})


def connect_args(settings: Settings, driver: Driver) -> dict[str, Any]:
    """Per-driver options: a connect timeout, and SSL off for PyMySQL (it builds a context per connect)."""
    if driver == "pymysql":
        return {"connect_timeout": settings.db_connect_timeout, "ssl_disabled": True}
    if driver == "mysqlclient":
        return {"connect_timeout": settings.db_connect_timeout, "ssl_mode": "DISABLED"}
    return {"connect_timeout": settings.db_connect_timeout}


def engine_options(settings: Settings, driver: Driver) -> dict[str, Any]:
    """Identical pool options for both apps: the fair part of the comparison."""
    return {
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
        "pool_recycle": 3600,
        "pool_pre_ping": False,
        "connect_args": connect_args(settings, driver),
    }
