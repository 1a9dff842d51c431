"""The plugin's parameters: Locust command-line options, read into `Params` at every test start.

Parameters are Locust command-line options (`--bench-*`, `--db-ms`, `--seed-users`; each also read from
its BENCH_* environment variable), given to the master (or the single process) by `bench run`. Locust
sends a master's custom options to every worker with each spawn message, so workers need none of them.
The window is either absolute (`--bench-window-start/-end`, unix seconds: the harness plans it) or
planned by the master when the test starts (`--bench-warmup`, `--bench-duration`: after the workers have
connected); the master then passes the absolute window on to the workers and writes `window.json`.
"""

from __future__ import annotations

import math
import os
from typing import Any

# Timing of a point around its window (bench/measure/locust.py plans with SPAWN_S too).
SPAWN_S = 0.5  # a window planned at test start begins this long after it (dispatch + spawn), then warm-up
SEND_DELAY_S = 0.3  # a worker sends its recording this long after the window ends (late completions)
REPORT_TIMEOUT_S = 10.0  # the master waits this long past the window for every worker's recording
QUIT_AFTER_S = 0.1  # a lone headless process quits this long after its window (nothing later counts)
QUIT_MASTER_S = 1.0  # a paired master, after its window: its workers' recordings come SEND_DELAY_S after it


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


class Params:
    """Run parameters: environment defaults at import, then the parsed options at every test start."""

    out_dir: str | None = os.environ.get("BENCH_OUT_DIR") or None
    window = (_env_float("BENCH_WINDOW_START", 0.0), _env_float("BENCH_WINDOW_END", 0.0) or math.inf)
    warmup = 0.0
    duration = 0.0
    seed_users = int(_env_float("BENCH_SEED_USERS", 10_000))
    seed_items = int(_env_float("BENCH_SEED_ITEMS", 3))
    db_ms = int(_env_float("BENCH_DB_MS", 0))
    mode = os.environ.get("BENCH_MODE", "closed")
    record = os.environ.get("BENCH_RECORD", "1") != "0"  # 0: count requests only (to measure our cost)
    rate = _env_float("BENCH_RATE", 0.0)
    statements = False  # read the server's counters after every request (bench/measure: the statement pass)
    partner_ready = ""  # a paired point's master: the other side master's ready.json (one window for both)
    partner_wait = 0.0  # seconds it waits for that file, at most

    @classmethod
    def read(cls, opts: Any) -> None:
        cls.out_dir = opts.bench_out_dir or None
        cls.window = (float(opts.bench_window_start), float(opts.bench_window_end) or math.inf)
        cls.warmup, cls.duration = float(opts.bench_warmup), float(opts.bench_duration)
        cls.seed_users, cls.seed_items = int(opts.seed_users), int(opts.seed_items)
        cls.db_ms, cls.mode = int(opts.db_ms), str(opts.bench_mode)
        cls.record, cls.rate = bool(int(opts.bench_record)), float(opts.bench_rate)
        cls.statements = bool(int(opts.bench_statements))
        cls.partner_ready, cls.partner_wait = str(opts.bench_partner_ready), float(opts.bench_partner_wait)


def add_arguments(parser: Any) -> None:
    shown = parser.add_argument
    shown(
        "--db-ms",
        type=int,
        env_var="BENCH_DB_MS",
        default=Params.db_ms,
        help="slow_db: milliseconds the database sleeps per request",
    )
    shown(
        "--seed-users",
        type=int,
        env_var="BENCH_SEED_USERS",
        default=Params.seed_users,
        help="seeded users have ids 1..N",
    )

    def hidden(flag: str, **kw: Any) -> None:
        parser.add_argument(flag, include_in_web_ui=False, **kw)

    hidden(
        "--seed-items",
        type=int,
        env_var="BENCH_SEED_ITEMS",
        default=Params.seed_items,
        help="bench: seeded items per user",
    )
    hidden(
        "--bench-out-dir",
        env_var="BENCH_OUT_DIR",
        default=Params.out_dir or "",
        help="bench: folder for the loadgen files (the master's or the single process's)",
    )
    hidden(
        "--bench-window-start",
        type=float,
        env_var="BENCH_WINDOW_START",
        default=Params.window[0],
        help="bench: measurement window start, unix seconds (0: plan it at test start)",
    )
    hidden(
        "--bench-window-end",
        type=float,
        env_var="BENCH_WINDOW_END",
        default=0.0 if math.isinf(Params.window[1]) else Params.window[1],
        help="bench: measurement window end, unix seconds (0: open-ended)",
    )
    hidden(
        "--bench-warmup", type=float, default=0.0, help="bench: warm-up seconds of a window planned at start"
    )
    hidden("--bench-duration", type=float, default=0.0, help="bench: seconds of a window planned at start")
    hidden(
        "--bench-mode",
        choices=["closed", "open"],
        env_var="BENCH_MODE",
        default=Params.mode,
        help="bench: closed or open loop",
    )
    hidden(
        "--bench-rate",
        type=float,
        env_var="BENCH_RATE",
        default=Params.rate,
        help="bench: open loop, target requests/s of each Locust process",
    )
    hidden(
        "--bench-record",
        type=int,
        choices=[0, 1],
        env_var="BENCH_RECORD",
        default=int(Params.record),
        help="bench: 0 counts requests only (no histograms)",
    )
    hidden(
        "--bench-statements",
        type=int,
        choices=[0, 1],
        default=0,
        help="bench: 1 reads the database's statement counters after every request (one user only: each "
        "request's statements, by name; the server settings come from the environment)",
    )
    hidden(
        "--bench-partner-ready",
        default="",
        help="bench: a paired point's master: the other master's ready.json; both plan one window",
    )
    hidden(
        "--bench-partner-wait",
        type=float,
        default=0.0,
        help="bench: seconds a paired master waits for the other's ready.json",
    )
