"""`bench worker --master HOST[:PORT]`: a Locust worker for `bench run --loadgen-workers N`, on any host.

A thin loop over `locust --worker -f -`: each point's master sends the scenario (`-f -`) and the plugin's
options, the worker loads the app and sends its recording back over Locust's messages, then quits with
the master; the loop starts the next worker at once, so one command serves a whole run. It keeps a worker
for the master's port and one for the next port: a paired point's second side has a master of its own
there (a worker waits for its master for up to 5 minutes, quietly, then starts again). Each worker runs
in a fresh temporary folder (its downloaded locustfile lives there; nothing is written anywhere else).
Ctrl-C (or SIGTERM) stops the worker's process group and exits.
"""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from bench.cli.common import console, fail
from bench.config import Loadgen
from bench.processes import ManagedProcess

DEFAULT_PORT = Loadgen.master_port
RETRY_PAUSE_S = 2.0  # after a worker that exited with an error (no master yet, master gone)
POLL_S = 0.2
NO_MASTER = "Failed to connect"  # Locust's words when no master answered (for 5 minutes: 60 tries of 5 s)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker_cmd)


def parse_master(text: str) -> tuple[str, int]:
    """`host`, `host:port`, `[v6]` or `[v6]:port` -> (host, port); a ValueError says what is wrong."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else ("" if not rest else "x")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host:
        raise ValueError(f"--master {text!r}: give the master's host, like 10.0.0.1 or 10.0.0.1:5557")
    try:
        port = int(port_text) if port_text else DEFAULT_PORT
    except ValueError:
        raise ValueError(f"--master {text!r}: the port must be a number, like 10.0.0.1:5557") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"--master {text!r}: the port must be from 1 to 65535")
    return host, port


def worker_cmd(
    master: Annotated[
        str,
        typer.Option(
            help=f"The master: HOST[:PORT] (port {DEFAULT_PORT} unless told; a paired point's second master "
            "listens on the next), as printed by `bench run --loadgen-workers N --master-bind HOST`."
        ),
    ],
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            max=256,
            help="Locust worker processes on this host; each counts as one of the run's --loadgen-workers.",
        ),
    ] = 1,
) -> None:
    """Serve `bench run --loadgen-workers N` as a Locust worker until Ctrl-C (reconnects between points)."""
    from bench import processes as procs
    from bench.processes import signals_as_interrupts

    try:
        host, port = parse_master(master)
    except ValueError as exc:
        fail(str(exc))
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        fail(f"--master {master}: cannot resolve {host!r} ({exc.strerror or exc})")
    ports = [port] + ([port + 1] if port < 65535 else [])  # a paired point's second master: the next port
    console.print(
        f"Locust workers for the masters on {host}:{'/'.join(map(str, ports))} (a paired point's two sides): "
        "serving every point until Ctrl-C"
    )
    served = 0
    running: dict[int, tuple[ManagedProcess, tempfile.TemporaryDirectory[str]]] = {}
    not_before = dict.fromkeys(ports, 0.0)
    try:
        with signals_as_interrupts():
            while True:
                for p in ports:
                    if p not in running and time.time() >= not_before[p]:
                        running[p] = _start(host, p, processes)
                for p, (proc, tmp) in list(running.items()):
                    if (code := proc.popen.poll()) is None:
                        continue
                    tail = procs.log_tail(proc)
                    proc.stop(grace=3.0)
                    tmp.cleanup()
                    del running[p]
                    if code == 0:
                        served += 1
                        console.print(f"point {served} served (port {p}); waiting for the next master")
                        continue
                    not_before[p] = time.time() + RETRY_PAUSE_S
                    if NO_MASTER not in tail:  # no master for 5 minutes: between runs, quietly
                        console.print(f"[yellow]worker exited with code {code}[/]: {tail}; starting again")
                time.sleep(POLL_S)
    except KeyboardInterrupt:
        procs.stop_all()
        for _, tmp in running.values():
            tmp.cleanup()
        console.print(f"stopped after {served} point(s)")
        raise typer.Exit(130) from None


def _start(host: str, port: int, processes: int) -> tuple[ManagedProcess, tempfile.TemporaryDirectory[str]]:
    """One Locust worker for the master on host:port, in a fresh temporary folder of its own."""
    from bench import processes as procs

    tmp = tempfile.TemporaryDirectory(prefix="bench-worker-")
    argv = [
        *procs.python_tool("locust"),
        "--worker",
        "-f",
        "-",
        "--master-host",
        host,
        "--master-port",
        str(port),
        "--exit-code-on-error",
        "0",
        *(["--processes", str(processes)] if processes > 1 else []),
    ]
    folder = Path(tmp.name)
    proc = procs.spawn(
        "locust worker", argv, env={"TMPDIR": tmp.name}, log_path=folder / "locust.log", cwd=folder
    )
    return proc, tmp
