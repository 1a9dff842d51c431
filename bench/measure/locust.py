"""The Locust command line for one point: headless, every user at once, the recording plugin's
parameters in BENCH_* variables (results/README.md), its own CSVs and log in the point's folder."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from bench import processes
from bench.catalog import locustfile
from bench.config import Loadgen, SeedData
from bench.processes import ManagedProcess

STARTUP_S = 1.0  # from launch to all users running, on this machine (imports + spawn)


@dataclass(frozen=True)
class Window:
    """When a point's Locust starts, and the measurement window after its warm-up (unix seconds)."""

    launch: float
    start: float
    end: float

    @classmethod
    def plan(cls, now: float, warmup_s: float, duration_s: float) -> Window:
        start = now + STARTUP_S + warmup_s
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
    window: Window,
    loadgen: Loadgen,
    seed: SeedData,
    cpus: tuple[int, ...],
) -> ManagedProcess:
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        "BENCH_OUT_DIR": str(folder),
        "BENCH_WINDOW_START": f"{window.start:.3f}",
        "BENCH_WINDOW_END": f"{window.end:.3f}",
        "BENCH_SEED_USERS": str(seed.users),
        "BENCH_SEED_ITEMS": str(seed.items),
        "BENCH_DB_MS": str(db_ms),
        "BENCH_MODE": "open" if rate else "closed",
        "BENCH_RATE": f"{(rate or 0) / loadgen.processes:g}",  # per Locust process
        "BENCH_RECORD": "1" if record else "0",
    }
    argv = [
        *processes.python_tool("locust"), "-f", str(locustfile(scenario)), "--headless",
        "-u", str(users), "-r", str(users), "-t", f"{math.ceil(window.end - window.launch + 0.5)}s",
        "-H", host, "--csv", str(folder / "locust"), "--csv-full-history", "--only-summary",
        "--stop-timeout", "2", "--loglevel", "WARNING", "--exit-code-on-error", "0",
    ]  # fmt: skip
    if loadgen.processes > 1:
        argv += ["--processes", str(loadgen.processes)]
    return processes.spawn("locust", argv, env=env, cpus=cpus, log_path=folder / "locust.log")
