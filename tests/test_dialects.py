"""The backend seam without a server: settings per backend, URLs, driver options, the sleep statement, and
which apps a run puts on which backend. (The error mapping is tested for real: test_contract.py's 409/404
on every driver of both backends.)"""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.dialects import mysql, postgresql

from bench.catalog import (
    APP_BY_NAME,
    DEFAULT_APPS_OF,
    PAIRS,
    assign_backends,
    default_apps,
    pair_backend,
    resolve_app,
)
from shared.config import Settings
from shared.db_url import build_url, connect_args
from shared.dialects import DIALECTS, db_sleep


def settings(**kw: object) -> Settings:
    base: dict[str, object] = {"database_url": None, "db_password": "pw", "db_port": 5433, "_env_file": None}
    return Settings(**(base | kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("backend", "field", "driver"),
    [
        ("postgres", "sync_driver", "asyncpg"),
        ("mariadb", "sync_driver", "asyncmy"),
        ("mariadb", "async_driver", "pymysql"),
        ("postgres", "async_driver", "aiomysql"),
    ],
)
def test_a_driver_of_the_other_family_or_backend_is_refused(backend: str, field: str, driver: str) -> None:
    with pytest.raises(ValidationError, match=f"does not fit a {field.split('_')[0]} app on {backend}"):
        settings(backend=backend, **{field: driver})


def test_postgres_defaults_and_urls() -> None:
    s = settings(backend="postgres")
    assert (s.driver("sync"), s.driver("async")) == ("psycopg", "psycopg")
    url = build_url(s, "asyncpg", "app_test")
    assert url.drivername == "postgresql+asyncpg" and url.database == "app_test" and not url.query
    assert build_url(s, "psycopg").drivername == "postgresql+psycopg"
    assert connect_args(s, "asyncpg") == {"timeout": 5} and connect_args(s, "psycopg") == {
        "connect_timeout": 5
    }
    assert dict(build_url(settings(backend="mariadb"), "pymysql").query) == {"charset": "utf8mb4"}


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+asyncpg"])
def test_a_postgres_url_names_the_backend(scheme: str) -> None:
    s = settings(database_url=f"{scheme}://u:p@db.example:5432/x")
    assert s.dialect.name == "postgres" and build_url(s, "psycopg").render_as_string(False).startswith(
        "postgresql+psycopg://u:p@db.example:5432/x"
    )


def test_the_sleep_statement_per_database() -> None:
    stmt = select(db_sleep(0.02))
    assert "pg_sleep(" in str(stmt.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    assert "SLEEP(" in str(stmt.compile(dialect=mysql.dialect()))


def test_catalog_apps_and_pairs_fit_their_backend() -> None:
    for entry in APP_BY_NAME.values():
        dialect = DIALECTS[entry.backend]
        for family in ("sync", "async"):
            chosen = entry.settings.get(f"{family}_driver")
            assert chosen is None or chosen in dialect.drivers_for(family), entry.name
    for pair in PAIRS:
        assert APP_BY_NAME[pair.sync].backend == APP_BY_NAME[pair.async_].backend == pair_backend(pair)
    for backend, apps in DEFAULT_APPS_OF.items():
        assert {APP_BY_NAME[a].backend for a in apps} == {backend}
    assert default_apps(["mariadb", "postgres"]) == (
        *DEFAULT_APPS_OF["mariadb"],
        *DEFAULT_APPS_OF["postgres"],
    )


def test_apps_are_assigned_to_backends_or_refused_in_one_line() -> None:
    specs = [resolve_app(a) for a in ("sync", "async-asyncpg")]
    assert assign_backends(specs, ["mariadb", "postgres"]) == {"sync": "mariadb", "async-asyncpg": "postgres"}
    custom = resolve_app("tests.perfgate.slow_app:sync_app")
    assert assign_backends([custom], ["postgres"]) == {custom.name: "postgres"}
    for apps, backends, message in (
        (["sync"], ["postgres"], "runs on mariadb, not postgres: on postgres use sync-psycopg"),
        (["sync"], ["mariadb", "postgres"], "--backend postgres: no --app runs on it"),
        (["tests.perfgate.slow_app:sync_app"], ["mariadb", "postgres"], "needs exactly one --backend"),
    ):
        with pytest.raises(ValueError, match=message) as err:
            assign_backends([resolve_app(a) for a in apps], backends)
        assert "\n" not in str(err.value)
