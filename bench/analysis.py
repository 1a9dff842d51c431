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
- Invalid points (valid == False) are excluded from every statistic and listed with their reasons.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from hdrh.histogram import HdrHistogram
from scipy import stats

from bench.results import POINT_COLUMNS, percentiles_ms, read_json, read_loadgen

CONFIDENCE = 0.95
MIN_REPEATS = 2
GROUP_KEYS = ["app", "scenario", "mode", "load", "db_ms"]
CASE_KEYS = ["scenario", "mode", "load", "db_ms"]
LATENCY = ("p50_ms", "p95_ms", "p99_ms")
# The runner's scenario order (bench.runner.SCENARIOS) and the registered apps (bench.apps.APPS);
# anything else sorts after them, by name.
SCENARIO_ORDER = ("read_heavy", "write_heavy", "mixed_crud", "slow_db", "signup")
APP_ORDER = ("sync", "async", "sync-mysqlclient", "async-aiomysql", "async-blocking", "sync-naive")
TEXT_COLUMNS = ("run_id", "point_id", "app", "variant", "driver", "scenario", "mode", "invalid_reasons")
HISTORY_COLUMNS = ("Requests/s", "Failures/s", "50%", "95%", "99%", "Total Request Count")


@dataclass(frozen=True)
class Pair:
    sync: str
    async_: str
    label: str


PAIRS = (
    Pair("sync", "async", "default drivers: PyMySQL vs asyncmy"),
    Pair("sync-mysqlclient", "async", "compiled drivers: mysqlclient vs asyncmy"),
    Pair("sync", "async-aiomysql", "pure-Python drivers: PyMySQL vs aiomysql"),
)


@dataclass
class RunData:
    """A run folder read into frames: `points` has one row per point (points.csv + `load`, the merged
    HdrHistogram `hdr` and the measurement window); `telemetry` is long (point_id, t, role, ...)."""

    run_dir: Path
    meta: dict[str, Any]
    points: pd.DataFrame
    telemetry: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class Analysis:
    summary: pd.DataFrame  # one row per group
    pairs: pd.DataFrame  # one row per pair x case
    headline: pd.DataFrame  # one row per pair x scenario (x db_ms for slow_db)
    invalid: pd.DataFrame  # the invalid points and why


# --- reading --------------------------------------------------------------------------------------------


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    return str(value).strip().lower() in ("true", "1", "yes")


def tidy_points(raw: pd.DataFrame) -> pd.DataFrame:
    """points.csv rows (or any subset of its columns) with types fixed and `load` added."""
    df = raw.copy()
    for col in POINT_COLUMNS:
        if col not in df.columns:
            df[col] = None
    for col in POINT_COLUMNS:
        if col in TEXT_COLUMNS or col == "valid":
            continue
        df[col] = pd.to_numeric(df[col], errors="coerce")
    for col in TEXT_COLUMNS:
        df[col] = df[col].fillna("").astype(str)
    df["mode"] = df["mode"].replace("", "closed")
    df["db_ms"] = df["db_ms"].fillna(0)
    df["valid"] = pd.Series([_as_bool(v) for v in df["valid"]], index=df.index, dtype=bool)
    df["load"] = np.where(df["mode"] == "open", df["target_rps"], df["users"])
    for col, default in (("hdr", None), ("window_start", math.nan), ("window_end", math.nan)):
        if col not in df.columns:
            df[col] = default
    df["hdr"] = df["hdr"].astype(object)
    return df.reset_index(drop=True)


def read_points(run_dir: Path) -> pd.DataFrame:
    """points.csv, plus each point's merged loadgen histogram and window when its JSON files exist."""
    path = run_dir / "points.csv"
    raw = pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else pd.DataFrame()
    df = tidy_points(raw)
    hdrs: list[HdrHistogram | None] = []
    starts: list[float] = []
    ends: list[float] = []
    for point_id in df["point_id"]:
        pdir = run_dir / "points" / point_id
        lg = read_loadgen(pdir) if point_id and any(pdir.glob("loadgen-*.json")) else None
        hdrs.append(lg.hdr if lg else None)
        starts.append(lg.window[0] if lg and lg.window else math.nan)
        ends.append(lg.window[1] if lg and lg.window else math.nan)
    df["hdr"] = pd.Series(hdrs, index=df.index, dtype=object)
    df["window_start"], df["window_end"] = starts, ends
    return df


def read_telemetry(run_dir: Path, point_ids: Iterable[str]) -> pd.DataFrame:
    frames = []
    for point_id in point_ids:
        path = run_dir / "points" / point_id / "telemetry.csv"
        if point_id and path.exists() and path.stat().st_size:
            frame = pd.read_csv(path)
            frame.insert(0, "point_id", point_id)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def load_run(run_dir: Path) -> RunData:
    meta_path = run_dir / "meta.json"
    meta: dict[str, Any] = read_json(meta_path) if meta_path.exists() else {}
    points = read_points(run_dir)
    return RunData(run_dir, meta, points, read_telemetry(run_dir, points["point_id"]))


def read_locust_history(path: Path) -> pd.DataFrame:
    """Locust's _stats_history.csv, Aggregated rows only, numeric ("N/A" -> NaN), `t` in unix seconds."""
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "Name" in raw.columns:
        raw = raw[raw["Name"] == "Aggregated"]
    out = pd.DataFrame({"t": pd.to_numeric(raw["Timestamp"], errors="coerce")})
    for col in HISTORY_COLUMNS:
        if col in raw.columns:
            out[col] = pd.to_numeric(raw[col], errors="coerce")
    return out.dropna(subset=["t"]).reset_index(drop=True)


# --- statistics ------------------------------------------------------------------------------------------


def merge_histograms(hists: Iterable[HdrHistogram | None]) -> HdrHistogram | None:
    """A new histogram holding every value of `hists` (the inputs are left untouched)."""
    present = [h for h in hists if h is not None]
    if not present:
        return None
    first = present[0]
    out = HdrHistogram(first.lowest_trackable_value, first.highest_trackable_value, first.significant_figures)
    for hist in present:
        out.add(hist)
    return out


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


def ratio_ci(
    num: Sequence[float], den: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """(mean(num)/mean(den), low, high): log-ratio t interval, delta method, Welch-Satterthwaite df."""
    a, b = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    if a.size == 0 or b.size == 0 or a.mean() <= 0 or b.mean() <= 0:
        return math.nan, math.nan, math.nan
    ratio = float(a.mean() / b.mean())
    if a.size < 2 or b.size < 2:
        return ratio, math.nan, math.nan
    va = float(a.var(ddof=1)) / (a.size * float(a.mean()) ** 2)  # squared relative standard errors
    vb = float(b.var(ddof=1)) / (b.size * float(b.mean()) ** 2)
    se = math.sqrt(va + vb)
    if se == 0:
        return ratio, ratio, ratio
    df = se**4 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    t = float(stats.t.ppf(0.5 + confidence / 2, df))
    return ratio, ratio * math.exp(-t * se), ratio * math.exp(t * se)


def _pcts(main: float, low: float, high: float) -> tuple[str, str, str]:
    """Percentages with one decimal below 10%, none above (the precision follows the main figure)."""
    digits = 0 if abs(main) >= 10 else 1
    return f"{main:.{digits}f}", f"{low:.{digits}f}", f"{high:.{digits}f}"


def verdict(ratio: float, low: float, high: float, n_sync: int, n_async: int) -> str:
    """The answer for one comparison, from the async/sync throughput ratio and its CI."""
    if n_sync < MIN_REPEATS or n_async < MIN_REPEATS:
        return "not enough repeats"
    if not all(math.isfinite(v) for v in (ratio, low, high)):
        return "no throughput to compare"
    if low <= 1.0 <= high:
        return "no significant difference"
    if low > 1.0:
        who, (x, a, b) = "async", _pcts((ratio - 1) * 100, (low - 1) * 100, (high - 1) * 100)
    else:
        who, (x, a, b) = "sync", _pcts((1 / ratio - 1) * 100, (1 / high - 1) * 100, (1 / low - 1) * 100)
    return f"{who} faster by {x}% ({CONFIDENCE:.0%} CI {a}%..{b}%)"


def _winner(text: str) -> str:
    return "async" if text.startswith("async") else "sync" if text.startswith("sync") else ""


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
    """One row per app x scenario x mode x load x db_ms: valid repeats, mean rps with CI, merged percentiles."""
    rows: list[dict[str, Any]] = []
    for key, group in points.groupby(GROUP_KEYS, dropna=False, sort=False):
        valid = group[group["valid"]]
        mean, low, high = mean_ci(valid["rps"].dropna().tolist())
        low = max(low, 0.0) if math.isfinite(low) else low  # throughput cannot be negative
        latency, source = _latency(valid)
        n = int(valid["rps"].notna().sum())
        note = "" if n >= 2 else "1 repeat: no CI" if n == 1 else "no valid repeat"
        rows.append(
            dict(zip(GROUP_KEYS, key, strict=True))
            | {"n": n, "invalid": int((~group["valid"]).sum()), "rps_mean": mean, "rps_ci_low": low}
            | {"rps_ci_high": high, "ci_note": note, **latency, "latency_source": source}
            | {"failures": int(group["failures"].fillna(0).sum())}
        )
    columns = [*GROUP_KEYS, "n", "invalid", "rps_mean", "rps_ci_low", "rps_ci_high", "ci_note"]
    columns += ["p50_ms", "p95_ms", "p99_ms", "latency_source", "failures"]
    return sort_cases(pd.DataFrame(rows, columns=columns))


def scenario_rank(scenario: str) -> tuple[int, str]:
    return (SCENARIO_ORDER.index(scenario) if scenario in SCENARIO_ORDER else len(SCENARIO_ORDER), scenario)


def app_rank(app: str) -> tuple[int, str]:
    return (APP_ORDER.index(app) if app in APP_ORDER else len(APP_ORDER), app)


def ordered_apps(apps: Iterable[str]) -> list[str]:
    return sorted(set(apps), key=app_rank)


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


def present_pairs(apps: Iterable[str], pairs: Sequence[Pair] = PAIRS) -> list[Pair]:
    have = set(apps)
    return [p for p in pairs if p.sync in have and p.async_ in have]


def compare_pairs(points: pd.DataFrame, pairs: Sequence[Pair] = PAIRS) -> pd.DataFrame:
    """Every case (scenario x mode x load x db_ms) of every pair present in the run: ratio, CI, verdict."""
    rows: list[dict[str, Any]] = []
    for rank, pair in enumerate(present_pairs(points["app"], pairs)):
        both = points[points["app"].isin([pair.sync, pair.async_])]
        for key, group in both.groupby(CASE_KEYS, dropna=False, sort=False):
            case = group[group["valid"]]
            s = case.loc[case["app"] == pair.sync, "rps"].dropna().tolist()
            a = case.loc[case["app"] == pair.async_, "rps"].dropna().tolist()
            ratio, low, high = ratio_ci(a, s)
            text = verdict(ratio, low, high, len(s), len(a))
            rows.append(
                {"pair_rank": rank, "pair": pair.label, "sync_app": pair.sync, "async_app": pair.async_}
                | dict(zip(CASE_KEYS, key, strict=True))
                | {"n_sync": len(s), "n_async": len(a), "sync_rps": np.mean(s) if s else math.nan}
                | {"async_rps": np.mean(a) if a else math.nan, "ratio": ratio, "ratio_low": low}
                | {"ratio_high": high, "verdict": text, "winner": _winner(text)}
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
            row["verdict"], row["winner"] = "no valid points for both apps", ""
        else:
            row = pick.sort_values("load").iloc[-1]
        rows.append(row)
    return sort_cases(pd.DataFrame(rows), first=["pair_rank"])


def invalid_points(points: pd.DataFrame) -> pd.DataFrame:
    cols = ["point_id", "app", "scenario", "mode", "load", "db_ms", "repeat", "failures", "invalid_reasons"]
    return points.loc[~points["valid"], cols].reset_index(drop=True)


def analyse(points: pd.DataFrame, pairs: Sequence[Pair] = PAIRS) -> Analysis:
    compared = compare_pairs(points, pairs)
    return Analysis(summarize(points), compared, headline(compared), invalid_points(points))


def load_label(mode: str) -> str:
    return "target rate (req/s)" if mode == "open" else "concurrent users"


def workload(scenario: str, mode: str, load: float, db_ms: float) -> str:
    """'32 users', '20 ms DB, 32 users', '500 req/s'."""
    amount = f"{load:g}" if math.isfinite(load) else "?"
    what = f"{amount} req/s" if mode == "open" else f"{amount} users"
    return f"{db_ms:g} ms DB, {what}" if db_ms or scenario == "slow_db" else what
