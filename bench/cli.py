"""The `bench` command line (typer). Commands only: the work lives in the modules below it."""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from bench.database import DatabaseError, ensure_database, stop_database

app = typer.Typer(
    help="Sync vs async FastAPI on a real MariaDB: run the benchmark, report it, gate regressions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(
    help="The database: a private MariaDB under .run/ (or DATABASE_URL).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@db_app.command("up")
def db_up() -> None:
    """Start (or reuse) the database, create the app and test databases, the app user and the tables."""
    try:
        info = ensure_database()
    except DatabaseError as exc:
        fail(str(exc))
    except ValidationError as exc:
        fail(f"bad database settings in the environment: {exc.errors()[0]['loc']} {exc.errors()[0]['msg']}")
    where = "private MariaDB" if info.private else "DATABASE_URL"
    pid = f", pid {info.pid}" if info.pid else ""
    console.print(f"database ready: {where} {info.version} on {info.host}:{info.port}/{info.name}{pid}")


@db_app.command("down")
def db_down() -> None:
    """Stop the private MariaDB (by the PID it wrote). Data stays in .run/mariadb/data."""
    pid = stop_database()
    console.print(f"stopped private MariaDB (pid {pid})" if pid else "private MariaDB was not running")


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
