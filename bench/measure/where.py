"""Which figures of a run were measured where: meta.json `measured_where`, the report's table.

The harness sees only its own host: the processes it started (psutil), the database it can log in to,
and what the load generators send it. Everything else is recorded as not measured (empty), never guessed.
"""

from __future__ import annotations

from collections.abc import Iterable

from bench.config import RunConfig
from bench.measure.locust import master_address
from bench.stack import Stack


def describe(
    cfg: RunConfig, stacks: Iterable[Stack], worker_hosts: Iterable[str] = ()
) -> list[dict[str, str]]:
    """One row per part of the set-up: part, where it ran, what was measured, what was not (every app,
    the load generator, each backend's database)."""
    stacks = list(stacks)
    rows = [_app(name, stack) for stack in stacks for name in stack.specs]
    rows.append(_loadgen(cfg, sorted(set(worker_hosts))))
    rows += [_database(stack) for stack in stacks]
    return rows


def _app(name: str, stack: Stack) -> dict[str, str]:
    app = stack.apps.get(name)
    spec = stack.specs[name]
    limits = "limits from its /limits" if app is not None and app.limits else "no /limits served"
    if spec.external:
        db = (
            "statement counters and acknowledged writes (DATABASE_URL)"
            if stack.database_url
            else "nothing on the database side"
        )
        return {
            "part": f"app {name}",
            "where": f"already running at {spec.url} (not started, restarted or stopped by the harness)",
            "measured": f"latency and throughput at the load generators; {db}; {limits}",
            "not_measured": "its CPU and memory (another host or process tree)"
            + (
                "" if stack.database_url else "; statement counters and acknowledged writes (no DATABASE_URL)"
            ),
        }
    where = f"started by the harness on this host ({app.base_url})" if app else "started by the harness"
    return {
        "part": f"app {name}",
        "where": where,
        "measured": f"CPU and memory (psutil, 1 Hz), latency, throughput, statement counters; {limits}",
        "not_measured": "",
    }


def _loadgen(cfg: RunConfig, hosts: list[str]) -> dict[str, str]:
    lg = cfg.loadgen
    if lg.distributed:
        seen = f"; hosts seen: {', '.join(hosts)}" if hosts else ""
        return {
            "part": "load generator",
            "where": f"{lg.loadgen_workers} Locust worker(s) (`bench worker`) connected to the master on "
            f"{master_address(lg)}{seen}",
            "measured": "each worker's own CPU (psutil) and recording, sent to the master over Locust's "
            "messages",
            "not_measured": "the workers' memory; their CPU outside their own Locust process",
        }
    what = (
        f"a Locust master and {lg.processes} worker processes" if lg.processes > 1 else "one Locust process"
    )
    return {
        "part": "load generator",
        "where": f"{what} on this host",
        "measured": "CPU and memory of every Locust process (psutil), and each process's own CPU reading",
        "not_measured": "",
    }


def _database(stack: Stack) -> dict[str, str]:
    info = stack.info
    if info is None:
        return {
            "part": "database",
            "where": "not reachable from the harness (external apps only, no DATABASE_URL)",
            "measured": "",
            "not_measured": "statement counters, connections, acknowledged-write check, CPU and memory",
        }
    if info.private:
        return {
            "part": "database",
            "where": f"private {info.backend} on this host ({info.host}:{info.port})",
            "measured": "CPU and memory (psutil), statement counters, connections, acknowledged writes",
            "not_measured": "",
        }
    return {
        "part": "database",
        "where": f"{info.backend} at {info.host}:{info.port} (DATABASE_URL)",
        "measured": "statement counters, connections, acknowledged writes",
        "not_measured": "its CPU and memory (not a process of this host)",
    }
