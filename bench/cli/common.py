"""What every command shares: the console (stderr), one-line errors, option parsing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console

from bench.config import MIN_EFFECT, AppSource

console = Console(stderr=True)

# The gate's smallest slowdown, one option for `bench perf-check` and `bench compare`.
MinEffect = Annotated[
    float,
    typer.Option(
        min=0.01,
        max=0.9,
        help="The slowdown the gate must catch, as a fraction: a key is flagged when its change passes "
        f"half of it ({MIN_EFFECT:.2f}: a {MIN_EFFECT / 2:.0%} line).",
    ),
]


def named(name: str, help: str) -> Any:
    """The option `--NAME` and its one letter (`-a` app, `-b` backend, `-s` scenario): the same in every
    command."""
    return typer.Option(f"--{name}", f"-{name[0]}", help=help)


# Where the user's own apps come from: one set of options for `bench run` and `bench perf-check`.
AppDir = Annotated[
    Path | None,
    typer.Option(
        help="Your own apps (--app NAME=module:attr) are imported from and started in this folder, as "
        "uvicorn's --app-dir (perf-check: a folder of the git repository whose --base-ref it compares with)."
    ),
]
EnvFile = Annotated[
    Path | None,
    typer.Option(
        help="A file of KEY=value lines (a .env) whose variables your own apps' processes get, over the "
        "harness's own, as uvicorn's --env-file (perf-check: both sides)."
    ),
]
HealthPath = Annotated[
    str | None,
    typer.Option(
        help="The path whose 200 says your own app is up, e.g. /docs. \\[default: any HTTP answer; the "
        "catalog's apps: /healthz]"
    ),
]


def fail(message: str, code: int = 2) -> NoReturn:
    """One line saying what is wrong and how to fix it; exit 2 (usage or set-up error)."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    """One line about something the user should know that does not stop the command."""
    console.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)


def ints(text: str | None, what: str, *, minimum: int = 0) -> tuple[int, ...] | None:
    """`4,16,64` -> (4, 16, 64); None when the option was not given."""
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        fail(f"{what} must be comma-separated integers, like 4,16,64 (got {text!r})")
    if not values or any(v < minimum for v in values):
        fail(f"{what} must list integers of at least {minimum} (got {text!r})")
    return values


def app_source(app_dir: Path | None, env_file: Path | None, health_path: str | None) -> AppSource:
    """Where the user's own apps come from, checked before anything starts."""
    if app_dir is not None and not app_dir.is_dir():
        fail(f"--app-dir {app_dir}: no such folder (give the folder your app's package is in, as uvicorn's)")
    if env_file is not None and not env_file.is_file():
        fail(f"--env-file {env_file}: no such file (give a file of KEY=value lines, like your .env)")
    if health_path is not None and not health_path.startswith("/"):
        fail(f"--health-path {health_path}: give a path of the app, starting with /, like /docs")
    return AppSource(app_dir and app_dir.resolve(), env_file and env_file.resolve(), health_path)
