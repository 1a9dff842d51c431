"""Charts of one analysed run: matplotlib figures on the Agg canvas, PNG at 150 dpi, one colour per app.

Every chart is drawn from the analysis tables (and, for the timeline, the exact per-second counts and
histograms the load generator recorded for one point); a chart whose data is absent is skipped, never
drawn empty. Colours, markers and the order of apps come from the catalog.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullLocator

from bench.analyse.layers import MEASURED, explained
from bench.analyse.layers import cases as layer_cases
from bench.analyse.paired import of_pair
from bench.analyse.stats import CONFIDENCE, LEVEL
from bench.analyse.summary import Analysis, cpu_bound, load_label
from bench.analyse.verdict import MARGIN, SAME, Winner
from bench.catalog import (
    LAYER_COLOURS,
    LAYERS,
    PAIRS,
    app_colour,
    app_marker,
    ordered_apps,
    scenario_rank,
    sweeps_db_ms,
    workload_name,
)
from bench.config import LOADGEN_CPU_LIMIT
from bench.store.loadgen import percentiles_ms
from bench.store.run import Run
from loadtests.probes import PROBES_TEXT
from shared.dialects import DIALECTS

DPI = 150
PAIR_COLOURS = {(p.sync, p.async_): p.colour for p in PAIRS}
PERCENTILE_STYLES = {"p50_ms": ("p50", ":"), "p95_ms": ("p95", "--"), "p99_ms": ("p99", "-")}
WARMUP_SHADE = "0.88"


@dataclass(frozen=True)
class Chart:
    path: Path
    title: str
    caption: str


def panel_title(scenario: str, db_ms: float) -> str:
    return workload_name(scenario, db_ms)


def _panels(df: pd.DataFrame) -> list[tuple[str, float]]:
    keys = {(str(s), float(d)) for s, d in zip(df["scenario"], df["db_ms"], strict=True)}
    return sorted(keys, key=lambda k: (scenario_rank(k[0]), k[1]))


def _figure(n: int, width: float = 4.6, height: float = 3.5, cols: int = 3) -> tuple[Figure, list[Axes]]:
    """A constrained-layout grid with exactly n panels (spare cells removed)."""
    cols = max(1, min(n, cols))
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(width * cols, height * rows + 1.0), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = list(fig.subplots(rows, cols, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.remove()
    return fig, axes[:n]


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    return path


def _app_legend(
    fig: Figure, apps: Sequence[str], extra: Sequence[Line2D | Patch] = (), bars: bool = False
) -> None:
    handles: list[Line2D | Patch] = [
        Patch(color=app_colour(a), label=a)
        if bars
        else Line2D([], [], color=app_colour(a), marker=app_marker(a), label=a)
        for a in apps
    ]
    handles += list(extra)
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 7), frameon=False)


def _load_axis(ax: Axes, levels: Iterable[float], mode: str) -> None:
    values = sorted({float(v) for v in levels if math.isfinite(v)})
    if len(values) > 1 and values[0] > 0 and values[-1] / values[0] >= 4:
        ax.set_xscale("log", base=2)
        ax.set_xlim(values[0] / 1.4, values[-1] * 1.4)
    elif len(values) == 1:
        v = values[0]
        ax.set_xlim(v * 0.5, v * 1.5) if v > 0 else ax.set_xlim(v - 1, v + 1)
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel(load_label(mode))


def _dodge(ax: Axes, x: pd.Series, i: int, k: int) -> np.ndarray:
    """Shift app i of k sideways a little so error bars at one load do not hide each other."""
    shift = (i - (k - 1) / 2) * 0.06
    arr = x.to_numpy(dtype=float)
    if ax.get_xscale() == "log":
        return arr * (1 + shift)
    low, high = ax.get_xlim()
    return arr + shift * (high - low) * 0.3


def _log_latency_axis(ax: Axes) -> None:
    """Log y with plain numbers: 10, 100, 1000 and, between them, 20, 50, 200..."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(
        FuncFormatter(
            lambda v, _: f"{v:g}" if v > 0 and round(v / 10 ** math.floor(math.log10(v))) in (2, 5) else ""
        )
    )


def _load_panels(data: pd.DataFrame) -> tuple[Figure, list[tuple[Axes, pd.DataFrame]], list[str]] | None:
    """One panel per (scenario, db_ms) of `data` with its load axis drawn, and the apps in their order."""
    keys = _panels(data)
    if not keys:
        return None
    fig, axes = _figure(len(keys))
    panels = []
    for ax, (scenario, db_ms) in zip(axes, keys, strict=True):
        panel = data[(data["scenario"] == scenario) & (data["db_ms"] == db_ms)]
        _load_axis(ax, panel["load"], str(panel["mode"].iloc[0]))
        ax.set_title(panel_title(scenario, db_ms))
        ax.grid(alpha=0.3)
        panels.append((ax, panel))
    return fig, panels, ordered_apps(data["app"])


def throughput_chart(result: Analysis, out_dir: Path) -> Chart | None:
    data = result.summary[(result.summary["n"] > 0) & result.summary["rps_mean"].notna()]
    drawn = _load_panels(data)
    if drawn is None:
        return None
    fig, panels, apps = drawn
    factor = result.spread.factor() if result.spread else None
    spread_drawn = False
    for ax, panel in panels:
        top = 0.0
        for i, app in enumerate(apps):
            rows = panel[panel["app"] == app].sort_values("load")
            if rows.empty:
                continue
            colour, x = app_colour(app), _dodge(ax, rows["load"], i, len(apps))
            ax.plot(x, rows["rps_mean"], color=colour, marker=app_marker(app), label=app)
            ci = rows["rps_ci_low"].notna().to_numpy()
            low, high, mean = rows["rps_ci_low"], rows["rps_ci_high"], rows["rps_mean"]
            if ci.any():
                yerr = np.vstack([(mean - low)[ci], (high - mean)[ci]])
                ax.errorbar(x[ci], mean[ci], yerr=yerr, fmt="none", ecolor=colour, capsize=4, lw=1.2)
            single = (rows["n"] == 1).to_numpy()
            if single.any():
                ax.plot(
                    x[single],
                    mean[single],
                    ls="none",
                    marker=app_marker(app),
                    mfc="white",
                    mec=colour,
                    zorder=3,
                )
            spread = single & cpu_bound(rows).to_numpy()
            if factor and spread.any():
                m = mean[spread]
                yerr = np.vstack([m - m / factor, m * factor - m])
                bars = ax.errorbar(x[spread], m, yerr=yerr, fmt="none", ecolor=colour, capsize=3, lw=1)
                bars.lines[2][0].set_linestyle("--")
                high = high.where(~spread, mean * factor)
                spread_drawn = True
            top = max(top, float(np.nanmax(np.fmax(mean, high.fillna(0)))))
        ax.set_ylim(0, top * 1.15 if top > 0 else 1)
        ax.set_ylabel("throughput (req/s)")
    extra: list[Line2D] = []
    if (data["n"] == 1).any():
        label = "1 valid repeat: " + ("dashed = this run's spread of one repeat" if spread_drawn else "no CI")
        ls = "--" if spread_drawn else "none"
        extra.append(Line2D([], [], ls=ls, color="0.3", marker="o", mfc="white", mec="0.3", label=label))
    _app_legend(fig, apps, extra)
    fig.suptitle(f"Throughput vs load: mean of valid repeats, error bars = {LEVEL}")
    caption = (
        f"Mean requests/s over the valid repeats of each point; error bars are the {LEVEL} t interval. The y "
        "axis starts at 0. A hollow marker is a point with one valid repeat, which has no interval of its "
        "own."
    )
    if spread_drawn and result.spread:
        s = result.spread
        caption += (
            f" Where the app used its whole CPU, its dashed bar is ×/÷{factor:.2f}: the {CONFIDENCE:.0%} "
            "range of one repeat, from the spread of this run's solo points that used the whole CPU and had "
            f"2 or more repeats (log-sd {s.sd:.1%} pooled over {s.groups} points, {s.df} degrees of "
            "freedom). On a machine whose speed varies from second to second, one repeat can be that far "
            "from the next; the verdicts come from the paired points."
        )
    return Chart(_save(fig, out_dir / "throughput.png"), "Throughput vs load", caption)


def _latency_panels(data: pd.DataFrame) -> list[tuple[str, pd.DataFrame, str]]:
    """(title, rows, x column): a panel per workload against load; a scenario that sweeps the database's
    time (slow_db, one or two loads per level) gets a panel per load against that time instead, so each
    app's percentiles are lines there too."""
    sweep = data["scenario"].map(sweeps_db_ms).astype(bool)
    specs = [
        (
            panel_title(scenario, db_ms),
            data[~sweep & (data["scenario"] == scenario) & (data["db_ms"] == db_ms)],
            "load",
        )
        for scenario, db_ms in _panels(data[~sweep])
    ]
    swept = data[sweep]
    for scenario in sorted(set(swept["scenario"]), key=scenario_rank):
        rows = swept[swept["scenario"] == scenario]
        for load in sorted(set(rows["load"])):
            panel = rows[rows["load"] == load]
            unit = "req/s" if str(panel["mode"].iloc[0]) == "open" else "users"
            specs.append((f"{scenario} at {load:g} {unit}", panel, "db_ms"))
    return specs


def latency_chart(result: Analysis, out_dir: Path) -> Chart | None:
    cols = list(PERCENTILE_STYLES)
    data = result.summary[(result.summary["n"] > 0) & result.summary[cols].notna().any(axis=1)]
    specs = _latency_panels(data)
    if not specs:
        return None
    fig, axes = _figure(len(specs))
    apps = ordered_apps(data["app"])
    for ax, (title, panel, xcol) in zip(axes, specs, strict=True):
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if xcol == "load":
            _load_axis(ax, panel["load"], str(panel["mode"].iloc[0]))
        else:
            ticks = sorted({float(v) for v in panel["db_ms"]})
            ax.set_xlim(
                ticks[0] - 0.08 * (ticks[-1] - ticks[0] or 1),
                ticks[-1] + 0.08 * (ticks[-1] - ticks[0] or 1),
            )
            ax.set_xticks(ticks, [f"{v:g}" for v in ticks])
            ax.set_xlabel("database time per query (ms)")
        here = [a for a in apps if a in set(panel["app"])]
        for i, app in enumerate(here):
            rows = panel[panel["app"] == app].sort_values(xcol)
            x = _dodge(ax, rows[xcol], i, len(here))
            for col, (_, style) in PERCENTILE_STYLES.items():
                ax.plot(x, rows[col], color=app_colour(app), ls=style, marker=app_marker(app), ms=4)
        values = panel[cols].to_numpy(dtype=float)
        log = bool(np.nanmin(values) > 0 and np.nanmax(values) / np.nanmin(values) > 20)
        if log:
            _log_latency_axis(ax)
        else:
            ax.set_ylim(bottom=0)
        ax.set_ylabel("latency (ms)" + (", log scale" if log else ""))
    styles = [Line2D([], [], color="0.3", ls=style, label=name) for name, style in PERCENTILE_STYLES.values()]
    _app_legend(fig, apps, styles)
    fig.suptitle(
        "Latency percentiles vs load (slow_db: vs database time): histograms merged over valid repeats"
    )
    return Chart(
        _save(fig, out_dir / "latency.png"),
        "Latency percentiles vs load",
        "p50 (dotted), p95 (dashed) and p99 (solid) of all requests of the valid repeats, from their "
        "HdrHistograms merged (percentiles are never averaged). slow_db panels: one per load, against the "
        "database's time per query.",
    )


def pick_timeline(data: Run) -> pd.DataFrame:
    """The points to show over time: one configuration, one point per app with per-second counts;
    the configuration with the most apps, all valid, at the highest load, lowest repeat."""
    pts = data.points
    has = pts[[lg is not None and bool(lg.seconds) for lg in pts["loadgen"]]]
    if has.empty:
        return has
    keys = ["scenario", "mode", "load", "db_ms", "repeat"]

    def score(group: pd.DataFrame) -> tuple[int, bool, float, float, int]:
        first = group.iloc[0]
        rank = scenario_rank(str(first["scenario"]))[0]
        return len(group), bool(group["valid"].all()), float(first["load"]), -float(first["repeat"]), -rank

    best = max((g for _, g in has.groupby(keys, dropna=False)), key=score)
    order = ordered_apps(best["app"])
    return best.drop_duplicates("app").set_index("app").loc[order].reset_index()


def _seconds(point: pd.Series) -> pd.DataFrame:
    """One row per recorded second (t from the window's start; negative: warm-up): requests completed
    and, where the point recorded per-second histograms, their p50/p95/p99."""
    rows = []
    for t, sec in sorted(point["loadgen"].seconds.items()):
        pct = percentiles_ms(sec.hdr)
        rows.append({"t": t, "requests": sec.requests, **{k: pct[k] for k in PERCENTILE_STYLES}})
    return pd.DataFrame(rows)


def timeline_chart(data: Run, out_dir: Path) -> Chart | None:
    chosen = pick_timeline(data)
    if chosen.empty:
        return None
    series = [_seconds(p) for _, p in chosen.iterrows()]
    has_latency = any(s[list(PERCENTILE_STYLES)].notna().any().any() for s in series)
    n = len(chosen)
    fig = Figure(figsize=(5.2 * n, 6.6 if has_latency else 3.8), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    grid = fig.subplots(2 if has_latency else 1, n, squeeze=False, sharex="col", sharey="row")
    warmup = False
    for col, ((_, point), sec) in enumerate(zip(chosen.iterrows(), series, strict=True)):
        app = str(point["app"])
        axes = [grid[0][col]] + ([grid[1][col]] if has_latency else [])
        x = sec["t"] + 0.5  # a second's count is drawn at its middle
        axes[0].plot(x, sec["requests"], color=app_colour(app), marker=".", label=app)
        if has_latency:
            for col_name, (name, style) in PERCENTILE_STYLES.items():
                axes[1].plot(x, sec[col_name], color=app_colour(app), ls=style, marker=".", label=name)
        duration = float(point["window_end"] - point["window_start"])
        for ax in axes:
            if (sec["t"] < 0).any():
                ax.axvspan(float(sec["t"].min()), 0.0, color=WARMUP_SHADE, zorder=0)
                warmup = True
            if math.isfinite(duration):
                ax.axvline(duration, color="0.4", ls="-.", lw=1)
            ax.grid(alpha=0.3)
        axes[0].set_title(
            f"{app}: {panel_title(str(point['scenario']), float(point['db_ms']))}\n{point['load']:g} "
            f"{'req/s target' if point['mode'] == 'open' else 'users'}, repeat {point['repeat']:g}",
            fontsize=10,
        )
        axes[-1].set_xlabel("seconds since the measurement window opened")
    peak = max((float(s["requests"].max()) for s in series if not s.empty), default=1.0)
    grid[0][0].set_ylim(0, peak * 1.08 or 1.0)
    grid[0][0].set_ylabel("requests completed per second")
    extra: list[Line2D | Patch] = []
    if has_latency:
        grid[1][0].set_ylabel("latency (ms)")
        top = max(
            (
                float(np.nanmax(s[list(PERCENTILE_STYLES)].to_numpy(dtype=float)))
                for s in series
                if s[list(PERCENTILE_STYLES)].notna().any().any()
            ),
            default=1.0,
        )
        grid[1][0].set_ylim(0, top * 1.08 or 1.0)
        extra += [
            Line2D([], [], color="0.3", ls=style, label=name) for name, style in PERCENTILE_STYLES.values()
        ]
    if warmup:
        extra.append(Patch(color=WARMUP_SHADE, label="warm-up (not counted)"))
    extra.append(Line2D([], [], color="0.4", ls="-.", label="window end"))
    _app_legend(fig, ordered_apps(chosen["app"]), extra)
    fig.suptitle("Over time: exact per-second counts of one point per app")
    return Chart(
        _save(fig, out_dir / "timeline.png"),
        "Throughput and latency over time",
        "Requests completed in each second and, below, that second's p50/p95/p99 from its own histogram, as "
        "the load generator recorded them (exact, not Locust's rolling averages). The shaded warm-up "
        "precedes the measurement window and is not counted.",
    )


def _paired_headline(result: Analysis) -> pd.DataFrame:
    """The paired sync/async comparisons in the shape of the solo headline table."""
    rows = []
    for rank, pair in enumerate(PAIRS):
        got = of_pair(result.paired, pair.sync, pair.async_)
        for _, r in got.iterrows():
            rows.append(
                {
                    "pair_rank": rank,
                    "pair": pair.label,
                    "sync_app": pair.sync,
                    "async_app": pair.async_,
                    "backend": r["backend"],
                    "scenario": r["scenario"],
                    "db_ms": r["db_ms"],
                    "load": r["users"],
                    "mode": "closed",
                    "ratio": r["ratio"],
                    "ratio_low": r["ratio_low"],
                    "ratio_high": r["ratio_high"],
                    "instrument": r["instrument"],
                }
            )
    return pd.DataFrame(rows)


def _pools(data: pd.DataFrame, limits: dict[str, dict[str, Any]]) -> str:
    """Whether each pair of the crossover waited for pool connections: from its apps' /limits (meta.json)."""
    parts = []
    for (sync, async_), rows in data.groupby(["sync_app", "async_app"], sort=False):
        users = int(rows["load"].max())
        pools = {
            int(lim.get("pool_size") or 0) + int(lim.get("max_overflow") or 0)
            for app in (sync, async_)
            if (lim := limits.get(str(app)))
        }
        if len(pools) != 1:
            continue
        pool = pools.pop()
        limit = (
            "both apps wait for connections once queries take long"
            if pool < users
            else "the pool is not the limit"
        )
        parts.append(f"{async_} / {sync}: {pool} connections for {users} users, {limit}.")
    return " ".join(parts)


def crossover_chart(
    result: Analysis, out_dir: Path, limits: dict[str, dict[str, Any]] | None = None
) -> Chart | None:
    """async/sync along the database-time sweep. `limits`: each app's /limits (meta.json), for the caption."""
    paired = not result.paired.empty
    source = _paired_headline(result) if paired else result.headline
    if source.empty:
        return None
    sweep = [sweeps_db_ms(s) for s in source["scenario"]]
    data = source[pd.Series(sweep, index=source.index) & source["ratio"].notna()]
    if data.empty or data["db_ms"].nunique() < 2:
        return None
    fig = Figure(figsize=(7.5, 5.0), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    levels = sorted(data["db_ms"].unique())
    span = max(levels[-1] - levels[0], 1.0)
    pairs = list(data.groupby(["pair_rank", "pair", "sync_app", "async_app"], sort=True))
    same_load = data["load"].nunique() == 1
    unit = "req/s" if (data["mode"] == "open").all() else "users"
    bounds = [1.0]
    for i, ((_, label, sync, async_), rows) in enumerate(pairs):
        rows = rows.sort_values("db_ms")
        colour = PAIR_COLOURS.get((str(sync), str(async_)), "0.3")
        x = rows["db_ms"].to_numpy(dtype=float) + (i - (len(pairs) - 1) / 2) * span * 0.015
        ax.plot(
            x,
            rows["ratio"],
            color=colour,
            marker="o",
            label=f"{async_} / {sync} ({str(label).split(':')[0]})",
        )
        ci = rows["ratio_low"].notna().to_numpy()
        if ci.any():
            yerr = np.vstack(
                [(rows["ratio"] - rows["ratio_low"])[ci], (rows["ratio_high"] - rows["ratio"])[ci]]
            )
            ax.errorbar(x[ci], rows["ratio"][ci], yerr=yerr, fmt="none", ecolor=colour, capsize=5)
        solo = (
            (rows["instrument"] == "solo").to_numpy() if "instrument" in rows else np.zeros(len(rows), bool)
        )
        if solo.any():  # the verdict came from each app alone: hollow, as in the verdicts chart
            ax.plot(
                x[solo], rows["ratio"][solo], "o", ls="none", color=colour, markerfacecolor="white", zorder=3
            )
        if not same_load:
            for xi, (_, row) in zip(x, rows.iterrows(), strict=True):
                ax.annotate(
                    f"{row['load']:g} {unit}",
                    (xi, row["ratio"]),
                    textcoords="offset points",
                    xytext=(6, -12 - 10 * i),  # one line lower per pair: labels of one level do not overlap
                    fontsize=7,
                    color=colour,
                )
        bounds += [*rows["ratio"], *rows["ratio_low"].dropna(), *rows["ratio_high"].dropna()]
    ax.axhline(1.0, color="0.2", lw=1)
    low, high = min(bounds), max(bounds)
    pad = (high - low) * 0.15 or 0.1
    ax.set_ylim(low - pad, high + pad)
    ax.set_xticks(levels, [f"{v:g}" for v in levels])
    ax.set_xlim(levels[0] - span * 0.08, levels[-1] + span * 0.08)
    ax.text(0.01, 0.99, "above 1: async faster", transform=ax.transAxes, va="top", fontsize=8, color="0.35")
    ax.text(0.01, 0.01, "below 1: sync faster", transform=ax.transAxes, va="bottom", fontsize=8, color="0.35")
    sleeps = sorted(
        {f"SELECT {DIALECTS[str(b)].sleep_function}" for b in data["backend"] if str(b) in DIALECTS}
    )
    ax.set_xlabel(f"simulated database latency per request (ms, {' / '.join(sleeps) or 'a waiting query'})")
    ax.set_ylabel("throughput ratio async / sync (x)")
    at = f", {data['load'].iloc[0]:g} {unit}" if same_load else ""
    ax.set_title(f"Crossover: async/sync throughput vs database latency (slow_db{at})")
    ax.grid(alpha=0.3)
    fig.legend(loc="outside lower center", ncol=1, frameon=False)
    how = (
        "Each level's verdict: filled dots from paired points (both apps over the same seconds, sharing the "
        "app's CPU: the ratio of their requests, mean over repeats), hollow dots from solo points where the "
        f"CPU was not the limit (each app alone: the ratio of mean requests/s); error bars the {LEVEL} t "
        "interval over repeats."
        if paired
        else f"Ratio of mean throughputs at the headline load of each level; error bars are the {LEVEL} "
        "log-ratio t interval."
    )
    return Chart(
        _save(fig, out_dir / "crossover.png"),
        "Crossover: async/sync throughput vs database latency",
        how + " Above the line at 1.0 async serves more requests per second. " + _pools(data, limits or {}),
    )


def verdicts_chart(result: Analysis, out_dir: Path) -> Chart | None:
    """Every paired comparison: the ratio and its interval, with the ±MARGIN band of 'the same'."""
    if result.paired.empty:
        return None
    order = {(p.sync, p.async_): i for i, p in enumerate(PAIRS)}
    rows = result.paired.assign(
        _pair=[
            order.get((str(a), str(b)), len(order))
            for a, b in zip(result.paired["first"], result.paired["second"], strict=True)
        ],
        _rank=[scenario_rank(str(s))[0] for s in result.paired["scenario"]],
    ).sort_values(["backend", "_pair", "first", "_rank", "db_ms"], ascending=False)  # top to bottom
    rows = rows.reset_index(drop=True)
    fig = Figure(figsize=(9.5, 1.2 + 0.42 * len(rows)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.axvspan(1 - MARGIN, 1 + MARGIN, color="0.9", zorder=0, label=SAME)
    ax.axvline(1.0, color="0.3", lw=1)
    labels = []
    for i, (_, r) in enumerate(rows.iterrows()):
        won = Winner(r["winner"]).app(str(r["first"]), str(r["second"]))
        colour = app_colour(won) if won else "0.35"
        if math.isfinite(r["ratio_low"]):
            ax.plot(
                [r["ratio_low"], r["ratio_high"]],
                [i, i],
                color=colour,
                lw=4,
                alpha=0.6,
                solid_capstyle="butt",
            )
        solo = r["instrument"] == "solo"
        ax.plot([r["ratio"]], [i], "o", color=colour, markerfacecolor="white" if solo else colour)
        how = " (solo)" if solo else ""
        labels.append(
            f"{r['second']} / {r['first']}: {workload_name(r['scenario'], r['db_ms'])}, {r['users']} "
            f"users{how}"
        )
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.set_xlabel(f"requests served: second / first (x)  —  bar: {LEVEL} over repeats")
    ax.set_title("Verdicts: above 1, the second app serves more", loc="left", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)  # above the rows
    return Chart(
        _save(fig, out_dir / "verdicts.png"),
        "Verdicts",
        f"Each row is one comparison: the ratio of requests served, its {LEVEL} over repeats, and the band "
        "inside which the two count as the same. Filled dots: paired (both apps over the same seconds, each "
        "with half of the app's CPU); hollow dots, '(solo)': each app alone on the whole CPU, where the CPU "
        "was not the limit. Coloured by the app that serves more where the interval says so.",
    )


def interference_chart(result: Analysis, out_dir: Path) -> Chart | None:
    table = result.interference
    if table.empty:
        return None
    apps = ordered_apps(table["app"])
    kinds = [k for k in ("cpu", "argon2", "io") if k in set(table["kind"])]
    fig = Figure(figsize=(max(6.5, 2.4 * len(kinds)), 4.6), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    width = 0.8 / max(len(apps), 1)
    for i, app in enumerate(apps):
        for j, kind in enumerate(kinds):
            hit = table[(table["app"] == app) & (table["kind"] == kind)]
            if hit.empty:
                continue
            r = hit.iloc[0]
            x = j + (i - (len(apps) - 1) / 2) * width
            ax.bar(x, r["p99_factor"], width * 0.95, color=app_colour(app), label=app if j == 0 else None)
            if math.isfinite(r["p99_low"]):
                ax.errorbar(
                    x,
                    r["p99_factor"],
                    yerr=[[r["p99_factor"] - r["p99_low"]], [r["p99_high"] - r["p99_factor"]]],
                    fmt="none",
                    ecolor="0.2",
                    capsize=4,
                )
            ax.annotate(
                f"{r['p99_factor']:.1f}×",
                (x, r["p99_factor"]),
                textcoords="offset points",
                xytext=(0, 3),
                ha="center",
                fontsize=7,
            )
    ax.axhline(1.0, color="0.3", lw=1)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    names = {
        "cpu": "pure-Python CPU\n(holds the GIL)",
        "argon2": "Argon2 sign-ups\n(C, releases the GIL)",
        "io": "slow queries\n(waiting on the database)",
    }
    ax.set_xticks(range(len(kinds)), [names[k] for k in kinds])
    ax.set_ylabel("a fast request's p99 beside this work ÷ alone (log)")
    ax.set_title("Interference: how much a fast request suffers from its neighbours", fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(frameon=False, fontsize=8)
    return Chart(
        _save(fig, out_dir / "interference.png"),
        "Interference",
        f"Probe requests ({PROBES_TEXT}) next to each kind of neighbour work, their p99 divided by the same "
        f"probes' p99 alone; error bars: {LEVEL} log-ratio t interval over repeats.",
    )


def _grouped_bars(
    ax: Axes, categories: Sequence[str], apps: Sequence[str], values: dict[tuple[str, str], float], fmt: str
) -> None:
    width = 0.8 / max(len(apps), 1)
    for i, app in enumerate(apps):
        xs, hs = [], []
        for j, cat in enumerate(categories):
            v = values.get((app, cat), math.nan)
            if math.isfinite(v):
                xs.append(j + (i - (len(apps) - 1) / 2) * width)
                hs.append(v)
        bars = ax.bar(xs, hs, width * 0.95, color=app_colour(app), label=app)
        ax.bar_label(bars, labels=[format(h, fmt) for h in hs], fontsize=7, padding=2)
    ax.set_xticks(range(len(categories)), categories)
    top = max((v for v in values.values() if math.isfinite(v)), default=1.0)
    ax.set_ylim(0, top * 1.18 or 1)
    ax.grid(axis="y", alpha=0.3)


def _bars_cols(categories: Sequence[str]) -> int:
    return 2 if len(categories) <= 4 else 1


def _bars_width(categories: Sequence[str], apps: Sequence[str]) -> float:
    """Panel width (inches) that leaves every category label room: ~1.3 in per group of bars."""
    return max(4.6, len(categories) * max(1.3, 0.45 * len(apps)))


def _category(scenario: str, db_ms: float, suffix: str = "") -> str:
    return panel_title(scenario, db_ms).replace(", ", "\n") + suffix


def failures_chart(data: Run, out_dir: Path) -> Chart | None:
    pts = data.points
    if pts.empty:
        return None
    apps = ordered_apps(pts["app"])
    keys = _panels(pts)
    cats = [_category(s, d) for s, d in keys]
    failed: dict[tuple[str, str], float] = {}
    invalid: dict[tuple[str, str], float] = {}
    for (app, scenario, db_ms), g in pts.groupby(["app", "scenario", "db_ms"]):
        cat = _category(str(scenario), float(str(db_ms)))
        failed[(str(app), cat)] = float(g["failures"].fillna(0).sum())
        invalid[(str(app), cat)] = float((~g["valid"]).sum())
    if not any(failed.values()) and not any(invalid.values()):
        fig = Figure(figsize=(6.0, 2.4), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        ax.axis("off")
        ax.text(
            0.5,
            0.5,
            f"No failures or invalid points\n({len(pts)} points, {len(apps)} apps)",
            ha="center",
            va="center",
            fontsize=14,
        )
        fig.suptitle("Failures and invalid points")
    else:
        fig, (left, right) = _figure(2, width=_bars_width(cats, apps), cols=_bars_cols(cats))
        _grouped_bars(left, cats, apps, failed, ".0f")
        left.set_title("failed requests (all points)")
        left.set_ylabel("failed requests (count)")
        _grouped_bars(right, cats, apps, invalid, ".0f")
        right.set_title("invalid points (excluded from statistics)")
        right.set_ylabel("invalid points (count)")
        for ax in (left, right):
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        _app_legend(fig, apps, bars=True)
        fig.suptitle("Failures and invalid points per app and scenario")
    return Chart(
        _save(fig, out_dir / "failures.png"),
        "Failures and invalid points",
        "Failed requests summed over every point (valid or not), and the points excluded as invalid; the "
        "reasons are listed below.",
    )


RESOURCE_METRICS: tuple[tuple[str, str, str], ...] = (
    ("app_cpu_mean", "app CPU, mean", "CPU (% of one core)"),
    ("db_cpu_mean", "database CPU, mean", "CPU (% of one core)"),
    ("locust_cpu_max", "Locust CPU, max", "CPU (% of one core)"),
    ("app_rss_max_mb", "app memory (RSS), max", "RSS (MB)"),
)


def resources_chart(data: Run, out_dir: Path, loadgen_limit: float = LOADGEN_CPU_LIMIT) -> Chart | None:
    pts = data.points[data.points["valid"]]
    metrics = [m for m in RESOURCE_METRICS if pts[m[0]].notna().any()]
    if pts.empty or not metrics:
        return None
    apps = ordered_apps(pts["app"])
    top_rows = []
    for _, g in pts.groupby(["scenario", "db_ms"]):
        top_rows.append(g[g["load"] == g["load"].max()])
    top = pd.concat(top_rows)
    keys = _panels(top)
    unit = {str(m): ("req/s" if m == "open" else "users") for m in top["mode"]}

    def cat(scenario: str, db_ms: float, g: pd.DataFrame) -> str:
        return _category(scenario, db_ms, f"\n{g['load'].max():g} {unit[str(g['mode'].iloc[0])]}")

    labels = {(s, d): cat(s, d, top[(top["scenario"] == s) & (top["db_ms"] == d)]) for s, d in keys}
    cats = [labels[k] for k in keys]
    fig, axes = _figure(len(metrics), width=_bars_width(cats, apps), height=3.8, cols=_bars_cols(cats))
    for ax, (col, title, ylabel) in zip(axes, metrics, strict=True):
        means = top.groupby(["app", "scenario", "db_ms"])[col].mean()
        values = {(str(a), labels[(str(s), float(d))]): float(v) for (a, s, d), v in means.items()}
        _grouped_bars(ax, cats, apps, values, ".0f")
        if col == "locust_cpu_max":
            ax.axhline(loadgen_limit, color="#B00020", ls="--", lw=1)
            ax.set_ylim(0, max(ax.get_ylim()[1], loadgen_limit * 1.12))
            ax.text(
                0.99,
                loadgen_limit,
                f"invalid above {loadgen_limit:.0f}%",
                transform=ax.get_yaxis_transform(),
                ha="right",
                va="bottom",
                fontsize=7,
                color="#B00020",
            )
        ax.set_title(title)
        ax.set_ylabel(ylabel)
    _app_legend(fig, apps, bars=True)
    fig.suptitle("Resources at the highest load of each scenario (mean over valid repeats)")
    return Chart(
        _save(fig, out_dir / "resources.png"),
        "CPU and memory",
        "psutil samples taken over each measurement window (100% = one core), averaged over the valid "
        "repeats at the highest load of each scenario.",
    )


def layers_chart(result: Analysis, out_dir: Path) -> Chart | None:
    """Where a request's CPU goes: per workload, each pair's sync and async side by side, stacked by layer,
    with the CPU per request the telemetry measured as a black tick."""
    table = result.layer_pairs
    if table.empty:
        return None
    groups = layer_cases(table)
    cases = [(key, rows) for key, rows in groups if explained(rows)]
    left_out = [f"{k[0]}/{k[1]} {panel_title(k[2], k[3])}" for k, rows in groups if not explained(rows)]
    if not cases:
        return None
    fig, axes = _figure(1, width=max(6.0, 1.6 * len(cases)), height=4.4, cols=1)
    ax = axes[0]
    for i, ((sync, async_, _scenario, _db_ms), rows) in enumerate(cases):
        for j, (app, side) in enumerate(((sync, "sync_us"), (async_, "async_us"))):
            x = i + (j - 0.5) * 0.4
            bottom = 0.0
            for layer in LAYERS:
                value = float(rows.loc[rows["layer"] == layer, side].sum())
                ax.bar(
                    x,
                    value,
                    0.38,
                    bottom=bottom,
                    color=LAYER_COLOURS[layer],
                    edgecolor="white",
                    linewidth=0.4,
                )
                bottom += value
            measured = rows.loc[rows["layer"] == MEASURED, side]
            top = bottom
            if len(measured) and math.isfinite(float(measured.iloc[0])):
                top = max(top, float(measured.iloc[0]))
                ax.plot([x - 0.19, x + 0.19], [float(measured.iloc[0])] * 2, color="black", linewidth=2)
            ax.annotate(
                app,
                (x, top),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                rotation=90,
                fontsize=7,
            )
    ax.set_xticks(range(len(cases)), [_category(k[2], k[3]) for k, _ in cases], fontsize=8)
    ax.margins(y=0.25)
    ax.set_ylabel("CPU per request (µs)")
    ax.grid(axis="y", alpha=0.3)
    handles: list[Patch | Line2D] = [
        Patch(color=LAYER_COLOURS[layer], label=layer) for layer in reversed(LAYERS)
    ]
    handles.append(Line2D([], [], color="black", linewidth=2, label="measured (telemetry)"))
    ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    path = _save(fig, out_dir / "layers.png")
    return Chart(
        path,
        "Where a request's CPU goes",
        "CPU per request by layer (py-spy on each app alone at the headline load, one profiled point each; "
        "bars stack the layers, the black tick is the CPU the telemetry measured). Layers: "
        'docs/methods.md, "Where a request\'s CPU goes".'
        + (
            " Not drawn, their layers cover too little of the CPU measured (work outside the GIL): "
            f"{', '.join(left_out)}."
            if left_out
            else ""
        ),
    )


CHARTS: tuple[tuple[str, Callable[[Run, Analysis, Path], Chart | None]], ...] = (
    ("verdicts.png", lambda d, a, o: verdicts_chart(a, o)),
    ("layers.png", lambda d, a, o: layers_chart(a, o)),
    ("interference.png", lambda d, a, o: interference_chart(a, o)),
    ("throughput.png", lambda d, a, o: throughput_chart(a, o)),
    ("latency.png", lambda d, a, o: latency_chart(a, o)),
    ("crossover.png", lambda d, a, o: crossover_chart(a, o, d.meta.get("limits"))),
    ("timeline.png", lambda d, a, o: timeline_chart(d, o)),
    ("resources.png", lambda d, a, o: resources_chart(d, o)),
    ("failures.png", lambda d, a, o: failures_chart(d, o)),
)


def draw_all(data: Run, result: Analysis, out_dir: Path) -> list[Chart]:
    """Every chart with data, in report order; a stale PNG of a skipped chart is removed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = []
    for name, draw in CHARTS:
        chart = draw(data, result, out_dir)
        if chart is None:
            (out_dir / name).unlink(missing_ok=True)
        else:
            charts.append(chart)
    return charts
