"""The Locust command line for one point: headless, every user started within the warm-up, the recording
plugin's parameters as its command-line options (loadtests/options.py, results/README.md), its own CSVs and
log in the point's folder.

Local (default): one Locust process (or `--processes N`), with a window the harness plans.
Distributed (`Loadgen.loadgen_workers > 0`): only the master runs here, bound to an address the user
gives; `bench worker` processes on any host connect to it. The master plans the window when every worker
has connected (`window.json`), sends the plugin's options to the workers with the spawn messages, and
writes each worker's recording as it arrives: nothing is shared through a disk.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import processes
from bench.catalog import SCENARIO_BY_NAME, locustfile, scenario_options
from bench.config import Loadgen, SeedData
from bench.processes import ManagedProcess
from loadtests.options import SPAWN_S  # a master-planned window starts this long after the test starts
from shared.config import REPO_ROOT

# From launch to the first users running, per Locust process started at once (under 0.5 s on this
# machine: a headless `-t 1s` run takes 1.42-1.50 s in all; a paired point's two share the load
# generator's CPU). Users then start at SPAWN_RATE a second
# (all of 16 in 0.16 s, of 64 in 0.64 s; at most 1 s for more), inside the warm-up.
STARTUP_S = 0.5
SPAWN_RATE = 100  # Locust warns above 100 a second
WINDOW_GRACE_S = 15.0  # past --worker-wait: the master's own start-up and its window.json
CONNECTED = re.compile(r"bench: worker connected: (\S+)")
# The recording plugin as a locustfile of its own (it imports loadtests.common: one module, hooks once).
PLUGIN = REPO_ROOT / "loadtests" / "plugin.py"
# What Locust says when it stops: argparse's `prog: error: ...`, an exception's last line (`SyntaxError:
# ...`), or a log record at ERROR or CRITICAL (`[time] host/ERROR/locust.main: ...`).
ARGPARSE_ERROR = re.compile(r"\berror: .*")
EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt)\b(: .*)?$")
ERROR_RECORD = re.compile(r"/(ERROR|CRITICAL)/[\w.]+: (.*)")
FAILURE_CHARS = 120  # an invalid reason stays one short line


@dataclass(frozen=True)
class Window:
    """When a point's Locust starts, and the measurement window after its warm-up (unix seconds)."""

    launch: float
    start: float
    end: float

    @classmethod
    def plan(cls, now: float, warmup_s: float, duration_s: float, launches: int = 1) -> Window:
        start = now + STARTUP_S * launches + warmup_s
        return cls(now, start, start + duration_s)


def launch(
    *,
    scenario: str,
    users: int,
    rate: float | None,
    db_ms: int,
    record: bool,
    host: str,
    folder: Path,
    window: Window | None,
    loadgen: Loadgen,
    seed: SeedData,
    cpus: tuple[int, ...],
    warmup_s: float = 0.0,
    duration_s: float = 0.0,
    statements: bool = False,
    env: dict[str, str] | None = None,
    partner: tuple[int, Path] | None = None,
) -> ManagedProcess:
    """A local Locust (`window` planned by the harness), or with `loadgen.distributed` the master of remote
    workers (`window` None: it plans warm-up + duration itself once they are connected). `statements`: the
    plugin reads the server's counters after every request (one user; `env` gives it the server's settings).
    `partner`: a distributed paired point's (this side: 0 or 1, the other side's folder): side 1's master
    listens on the port after --master-port, and the two plan one window once both have their workers."""
    folder.mkdir(parents=True, exist_ok=True)
    timing = (
        ["--bench-window-start", f"{window.start:.3f}", "--bench-window-end", f"{window.end:.3f}"]
        if window is not None
        else ["--bench-warmup", f"{warmup_s:g}", "--bench-duration", f"{duration_s:g}"]
    )
    plugin = [
        "--bench-out-dir",
        str(folder),
        *timing,
        "--seed-users",
        str(seed.users),
        "--seed-items",
        str(seed.items),
        "--db-ms",
        str(db_ms),
        "--bench-mode",
        "open" if rate else "closed",
        "--bench-rate",
        f"{(rate or 0) / loadgen.load_processes:g}",  # each Locust process's share of an open-loop rate
        "--bench-record",
        "1" if record else "0",
    ]
    run_s = window.end - window.launch + 0.5 if window is not None else SPAWN_S + warmup_s + duration_s + 1.0
    if partner is not None:  # -t counts from before the wait for the other master (which then stops it)
        plugin += [
            "--bench-partner-ready",
            str(partner[1] / "ready.json"),
            "--bench-partner-wait",
            f"{loadgen.worker_wait_s + WINDOW_GRACE_S:g}",
        ]
        run_s += loadgen.worker_wait_s + WINDOW_GRACE_S
    argv = [
        *processes.python_tool("locust"),
        "-f",
        locustfiles(scenario),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(max(users, SPAWN_RATE)),
        "-t",
        f"{math.ceil(run_s)}s",
        "-H",
        host,
        "--csv",
        str(folder / "locust"),
        "--csv-full-history",
        "--only-summary",
        "--stop-timeout",
        "2",
        "--loglevel",
        "WARNING",
        "--exit-code-on-error",
        "0",
        *plugin,
        *scenario_options(scenario),
        *(["--bench-statements", "1"] if statements else []),
    ]
    if loadgen.distributed:
        port = loadgen.master_port + (partner[0] if partner else 0)
        argv += [
            "--master",
            "--master-bind-host",
            loadgen.master_bind,
            "--master-bind-port",
            str(port),
            "--expect-workers",
            str(loadgen.loadgen_workers),
            "--expect-workers-max-wait",
            f"{math.ceil(loadgen.worker_wait_s)}",
        ]
    elif loadgen.processes > 1:
        argv += ["--processes", str(loadgen.processes)]
    return processes.spawn("locust", argv, env=env, cpus=cpus, log_path=folder / "locust.log")


def locustfiles(scenario: str) -> str:
    """Locust's `-f`: a catalog scenario's file (it imports the plugin), or a user's locustfile with the
    plugin beside it, so a plain one (an HttpUser, no import of ours) takes the plugin's options."""
    path = locustfile(scenario)
    return str(path) if scenario in SCENARIO_BY_NAME else f"{PLUGIN},{path}"


def failure_line(log: Path) -> str | None:
    """Locust's own last error line in its log (an unknown option, a locustfile that does not import),
    shortened to one line; None when it logged no error."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for raw in reversed(lines):
        line = raw.strip()
        if record := ERROR_RECORD.search(line):
            found = record.group(2)
        elif usage := ARGPARSE_ERROR.search(line):
            found = usage.group(0)
        elif EXCEPTION_LINE.match(line):
            found = line
        else:
            continue
        found = " ".join(found.replace(";", ",").split())  # points.csv joins reasons with ';'
        return found if len(found) <= FAILURE_CHARS else found[: FAILURE_CHARS - 3] + "..."
    return None


def master_address(loadgen: Loadgen) -> str:
    """What a worker gives to `bench worker --master` (a wildcard bind names no address)."""
    host = loadgen.master_bind
    if host in ("*", "0.0.0.0", "::"):
        host = "<this host's address>"
    elif ":" in host:
        host = f"[{host}]"
    return f"{host}:{loadgen.master_port}"


def loopback(host: str) -> bool:
    """An address only this machine reaches (127.0.0.0/8, ::1, localhost)."""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:  # a wildcard or a host name
        return False


def worker_command(loadgen: Loadgen, cpus: tuple[int, ...] = ()) -> str:
    """What to run on each load-generator host. A master on loopback means workers on this machine: with a
    pinned run they go to the load generator's CPUs, or their load on the app's CPUs can make points
    invalid (app_cpus_shared)."""
    command = f"bench worker --master {master_address(loadgen)}"
    if cpus and loopback(loadgen.master_bind):
        return f"taskset -c {','.join(map(str, cpus))} {command}"
    return command


def connected_workers(log: Path) -> int:
    """Workers the master saw connect (the plugin logs one line per worker)."""
    try:
        return len(set(CONNECTED.findall(log.read_text(errors="replace"))))
    except OSError:
        return 0


def await_window(
    master: ManagedProcess,
    folder: Path,
    loadgen: Loadgen,
    say: Callable[[str], None],
    cpus: tuple[int, ...] = (),
) -> tuple[Window | None, str | None]:
    """Wait (bounded: --worker-wait + WINDOW_GRACE_S) until the master has every worker and has planned
    its window. Returns (window, None), or (None, reason) with one clear line said."""
    launched = time.time()
    deadline = launched + loadgen.worker_wait_s + WINDOW_GRACE_S
    announced = False
    path = folder / "window.json"
    n = loadgen.loadgen_workers
    while time.time() < deadline:
        if path.exists():
            try:
                data = json.loads(path.read_text())
                return Window(launched, float(data["start"]), float(data["end"])), None
            except (OSError, ValueError, KeyError, TypeError):
                pass  # being written
        if not master.alive():
            break
        if not announced and time.time() - launched > 5:
            say(
                f"waiting up to {loadgen.worker_wait_s:.0f} s for {n} Locust worker(s): on each "
                f"load-generator host run `{worker_command(loadgen, cpus)}`"
            )
            announced = True
        time.sleep(0.1)
    got = connected_workers(master.log_path) if master.log_path else 0
    if master.alive() or got < n:
        master.stop()
        say(
            f"[red]no point[/]: {got} of {n} Locust worker(s) connected to the master on "
            f"{master_address(loadgen)} within {loadgen.worker_wait_s:.0f} s; start each with "
            f"`{worker_command(loadgen, cpus)}` (check the address is reachable from the worker hosts)"
        )
        return None, f"loadgen_workers({got}/{n} connected)"
    say(f"[red]no point[/]: the Locust master exited before the test started: {processes.log_tail(master)}")
    return None, "loadgen_master_exited"
