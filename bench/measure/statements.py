"""Exact statement counts per route: a fixed sequence of requests, sent one at a time to one app, and the
server's own counters read around each route's requests (nothing else may use the server meanwhile).

The regression gate compares these counts between the baseline and the current code (an extra query on a
route fails it at once); the same numbers document what each route costs (README, results).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from bench.backends.base import COUNTER_KINDS, Counters

KINDS = tuple(k for k in COUNTER_KINDS if k != "questions")


@dataclass(frozen=True)
class Probe:
    route: str  # the label in reports: method, path template, and the case
    method: str
    path: Callable[[dict[str, int]], str]  # from the ids made so far
    status: int
    body: Callable[[int], dict[str, Any]] | None = None
    keep: str | None = None  # remember the answer's id under this name


_n = itertools.count(1)


def _email(tag: str) -> Callable[[int], dict[str, Any]]:
    return lambda i: {"email": f"stmt-{tag}-{i}-{next(_n)}@example.com", "password": "statements only"}


# Seeded user 1 exists (the stack seeds users 1..N); 2_000_000_000 never does.
PROBES: tuple[Probe, ...] = (
    Probe("GET /users/{id}", "GET", lambda ids: "/users/1", 200),
    Probe("GET /users?skip&limit", "GET", lambda ids: "/users?skip=0&limit=20", 200),
    Probe("GET /users/{id}/items", "GET", lambda ids: "/users/1/items", 200),
    Probe("POST /users", "POST", lambda ids: "/users", 201, _email("new"), keep="user"),
    Probe(
        "POST /users/{id}/items",
        "POST",
        lambda ids: f"/users/{ids['user']}/items",
        201,
        lambda i: {"title": f"statement probe {i}"},
        keep="item",
    ),
    Probe("PATCH /users/{id}", "PATCH", lambda ids: f"/users/{ids['user']}", 200, _email("patched")),
    Probe(
        "DELETE /users/{id}/items/{item_id}",
        "DELETE",
        lambda ids: f"/users/{ids['user']}/items/{ids['item']}",
        204,
    ),
    Probe("DELETE /users/{id}", "DELETE", lambda ids: f"/users/{ids['user']}", 204),
    Probe("GET /users/{id} (404)", "GET", lambda ids: "/users/2000000000", 404),
    Probe(
        "POST /users (409)",
        "POST",
        lambda ids: "/users",
        409,
        lambda i: {"email": "user1@example.com", "password": "statements only"},
    ),
    Probe(
        "POST /users/{id}/items (404)",
        "POST",
        lambda ids: "/users/2000000000/items",
        404,
        lambda i: {"title": "nobody's"},
    ),
    Probe("GET /io/sleep", "GET", lambda ids: "/io/sleep?ms=0", 200),
)


class ProbeError(RuntimeError):
    """A probe got an unexpected answer: the counts would not mean what they say."""


def count_statements(base_url: str, counters: Counters, repeats: int = 10) -> dict[str, dict[str, float]]:
    """Per route, the statements of each kind one request cost (mean over `repeats`; exact integers are
    expected). Each repeat walks the whole sequence, so writes create, change and delete their own rows. A
    first walk is not counted: an app whose health check does not touch the database (any answer counts
    as up for a `module:attr` app) opens its pool and reads the server's settings on its first queries."""
    totals = {p.route: dict.fromkeys(KINDS, 0) for p in PROBES}
    with httpx.Client(base_url=base_url, timeout=30) as http:
        for i in range(-1, repeats):
            ids: dict[str, int] = {}
            for probe in PROBES:
                before = counters.read()
                resp = http.request(probe.method, probe.path(ids), json=probe.body(i) if probe.body else None)
                after = counters.read()
                if resp.status_code != probe.status:
                    raise ProbeError(
                        f"{probe.route}: {resp.status_code} (want {probe.status}): {resp.text[:200]}"
                    )
                if probe.keep:
                    ids[probe.keep] = int(resp.json()["id"])
                for kind in KINDS if i >= 0 else ():
                    totals[probe.route][kind] += after[kind] - before[kind]
    return {
        route: {k: round(v / repeats, 2) for k, v in kinds.items() if v} for route, kinds in totals.items()
    }


def changes(
    baseline: dict[str, dict[str, float]], current: dict[str, dict[str, float]]
) -> list[tuple[str, str, float, float]]:
    """(route, kind, baseline, current) wherever a count differs, in route order."""
    out = []
    for route in current:
        for kind in KINDS:
            was, now = baseline.get(route, {}).get(kind, 0.0), current[route].get(kind, 0.0)
            if was != now:
                out.append((route, kind, was, now))
    return out
