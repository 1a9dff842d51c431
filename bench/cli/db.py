"""`bench db up|down`: the private database server (or a check of DATABASE_URL)."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from bench.backends import BACKENDS, DatabaseError, backend_for, backend_names
from bench.cli.common import console, fail
from bench.config import SeedData
from shared.config import Settings

app = typer.Typer(help="The database: a private server under .run/ (or DATABASE_URL).", no_args_is_help=True)


def settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"bad database settings in the environment: {'.'.join(map(str, first['loc']))} {first['msg']}")


@app.command("up")
def db_up(
    backend: Annotated[
        str | None,
        typer.Option(help=f"Database product: {backend_names()}. \\[default: mariadb, or DATABASE_URL's]"),
    ] = None,
) -> None:
    """Start (or reuse) the server, create the databases, the app user and the tables."""
    base = settings()
    name = backend or (base.dialect.name if base.database_url else "mariadb")
    try:
        if base.database_url is not None and name != base.dialect.name:
            fail(f"--backend {name} but DATABASE_URL names a {base.dialect.name} server: drop one of them")
        info = backend_for(name).ensure(base)
    except DatabaseError as exc:
        fail(str(exc))
    where = f"private {name}" if info.private else "DATABASE_URL"
    pid = f", pid {info.pid}" if info.pid else ""
    console.print(f"database ready: {where} {info.version} on {info.host}:{info.port}{pid}")


@app.command("down")
def db_down() -> None:
    """Stop every private server that is running (by the PID it wrote). Data stays under .run/."""
    stopped = [(name, pid) for name, cls in BACKENDS.items() if (pid := cls().stop()) is not None]
    for name, pid in stopped:
        console.print(f"stopped private {name} (pid {pid})")
    if not stopped:
        console.print("no private database server was running")


@app.command("seed")
def db_seed(
    users: Annotated[
        int, typer.Option(min=10, max=10_000_000, help="Seeded users (ids 1..N).")
    ] = SeedData.users,
    items: Annotated[int, typer.Option(min=0, max=100, help="Seeded items per user.")] = SeedData.items,
) -> None:
    """Create the tables and seed users 1..N with their items, replacing what the tables held: for apps the
    harness does not start (docker-compose.yml's web UI stack; `bench run` seeds by itself)."""
    base = settings()
    name = base.dialect.name if base.database_url else "mariadb"
    try:
        backend = backend_for(name)
        backend.ensure(base)
        target = backend.settings(Settings())
        backend.seed(target, users, items)
    except DatabaseError as exc:
        fail(str(exc))
    console.print(f"seeded {users} users with {items} items each")
