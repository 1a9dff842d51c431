"""Paired comparisons: two apps loaded over the same seconds, each by its own Locust, sharing the app's
CPU. This is how the default run draws its verdicts and how the ceilings are measured (the regression gate
pairs the same way, bench/gate/).

Why paired: this machine's speed drifts by 15-30% within an hour and by up to ±20% between consecutive
10-second points, so two apps measured one after the other differ by the machine as much as by the code.
Measured in the same seconds, a slower second slows both sides: the per-second ratio keeps the difference
of the apps and loses the machine's. The price: each app gets about half of the app's CPU, so a paired
point measures cost per request (which app serves more requests with the same CPU), not behaviour under
load on a whole core; latency under load comes from the solo sweep of the same run.

Rows of a paired point share `order` and name each other in `partner`; the first row in points.csv is the
point's first app (the sync side, the raw ceiling, or the current code in the gate).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

from bench.analyse.stats import ratio_se, t_quantiles
from bench.analyse.verdict import Winner, at_line, judge, sentence
from bench.store.loadgen import FloatArray

CPU_LIMIT = 90.0  # % of the app's CPU in a solo point: below it, the CPU was not what limited throughput


@dataclass(frozen=True)
class PairKey:
    first: str
    second: str
    backend: str
    scenario: str
    users: int
    db_ms: int


@dataclass(frozen=True)
class PairedResult:
    key: PairKey
    repeats: int
    seconds: int
    # Each side's requests per second (its half of the CPU): paired, the geometric mean over repeats of each
    # window's rate, so that second_rps / first_rps is `ratio`; solo, the mean over repeats.
    first_rps: float
    second_rps: float
    ratio: float  # second / first
    ci: tuple[float, float]  # of the ratio
    p: float
    mde: float  # smallest difference this comparison would detect (stats.POWER, stats.CONFIDENCE)
    instrument: str = (
        "paired"  # "paired" (the same CPU) or "solo" (each app alone: the CPU was not the limit)
    )
    # each app's median CPU (%) in its solo points at this load
    cpu: tuple[float, float] = (math.nan, math.nan)

    @property
    def has_ci(self) -> bool:
        return all(math.isfinite(x) for x in self.ci)

    @property
    def half_width(self) -> float:
        """Half the CI's width, as a fraction of the ratio (NaN with one repeat)."""
        return (self.ci[1] - self.ci[0]) / 2 / self.ratio

    @property
    def winner(self) -> Winner:
        return judge(self.ci)

    @property
    def at_line(self) -> bool:
        return at_line(self.winner, self.ci)

    def verdict(self, first: str = "", second: str = "") -> str:
        """Plain words: who serves more requests with the same CPU, by how much, how sure."""
        return sentence(self.winner, self.ratio, self.ci, first or self.key.first, second or self.key.second)


def of_pair(paired: pd.DataFrame, first: object, second: object) -> pd.DataFrame:
    """The rows of one comparison in a table of them (frame()): `first` and `second` as in PairKey."""
    if paired.empty:
        return paired
    return paired[(paired["first"] == first) & (paired["second"] == second)]


def paired_points(points: pd.DataFrame) -> dict[PairKey, list[tuple[FloatArray, FloatArray]]]:
    """Per pair and workload, the aligned per-second counts of each repeat where both rows are valid."""
    out: dict[PairKey, list[tuple[FloatArray, FloatArray]]] = {}
    if "partner" not in points.columns:
        return out
    paired = points[points["partner"].fillna("").astype(str) != ""]
    for _, rows in paired.groupby("order", sort=True):
        if len(rows) != 2 or not rows["valid"].all() or any(lg is None for lg in rows["loadgen"]):
            continue
        first, second = (rows.iloc[i] for i in (0, 1))
        a, b = first["loadgen"].window_samples(), second["loadgen"].window_samples()
        n = min(len(a), len(b))
        if n == 0:
            continue
        key = PairKey(
            str(first["app"]),
            str(second["app"]),
            str(first.get("backend") or "mariadb"),
            str(first["scenario"]),
            int(first["users"]),
            int(first["db_ms"]),
        )
        out.setdefault(key, []).append((a[:n], b[:n]))
    return out


def compare(key: PairKey, repeats: list[tuple[FloatArray, FloatArray]]) -> PairedResult:
    """One sample per repeat: log(second's requests / first's) over the whole window. The per-second split
    of the CPU between the two apps jitters (lag-1 autocorrelation about -0.45 here: a second one side got
    more is followed by one it got less), so seconds are not independent samples; windows are. The CI is a
    Student t interval over repeats (df = repeats - 1); with one repeat there is none."""
    logs = np.array([math.log((b.sum() + 1) / (a.sum() + 1)) for a, b in repeats])
    mean = float(logs.mean())
    n = len(logs)
    seconds = sum(len(a) for a, _ in repeats)
    # the rates whose ratio `mean` is: a pooled median of seconds could point the other way (repeats differ)
    rates = np.array([[(a.sum() + 1) / len(a), (b.sum() + 1) / len(b)] for a, b in repeats])
    first_rps, second_rps = np.exp(np.log(rates).mean(axis=0))
    if n < 2:
        ci, p, mde = (math.nan, math.nan), math.nan, math.nan
    else:
        se = float(logs.std(ddof=1)) / math.sqrt(n)
        t_ci, t_power = t_quantiles(n - 1)
        ci = (math.exp(mean - t_ci * se), math.exp(mean + t_ci * se))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            p = float(stats.ttest_1samp(logs, 0.0).pvalue) if se > 0 else (0.0 if mean else 1.0)
        mde = math.expm1((t_ci + t_power) * se)
    return PairedResult(key, n, seconds, float(first_rps), float(second_rps), math.exp(mean), ci, p, mde)


def compare_solo(
    key: PairKey, first: list[float], second: list[float], cpu: tuple[float, float]
) -> PairedResult:
    """From each app alone on the whole CPU: the ratio of mean requests/s over repeats, a log-ratio t
    interval (Welch). Sound where the CPU was not the limit: throughput is then set by the pool, the
    database's time and the concurrency, which do not drift with the machine's speed."""
    ratio, se, df = ratio_se(second, first)
    if math.isfinite(se) and se > 0:
        t_ci, t_power = t_quantiles(df)
        ci = (ratio * math.exp(-t_ci * se), ratio * math.exp(t_ci * se))
        with warnings.catch_warnings():  # near-identical rates (pool-bound apps): the p-value is still sound
            warnings.simplefilter("ignore", RuntimeWarning)
            p = float(stats.ttest_ind(np.log(second), np.log(first), equal_var=False).pvalue)
        mde = math.expm1((t_ci + t_power) * se)
    else:
        ci, p, mde = (
            ((ratio, ratio) if se == 0 else (math.nan, math.nan)),
            math.nan,
            0.0 if se == 0 else math.nan,
        )
    n = min(len(first), len(second))
    return PairedResult(
        key, n, 0, float(np.mean(first)), float(np.mean(second)), ratio, ci, p, mde, "solo", cpu
    )


def _solo(points: pd.DataFrame, key: PairKey, app: str) -> pd.DataFrame:
    return points[
        (points["partner"].fillna("").astype(str) == "")
        & points["valid"]
        & (points["app"] == app)
        & (points["scenario"] == key.scenario)
        & (points["users"] == key.users)
        & (points["db_ms"] == key.db_ms)
    ]


def analyse_pairs(points: pd.DataFrame, keep: Iterable[tuple[str, str]] | None = None) -> list[PairedResult]:
    """Every paired comparison of a run (only the (first, second) pairs in `keep`, when given). Where the
    same apps also ran alone at the same load (at least 2 repeats each) and at least one of them used less
    than CPU_LIMIT of its CPU there, the verdict is drawn from those solo points instead: sharing a CPU that
    was not that app's limit would make it one. "Used" is the median over the app's solo repeats: one
    stalled point (run new3: sync at 75% CPU and 871 req/s beside 97% and 96%) must not switch the
    instrument, as a mean of 89% did."""
    wanted = set(keep) if keep is not None else None
    results = []
    for key, repeats in paired_points(points).items():
        if wanted is not None and (key.first, key.second) not in wanted:
            continue
        alone = [_solo(points, key, app) for app in (key.first, key.second)]
        cpu = (float(alone[0]["app_cpu_mean"].median()), float(alone[1]["app_cpu_mean"].median()))
        if all(len(a) >= 2 for a in alone) and min(cpu) < CPU_LIMIT:
            results.append(compare_solo(key, list(alone[0]["rps"]), list(alone[1]["rps"]), cpu))
        else:
            results.append(replace(compare(key, repeats), cpu=cpu))
    return results


COLUMNS = [
    "first",
    "second",
    "backend",
    "scenario",
    "users",
    "db_ms",
    "repeats",
    "seconds",
    "first_rps",
    "second_rps",
    "ratio",
    "ratio_low",
    "ratio_high",
    "p",
    "half_width",
    "mde",
    "winner",
    "at_line",
    "verdict",
    "instrument",
    "cpu_first",
    "cpu_second",
]


def frame(results: list[PairedResult]) -> pd.DataFrame:
    """One row per comparison, for tables and charts (the columns even when there is none)."""
    return pd.DataFrame(
        [
            {
                "first": r.key.first,
                "second": r.key.second,
                "backend": r.key.backend,
                "scenario": r.key.scenario,
                "users": r.key.users,
                "db_ms": r.key.db_ms,
                "repeats": r.repeats,
                "seconds": r.seconds,
                "first_rps": r.first_rps,
                "second_rps": r.second_rps,
                "ratio": r.ratio,
                "ratio_low": r.ci[0],
                "ratio_high": r.ci[1],
                "p": r.p,
                "half_width": r.half_width,
                "mde": r.mde,
                "winner": r.winner,
                "at_line": r.at_line,
                "verdict": r.verdict(),
                "instrument": r.instrument,
                "cpu_first": r.cpu[0],
                "cpu_second": r.cpu[1],
            }
            for r in results
        ],
        columns=COLUMNS,
    )
