"""What every scenario shares: BenchUser (one request per task, each response validated), MixUser, and the
helpers a scenario states its routes with. Importing it registers the recording plugin (loadtests/hooks.py;
results/README.md describes the loadgen files it writes)."""

from __future__ import annotations

import itertools
import os
import random
import time
from collections.abc import Callable
from typing import Any
from uuid import uuid4

import gevent
from locust import FastHttpUser, task

import loadtests.hooks  # noqa: F401  (registers the plugin's options and event hooks)
from loadtests.options import Params
from loadtests.recording import LATE_S, STATE

# Unique per process, so emails made by different processes, hosts or runs never collide.
PROCESS_TAG = f"{os.getpid()}-{uuid4().hex[:6]}"


class ResponseError(Exception):
    """A response with the wrong status or body: counted as a failure."""


class BenchUser(FastHttpUser):
    """Base of every scenario: one request per task, each response validated."""

    abstract = True
    network_timeout = 30.0
    connection_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.n = next(STATE.user_ids)
        # Deterministic per user, and different on every worker of a distributed run.
        worker = max(int(getattr(self.environment.runner, "worker_index", 0)), 0)
        self.rng = random.Random(20261124 * 1000 + self.n + worker * 1_000_000_007)
        self._due: float | None = None

    def wait_time(self) -> float:
        if STATE.schedule is None:
            return 0.0
        self._due = STATE.schedule.next_due()
        now = time.time()
        delay = self._due - now
        # A send inside the window counts when it is late: far behind, its due time can be before the window.
        if delay < -LATE_S and Params.window[0] <= now < Params.window[1]:
            STATE.recorder.late += 1
        return max(0.0, delay)

    def on_start(self) -> None:
        if STATE.schedule is not None:
            gevent.sleep(self.wait_time())

    def acked(self, table: str, row_id: int) -> None:
        """A write the app acknowledged: the row must exist after the point (the harness checks it)."""
        STATE.recorder.acked[table].add(row_id)

    def gone(self, table: str, row_id: int) -> None:
        """A row deleted (or about to be): no longer expected to exist."""
        STATE.recorder.acked[table].discard(row_id)

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
    STATE.expected.update(route_statements)


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
