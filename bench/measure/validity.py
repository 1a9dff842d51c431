"""When a point is invalid: a list of rules, each a pure function of what the point observed.

An invalid point is kept and reported with its reasons, and left out of every statistic.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.config import LOADGEN_CPU_LIMIT, OTHERS_CPU_LIMIT
from bench.measure.workcheck import WorkCheck

LATE_FRACTION = 0.01  # open loop: more late sends than this, and the load was not what was asked
CLOCK_OFFSET_LIMIT_S = 0.5  # a worker whose clock is further off measures a shifted window


@dataclass(frozen=True)
class Observed:
    loadgen_files: int
    requests: int
    failures: int
    missing_writes: int
    loadgen_cpu_max: float | None
    open_loop: bool
    late: int
    app_alive: bool | None  # None: an app the harness did not start (cannot tell)
    work: WorkCheck | None
    loadgen_expected: int = 0  # Locust processes that should have sent requests (0: not checked)
    loadgen_problem: str | None = None  # why the load generator never ran (distributed: workers missing)
    clock_offset_s: float | None = None  # a remote worker's clock vs the master's (plus transit), largest
    app_cpus_others: float | None = None  # see OTHERS_CPU_LIMIT; None: the apps are not pinned
    loadgen_error: str | None = None  # Locust's own last error line, when it wrote no output (its locust.log)


Rule = Callable[[Observed], str | None]


def no_output(o: Observed) -> str | None:
    """No recording: Locust failed to start (its own error line, e.g. an unknown option or a locustfile that
    does not import), or it stopped without a word."""
    if o.loadgen_files:
        return None
    return f"locust_failed({o.loadgen_error})" if o.loadgen_error else "no_loadgen_output"


def no_requests(o: Observed) -> str | None:
    return "no_requests" if o.loadgen_files and o.requests == 0 else None


def loadgen_never_ran(o: Observed) -> str | None:
    return o.loadgen_problem


def missing_loadgen(o: Observed) -> str | None:
    """A distributed point whose workers did not all send their recording (one died mid-point), or more
    workers than asked took part (each was given 1/N of an open-loop rate)."""
    if o.loadgen_expected and o.loadgen_files and o.loadgen_files != o.loadgen_expected:
        return f"loadgen_workers({o.loadgen_files}/{o.loadgen_expected} reported)"
    return None


def clock_offset(o: Observed) -> str | None:
    off = o.clock_offset_s
    return f"clock_offset({off:.2f}s)" if off is not None and off > CLOCK_OFFSET_LIMIT_S else None


def failures(o: Observed) -> str | None:
    return f"failures({o.failures})" if o.failures else None


def lost_writes(o: Observed) -> str | None:
    return f"missing_writes({o.missing_writes})" if o.missing_writes else None


def busy_loadgen(o: Observed) -> str | None:
    return f"loadgen_cpu>{LOADGEN_CPU_LIMIT:.0f}%" if (o.loadgen_cpu_max or 0) > LOADGEN_CPU_LIMIT else None


def shared_app_cpus(o: Observed) -> str | None:
    others = o.app_cpus_others
    return f"app_cpus_shared({others:.0f}%)" if others is not None and others > OTHERS_CPU_LIMIT else None


def late_sends(o: Observed) -> str | None:
    return f"late_sends({o.late})" if o.open_loop and o.late > LATE_FRACTION * max(o.requests, 1) else None


def app_crashed(o: Observed) -> str | None:
    return "app_crashed" if o.app_alive is False else None


def wrong_work(o: Observed) -> str | None:
    """Statement counts that disagree with the declared work (judged only when no request failed)."""
    if o.work is None or o.work.ok or o.failures:
        return None
    return f"db_counters({', '.join(o.work.problems)})"


RULES: tuple[Rule, ...] = (
    loadgen_never_ran,
    no_output,
    no_requests,
    missing_loadgen,
    clock_offset,
    failures,
    lost_writes,
    busy_loadgen,
    shared_app_cpus,
    late_sends,
    app_crashed,
    wrong_work,
)


def invalid_reasons(observed: Observed) -> list[str]:
    return [reason for rule in RULES if (reason := rule(observed))]
