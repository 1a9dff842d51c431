"""One run folder -> one tidy table -> statistics and sync/async verdicts. Pure functions; starts no process.

How the numbers are made:
- Throughput of a group (app x scenario x load x db_ms; load = users in closed loop, target_rps in open
  loop) is the mean rps of its valid repeats, with a 95% Student t interval (scipy.stats.t), its lower
  bound truncated at 0. One repeat has no interval: the CI is NaN and the table says "1 repeat: no CI".
- Latency percentiles come from the repeats' HdrHistograms merged into one (never averaged). Only when a
  repeat has no histogram does a group fall back to the median of the per-repeat percentiles of
  points.csv, and `latency_source` says so.
- The async/sync throughput ratio uses a log-ratio t interval: log(mean_async / mean_sync) with the
  delta-method standard error sqrt(s_a^2/(n_a m_a^2) + s_s^2/(n_s m_s^2)) and Welch-Satterthwaite degrees
  of freedom, exponentiated back. It needs >= 2 valid repeats on each side.
- One repeat has no interval of its own. Where the app used its whole CPU, a repeat's spread on this
  machine comes from the machine's speed more than from the point (docs/methods.md, "Quiet machine: nothing
  else on the app's CPU"), so the run's `spread` pools the log-sd of every such group with >= 2 repeats, and
  the throughput chart draws it around the single repeats.
- Invalid points (valid == False) are excluded from every statistic and listed with their reasons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from bench.analyse.interference import PREFIX, interference
from bench.analyse.paired import CPU_LIMIT, analyse_pairs, frame
from bench.analyse.stats import MIN_REPEATS, Spread, mean_ci, pooled_spread, ratio_ci
from bench.analyse.verdict import Winner, sweep_verdict
from bench.catalog import PAIRS, PairEntry, app_rank, pair_backend, present_pairs, scenario_rank
from bench.store.loadgen import merge_histograms, percentiles_ms

GROUP_KEYS = ["backend", "app", "scenario", "mode", "load", "db_ms"]  # an app runs on one backend
CASE_KEYS = ["scenario", "mode", "load", "db_ms"]
LATENCY = ("p50_ms", "p95_ms", "p99_ms")


@dataclass
class Analysis:
    summary: pd.DataFrame  # one row per group
    pairs: pd.DataFrame  # one row per pair x case
    headline: pd.DataFrame  # one row per pair x scenario (x db_ms for slow_db)
    invalid: pd.DataFrame  # the invalid points and why
    paired: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per paired comparison (the verdicts)
    interference: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per app x neighbour kind
    spread: Spread | None = None  # of one solo repeat where the app used its whole CPU (cpu_bound_spread)
    # CPU per request by layer (layers.compared), statements per route (work.route_statements)
    layer_pairs: pd.DataFrame = field(default_factory=pd.DataFrame)
    work: pd.DataFrame = field(default_factory=pd.DataFrame)


def _latency(group: pd.DataFrame) -> tuple[dict[str, float], str]:
    hists = list(group["hdr"])
    if hists and all(h is not None for h in hists):
        merged = percentiles_ms(merge_histograms(hists))
        n = len(hists)
        return {k: _num(merged[k]) for k in LATENCY}, f"merged histograms ({n} repeat{'s' * (n != 1)})"
    values = {k: float(group[k].median()) if group[k].notna().any() else math.nan for k in LATENCY}
    return values, "median of per-repeat percentiles (no histograms)" if len(group) else ""


def _num(value: float | None) -> float:
    return math.nan if value is None else float(value)


def summarize(points: pd.DataFrame) -> pd.DataFrame:
    """One row per (backend x) app x scenario x mode x load x db_ms: valid repeats, mean rps with CI, merged
    percentiles."""
    rows: list[dict[str, Any]] = []
    for key, group in points.groupby(GROUP_KEYS, dropna=False, sort=False):
        valid = group[group["valid"]]
        mean, low, high = mean_ci(valid["rps"].dropna().tolist())
        low = max(low, 0.0) if math.isfinite(low) else low  # throughput cannot be negative
        latency, source = _latency(valid)
        n = int(valid["rps"].notna().sum())
        note = "" if n >= 2 else "1 repeat: no CI" if n == 1 else "no valid repeat"
        used = valid["app_cpu_mean"].dropna() if "app_cpu_mean" in valid else pd.Series(dtype=float)
        cpu = used.median() if len(used) else math.nan  # an app running elsewhere: not measured
        rows.append(
            dict(zip(GROUP_KEYS, key, strict=True))
            | {"n": n, "invalid": int((~group["valid"]).sum()), "rps_mean": mean, "rps_ci_low": low}
            | {"rps_ci_high": high, "ci_note": note, **latency, "latency_source": source}
            | {"failures": int(group["failures"].fillna(0).sum()), "app_cpu": float(cpu)}
        )
    columns = [*GROUP_KEYS, "n", "invalid", "rps_mean", "rps_ci_low", "rps_ci_high", "ci_note"]
    columns += ["p50_ms", "p95_ms", "p99_ms", "latency_source", "failures", "app_cpu"]
    return sort_cases(pd.DataFrame(rows, columns=columns))


def sort_cases(df: pd.DataFrame, first: Sequence[str] = ()) -> pd.DataFrame:
    if df.empty:
        return df.reset_index(drop=True)
    ranked = df.assign(_rank=df["scenario"].map(lambda s: scenario_rank(str(s))[0]))
    keys = [*first, "_rank", "scenario", "db_ms", "load"]
    if "app" in df.columns:
        ranked["_app"] = ranked["app"].map(lambda a: app_rank(str(a)))
        keys += ["_app"]
    order = ranked.sort_values(keys, kind="stable")
    return order.drop(columns=[c for c in ("_rank", "_app") if c in order.columns]).reset_index(drop=True)


def compare_pairs(points: pd.DataFrame, pairs: Sequence[PairEntry] = PAIRS) -> pd.DataFrame:
    """Every case (scenario x mode x load x db_ms) of every pair present in the run: ratio, CI, verdict.
    A pair's two apps run on the same backend, so its verdicts are that backend's."""
    rows: list[dict[str, Any]] = []
    for rank, pair in enumerate(p for p in present_pairs(points["app"]) if p in pairs):
        both = points[points["app"].isin([pair.sync, pair.async_])]
        for key, group in both.groupby(CASE_KEYS, dropna=False, sort=False):
            case = group[group["valid"]]
            s = case.loc[case["app"] == pair.sync, "rps"].dropna().tolist()
            a = case.loc[case["app"] == pair.async_, "rps"].dropna().tolist()
            ratio, low, high = ratio_ci(a, s)
            judged = sweep_verdict(ratio, low, high, len(s), len(a), pair.sync, pair.async_)
            rows.append(
                {"pair_rank": rank, "pair": pair.label, "backend": pair_backend(pair), "sync_app": pair.sync}
                | {"async_app": pair.async_}
                | dict(zip(CASE_KEYS, key, strict=True))
                | {"n_sync": len(s), "n_async": len(a), "sync_rps": np.mean(s) if s else math.nan}
                | {"async_rps": np.mean(a) if a else math.nan, "ratio": ratio, "ratio_low": low}
                | {"ratio_high": high, "verdict": judged.text, "winner": judged.winner}
            )
    return sort_cases(pd.DataFrame(rows), first=["pair_rank"]) if rows else pd.DataFrame(rows)


def headline(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per pair and scenario (and db_ms level for slow_db): the highest load where both apps have valid
    points, preferring loads with >= MIN_REPEATS valid repeats on both sides."""
    rows: list[pd.Series] = []
    if pairs.empty:
        return pairs
    for _, cases in pairs.groupby(["pair_rank", "scenario", "mode", "db_ms"], sort=False):
        both = cases[(cases["n_sync"] > 0) & (cases["n_async"] > 0)]
        enough = both[(both["n_sync"] >= MIN_REPEATS) & (both["n_async"] >= MIN_REPEATS)]
        pick = enough if not enough.empty else both
        if pick.empty:
            row = cases.sort_values("load").iloc[-1].copy()
            row["verdict"], row["winner"] = "no valid points for both apps", Winner.UNCLEAR
        else:
            row = pick.sort_values("load").iloc[-1]
        rows.append(row)
    return sort_cases(pd.DataFrame(rows), first=["pair_rank"])


def invalid_points(points: pd.DataFrame) -> pd.DataFrame:
    cols = ["point_id", "app", "scenario", "mode", "load", "db_ms", "repeat", "failures", "invalid_reasons"]
    return points.loc[~points["valid"], cols].reset_index(drop=True)


def solo(points: pd.DataFrame) -> pd.DataFrame:
    """The solo points (each app alone on its CPU): paired points measure something else (paired.py)."""
    if "partner" not in points.columns:
        return points
    return points[points["partner"].fillna("").astype(str) == ""].reset_index(drop=True)


def analyse(points: pd.DataFrame, pairs: Sequence[PairEntry] = PAIRS) -> Analysis:
    alone = solo(points)
    paired = frame(analyse_pairs(points))
    intf = interference(alone)
    interfered = alone["scenario"].astype(str).str.startswith(PREFIX)
    solo_rest = alone[~interfered].reset_index(drop=True)
    compared = compare_pairs(solo_rest, pairs)
    summary = summarize(solo_rest)
    spread = cpu_bound_spread(solo_rest, summary)
    return Analysis(summary, compared, headline(compared), invalid_points(points), paired, intf, spread)


def cpu_bound(summary: pd.DataFrame) -> pd.Series:
    """Groups of closed-loop solo points where the app used its whole CPU (median over repeats)."""
    return (summary["mode"] == "closed") & (summary["app_cpu"] >= CPU_LIMIT)


def cpu_bound_spread(points: pd.DataFrame, summary: pd.DataFrame) -> Spread | None:
    """The pooled spread of one repeat over the CPU-bound groups of `summary` (from solo `points`)."""
    valid = points[points["valid"] & points["rps"].notna()]
    if valid.empty or summary.empty:  # a run of paired points only
        return None
    bound = summary.loc[cpu_bound(summary), GROUP_KEYS]
    rps = valid.merge(bound, on=GROUP_KEYS).groupby(GROUP_KEYS, dropna=False)["rps"]
    return pooled_spread(group.tolist() for _key, group in rps)


def load_label(mode: str) -> str:
    return "target rate (req/s)" if mode == "open" else "concurrent users"
