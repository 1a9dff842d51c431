"""The gate's first step: exact statement counts per route, current code against baseline code.

Both versions of each app are started side by side on a small seed; a fixed sequence of requests
(bench/measure/statements.py) goes to one app at a time while the server's counters are read around each
route. Counts are exact integers, so any change is real: more statements on any route fail the gate at once
(no re-measure), fewer are reported as improvements. Runs on every backend the baseline code can run on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.backends import DatabaseError, backend_for
from bench.catalog import BASE_PREFIX, DEFAULT_APPS_OF, resolve_app
from bench.config import AppLimits, SeedData
from bench.measure.statements import ProbeError, changes, count_statements
from bench.processes import Pinning
from bench.stack import Stack
from shared.config import RUN_DIR

REPEATS = 3  # the counts are exact: a few repeats only guard against a stray background statement


@dataclass(frozen=True)
class Change:
    backend: str
    app: str
    route: str
    kind: str
    baseline: float
    current: float

    def text(self, base_sha: str) -> str:
        return (
            f"{self.route}: {self.kind.upper()} {self.baseline:g} → {self.current:g} per request ({self.app} "
            f"on {self.backend}, baseline {base_sha[:12]})"
        )


@dataclass
class StatementCheck:
    base_sha: str
    counts: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=dict
    )  # backend -> app -> side -> route
    more: list[Change] = field(default_factory=list)
    fewer: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.more)


def apps_on(backend: str, apps: list[str]) -> list[str]:
    """The gate's apps on each backend: the ones asked for on MariaDB, the default ones elsewhere."""
    return apps if backend == "mariadb" else list(DEFAULT_APPS_OF.get(backend, ()))


def statement_check(apps: list[str], base: tuple[str, Path], backends: tuple[str, ...]) -> StatementCheck:
    sha, root = base
    out = StatementCheck(sha)
    for name in backends:
        labels = [a.rpartition("=")[0] or a for a in apps_on(name, apps)]
        specs = [resolve_app(a) for a in apps_on(name, apps)]
        specs += [resolve_app(BASE_PREFIX + label, root) for label in labels]
        try:
            with Stack(
                backend_for(name),
                specs,
                limits=AppLimits(),
                seed=SeedData(users=200, items=3),
                pinning=Pinning.plan(False),
                log_dir=RUN_DIR / "perf-statements",
            ) as stack:
                counters = stack.backend.counters(stack.settings)
                try:
                    for label, spec in zip(labels, specs, strict=False):
                        current = count_statements(stack.app(spec.name).base_url, counters, REPEATS)
                        baseline = count_statements(
                            stack.app(BASE_PREFIX + label).base_url, counters, REPEATS
                        )
                        out.counts.setdefault(name, {})[label] = {"current": current, "baseline": baseline}
                        for route, kind, was, now in changes(baseline, current):
                            (out.more if now > was else out.fewer).append(
                                Change(name, label, route, kind, was, now)
                            )
                finally:
                    counters.close()
        except (DatabaseError, RuntimeError, ProbeError) as exc:
            out.notes.append(f"{name}: statement counts not compared ({str(exc).splitlines()[0][:200]})")
    return out
