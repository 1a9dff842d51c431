"""Confidence intervals: the level, the power, and pure functions on numbers (verdict words: verdict.py)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95  # of every interval the analysis draws
POWER = 0.80  # of "would have seen": the smallest difference a comparison detects this often
LEVEL = f"{CONFIDENCE:.0%} CI"  # how captions and verdicts name the interval
MIN_REPEATS = 2


def t_quantiles(df: float) -> tuple[float, float]:
    """Student t quantiles for an interval at CONFIDENCE (two-sided) and a detection at POWER, with `df`."""
    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)), float(stats.t.ppf(POWER, df))


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(mean, low, high): Student t interval; NaN bounds with fewer than 2 values."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(arr.mean())
    if arr.size < 2:
        return mean, math.nan, math.nan
    sem = float(stats.sem(arr))
    if sem == 0:
        return mean, mean, mean
    low, high = stats.t.interval(confidence, arr.size - 1, loc=mean, scale=sem)
    return mean, float(low), float(high)


def ratio_se(num: Sequence[float], den: Sequence[float]) -> tuple[float, float, float]:
    """(mean(num)/mean(den), standard error of its log, degrees of freedom): delta method, Welch-
    Satterthwaite. NaN when it cannot be had (no values, fewer than 2 on a side, a mean of 0)."""
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if a.size == 0 or b.size == 0 or a.mean() <= 0 or b.mean() <= 0:
        return math.nan, math.nan, math.nan
    ratio = float(a.mean() / b.mean())
    if a.size < 2 or b.size < 2:
        return ratio, math.nan, math.nan
    va = float(a.var(ddof=1)) / (a.size * float(a.mean()) ** 2)  # squared relative standard errors
    vb = float(b.var(ddof=1)) / (b.size * float(b.mean()) ** 2)
    se = math.sqrt(va + vb)
    df = se**4 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if se > 0 else math.inf
    return ratio, se, df


def ratio_ci(
    num: Sequence[float], den: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """(mean(num)/mean(den), low, high): log-ratio t interval, delta method, Welch-Satterthwaite df."""
    ratio, se, df = ratio_se(num, den)
    if not math.isfinite(se):
        return ratio, math.nan, math.nan
    if se == 0:
        return ratio, ratio, ratio
    t = float(stats.t.ppf(0.5 + confidence / 2, df))
    return ratio, ratio * math.exp(-t * se), ratio * math.exp(t * se)


@dataclass(frozen=True)
class Spread:
    """The relative spread of one repeat, pooled over groups of repeats: the sd of log(requests/s) within
    each group, pooled with their degrees of freedom."""

    sd: float  # of log values: about the relative sd
    df: int
    groups: int

    def factor(self, confidence: float = CONFIDENCE) -> float:
        """exp(t * sd): one repeat x gives the interval x / factor .. x * factor."""
        return math.exp(float(stats.t.ppf(0.5 + confidence / 2, self.df)) * self.sd)


def pooled_spread(groups: Iterable[Sequence[float]]) -> Spread | None:
    """Pooled log-sd over the groups with at least 2 positive values; None when there is none."""
    squares, df, used = 0.0, 0, 0
    for values in groups:
        logs = np.log([v for v in values if v > 0])
        if logs.size >= MIN_REPEATS:
            squares += float(((logs - logs.mean()) ** 2).sum())
            df += logs.size - 1
            used += 1
    return Spread(math.sqrt(squares / df), df, used) if df else None
