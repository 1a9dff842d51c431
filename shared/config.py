"""One Settings object, read from the environment (and `.run/db.env`, written by `bench db up`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = REPO_ROOT / ".run"
DB_ENV_FILE = RUN_DIR / "db.env"

SyncDriver = Literal["pymysql", "mysqlclient"]
AsyncDriver = Literal["asyncmy", "aiomysql"]


class Settings(BaseSettings):
    """Everything an app needs to know; every concurrency limit is explicit and reported by /limits."""

    model_config = SettingsConfigDict(env_file=DB_ENV_FILE, extra="ignore", frozen=True)

    # Database: DATABASE_URL wins when given; otherwise the parts (the private MariaDB's by default).
    database_url: SecretStr | None = None
    db_host: str = "127.0.0.1"
    db_port: int = Field(3307, ge=1, le=65535)
    db_user: str = "app"
    db_password: SecretStr = SecretStr("")
    db_name: str = "app"
    db_connect_timeout: int = Field(5, ge=1, le=60)

    # Concurrency limits, the same for both apps (per worker process).
    pool_size: int = Field(10, ge=1, le=500)
    max_overflow: int = Field(0, ge=0, le=500)
    # 10 s let one of 10,821 requests wait too long (503) at 500 concurrent connections (async app)
    pool_timeout: float = Field(30.0, gt=0, le=300)
    thread_tokens: int | None = Field(None, ge=1, le=1000)
    workers: int = Field(1, ge=1, le=64, validation_alias=AliasChoices("web_concurrency", "workers"))
    event_loop: Literal["uvloop", "asyncio", "auto"] = "auto"

    # Which driver each app uses.
    sync_driver: SyncDriver = "pymysql"
    async_driver: AsyncDriver = "asyncmy"

    # Argon2 cost (pwdlib / argon2-cffi parameters).
    argon2_time_cost: int = Field(2, ge=1, le=10)
    argon2_memory_cost: int = Field(19_456, ge=1024, le=1_048_576)  # KiB (OWASP minimum: 19 MiB)
    argon2_parallelism: int = Field(1, ge=1, le=16)

    @property
    def effective_thread_tokens(self) -> int:
        """Thread-pool tokens: the pool's capacity unless set, so threads never queue for connections."""
        return self.thread_tokens or (self.pool_size + self.max_overflow)


@lru_cache
def get_settings() -> Settings:
    return Settings()
