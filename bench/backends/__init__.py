"""Everything database-specific on the harness side, behind one seam: `Backend`.

A backend installs and runs a private server under `.run/<name>/` (or checks the server a DATABASE_URL
names), provisions the app user and the databases, seeds and resets the data, counts the statements the
server executed (the work check), and can kill, stall and resume its private server (the fault tests).
The apps' side of the same seam (driver names, error codes, the sleep statement) is shared/dialects.py.
"""

from __future__ import annotations

from bench.backends.base import Backend, DatabaseError, ServerInfo
from bench.backends.mariadb import MariaDB
from bench.backends.postgres import Postgres

BACKENDS: dict[str, type[Backend]] = {b.name: b for b in (MariaDB, Postgres)}

__all__ = [
    "BACKENDS",
    "Backend",
    "DatabaseError",
    "ServerInfo",
    "backend_for",
    "backend_names",
    "check_url_backends",
    "default_backend",
    "url_backend",
]


def backend_names() -> str:
    return ", ".join(BACKENDS)


def backend_for(name: str) -> Backend:
    if name not in BACKENDS:
        raise DatabaseError(f"unknown backend {name!r}: use one of {backend_names()}")
    return BACKENDS[name]()


def url_backend() -> str | None:
    """The backend DATABASE_URL names (its scheme), or None when it is not set."""
    from shared.config import Settings

    settings = Settings()
    return settings.dialect.name if settings.database_url is not None else None


def default_backend() -> str:
    """What a command runs on when told nothing: DATABASE_URL's backend, else MariaDB."""
    return url_backend() or "mariadb"


def check_url_backends(backends: list[str]) -> None:
    """DATABASE_URL names one server: a run cannot also use another product's private server."""
    named = url_backend()
    other = [b for b in backends if named is not None and b != named]
    if other:
        raise DatabaseError(
            f"DATABASE_URL names a {named} server, so nothing can run on {other[0]}: drop its apps or "
            "--backend, or unset DATABASE_URL to use the private servers"
        )
