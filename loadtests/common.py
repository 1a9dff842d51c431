"""What every scenario shares: the recording plugin (results/README.md's loadgen files) and BenchUser.

Recording. Locust rounds response times and cannot merge percentiles, so every request that *completes*
inside the measurement window goes into an HdrHistogram of microseconds (3 significant digits), counted
per request name. Requests completing before the window are the warm-up and are left out of every total.
Every second, warm-up included (negative seconds), also gets its own count and histogram, for the report's
timeline. Each process also samples its own CPU (psutil, 1 Hz) and keeps the highest reading of the window.

Where the recording goes. A single Locust process writes `loadgen-<pid>.json` into `--bench-out-dir` when
it quits. In Locust's distributed mode (`bench run --loadgen-workers N`, and `--loadgen-processes N`) the
workers write nothing: each sends its whole recording to the master in one `bench_recording` message
shortly after the window ends, and the master writes `loadgen-w<index>.json` per worker into its own
`--bench-out-dir`. Nothing depends on a disk shared with the workers.

Parameters are Locust command-line options (`--bench-*`, `--db-ms`, `--seed-users`; each also read from
its BENCH_* environment variable), given to the master (or the single process) by `bench run`. Locust
sends a master's custom options to every worker with each spawn message, so workers need none of them.
The window is either absolute (`--bench-window-start/-end`, unix seconds: the harness plans it) or
planned by the master when the test starts (`--bench-warmup`, `--bench-duration`: after the workers have
connected); the master then passes the absolute window on to the workers and writes `window.json`.

Load. Closed loop (default): each user sends its next request when the previous one is answered.
Open loop (`--bench-mode open --bench-rate R`, R req/s for this process): requests are due on a fixed
schedule shared by all users of the process (request k is due at t0 + k/rate); a user takes the next due
time, sleeps until it, and sends. Latency is measured from the *due* time (corrected for coordinated
omission, as wrk2 does); the plain response time goes into `hdr_uncorrected`; sends more than LATE_S
behind schedule count as `late` (too few users, or a load generator that cannot keep up).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import random
import socket
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any
from uuid import uuid4

import gevent
import psutil
from hdrh.histogram import HdrHistogram
from locust import FastHttpUser, events, task
from locust.env import Environment
from locust.runners import MasterRunner, Runner, WorkerRunner

LATE_S = 0.010
MAX_FAILURE_SAMPLES = 20
HDR_RANGE_US = (1, 120_000_000)  # 1 µs .. 2 min
SPAWN_S = 0.5  # a window planned at test start begins this long after it (dispatch + spawn), then warm-up
SEND_DELAY_S = 0.3  # a worker sends its recording this long after the window ends (late completions)
REPORT_TIMEOUT_S = 10.0  # the master waits this long past the window for every worker's recording
QUIT_AFTER_S = 0.1  # a lone headless process quits this long after its window (nothing later counts)
QUIT_MASTER_S = 1.0  # a paired master, after its window: its workers' recordings come SEND_DELAY_S after it
RECORDING_MESSAGE = "bench_recording"
# Unique per process, so emails made by different processes, hosts or runs never collide.
PROCESS_TAG = f"{os.getpid()}-{uuid4().hex[:6]}"

log = logging.getLogger("bench")


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


def _add_arguments(parser: Any) -> None:
    shown = parser.add_argument
    shown("--db-ms", type=int, env_var="BENCH_DB_MS", default=Params.db_ms,
          help="slow_db: milliseconds the database sleeps per request")  # fmt: skip
    shown("--seed-users", type=int, env_var="BENCH_SEED_USERS", default=Params.seed_users,
          help="seeded users have ids 1..N")  # fmt: skip

    def hidden(flag: str, **kw: Any) -> None:
        parser.add_argument(flag, include_in_web_ui=False, **kw)

    hidden("--seed-items", type=int, env_var="BENCH_SEED_ITEMS", default=Params.seed_items,
           help="bench: seeded items per user")  # fmt: skip
    hidden("--bench-out-dir", env_var="BENCH_OUT_DIR", default=Params.out_dir or "",
           help="bench: folder for the loadgen files (the master's or the single process's)")  # fmt: skip
    hidden("--bench-window-start", type=float, env_var="BENCH_WINDOW_START", default=Params.window[0],
           help="bench: measurement window start, unix seconds (0: plan it at test start)")  # fmt: skip
    hidden("--bench-window-end", type=float, env_var="BENCH_WINDOW_END",
           default=0.0 if math.isinf(Params.window[1]) else Params.window[1],
           help="bench: measurement window end, unix seconds (0: open-ended)")  # fmt: skip
    hidden(
        "--bench-warmup", type=float, default=0.0, help="bench: warm-up seconds of a window planned at start"
    )
    hidden("--bench-duration", type=float, default=0.0, help="bench: seconds of a window planned at start")
    hidden("--bench-mode", choices=["closed", "open"], env_var="BENCH_MODE", default=Params.mode,
           help="bench: closed or open loop")  # fmt: skip
    hidden("--bench-rate", type=float, env_var="BENCH_RATE", default=Params.rate,
           help="bench: open loop, target requests/s of each Locust process")  # fmt: skip
    hidden("--bench-record", type=int, choices=[0, 1], env_var="BENCH_RECORD", default=int(Params.record),
           help="bench: 0 counts requests only (no histograms)")  # fmt: skip
    hidden("--bench-statements", type=int, choices=[0, 1], default=0,
           help="bench: 1 reads the database's statement counters after every request (one user only: each "
                "request's statements, by name; the server settings come from the environment)")  # fmt: skip
    hidden("--bench-partner-ready", default="",
           help="bench: a paired point's master: the other master's ready.json; both plan one window")  # fmt: skip
    hidden("--bench-partner-wait", type=float, default=0.0,
           help="bench: seconds a paired master waits for the other's ready.json")  # fmt: skip


class Recorder:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Empty, for a new test (a worker process or the web UI may run several)."""
        self.hdr = HdrHistogram(*HDR_RANGE_US, 3)
        self.hdr_uncorrected = HdrHistogram(*HDR_RANGE_US, 3) if Params.mode == "open" else None
        self.requests = 0
        self.failures = 0
        self.late = 0
        self.per_second: dict[int, Counter[str]] = defaultdict(Counter)
        self.second_hdr: dict[int, HdrHistogram] = {}
        self.by_name: dict[str, Counter[str]] = defaultdict(Counter)
        self.hdr_by_name: dict[str, HdrHistogram] = {}
        self.failure_samples: list[str] = []
        self.acked: dict[str, set[int]] = {"users": set(), "items": set()}
        self.ended: str | None = None  # "window": quit by itself once its window was over
        self.statements: dict[str, Counter[str]] = defaultdict(Counter)  # by name: statements of each kind
        self.counters: Any = None  # the statement pass: the server's counters (bench.backends), one user only
        self.last: dict[str, int] | None = None
        if Params.statements:
            from bench.backends import backend_for  # the harness's own: only a statement pass needs them
            from shared.config import Settings

            settings = Settings()
            self.counters = backend_for(settings.backend).counters(settings)
            self.last = self.counters.read()

    def count_statements(self, key: str, counted: bool) -> None:
        """One user: what the server executed since the previous request's answer is this request's work."""
        now = self.counters.read()
        if counted and self.last is not None:
            self.statements[key].update({k: now[k] - self.last[k] for k in now if k != "connections"})
        self.last = now

    def on_request(
        self, name: str, response_time: float, start_time: float, exception: BaseException | None,
        context: dict[str, Any], request_type: str,
    ) -> None:  # fmt: skip
        done = start_time + response_time / 1000
        start, end = Params.window
        if done >= end:
            return
        due = context.get("due")
        corrected_ms = response_time + max(0.0, (start_time - due) * 1000) if due else response_time
        if Params.record and start > 0:  # every second, warm-up too (negative t)
            t = math.floor(done - start)
            self.per_second[t]["requests"] += 1
            self.per_second[t]["failures"] += exception is not None
            if t not in self.second_hdr:
                self.second_hdr[t] = HdrHistogram(*HDR_RANGE_US, 3)
            self.second_hdr[t].record_value(max(1, round(corrected_ms * 1000)))
        key = f"{request_type} {name}"
        if self.counters is not None:
            self.count_statements(key, counted=done >= start)
        if done < start:
            return
        self.requests += 1
        if exception is not None:
            self.failures += 1
            if len(self.failure_samples) < MAX_FAILURE_SAMPLES:
                self.failure_samples.append(f"{key}: {exception}"[:300])
        if not Params.record:
            return
        self.hdr.record_value(max(1, round(corrected_ms * 1000)))
        if self.hdr_uncorrected is not None:
            self.hdr_uncorrected.record_value(max(1, round(response_time * 1000)))
        self.by_name[key]["requests"] += 1
        if key not in self.hdr_by_name:
            self.hdr_by_name[key] = HdrHistogram(*HDR_RANGE_US, 3)
        self.hdr_by_name[key].record_value(max(1, round(corrected_ms * 1000)))
        if exception is not None:
            self.by_name[key]["failures"] += 1

    def payload(self, expected: dict[str, dict[str, float]]) -> dict[str, Any]:
        """This process's recording: the keys of results/README.md's loadgen files."""
        start, end = Params.window
        first = min(self.per_second, default=0)
        last = int(end - start) if math.isfinite(end) else max(self.per_second, default=-1) + 1
        return {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "worker_index": None,  # set by the master when it writes a worker's recording
            "mode": Params.mode,
            "target_rps": Params.rate or None,
            "window": {"start": start, "end": end if math.isfinite(end) else None},
            "requests": self.requests,
            "failures": self.failures,
            "by_name": {k: dict(v) for k, v in sorted(self.by_name.items())},
            "hdr_by_name": {k: h.encode().decode() for k, h in sorted(self.hdr_by_name.items())},
            "expected_statements": expected,
            "statements_by_name": {k: dict(v) for k, v in sorted(self.statements.items())},
            "hdr": self.hdr.encode().decode() if self.requests else None,
            "hdr_uncorrected": self.hdr_uncorrected.encode().decode()
            if self.hdr_uncorrected is not None and self.requests
            else None,
            "per_second": [
                {
                    "t": t,
                    "requests": self.per_second[t]["requests"],
                    "failures": self.per_second[t]["failures"],
                    "hdr": self.second_hdr[t].encode().decode() if t in self.second_hdr else None,
                }
                for t in range(min(first, 0), max(last, 0))
            ],
            "late": self.late,
            "acked": {k: sorted(v) for k, v in self.acked.items()},
            "failure_samples": self.failure_samples,
            "cpu_max": cpu.max_in(start, end),
            "clock_offset_s": None,  # set by the master: its clock minus the worker's, plus transit
            "ended": self.ended,
        }


class CpuMeter:
    """This process's own CPU (% of one core), sampled every second by a greenlet."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self.greenlet: gevent.Greenlet | None = None

    def start(self) -> None:
        self.samples = []
        if self.greenlet is None:
            self.greenlet = gevent.spawn(self._run)

    def _run(self) -> None:
        proc = psutil.Process()
        proc.cpu_percent(None)  # the first call primes the counter
        while True:
            gevent.sleep(1.0)
            self.samples.append((time.time(), proc.cpu_percent(None)))

    def max_in(self, start: float, end: float) -> float | None:
        """The highest reading covering the window (a reading covers the second before it)."""
        inside = [v for t, v in self.samples if start < t <= end + 0.5]
        return round(max(inside), 1) if inside else None


recorder = Recorder()
cpu = CpuMeter()
EXPECTED: dict[str, dict[str, float]] = {}  # filled by each scenario module: route -> statements


def _on_request(
    request_type: str, name: str, response_time: float, exception: BaseException | None = None,
    context: dict[str, Any] | None = None, start_time: float | None = None, **_kw: Any,
) -> None:  # fmt: skip
    if start_time is None:  # a Locust without start_time: derive it
        start_time = time.time() - response_time / 1000
    recorder.on_request(name, response_time, start_time, exception, context or {}, request_type)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data) + "\n")
    tmp.replace(path)


# --- the test's lifecycle: local process, master, worker -------------------------------------------------


def _on_test_start(environment: Environment, **_kw: Any) -> None:
    opts = environment.parsed_options
    if opts is not None:
        Params.read(opts)
        if not Params.window[0] and Params.duration > 0 and not isinstance(environment.runner, WorkerRunner):
            _plan_window(environment)
    global schedule
    schedule = Schedule(Params.rate) if Params.mode == "open" and Params.rate > 0 else None
    recorder.reset()
    if isinstance(environment.runner, MasterRunner):
        collector.start(environment.runner)
        return
    cpu.start()
    if isinstance(environment.runner, WorkerRunner) and Params.out_dir and math.isfinite(Params.window[1]):
        worker_sender.schedule(environment)
    elif (
        environment.runner is not None
        and opts is not None
        and opts.headless
        and math.isfinite(Params.window[1])
    ):
        # Quit as soon as the window is over rather than at `-t`, which counts whole seconds: the harness
        # waited about a second per point for nothing (`-t` stays as the backstop).
        delay = max(0.0, Params.window[1] - time.time()) + QUIT_AFTER_S
        gevent.spawn_later(delay, _quit_after_window, environment.runner)


def _quit_after_window(runner: Runner) -> None:
    recorder.ended = "window"
    runner.quit()


def _plan_window(environment: Environment) -> None:
    """Window of this test, from now (the master starts its test when every worker has connected); the
    parsed options carry it to the workers with the spawn messages that follow."""
    start = _ready_together() + SPAWN_S + Params.warmup
    Params.window = (start, start + Params.duration)
    opts = environment.parsed_options
    if opts is not None:
        opts.bench_window_start, opts.bench_window_end = Params.window
    if Params.out_dir:
        _write_json(Path(Params.out_dir) / "window.json", {"start": start, "end": start + Params.duration})
    if Params.partner_ready and environment.runner is not None:
        # Its -t counted from before the wait: it quits by itself once its window is over (as -t would).
        gevent.spawn_later(max(0.0, Params.window[1] - time.time()) + QUIT_MASTER_S, environment.runner.quit)


def _ready_together() -> float:
    """Now, or for one of a paired point's two masters (each with its own workers) the moment both have
    their workers: each writes when it is ready and waits (bounded) for the other, so both plan the same
    window. Alone past the wait (the other's workers never came), it plans from now: that point is invalid."""
    now = time.time()
    if not (Params.partner_ready and Params.out_dir):
        return now
    _write_json(Path(Params.out_dir) / "ready.json", {"t": now})
    deadline = now + Params.partner_wait
    while time.time() < deadline:
        try:
            return max(now, float(json.loads(Path(Params.partner_ready).read_text())["t"]))
        except (OSError, ValueError, KeyError, TypeError):
            gevent.sleep(0.02)  # not yet there (or being written)
    log.warning(
        "bench: the other master of this paired point was not ready within %.0f s", Params.partner_wait
    )
    return time.time()


class WorkerSender:
    """A worker sends its recording to the master once, shortly after the window ends (or when its test
    stops before that). It stops its users first, so the acknowledged ids are final: a write deleted
    after the recording left would otherwise be missed by the acknowledged-write check."""

    def __init__(self) -> None:
        self.pending: gevent.Greenlet | None = None

    def schedule(self, environment: Environment) -> None:
        self.cancel()
        delay = max(0.0, Params.window[1] - time.time()) + SEND_DELAY_S
        self.pending = gevent.spawn_later(delay, self.stop_and_send, environment)

    def cancel(self) -> None:
        if self.pending is not None and not self.pending.ready():
            self.pending.kill(block=False)

    def stop_and_send(self, environment: Environment) -> None:
        self.pending = None  # test_stop below must not send a second time
        if environment.runner is not None:
            environment.runner.stop()  # waits up to the master's --stop-timeout for running tasks
        self.send(environment)

    def send(self, environment: Environment) -> None:
        self.pending = None
        data = recorder.payload(EXPECTED) | {"sent_at": time.time()}
        if environment.runner is not None:
            environment.runner.send_message(RECORDING_MESSAGE, data)

    def on_test_stop(self, environment: Environment) -> None:
        if self.pending is not None and not self.pending.ready():
            self.cancel()
            self.send(environment)


class Collector:
    """The master's side: the recording of every worker that started the test, written as it arrives; at
    test stop, a bounded wait for those that have not sent theirs yet. A worker that joined mid-test (one
    restarted after a crash, say) measured part of the window only: its recording is left out, so the
    point shows the missing one."""

    def __init__(self) -> None:
        self.started: set[str] = set()  # the workers connected when the test started
        self.received: dict[str, int] = {}  # worker id -> its index

    def start(self, runner: MasterRunner) -> None:
        self.started = {node.id for node in runner.clients.all}
        self.received = {}

    def on_message(self, environment: Environment, msg: Any, **_kw: Any) -> None:
        runner = environment.runner
        assert isinstance(runner, MasterRunner)
        if msg.node_id not in self.started:
            log.warning("bench: recording of %s left out: it joined after the test started", msg.node_id)
            return
        data = dict(msg.data)
        sent_at = data.pop("sent_at", None)
        index = runner.get_worker_index(msg.node_id)
        data["worker_index"] = index
        data["clock_offset_s"] = round(time.time() - float(sent_at), 3) if sent_at else None
        self.received[msg.node_id] = index
        if Params.out_dir:
            _write_json(Path(Params.out_dir) / f"loadgen-w{index}.json", data)

    def on_test_stop(self, environment: Environment) -> None:
        if not Params.out_dir or not math.isfinite(Params.window[1]):
            return
        expected = len(self.started)
        deadline = max(time.time(), Params.window[1] + SEND_DELAY_S) + REPORT_TIMEOUT_S
        while len(self.received) < expected and time.time() < deadline:
            gevent.sleep(0.1)
        if len(self.received) < expected:
            log.warning("bench: recordings from %d of %d workers", len(self.received), expected)


worker_sender = WorkerSender()
collector = Collector()


def _on_init(environment: Environment, **_kw: Any) -> None:
    if isinstance(environment.runner, MasterRunner):
        environment.runner.register_message(RECORDING_MESSAGE, collector.on_message)


def _on_worker_connect(client_id: str, **_kw: Any) -> None:
    log.warning("bench: worker connected: %s", client_id)  # the harness counts these lines


def _on_test_stop(environment: Environment, **_kw: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        worker_sender.on_test_stop(environment)
    elif isinstance(environment.runner, MasterRunner):
        collector.on_test_stop(environment)


def _write(environment: Environment, **_kw: Any) -> None:
    """A single Locust process writes its own recording when it quits."""
    if Params.out_dir is None or isinstance(environment.runner, MasterRunner | WorkerRunner):
        return
    _write_json(Path(Params.out_dir) / f"loadgen-{os.getpid()}.json", recorder.payload(EXPECTED))


class Schedule:
    """Open loop: the due time of request k is t0 + k/rate, for all users of this process."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.t0: float | None = None
        self.k = count()

    def next_due(self) -> float:
        if self.t0 is None:
            self.t0 = time.time()
        return self.t0 + next(self.k) * self.interval


schedule = Schedule(Params.rate) if Params.mode == "open" and Params.rate > 0 else None
_user_ids = count(1)


class ResponseError(Exception):
    """A response with the wrong status or body: counted as a failure."""


class BenchUser(FastHttpUser):
    """Base of every scenario: one request per task, each response validated."""

    abstract = True
    network_timeout = 30.0
    connection_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.n = next(_user_ids)
        # Deterministic per user, and different on every worker of a distributed run.
        worker = max(int(getattr(self.environment.runner, "worker_index", 0)), 0)
        self.rng = random.Random(20261124 * 1000 + self.n + worker * 1_000_000_007)
        self._due: float | None = None

    def wait_time(self) -> float:
        if schedule is None:
            return 0.0
        self._due = schedule.next_due()
        now = time.time()
        delay = self._due - now
        # A send inside the window counts when it is late: far behind, its due time can be before the window.
        if delay < -LATE_S and Params.window[0] <= now < Params.window[1]:
            recorder.late += 1
        return max(0.0, delay)

    def on_start(self) -> None:
        if schedule is not None:
            gevent.sleep(self.wait_time())

    def context(self) -> dict[str, Any]:
        return {"due": self._due}

    def seeded_user(self) -> int:
        return self.rng.randint(1, Params.seed_users)

    def call(
        self,
        method: str,
        path: str,
        *,
        name: str,
        status: int,
        json_body: dict[str, Any] | None = None,
        check: Callable[[Any], str | None] | None = None,
    ) -> Any:
        """Send one request; a wrong status, unparsable JSON or a failed `check` marks it failed.
        Returns the parsed body (None on failure or for an empty body)."""
        with self.client.request(method, path, name=name, json=json_body, catch_response=True) as resp:
            if resp.status_code != status:
                resp.failure(f"status {resp.status_code} (want {status}): {(resp.text or '')[:120]}")
                return None
            if status == 204:
                resp.success()
                return None
            try:
                body = resp.json()
            except ValueError:
                resp.failure("body is not JSON")
                return None
            problem = check(body) if check else None
            if problem:
                resp.failure(problem)
                return None
            resp.success()
            return body


class MixUser(BenchUser):
    """A scenario with a mix of requests: each user walks a fixed cycle of its `mix` (method names with
    weights, expanded and shuffled once per user) instead of drawing each request at random, so every few
    seconds of load hold nearly the same blend. Random draws made short windows differ by which requests
    they happened to get (a sign-up costs 20 times a read): measured, that was most of the noise of a
    5-second mixed_crud window."""

    abstract = True
    mix: tuple[tuple[str, int], ...] = ()

    def on_start(self) -> None:
        steps = [name for name, weight in self.mix for _ in range(weight)]
        self.rng.shuffle(steps)
        start = self.rng.randrange(len(steps))
        self.cycle = itertools.cycle(steps[start:] + steps[:start])
        super().on_start()

    @task
    def step(self) -> None:
        getattr(self, next(self.cycle))()


def expect(route_statements: dict[str, dict[str, float]]) -> None:
    """A scenario states what each of its requests should cost the database, per statement kind
    (select, insert, update, delete, commit, rollback); the harness checks it against MariaDB's counters."""
    EXPECTED.update(route_statements)


def user_ok(want_id: int | None = None, email: str | None = None) -> Callable[[Any], str | None]:
    def check(body: Any) -> str | None:
        if not isinstance(body, dict) or "id" not in body or "items" not in body:
            return "not a user"
        if "password" in body or "hashed_password" in body:
            return "password leaked"
        if want_id is not None and body["id"] != want_id:
            return f"wrong user {body['id']} (want {want_id})"
        if email is not None and body.get("email") != email:
            return "wrong email"
        return None

    return check


events.init_command_line_parser.add_listener(_add_arguments)
events.init.add_listener(_on_init)
events.worker_connect.add_listener(_on_worker_connect)
events.test_start.add_listener(_on_test_start)
events.test_stop.add_listener(_on_test_stop)
events.request.add_listener(_on_request)
events.quitting.add_listener(_write)
