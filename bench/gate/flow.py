"""Confirm before failing: one flow for `bench compare --remeasure` and `make perf-check`.

A flagged regression is never trusted on one measurement (as asv does): the comparison is made again from
a new measurement, and the verdict is "fail" only if the second one flags the same key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.gate.stats import Comparison


def decide(first: Comparison, second: Comparison | None) -> bool:
    """True = fail: a key flagged as a regression by the first comparison AND by the re-measure.
    Without a re-measure the first comparison decides alone."""
    flagged = {r.key for r in first.regressions}
    if not flagged or second is None:
        return bool(flagged)
    return bool(flagged & {r.key for r in second.regressions})


@dataclass(frozen=True)
class Decision:
    first: Comparison
    second: Comparison | None
    failed: bool

    @property
    def shown(self) -> Comparison:
        """The comparison that decided: the re-measure when there was one."""
        return self.second or self.first


def confirm(
    first: Comparison,
    remeasure: Callable[[], Comparison] | None,
    show: Callable[[Comparison, str], None] = lambda _c, _s: None,
) -> Decision:
    """`show(comparison, stage)` is told of each comparison ("first", then "re-measure")."""
    show(first, "first")
    second = None
    if remeasure is not None and first.regressed:
        second = remeasure()
        show(second, "re-measure")
    return Decision(first, second, decide(first, second))
