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

__all__ = ["BACKENDS", "Backend", "DatabaseError", "ServerInfo", "backend_for", "backend_names"]


def backend_names() -> str:
    return ", ".join(BACKENDS)


def backend_for(name: str) -> Backend:
    if name not in BACKENDS:
        raise DatabaseError(f"unknown backend {name!r}: use one of {backend_names()}")
    return BACKENDS[name]()
