"""What one Locust process records, and its open-loop schedule: this process's state, on one object.

Recording. Locust rounds response times and cannot merge percentiles, so every request that *completes*
inside the measurement window goes into an HdrHistogram of microseconds (3 significant digits), counted
per request name. Requests completing before the window are the warm-up and are left out of every total.
Every second, warm-up included (negative seconds), also gets its own count and histogram, for the report's
timeline. Each process also samples its own CPU (psutil, 1 Hz) and keeps the highest reading of the window.

Load. Closed loop (default): each user sends its next request when the previous one is answered.
Open loop (`--bench-mode open --bench-rate R`, R req/s for this process): requests are due on a fixed
schedule shared by all users of the process (request k is due at t0 + k/rate); a user takes the next due
time, sleeps until it, and sends. Latency is measured from the *due* time (corrected for coordinated
omission, as wrk2 does); the plain response time goes into `hdr_uncorrected`; sends more than LATE_S
behind schedule count as `late` (too few users, or a load generator that cannot keep up).
"""

from __future__ import annotations

import json
import math
import os
import socket
import time
from collections import Counter, defaultdict
from itertools import count
from pathlib import Path
from typing import Any

import gevent
import psutil
from hdrh.histogram import HdrHistogram

from loadtests.options import Params

LATE_S = 0.010
MAX_FAILURE_SAMPLES = 20
HDR_RANGE_US = (1, 120_000_000)  # 1 µs .. 2 min


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
        self,
        name: str,
        response_time: float,
        start_time: float,
        exception: BaseException | None,
        context: dict[str, Any],
        request_type: str,
    ) -> None:
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
            "cpu_max": None,  # Process.payload: this process's CPU meter
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


class Process:
    """This Locust process's state: what it records, its CPU meter, its open-loop schedule, what its
    scenario expects of each route, and its users' numbering. One object (`STATE`), reset per test."""

    def __init__(self) -> None:
        self.recorder = Recorder()
        self.cpu = CpuMeter()
        self.schedule: Schedule | None = None
        self.expected: dict[str, dict[str, float]] = {}  # filled by each scenario module: route -> statements
        self.user_ids = count(1)
        self.new_test()

    def new_test(self) -> None:
        """Parameters just read: a fresh recording and, in open loop, a fresh schedule."""
        self.schedule = Schedule(Params.rate) if Params.mode == "open" and Params.rate > 0 else None
        self.recorder.reset()

    def payload(self) -> dict[str, Any]:
        """This process's recording (results/README.md's loadgen file)."""
        start, end = Params.window
        return self.recorder.payload(self.expected) | {"cpu_max": self.cpu.max_in(start, end)}


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data) + "\n")
    tmp.replace(path)


STATE = Process()
