"""Work verification: did the database do what the requests served say it should have?

Each scenario states what one request of each route costs (`expect()` in loadtests/common.py): for
example `GET /users/{id}` = 2 SELECTs (the user, then its items). Multiplied by the requests served in
the window, that must match the server's own statement counters over the same window (MariaDB's `Com_*`,
read by the backend), within a tolerance for the requests in flight at either edge of the window. A
mismatch catches N+1 queries, silent no-ops (an UPDATE that changed nothing), and retries.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("select", "insert", "update", "delete", "commit")
RELATIVE_TOLERANCE = 0.03


@dataclass(frozen=True)
class WorkCheck:
    expected: dict[str, float]
    actual: dict[str, int]
    problems: list[str]
    summary: str  # e.g. "select 2.00/req ok; commit 0.00/req ok"

    @property
    def ok(self) -> bool:
        return not self.problems


def check_statements(
    by_name: dict[str, dict[str, int]],
    declared: dict[str, dict[str, float]],
    counters: dict[str, int],
    in_flight: int,
) -> WorkCheck | None:
    """`counters`: statements executed over the window, by kind. None when there is nothing to judge:
    the scenario declares nothing (a user's own locustfile), a route is undeclared, or requests were not
    broken down by route (a point run without recording)."""
    if not declared or not by_name or any(name not in declared for name in by_name):
        return None
    requests = sum(c.get("requests", 0) for c in by_name.values())
    expected = dict.fromkeys(KINDS, 0.0)
    per_request_max = 0.0
    for name, counts in by_name.items():
        cost = declared[name]
        per_request_max = max(per_request_max, sum(cost.get(k, 0.0) for k in KINDS))
        for kind in KINDS:
            expected[kind] += counts.get("requests", 0) * cost.get(kind, 0.0)
    actual = {k: int(counters.get(k, 0)) for k in KINDS}
    slack = 2 * in_flight * per_request_max + 5
    problems, parts = [], []
    for kind in KINDS:
        want, got = expected[kind], actual[kind]
        if want == 0 and got == 0:
            continue
        per_req = got / requests if requests else float("nan")
        if abs(got - want) > RELATIVE_TOLERANCE * want + slack:
            problems.append(f"{kind} {got} vs {want:.0f} expected")
            parts.append(f"{kind} {per_req:.2f}/req MISMATCH")
        else:
            parts.append(f"{kind} {per_req:.2f}/req ok")
    return WorkCheck(expected, actual, problems, "; ".join(parts))
