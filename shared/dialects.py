"""What the apps must know about each database, in one place: the SQLAlchemy driver names, the options
each driver needs, how the server reports a duplicate key or a missing parent row, and how it sleeps.

This is the app side of the backend seam; the server side (install, start, seed, count statements) is
`bench/backends/`. Adding a database is one `Dialect` here and one backend there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import FunctionElement
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import NullType

Family = Literal["sync", "async"]


@dataclass(frozen=True)
class Dialect:
    name: str  # the backend's name in settings, the catalog and points.csv
    url_schemes: tuple[str, ...]  # what a DATABASE_URL's scheme may say (before any "+driver")
    default_port: int
    drivers: Mapping[str, str]  # driver -> SQLAlchemy drivername
    sync_drivers: tuple[str, ...]  # the drivers a sync app can use (the first is the default)
    async_drivers: tuple[str, ...]  # the drivers an async app can use (the first is the default)
    duplicate_key: frozenset[int | str]  # error codes of a unique-index violation
    missing_parent: frozenset[int | str]  # error codes of a foreign-key violation on insert
    # Errors that mean "the server cannot serve now" (refused, gone, lost, shutting down, overloaded,
    # lock timeout or deadlock): 503. Every other error the server returns is a bug of ours.
    outage: frozenset[int | str] = frozenset()
    outage_classes: tuple[str, ...] = ()  # SQLSTATE classes (first two characters), e.g. "08"
    driver_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # besides the timeouts
    timeout_option: Mapping[str, str] = field(default_factory=dict)  # driver -> its connect-timeout keyword
    read_timeout_options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # driver -> its names
    # Drivers without a read timeout of their own that get shared/deadline.py's: DB_READ_TIMEOUT all the same.
    watchdog_drivers: tuple[str, ...] = ()
    url_query: Mapping[str, str] = field(default_factory=dict)  # added to every URL (MariaDB's charset)
    sleep_function: str = "SLEEP"  # SELECT <fn>(seconds)
    codes: str = "errno"  # how the server's error codes are read: "errno" (MySQL) or "sqlstate"

    def drivers_for(self, family: Family) -> tuple[str, ...]:
        return self.sync_drivers if family == "sync" else self.async_drivers

    def default_driver(self, family: Family) -> str:
        return self.drivers_for(family)[0]

    def error_code(self, exc: DBAPIError) -> int | str | None:
        """The server's error code: MySQL's errno (first of the driver's args; their `sqlstate` is a
        generic class such as 23000), or the SQLSTATE (on the driver's error or the one it wraps)."""
        orig = exc.orig
        if self.codes == "errno":
            args = getattr(orig, "args", ())
            return args[0] if args and isinstance(args[0], int) else None
        for source in (orig, getattr(orig, "__cause__", None)):
            code = getattr(source, "sqlstate", None) or getattr(source, "pgcode", None)
            if isinstance(code, str):
                return code
        return None

    def connect_args(self, driver: str, timeout: int, read_timeout: int | None = None) -> dict[str, Any]:
        """The driver's connect arguments: the connect timeout, the read (and write) timeout where the
        driver has one (a statement to a stalled server fails instead of waiting forever), its options."""
        args: dict[str, Any] = {self.timeout_option.get(driver, "connect_timeout"): timeout}
        args |= self.driver_options.get(driver, {})
        if read_timeout is not None:
            args |= dict.fromkeys(self.read_timeout_options.get(driver, ()), read_timeout)
        return args


MARIADB = Dialect(
    name="mariadb",
    url_schemes=("mysql", "mariadb"),
    default_port=3306,
    drivers={
        "pymysql": "mysql+pymysql",
        "mysqlclient": "mysql+mysqldb",
        "asyncmy": "mysql+asyncmy",
        "aiomysql": "mysql+aiomysql",
    },
    sync_drivers=("pymysql", "mysqlclient"),
    async_drivers=("asyncmy", "aiomysql"),
    duplicate_key=frozenset({1062}),
    missing_parent=frozenset({1452}),
    # Too many connections, shutdown in progress, lock wait timeout, deadlock; client: cannot connect,
    # server gone away, lost connection (2002/2003/2006/2013/2055).
    outage=frozenset({1040, 1053, 1205, 1213, 2002, 2003, 2006, 2013, 2055}),
    # PyMySQL builds an SSL context on every connect unless told the server has none.
    driver_options={"pymysql": {"ssl_disabled": True}, "mysqlclient": {"ssl_mode": "DISABLED"}},
    # aiomysql has no read timeout: shared/deadline.py gives it one (watchdog_drivers).
    read_timeout_options={
        "pymysql": ("read_timeout", "write_timeout"),
        "mysqlclient": ("read_timeout", "write_timeout"),
        "asyncmy": ("read_timeout",),
    },
    watchdog_drivers=("aiomysql",),
    url_query={"charset": "utf8mb4"},
)

POSTGRES = Dialect(
    name="postgres",
    url_schemes=("postgresql", "postgres"),
    default_port=5432,
    # One psycopg 3 driver for both families: SQLAlchemy picks its async dialect under create_async_engine.
    drivers={"psycopg": "postgresql+psycopg", "asyncpg": "postgresql+asyncpg"},
    sync_drivers=("psycopg",),
    async_drivers=("psycopg", "asyncpg"),
    duplicate_key=frozenset({"23505"}),  # unique_violation
    missing_parent=frozenset({"23503"}),  # foreign_key_violation
    timeout_option={"asyncpg": "timeout"},  # libpq's connect_timeout for psycopg
    # Connection exceptions (class 08), shutdown and start-up (57P01-57P03), too many connections,
    # lock not available, deadlock, serialization failure.
    outage=frozenset({"57P01", "57P02", "57P03", "53300", "55P03", "40P01", "40001"}),
    outage_classes=("08",),
    # No client-side read timeout that bounds a request: libpq (psycopg) has none, and asyncpg's
    # command_timeout ends the statement but the connection's clean-up still waits for the server. Left
    # so, a stalled PostgreSQL held requests until it answered again; shared/deadline.py bounds them.
    watchdog_drivers=("psycopg", "asyncpg"),
    sleep_function="pg_sleep",
    codes="sqlstate",
)

DIALECTS: dict[str, Dialect] = {d.name: d for d in (MARIADB, POSTGRES)}


def dialect_for_scheme(scheme: str) -> Dialect:
    """The dialect of a URL scheme such as `mysql`, `mysql+pymysql` or `mariadb`."""
    base = scheme.split("+", 1)[0]
    for dialect in DIALECTS.values():
        if base in dialect.url_schemes:
            return dialect
    known = ", ".join(s for d in DIALECTS.values() for s in d.url_schemes)
    raise ValueError(f"unsupported database URL scheme {scheme!r}: use one of {known}")


def outage(exc: DBAPIError) -> bool:
    """Whether `exc` says the server cannot serve now (rather than that it refused what we sent)."""
    if exc.connection_invalidated:
        return True
    codes = [(dialect, dialect.error_code(exc)) for dialect in DIALECTS.values()]
    if all(code is None for _, code in codes):  # the driver's own failure (no server code): no connection
        return isinstance(exc, OperationalError)
    return any(
        code in d.outage or (isinstance(code, str) and code[:2] in d.outage_classes) for d, code in codes
    )


def violation(exc: DBAPIError) -> str | None:
    """'duplicate_key' or 'missing_parent' when `exc` is that constraint violation on any supported
    server (MySQL's numbers and PostgreSQL's SQLSTATEs do not overlap), else None."""
    for dialect in DIALECTS.values():
        code = dialect.error_code(exc)
        if code in dialect.duplicate_key:
            return "duplicate_key"
        if code in dialect.missing_parent:
            return "missing_parent"
    return None


class db_sleep(FunctionElement[None]):
    """`db_sleep(seconds)`: waits in the database (MariaDB's SLEEP, PostgreSQL's pg_sleep)."""

    type = NullType()  # no result processing: MariaDB's SLEEP returns 0, PostgreSQL's pg_sleep void
    inherit_cache = True
    name = "db_sleep"


@compiles(db_sleep)
def _sleep(element: db_sleep, compiler: SQLCompiler, **kw: Any) -> str:
    dialect = next(
        (d for d in DIALECTS.values() if compiler.dialect.name in (*d.url_schemes, d.name)), MARIADB
    )
    return f"{dialect.sleep_function}({compiler.process(element.clauses, **kw)})"
