"""What every scenario shares: the recording plugin (results/README.md's loadgen-<pid>.json) and BenchUser.

Recording. Locust rounds response times and cannot merge percentiles, so every request that *completes*
inside the measurement window (BENCH_WINDOW_START..END, unix seconds) goes into an HdrHistogram of
microseconds (3 significant digits), counted per request name. Requests completing before the window
are the warm-up and are left out of every total. Every second, warm-up included (negative seconds), also
gets its own count and histogram, for the report's timeline. The file is written once, when Locust quits,
by each Locust process that sent requests (so master/worker runs give one file per worker).

Load. Closed loop (default): each user sends its next request when the previous one is answered.
Open loop (BENCH_MODE=open, BENCH_RATE=req/s for this process): requests are due on a fixed schedule
shared by all users (request k is due at t0 + k/rate); a user takes the next due time, sleeps until it,
and sends. Latency is measured from the *due* time (corrected for coordinated omission, as wrk2 does);
the plain response time goes into `hdr_uncorrected`; sends more than LATE_S behind schedule count as
`late` (too few users, or a load generator that cannot keep up).

Parameters come from the environment (set by `bench run`) or the command line (`--db-ms`,
`--seed-users`, which the web UI also shows); nothing is edited in files.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

import gevent
from hdrh.histogram import HdrHistogram
from locust import FastHttpUser, events
from locust.env import Environment
from locust.runners import MasterRunner

LATE_S = 0.010
MAX_FAILURE_SAMPLES = 20
HDR_RANGE_US = (1, 120_000_000)  # 1 µs .. 2 min


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


class Params:
    """Run parameters; `bench run` sets them through BENCH_* variables (see results/README.md)."""

    out_dir = os.environ.get("BENCH_OUT_DIR") or None
    window = (_env_float("BENCH_WINDOW_START", 0.0), _env_float("BENCH_WINDOW_END", float("inf")))
    seed_users = int(_env_float("BENCH_SEED_USERS", 10_000))
    seed_items = int(_env_float("BENCH_SEED_ITEMS", 3))
    db_ms = int(_env_float("BENCH_DB_MS", 0))
    mode = os.environ.get("BENCH_MODE", "closed")
    record = os.environ.get("BENCH_RECORD", "1") != "0"  # 0: count requests only (to measure our cost)
    rate = _env_float("BENCH_RATE", 0.0)


def _add_arguments(parser: Any) -> None:
    group = parser.add_argument_group("bench", "sync-vs-async scenario parameters")
    group.add_argument("--db-ms", type=int, env_var="BENCH_DB_MS", default=Params.db_ms,
                       help="slow_db: milliseconds the database sleeps per request")  # fmt: skip
    group.add_argument("--seed-users", type=int, env_var="BENCH_SEED_USERS", default=Params.seed_users,
                       help="seeded users have ids 1..N")  # fmt: skip


def _read_arguments(environment: Environment, **_kw: Any) -> None:
    opts = environment.parsed_options
    if opts is not None:
        Params.db_ms = int(getattr(opts, "db_ms", Params.db_ms))
        Params.seed_users = int(getattr(opts, "seed_users", Params.seed_users))


class Recorder:
    def __init__(self) -> None:
        self.hdr = HdrHistogram(*HDR_RANGE_US, 3)
        self.hdr_uncorrected = HdrHistogram(*HDR_RANGE_US, 3) if Params.mode == "open" else None
        self.requests = 0
        self.failures = 0
        self.late = 0
        self.per_second: dict[int, Counter[str]] = defaultdict(Counter)
        self.second_hdr: dict[int, HdrHistogram] = {}
        self.by_name: dict[str, Counter[str]] = defaultdict(Counter)
        self.failure_samples: list[str] = []
        self.acked: dict[str, set[int]] = {"users": set(), "items": set()}

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
        if done < start:
            return
        key = f"{request_type} {name}"
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
        if exception is not None:
            self.by_name[key]["failures"] += 1

    def payload(self, expected: dict[str, dict[str, float]]) -> dict[str, Any]:
        start, end = Params.window
        first = min(self.per_second, default=0)
        last = int(end - start) if end != float("inf") else max(self.per_second, default=-1) + 1
        return {
            "pid": os.getpid(),
            "mode": Params.mode,
            "target_rps": Params.rate or None,
            "window": {"start": start, "end": None if end == float("inf") else end},
            "requests": self.requests,
            "failures": self.failures,
            "by_name": {k: dict(v) for k, v in sorted(self.by_name.items())},
            "expected_statements": expected,
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
        }


recorder = Recorder()
EXPECTED: dict[str, dict[str, float]] = {}  # filled by each scenario module: route -> statements


def _on_request(
    request_type: str, name: str, response_time: float, exception: BaseException | None = None,
    context: dict[str, Any] | None = None, start_time: float | None = None, **_kw: Any,
) -> None:  # fmt: skip
    if start_time is None:  # a Locust without start_time: derive it
        start_time = time.time() - response_time / 1000
    recorder.on_request(name, response_time, start_time, exception, context or {}, request_type)


def _write(environment: Environment, **_kw: Any) -> None:
    if Params.out_dir is None or isinstance(environment.runner, MasterRunner):
        return
    path = Path(Params.out_dir) / f"loadgen-{os.getpid()}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(recorder.payload(EXPECTED)) + "\n")
    tmp.replace(path)


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
        self.rng = random.Random(20261124 * 1000 + self.n)  # deterministic per user
        self._due: float | None = None

    def wait_time(self) -> float:
        if schedule is None:
            return 0.0
        self._due = schedule.next_due()
        delay = self._due - time.time()
        if delay < -LATE_S and Params.window[0] <= self._due < Params.window[1]:
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
events.test_start.add_listener(_read_arguments)
events.request.add_listener(_on_request)
events.quitting.add_listener(_write)
