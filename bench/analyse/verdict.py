"""What a comparison concludes, as a value, and the one place that value becomes words.

Every comparison has a first app and a second (sync and async, the raw ceiling and the idiomatic app, the
baseline and the current code). Its conclusion is a `Winner`; the verdict sentences of the report, the
answer, the machine summaries and the charts' legends are all made here from it and the numbers, and no
code reads a verdict's text back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from bench.analyse.stats import LEVEL, MIN_REPEATS

MARGIN = 0.05  # differences inside ±5% count as "the same": the resolution the default run is built for
SAME = f"the same within ±{MARGIN:.0%}"
UNCLEAR = "not enough evidence"


class Winner(StrEnum):
    """Which side of a comparison served more requests (the values are what points.csv-like tables hold)."""

    FIRST = "first"
    SECOND = "second"
    SAME = "same"  # the whole interval inside ±MARGIN
    UNCLEAR = "unclear"  # no interval, or one that reaches both past the margin and across 1

    def app(self, first: str, second: str) -> str | None:
        """The app that served more, or None."""
        return first if self is Winner.FIRST else second if self is Winner.SECOND else None


def judge(ci: tuple[float, float]) -> Winner:
    """The winner from the interval of second/first: clear of 1, or inside ±MARGIN, or neither."""
    low, high = ci
    if not (math.isfinite(low) and math.isfinite(high)):
        return Winner.UNCLEAR
    if 1 - MARGIN < low and high < 1 + MARGIN:
        return Winner.SAME
    if low > 1:
        return Winner.SECOND
    if high < 1:
        return Winner.FIRST
    return Winner.UNCLEAR


def at_line(winner: Winner, ci: tuple[float, float]) -> bool:
    """A winner whose interval reaches inside ±MARGIN: its effect may be smaller than the margin, so another
    run (a narrower interval at the same effect) may call it "the same" (docs/methods.md, run-to-run)."""
    low, high = ci
    return (winner is Winner.SECOND and low < 1 + MARGIN) or (winner is Winner.FIRST and high > 1 - MARGIN)


def short(winner: Winner | str, first: str, second: str) -> str:
    """'async faster', 'sync faster', 'the same within ±5%' or 'not enough evidence'."""
    app = Winner(winner).app(first, second)
    return f"{app} faster" if app else SAME if winner == Winner.SAME else UNCLEAR


def change(ratio: float) -> str:
    """A ratio as a signed change in percent: 1.076 -> '+7.6%'."""
    return f"{(ratio - 1) * 100:+.1f}%"


def interval(low: float, high: float, *, level: bool = True) -> str:
    """An interval of a ratio as changes: '95% CI +1.2%..+3.4%' (or 'CI ...' without the level)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "no interval"
    return f"{LEVEL if level else 'CI'} {change(low)}..{change(high)}"


def sentence(winner: Winner, ratio: float, ci: tuple[float, float], first: str, second: str) -> str:
    """A paired comparison in words: who serves more requests with the same CPU, by how much, how sure."""
    if not all(math.isfinite(x) for x in ci):
        return f"one repeat: no interval ({second} {change(ratio)})"
    line = f"; at the ±{MARGIN:.0%} line: may be less than {MARGIN:.0%}" if at_line(winner, ci) else ""
    if winner is Winner.SAME:
        return f"{SAME} ({second} {change(ratio)}, {interval(*ci)})"
    if winner is Winner.SECOND:
        return f"{second} faster by {(ratio - 1) * 100:.1f}% ({interval(*ci)}{line})"
    if winner is Winner.FIRST:
        return f"{first} faster by {(1 / ratio - 1) * 100:.1f}% ({interval(1 / ci[1], 1 / ci[0])}{line})"
    return f"{UNCLEAR} ({second} {change(ratio)}, {interval(*ci)})"


@dataclass(frozen=True)
class SweepVerdict:
    """The solo sweep's comparison at one load: each app alone, mean requests/s over repeats."""

    winner: Winner
    text: str


def _pcts(main: float, low: float, high: float) -> tuple[str, str, str]:
    """Percentages with one decimal below 10%, none above (the precision follows the main figure)."""
    digits = 0 if abs(main) >= 10 else 1
    return f"{main:.{digits}f}", f"{low:.{digits}f}", f"{high:.{digits}f}"


def sweep_verdict(
    ratio: float,
    low: float,
    high: float,
    n_first: int,
    n_second: int,
    first: str = "sync",
    second: str = "async",
) -> SweepVerdict:
    """From second/first, the ratio of mean throughput, and its interval: a winner when it excludes 1."""
    if n_first < MIN_REPEATS or n_second < MIN_REPEATS:
        return SweepVerdict(Winner.UNCLEAR, "not enough repeats")
    if not all(math.isfinite(v) for v in (ratio, low, high)):
        return SweepVerdict(Winner.UNCLEAR, "no throughput to compare")
    if low <= 1.0 <= high:
        return SweepVerdict(Winner.UNCLEAR, "no significant difference")
    if low > 1.0:
        winner, (x, a, b) = Winner.SECOND, _pcts((ratio - 1) * 100, (low - 1) * 100, (high - 1) * 100)
    else:
        winner, (x, a, b) = (
            Winner.FIRST,
            _pcts((1 / ratio - 1) * 100, (1 / high - 1) * 100, (1 / low - 1) * 100),
        )
    return SweepVerdict(winner, f"{winner.app(first, second)} faster by {x}% ({LEVEL} {a}%..{b}%)")
