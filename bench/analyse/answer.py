"""'What this run says': the report's opening sentences, generated from this run's numbers only (never
hand-written), each pointing at the table or chart it comes from, and saying "not enough evidence" where
the interval does."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from bench.analyse.interference import KINDS, waited_for
from bench.analyse.layers import MEASURED, biggest, coverage, explained
from bench.analyse.paired import of_pair
from bench.analyse.stats import LEVEL
from bench.analyse.verdict import MARGIN, SAME, UNCLEAR, Winner, change, interval
from bench.analyse.work import unequal
from bench.catalog import CEILINGS, PAIRS, scenario_rank, sweeps_db_ms, workload_name
from loadtests.probes import NEIGHBOURS

KIND_WORDS = {kind: what.split(" (")[0] for kind, what in NEIGHBOURS.items()}  # "pure-Python CPU work"...


@dataclass(frozen=True)
class Sentence:
    text: str
    link: str  # an anchor of the report: "verdicts", "chart-crossover", ...


def _ci(row: pd.Series, inverse: bool = False) -> str:
    """The interval of the change, as second/first, or as first/second (`inverse`)."""
    low, high = row["ratio_low"], row["ratio_high"]
    return interval(1 / high, 1 / low, level=False) if inverse else interval(low, high, level=False)


def _line(row: pd.Series) -> str:
    """A winner whose interval reaches inside ±MARGIN (PairedResult.at_line)."""
    return f"; at the ±{MARGIN:.0%} line" if bool(row.get("at_line", False)) else ""


def workload(row: pd.Series) -> str:
    return workload_name(row["scenario"], row["db_ms"])


def _verdicts(paired: pd.DataFrame) -> list[Sentence]:
    out: list[Sentence] = []
    for pair in PAIRS:
        rows = of_pair(paired, pair.sync, pair.async_)
        if rows.empty:
            continue
        rows = rows.assign(_r=[scenario_rank(str(s))[0] for s in rows["scenario"]]).sort_values(
            ["_r", "db_ms"]
        )
        users = sorted(set(rows["users"]))
        groups = {w: rows[rows["winner"] == w] for w in Winner}
        parts = []
        for won, app, inverse in ((Winner.SECOND, pair.async_, False), (Winner.FIRST, pair.sync, True)):
            if not groups[won].empty:
                parts.append(
                    f"{app} served more on "
                    + ", ".join(
                        f"{workload(r)} ({change(1 / r['ratio'] if inverse else r['ratio'])}, "
                        f"{_ci(r, inverse)}{_line(r)})"
                        for _, r in groups[won].iterrows()
                    )
                )
        if not groups[Winner.SAME].empty:
            parts.append(f"{SAME} on " + ", ".join(workload(r) for _, r in groups[Winner.SAME].iterrows()))
        if not groups[Winner.UNCLEAR].empty:
            parts.append(
                f"{UNCLEAR} on "
                + ", ".join(f"{workload(r)} ({_ci(r)})" for _, r in groups[Winner.UNCLEAR].iterrows())
            )
        solo = ", ".join(workload(r) for _, r in rows[rows["instrument"] == "solo"].iterrows())
        how = f" (solo where the CPU was not the limit: {solo})" if solo else ""
        out.append(
            Sentence(
                f"{pair.async_} vs {pair.sync} ({pair.label}), {', '.join(map(str, users))} users each, "
                f"throughput with the same CPU{how}: " + "; ".join(parts) + ".",
                "verdicts",
            )
        )
    return out


def _ahead(rows: pd.DataFrame, app: str, side: str) -> str:
    """Where along the database-time sweep `app` (the pair's `side`) served more: its interval clear of 1,
    also where the whole interval lies inside ±MARGIN (the verdict then says SAME)."""
    clear = rows["ratio_low"] > 1 if side == Winner.SECOND else rows["ratio_high"] < 1
    levels = [f"{ms:g}" for ms in rows[clear]["db_ms"]]
    if not levels:
        return f"{app} is ahead at no level"
    listed = ", ".join(levels[:-1]) + " and " + levels[-1] if len(levels) > 1 else levels[0]
    return f"{app} is ahead ({LEVEL}) at {listed} ms of database time"


def _crossover(paired: pd.DataFrame) -> list[Sentence]:
    out = []
    sweep = paired[[sweeps_db_ms(s) for s in paired["scenario"]]]
    for pair in PAIRS:
        rows = of_pair(sweep, pair.sync, pair.async_).sort_values("db_ms")
        if len(rows) < 2:
            continue
        levels = ", ".join(f"{r['ratio']:.2f}× at {r['db_ms']:g} ms" for _, r in rows.iterrows())
        where = "; ".join(
            _ahead(rows, app, w) for app, w in ((pair.async_, Winner.SECOND), (pair.sync, Winner.FIRST))
        )
        out.append(
            Sentence(
                f"Database time ({pair.label}, {int(rows['users'].iloc[0])} users each): "
                f"{pair.async_}/{pair.sync} throughput {levels}; {where}.",
                "chart-crossover",
            )
        )
    return out


def _tails(summary: pd.DataFrame) -> list[Sentence]:
    """Solo points at the highest load of each scenario: whose p99 is worse under saturation."""
    if summary.empty:
        return []
    closed = summary[(summary["mode"] == "closed") & summary["p99_ms"].notna()]
    parts = []
    for scenario, group in closed.groupby("scenario", sort=False):
        top = group[group["load"] == group["load"].max()]
        if len(top) < 2 or sweeps_db_ms(scenario):
            continue
        apps = ", ".join(
            f"{r['app']} {r['p99_ms']:.0f} ms at {r['rps_mean']:.0f} req/s" for _, r in top.iterrows()
        )
        parts.append(f"{scenario} at {top['load'].max():g} users: {apps}")
    if not parts:
        return []
    return [
        Sentence(
            "Behaviour under load (solo points, each app alone on the app CPU; descriptive, p99 from the "
            "merged histograms): " + "; ".join(parts) + ".",
            "chart-latency",
        )
    ]


def _interference(table: pd.DataFrame) -> list[Sentence]:
    if table.empty:
        return [
            Sentence("Interference was not measured in this run (`make bench-interference`).", "interference")
        ]
    parts = []
    for kind in KINDS:
        rows = table[table["kind"] == kind]
        if rows.empty:
            continue
        apps = ", ".join(
            f"{r['app']} {r['p99_factor']:.1f}×"
            + (f" (CI {r['p99_low']:.1f}–{r['p99_high']:.1f})" if math.isfinite(r["p99_low"]) else "")
            for _, r in rows.iterrows()
        )
        waited = [f"{r['app']} {w}" for _, r in rows.iterrows() if (w := waited_for(r, detail=False))]
        parts.append(
            f"beside {KIND_WORDS[kind]}: {apps}" + (f" (waiting for: {', '.join(waited)})" if waited else "")
        )
    return [
        Sentence(
            "Does one request hold up the others? A fast request's p99, next to each kind of work, compared "
            "with the same requests alone: " + "; ".join(parts) + ".",
            "interference",
        )
    ]


def _ceilings(paired: pd.DataFrame) -> list[Sentence]:
    parts = []
    for idiomatic, raw in CEILINGS:
        rows = of_pair(paired, raw, idiomatic)
        for _, r in rows.iterrows():
            parts.append(f"{idiomatic}/{raw} {r['ratio']:.2f}× on {workload(r)} ({_ci(r)})")
    if not parts:
        return [
            Sentence("What the ORM costs was not measured in this run (`make bench-variants`).", "ceilings")
        ]
    return [
        Sentence(
            "What the ORM, the Session and response validation cost (the same routes and statements on the "
            "bare driver, the same CPU): " + "; ".join(parts) + ".",
            "ceilings",
        )
    ]


def _verdict_row(paired: pd.DataFrame, rows: pd.DataFrame) -> pd.Series | None:
    """The paired verdict of this pair on this workload, when the run has one."""
    if paired.empty:
        return None
    r = rows.iloc[0]
    pair = of_pair(paired, r["sync"], r["async_"])
    hit = pair[(pair["scenario"] == r["scenario"]) & (pair["db_ms"] == r["db_ms"])]
    return None if hit.empty else hit.iloc[0]


def _winner(paired: pd.DataFrame, rows: pd.DataFrame) -> str:
    v = _verdict_row(paired, rows)
    return "" if v is None else str(v["winner"])


def _verdict_words(paired: pd.DataFrame, rows: pd.DataFrame) -> str:
    """The verdict of the pair on this workload, when the run has one: 'async +7.6%', 'the same'..."""
    v = _verdict_row(paired, rows)
    if v is None:
        return ""
    r = rows.iloc[0]
    won = Winner(v["winner"])
    app = won.app(str(r["sync"]), str(r["async_"]))
    served = f"{app} served {change(v['ratio'] if won is Winner.SECOND else 1 / v['ratio'])}" if app else ""
    return f" (verdict: {served or (SAME if won is Winner.SAME else UNCLEAR)})"


def _why(paired: pd.DataFrame, layer_pairs: pd.DataFrame) -> list[Sentence]:
    """For each profiled pair and workload: the CPU per request each side spent, and the layers that make
    most of the difference (bench/analyse/layers.py)."""
    out = []
    keys = ["sync", "async_", "scenario", "db_ms"]
    for (sync, async_, _s, _d), rows in layer_pairs.groupby(keys, sort=False):
        total = rows[rows["layer"] == MEASURED]
        if total.empty or not math.isfinite(float(total["diff_us"].iloc[0])):
            continue
        m = total.iloc[0]
        cover = {side: coverage(rows, f"{side}_us") for side in ("sync", "async")}
        seen = f"{cover['sync']:.0%} of {sync}'s measured CPU and {cover['async']:.0%} of {async_}'s"
        if not explained(rows):
            out.append(
                Sentence(
                    f"Why, {workload(m)}: not explained by layers{_verdict_words(paired, rows)}: the layers "
                    f"hold {seen} (the GIL holder's samples alone: CPU outside the GIL, such as Argon2's C "
                    "code or system calls, is placed only by the running threads' samples, which this run "
                    "lacks).",
                    "layers",
                )
            )
            continue
        top = biggest(rows)
        lead = [
            f"{r['layer']} {r['diff_us']:+,.0f} µs"
            for _, r in top.iterrows()
            if r["diff_us"] * m["diff_us"] > 0
        ]
        against = rows[(rows["layer"] != MEASURED) & (rows["diff_us"] * m["diff_us"] < 0)]
        counter = against.loc[against["diff_us"].abs().idxmax()] if not against.empty else None
        text = (
            f"Why, {workload(m)}: {async_} spent {m['async_us']:,.0f} µs of CPU per request, {sync} "
            f"{m['sync_us']:,.0f} ({m['diff_us']:+,.0f} µs){_verdict_words(paired, rows)}; most of the "
            "difference: " + (", ".join(lead) or "no single layer")
        )
        if counter is not None and abs(counter["diff_us"]) >= 0.2 * abs(m["diff_us"]):
            text += f"; the other way: {counter['layer']} {counter['diff_us']:+,.0f} µs"
        if not all(0.95 <= c <= 1.05 for c in cover.values()):
            text += f" (the layers cover {seen})"
        winner = _winner(paired, rows)
        if (winner == Winner.SECOND and m["diff_us"] > 0) or (winner == Winner.FIRST and m["diff_us"] < 0):
            text += (
                "; alone, the side that served more in the paired points needed more CPU per request, so "
                "these layers do not explain the verdict (sharing the CPU costs the two apps differently)"
            )
        out.append(Sentence(text + ".", "layers"))
    return out


def _unequal(work: pd.DataFrame) -> list[Sentence]:
    """Where the two sides of a comparison sent different statements: no speed verdict on its own."""
    found = unequal(work)
    out = []
    for first, second in dict.fromkeys((u.first, u.second) for u in found):
        texts = [f"{u.scenario}: {u.text}" for u in found if (u.first, u.second) == (first, second)]
        out.append(
            Sentence(
                f"{second} and {first} do different work, so their verdicts compare different work, not only "
                "speed (each route replayed by one user, the database's own "
                "counters): " + "; ".join(texts) + ".",
                "statements",
            )
        )
    return out


def answer(
    paired: pd.DataFrame,
    summary: pd.DataFrame,
    interference: pd.DataFrame,
    layer_pairs: pd.DataFrame | None = None,
    work: pd.DataFrame | None = None,
) -> list[Sentence]:
    sentences: list[Sentence] = []
    if work is not None and not work.empty:
        sentences += _unequal(work)
    if not paired.empty:
        sentences += _verdicts(paired) + _crossover(paired)
    if layer_pairs is not None and not layer_pairs.empty:
        sentences += _why(paired, layer_pairs)
    sentences += _tails(summary)
    sentences += _interference(interference)
    sentences += _ceilings(paired) if not paired.empty else []
    return sentences
