"""What every command shares: the console (stderr), one-line errors, option parsing."""

from __future__ import annotations

from typing import NoReturn

import typer
from rich.console import Console

console = Console(stderr=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """One line saying what is wrong and how to fix it; exit 2 (usage or set-up error)."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


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
