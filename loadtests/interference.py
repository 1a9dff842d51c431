"""interference: does one kind of request hold up the others? (the seed's "will it block other requests?")

A few probe users send a steady trickle of fast requests (GET /users/{id}, each probe every 50 ms), while
the other users keep one kind of neighbour work busy, chosen with `--neighbour`:

- `none`: no neighbour work (the probes alone: the reference);
- `cpu`: GET /cpu?ms=N, pure-Python work that holds the GIL for N ms (`--neighbour-ms`, default 10);
- `argon2`: POST /users, Argon2 hashing in C, which releases the GIL;
- `io`: GET /io/sleep?ms=N, a query that waits N ms in the database (default 50).

The report compares the probes' latency (their own histogram, `hdr_by_name`) with and without neighbours.
"""

from __future__ import annotations

from typing import Any

import gevent
from locust import constant_pacing, events, task
from locust.env import Environment

from loadtests.common import PROCESS_TAG, BenchUser, expect, user_ok
from loadtests.probes import DEFAULT_MS, KINDS, PROBE, PROBE_INTERVAL_S, PROBES

expect(
    {
        f"GET {PROBE}": {"select": 1},
        "GET /cpu": {},
        "POST /users": {"insert": 1, "commit": 1},
        "GET /io/sleep": {"select": 1},
    }
)


class Neighbours:
    kind = "none"
    ms = 0


def _arguments(parser: Any) -> None:
    parser.add_argument(
        "--neighbour", choices=KINDS, default="none", help="interference: what the non-probe users do"
    )
    parser.add_argument(
        "--neighbour-ms",
        type=int,
        default=0,
        help="interference: ms of CPU (cpu) or of database wait (io) per neighbour request",
    )


def _read(environment: Environment, **_kw: Any) -> None:
    opts = environment.parsed_options
    if opts is not None:
        Neighbours.kind = str(getattr(opts, "neighbour", "none"))
        Neighbours.ms = int(getattr(opts, "neighbour_ms", 0)) or DEFAULT_MS.get(Neighbours.kind, 0)


events.init_command_line_parser.add_listener(_arguments)
events.test_start.add_listener(_read)


class Probe(BenchUser):
    """A fast request at a steady pace, whose latency is the measurement."""

    fixed_count = PROBES
    wait_time = constant_pacing(PROBE_INTERVAL_S)

    @task
    def probe(self) -> None:
        uid = self.seeded_user()
        self.call("GET", f"/users/{uid}", name=PROBE, status=200, check=user_ok(uid))


class Neighbour(BenchUser):
    """The work that may or may not hold the probes up."""

    @task
    def work(self) -> None:
        kind, ms = Neighbours.kind, Neighbours.ms
        if kind == "cpu":
            self.call("GET", f"/cpu?ms={ms}", name="/cpu", status=200)
        elif kind == "io":
            self.call("GET", f"/io/sleep?ms={ms}", name="/io/sleep", status=200)
        elif kind == "argon2":
            self.seq = getattr(self, "seq", 0) + 1
            email = f"neighbour-{PROCESS_TAG}-{self.n}-{self.seq}@example.com"
            body = {"email": email, "password": f"correct horse {self.seq} battery"}
            user = self.call("POST", "/users", name="/users", status=201, json_body=body)
            if user is not None:
                self.acked("users", user["id"])
        else:
            gevent.sleep(1.0)  # no neighbour work: the probes alone
