"""One Settings object, read from the environment (and `.run/db.env`, written by `bench db up`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

from shared.dialects import DIALECTS, Dialect, Family, dialect_for_scheme

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = REPO_ROOT / ".run"
DB_ENV_FILE = RUN_DIR / "db.env"  # the private server's address and the app user's password, mode 600

__all__ = ["DB_ENV_FILE", "REPO_ROOT", "RUN_DIR", "Family", "Settings", "get_settings"]


class Settings(BaseSettings):
    """Everything an app needs to know; every concurrency limit is explicit and reported by /limits."""

    model_config = SettingsConfigDict(env_file=DB_ENV_FILE, extra="ignore", frozen=True)

    # Database: DATABASE_URL wins when given (its scheme names the backend); otherwise the parts (the
    # private server's by default). DB_NAME is never stored in .run/db.env: each user of the server
    # (the benchmark, the tests) names its own database.
    database_url: SecretStr | None = None
    backend: str = "mariadb"
    db_host: str = "127.0.0.1"
    db_port: int = Field(3307, ge=1, le=65535)
    db_user: str = "app"
    db_password: SecretStr = SecretStr("")
    db_name: str = "app"
    db_connect_timeout: int = Field(5, ge=1, le=60)
    # A statement that gets no answer for this long fails (a stalled server): longer than any real one.
    db_read_timeout: int = Field(30, ge=1, le=3600)

    # Concurrency limits, the same for both apps (per worker process).
    pool_size: int = Field(10, ge=1, le=500)
    max_overflow: int = Field(0, ge=0, le=500)
    # 10 s let one of 10,821 requests wait too long (503) at 500 concurrent connections (async app)
    pool_timeout: float = Field(30.0, gt=0, le=300)
    thread_tokens: int | None = Field(None, ge=1, le=1000)
    workers: int = Field(1, ge=1, le=64, validation_alias=AliasChoices("web_concurrency", "workers"))
    event_loop: Literal["uvloop", "asyncio", "auto"] = "auto"

    # Which driver each app uses (default: the backend's first, see shared/dialects.py): SYNC_DRIVER
    # pymysql|mysqlclient or psycopg; ASYNC_DRIVER asyncmy|aiomysql or psycopg|asyncpg.
    sync_driver: str | None = None
    async_driver: str | None = None

    # Argon2 cost (pwdlib / argon2-cffi parameters).
    argon2_time_cost: int = Field(2, ge=1, le=10)
    argon2_memory_cost: int = Field(19_456, ge=1024, le=1_048_576)  # KiB (OWASP minimum: 19 MiB)
    argon2_parallelism: int = Field(1, ge=1, le=16)

    @model_validator(mode="after")
    def _known_backend_and_drivers(self) -> Settings:
        dialect = self.dialect  # raises on an unknown backend or URL scheme
        families: tuple[Family, ...] = ("sync", "async")
        for family in families:
            driver, fits = self.driver(family), dialect.drivers_for(family)
            if driver not in fits:
                raise ValueError(
                    f"{family}_driver {driver!r} does not fit a {family} app on {dialect.name}: "
                    f"use one of {', '.join(fits)}"
                )
        return self

    @property
    def dialect(self) -> Dialect:
        if self.database_url is not None:
            return dialect_for_scheme(make_url(self.database_url.get_secret_value()).drivername)
        if self.backend not in DIALECTS:
            raise ValueError(f"unknown backend {self.backend!r}: use one of {', '.join(DIALECTS)}")
        return DIALECTS[self.backend]

    def driver(self, family: Family) -> str:
        chosen = self.sync_driver if family == "sync" else self.async_driver
        return chosen or self.dialect.default_driver(family)

    @property
    def effective_thread_tokens(self) -> int:
        """Thread-pool tokens: the pool's capacity unless set, so threads never queue for connections."""
        return self.thread_tokens or (self.pool_size + self.max_overflow)


@lru_cache
def get_settings() -> Settings:
    return Settings()
