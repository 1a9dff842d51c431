"""Statements per route, for any app: the statement pass (`__stmt` points: one user, the server's counters
read after every request) -> statements per request by route and kind, and where the two apps of a
comparison do different work, which a speed verdict must say beside its number. Pure: reads run folders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.catalog import present_pairs
from bench.store.rundir import STATEMENTS_SUMMARY

KINDS = ("select", "insert", "update", "delete", "commit", "rollback")
COLUMNS = ["backend", "app", "scenario", "route", "requests", *KINDS]
DIFFERENT = 0.5  # statements per request: less is rounding (a pool's pre-ping now and then)
N_PLUS_ONE = 3.0  # SELECTs per request on one side, and at least this many times the other's


def route_statements(run_dir: Path) -> pd.DataFrame:
    """One row per app x scenario x route (Locust's request name): requests in the window and statements of
    each kind per request."""
    rows = []
    for summary in sorted((run_dir / "points").glob(f"*/{STATEMENTS_SUMMARY}")):
        point = json.loads(summary.read_text()).get("point") or {}
        if not point.get("valid"):
            continue
        data = [json.loads(p.read_text()) for p in summary.parent.glob("loadgen-*.json")]
        for d in data:
            for route, counts in (d.get("statements_by_name") or {}).items():
                n = (d.get("by_name") or {}).get(route, {}).get("requests", 0)
                if n:
                    rows.append(
                        {
                            "backend": point.get("backend"),
                            "app": point.get("app"),
                            "scenario": point.get("scenario"),
                            "route": route,
                            "requests": n,
                            **{k: round(counts.get(k, 0) / n, 2) for k in KINDS},
                        }
                    )
    return pd.DataFrame(rows, columns=COLUMNS)


@dataclass(frozen=True)
class Unequal:
    """One route where the two apps of a comparison sent different statements."""

    first: str
    second: str
    scenario: str
    route: str
    kind: str
    first_n: float
    second_n: float

    @property
    def n_plus_one(self) -> bool:
        """The same SELECT once per row of a list: many SELECTs on one side, a fraction on the other."""
        low, high = sorted((self.first_n, self.second_n))
        return self.kind == "select" and high >= N_PLUS_ONE and high >= N_PLUS_ONE * max(low, 1.0) / 2

    @property
    def text(self) -> str:
        plural = (
            f"{self.kind.upper()}s" if self.kind in ("select", "insert", "update", "delete") else self.kind
        )
        more = self.first if self.first_n > self.second_n else self.second
        cause = (
            f"; likely N+1 in {more}: one query per listed row (a lazy relationship)"
            if self.n_plus_one
            else ""
        )
        return (
            f"{self.route} sends {self.first_n:g} {plural} per request in {self.first}, {self.second_n:g} in "
            f"{self.second}{cause}"
        )


def unequal(table: pd.DataFrame) -> list[Unequal]:
    """Every route of a scenario both apps of a catalog pair (or two user apps labelled as one) replayed,
    where a kind of statement differs by DIFFERENT or more per request."""
    out: list[Unequal] = []
    if table.empty:
        return out
    for pair in present_pairs(set(table["app"])):
        a = table[table["app"] == pair.sync].set_index(["scenario", "route"])
        b = table[table["app"] == pair.async_].set_index(["scenario", "route"])
        for key in a.index.intersection(b.index):
            for kind in KINDS:
                x, y = float(a.loc[key, kind]), float(b.loc[key, kind])
                if abs(x - y) >= DIFFERENT:
                    out.append(Unequal(pair.sync, pair.async_, str(key[0]), str(key[1]), kind, x, y))
    return out
