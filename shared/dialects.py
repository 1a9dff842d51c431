"""What the apps must know about each database, in one place: the SQLAlchemy driver names, the options
each driver needs, how the server reports a duplicate key or a missing parent row, and how it sleeps.

This is the app side of the backend seam; the server side (install, start, seed, count statements) is
`bench/backends/`. Adding a database is one `Dialect` here and one backend there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Float, FunctionElement
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler


@dataclass(frozen=True)
class Dialect:
    name: str  # the backend's name in settings, the catalog and points.csv
    url_schemes: tuple[str, ...]  # what a DATABASE_URL's scheme may say (before any "+driver")
    default_port: int
    drivers: Mapping[str, str]  # driver -> SQLAlchemy drivername
    sync_default: str
    async_default: str
    duplicate_key: frozenset[int | str]  # error codes of a unique-index violation
    missing_parent: frozenset[int | str]  # error codes of a foreign-key violation on insert
    # Errors that mean "the server cannot serve now" (refused, gone, lost, shutting down, overloaded,
    # lock timeout or deadlock): 503. Every other error the server returns is a bug of ours.
    outage: frozenset[int | str] = frozenset()
    outage_classes: tuple[str, ...] = ()  # SQLSTATE classes (first two characters), e.g. "08"
    driver_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # besides the timeouts
    read_timeout_options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # driver -> its names
    sleep_function: str = "SLEEP"  # SELECT <fn>(seconds)
    codes: str = "errno"  # how the server's error codes are read: "errno" (MySQL) or "sqlstate"

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
        args: dict[str, Any] = {"connect_timeout": timeout, **self.driver_options.get(driver, {})}
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
    sync_default="pymysql",
    async_default="asyncmy",
    duplicate_key=frozenset({1062}),
    missing_parent=frozenset({1452}),
    # Too many connections, shutdown in progress, lock wait timeout, deadlock; client: cannot connect,
    # server gone away, lost connection (2002/2003/2006/2013/2055).
    outage=frozenset({1040, 1053, 1205, 1213, 2002, 2003, 2006, 2013, 2055}),
    # PyMySQL builds an SSL context on every connect unless told the server has none.
    driver_options={"pymysql": {"ssl_disabled": True}, "mysqlclient": {"ssl_mode": "DISABLED"}},
    # aiomysql has no read timeout: a stalled server holds its queries until the server answers again.
    read_timeout_options={
        "pymysql": ("read_timeout", "write_timeout"),
        "mysqlclient": ("read_timeout", "write_timeout"),
        "asyncmy": ("read_timeout",),
    },
)

DIALECTS: dict[str, Dialect] = {d.name: d for d in (MARIADB,)}


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
    for dialect in DIALECTS.values():
        code = dialect.error_code(exc)
        if code in dialect.outage or (isinstance(code, str) and code[:2] in dialect.outage_classes):
            return True
    return False


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


class db_sleep(FunctionElement[float]):
    """`db_sleep(seconds)`: a statement that waits in the database (SLEEP on MariaDB)."""

    type = Float()
    inherit_cache = True
    name = "db_sleep"


@compiles(db_sleep)
def _sleep(element: db_sleep, compiler: SQLCompiler, **kw: Any) -> str:
    dialect = next(
        (d for d in DIALECTS.values() if compiler.dialect.name in (*d.url_schemes, d.name)), MARIADB
    )
    return f"{dialect.sleep_function}({compiler.process(element.clauses, **kw)})"
