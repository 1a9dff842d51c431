"""The `bench` command line (typer). Wiring only: options -> small frozen configs -> one call below."""

from __future__ import annotations

import sys

import typer

from bench.cli import db, gate, report, run, worker

app = typer.Typer(
    help="Sync vs async FastAPI on a real database: run the benchmark, report it, gate regressions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
for module in (run, worker, report, gate):
    module.register(app)


def main() -> None:
    from bench.processes import signals_as_interrupts, stop_all

    code: int | str | None = 0
    try:
        # Every command: Ctrl-C and SIGTERM stop it cleanly, also when started in the background.
        with signals_as_interrupts():
            app()
    except KeyboardInterrupt:
        code = 130
    except SystemExit as exc:
        code = exc.code
    finally:
        while True:  # whatever a command started and has not stopped yet (none on a normal exit)
            try:
                stop_all()
                break
            except KeyboardInterrupt:  # one more interrupt while stopping: stop the rest, exit 130
                code = 130
    sys.exit(code)
