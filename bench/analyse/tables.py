"""The report's tables, as plain text cells (Table): built from the analysis and meta.json, rendered by
render.py to HTML and Markdown alike."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from bench.analyse.answer import KIND_WORDS
from bench.analyse.answer import workload as case_name
from bench.analyse.interference import factor_text, waited_for
from bench.analyse.layers import MEASURED, coverage, gil_share
from bench.analyse.paired import of_pair
from bench.analyse.stats import LEVEL
from bench.analyse.summary import Analysis
from bench.analyse.work import KINDS as WORK_KINDS
from bench.catalog import CEILINGS, PAIRS, load_words, scenario_rank


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]
    classes: list[str] | None = None  # one CSS class per row (HTML only)


def _num(value: Any, digits: int = 1, *, percent: bool = False) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "–"
    if not math.isfinite(x):
        return "–"
    return f"{x * 100:.{digits}f}%" if percent else f"{x:,.{digits}f}"


def _text(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(_text(v) for v in value) or "–"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def databases(meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """backend -> what meta.json records of its server (`databases`; a single `database` in older runs)."""
    if isinstance(meta.get("databases"), dict) and meta["databases"]:
        return dict(meta["databases"])
    old = meta.get("database")
    if isinstance(old, dict):
        return {str(old.get("backend", "database")): old}
    return {"database": {"database": "not recorded"}}


def _ratio(row: pd.Series, digits: int) -> str:
    """'1.23× (1.10..1.37)': a ratio and its interval; without an interval the ratio alone, without it '–'."""
    if not math.isfinite(row["ratio"]):
        return "–"
    ci = f" ({_num(row['ratio_low'], digits)}..{_num(row['ratio_high'], digits)})"
    return f"{_num(row['ratio'], digits)}×" + (ci if math.isfinite(row["ratio_low"]) else "")


def _p99(summary: pd.DataFrame, app: str, row: pd.Series) -> str:
    hit = summary[
        (summary["app"] == app)
        & (summary["scenario"] == row["scenario"])
        & (summary["mode"] == row["mode"])
        & (summary["load"] == row["load"])
        & (summary["db_ms"] == row["db_ms"])
    ]
    return _num(hit["p99_ms"].iloc[0]) if not hit.empty else "–"


def verdict_table(result: Analysis, apps: Sequence[str]) -> Table:
    headers = ["Backend", "Scenario", "Workload", "Comparison", "Verdict", "Throughput (req/s) sync → async"]
    headers += [f"async/sync ({LEVEL})", "p99 (ms) sync / async", "Valid repeats sync / async"]
    table = Table(headers, [], [])
    for _, row in result.headline.iterrows():
        sync, async_ = str(row["sync_app"]), str(row["async_app"])
        table.rows.append(
            [
                str(row["backend"]),
                str(row["scenario"]),
                load_words(str(row["scenario"]), str(row["mode"]), float(row["load"]), float(row["db_ms"])),
                f"{async_} vs {sync} ({row['pair'].split(':')[0]})",
                str(row["verdict"]),
                f"{_num(row['sync_rps'])} → {_num(row['async_rps'])}",
                _ratio(row, 2),
                f"{_p99(result.summary, sync, row)} / {_p99(result.summary, async_, row)}",
                f"{row['n_sync']} / {row['n_async']}",
            ]
        )
        assert table.classes is not None
        table.classes.append(f"winner-{row['winner']} pair-{row['pair_rank']}")
    if not table.rows:
        have = ", ".join(apps) or "none"
        table.rows.append(
            [
                "–",
                "–",
                "–",
                "–",
                f"no sync/async throughput comparison in this run (apps: {have})",
                "–",
                "–",
                "–",
                "–",
            ]
        )
    return table


def summary_table(result: Analysis) -> Table:
    headers = ["App", "Backend", "Scenario", "Workload", "Valid repeats", "Invalid"]
    headers += ["Throughput (req/s)", LEVEL, "p50 (ms)", "p95 (ms)", "p99 (ms)", "Latency from"]
    rows = []
    for _, r in result.summary.iterrows():
        ci = (
            f"{_num(r['rps_ci_low'])}..{_num(r['rps_ci_high'])}"
            if math.isfinite(r["rps_ci_low"])
            else r["ci_note"]
        )
        rows.append(
            [
                str(r["app"]),
                str(r["backend"]) or "–",
                str(r["scenario"]),
                load_words(str(r["scenario"]), str(r["mode"]), r["load"], r["db_ms"]),
            ]
            + [str(r["n"]), str(r["invalid"]), _num(r["rps_mean"]), ci or "–"]
            + [_num(r["p50_ms"]), _num(r["p95_ms"]), _num(r["p99_ms"]), str(r["latency_source"]) or "–"]
        )
    return Table(headers, rows)


def comparison_table(result: Analysis) -> Table:
    headers = ["Backend", "Comparison", "Scenario", "Workload", "Verdict"]
    headers += ["async/sync", "CI low", "CI high", "n sync / async"]
    rows = [
        [str(r["backend"]), f"{r['async_app']} vs {r['sync_app']}", str(r["scenario"])]
        + [load_words(str(r["scenario"]), str(r["mode"]), r["load"], r["db_ms"]), str(r["verdict"])]
        + [
            _num(r["ratio"], 3),
            _num(r["ratio_low"], 3),
            _num(r["ratio_high"], 3),
            f"{r['n_sync']} / {r['n_async']}",
        ]
        for _, r in result.pairs.iterrows()
    ]
    return Table(headers, rows)


def paired_verdict_table(result: Analysis) -> Table:
    """The verdicts: every sync/async pair's paired comparisons, at the headline load."""
    headers = ["Backend", "Workload", "Comparison", "Verdict", f"async/sync ({LEVEL})"]
    headers += ["±", "Would have seen", "Measured", "req/s sync → async", "Repeats"]
    table = Table(headers, [], [])
    for pair in PAIRS:
        rows = of_pair(result.paired, pair.sync, pair.async_)
        rows = rows.assign(_rank=[scenario_rank(str(s))[0] for s in rows["scenario"]])
        for _, r in rows.sort_values(["backend", "_rank", "db_ms"]).iterrows():
            table.rows.append(
                [
                    str(r["backend"]),
                    f"{r['scenario']}, {load_words(str(r['scenario']), 'closed', r['users'], r['db_ms'])}",
                    f"{pair.async_} vs {pair.sync} ({pair.label.split(':')[0]})",
                    str(r["verdict"]),
                    _ratio(r, 3),
                    _pct(r["half_width"]),
                    f"> {_pct(r['mde'])}",
                    _instrument(r),
                    f"{_num(r['first_rps'], 0)} → {_num(r['second_rps'], 0)}",
                    str(r["repeats"]),
                ]
            )
            assert table.classes is not None
            table.classes.append(f"winner-{r['winner']}")
    return table


def _instrument(row: pd.Series) -> str:
    cpu = f"{_num(row['cpu_first'], 0)}% / {_num(row['cpu_second'], 0)}%"
    if row["instrument"] == "solo":
        return f"solo, whole CPU (the CPU was not the limit: {cpu} used alone)"
    return "paired, same CPU (half each)" + (f"; alone {cpu}" if math.isfinite(row["cpu_first"]) else "")


def ceilings_table(result: Analysis) -> Table:
    headers = ["Backend", "App", "Workload"]
    headers += [f"idiomatic / raw ({LEVEL})", "req/s raw → idiomatic (half a CPU each)"]
    rows = [
        [
            str(r["backend"]),
            f"{r['second']} / {r['first']}",
            load_words(str(r["scenario"]), "closed", r["users"], r["db_ms"]),
            _ratio(r, 2),
            f"{_num(r['first_rps'], 0)} → {_num(r['second_rps'], 0)}",
        ]
        for idiomatic, raw in CEILINGS
        for _, r in of_pair(result.paired, raw, idiomatic).iterrows()
    ]
    return Table(headers, rows)


def interference_table(result: Analysis) -> Table:
    headers = ["Backend", "App", "Neighbour work"]
    headers += ["Probe p50 alone → beside (ms)", "Probe p99 alone → beside (ms)"]
    headers += [f"p99 grew ({LEVEL} over repeats)", "Repeats"]
    profiled = "cpu_busy" in result.interference and result.interference["cpu_busy"].notna().any()
    headers += ["Probes waited for (py-spy, the app alone with this work)"] if profiled else []
    rows = [
        [
            str(r["backend"]),
            str(r["app"]),
            KIND_WORDS[str(r["kind"])],
            f"{_num(r['p50_alone'])} → {_num(r['p50_with'])}",
            f"{_num(r['p99_alone'])} → {_num(r['p99_with'])}",
            factor_text(r),
            str(r["repeats"]),
            *([waited_for(r) or "not profiled"] if profiled else []),
        ]
        for _, r in result.interference.iterrows()
    ]
    return Table(headers, rows)


def _pct(x: Any) -> str:
    return _num(x, percent=True)


def invalid_table(result: Analysis) -> Table:
    headers = ["Point", "App", "Scenario", "Workload", "Repeat", "Failed requests", "Reasons"]
    rows = [
        [str(r["point_id"]), str(r["app"]), str(r["scenario"])]
        + [load_words(str(r["scenario"]), str(r["mode"]), r["load"], r["db_ms"]), _num(r["repeat"], 0)]
        + [_num(r["failures"], 0), str(r["invalid_reasons"]).replace(";", "; ") or "(none given)"]
        for _, r in result.invalid.iterrows()
    ]
    return Table(headers, rows)


def limits_table(meta: dict[str, Any]) -> Table | None:
    limits: dict[str, dict[str, Any]] = meta.get("limits") or {}
    if not limits:
        return None
    keys = sorted({k for lim in limits.values() for k in lim})
    rows = [[app, *(_text(lim.get(k)) for k in keys)] for app, lim in limits.items()]
    return Table(["App (as run)", *keys], rows)


def where_table(meta: dict[str, Any]) -> Table | None:
    """Which figures were measured where (meta.json `measured_where`; older runs have none)."""
    rows: list[dict[str, str]] = meta.get("measured_where") or []
    if not rows:
        return None
    return Table(
        ["Part", "Where", "Measured there", "Not measured (empty in the tables)"],
        [
            [r.get("part", ""), r.get("where", ""), r.get("measured") or "–", r.get("not_measured") or "–"]
            for r in rows
        ],
    )


def work_table(table: pd.DataFrame) -> Table:
    """Statements per request by route, each app of the run."""
    kinds = [k for k in WORK_KINDS if table[k].any()]
    out = Table(["Scenario", "Route", "App", "Requests", *kinds], [])
    for _, r in table.sort_values(["scenario", "route", "app"]).iterrows():
        out.rows.append(
            [
                str(r["scenario"]),
                str(r["route"]),
                str(r["app"]),
                f"{r['requests']:,}",
                *(f"{r[k]:g}" for k in kinds),
            ]
        )
    return out


def layers_table(table: pd.DataFrame) -> Table:
    """µs per request per layer, each pair's sync and async side by side, and their difference."""
    out = Table(["Comparison", "Workload", "Layer", "sync µs", "async µs", "async − sync"], [], [])
    for _, rows in table.groupby(["sync", "async_", "scenario", "db_ms"], sort=False):
        first = rows.iloc[0]
        name, where = f"{first['sync']} vs {first['async_']}", case_name(first)
        for _, r in rows.iterrows():
            if r["layer"] != MEASURED and r["sync_us"] == 0 and r["async_us"] == 0:
                continue
            label = "measured (telemetry)" if r["layer"] == MEASURED else str(r["layer"])
            out.rows.append(
                [name, where, label, f"{r['sync_us']:,.0f}", f"{r['async_us']:,.0f}", f"{r['diff_us']:+,.0f}"]
            )
            assert out.classes is not None
            out.classes.append("total" if r["layer"] == MEASURED else "")
        cover = [coverage(rows, side) for side in ("sync_us", "async_us")]
        out.rows.append([name, where, "layers / measured", *(_num(c, 0, percent=True) for c in cover), ""])
        held = [gil_share(rows, side) for side in ("sync", "async")]
        out.rows.append([name, where, "of it holding the GIL", *(_num(h, 0, percent=True) for h in held), ""])
        assert out.classes is not None
        out.classes.extend(["", ""])
    return out


def _kv(pairs: Sequence[tuple[str, Any]]) -> Table:
    return Table(["", ""], [[k, _text(v)] for k, v in pairs])


def environment_tables(meta: dict[str, Any]) -> list[tuple[str, Table]]:
    run = [
        ("run id", meta.get("run_id")),
        ("started", meta.get("started_at")),
        ("finished", meta.get("finished_at")),
    ]
    run += [
        ("complete", meta.get("complete")),
        ("points done / planned", f"{meta.get('points_done', '?')} / {meta.get('points_planned', '?')}"),
    ]
    run += [("git sha", meta.get("git_sha")), ("git dirty (uncommitted changes)", meta.get("git_dirty"))]
    machine = [("CPU model", meta.get("cpu_model")), ("CPUs", meta.get("cpu_count"))]
    machine += [
        ("CPUs available to the harness", meta.get("cpus_available")),
        ("platform", meta.get("platform")),
    ]
    machine += [("Python", meta.get("python"))]
    pinning = meta.get("pinning") or {}
    where = where_table(meta)
    out = [("Where each figure was measured", where)] if where else []
    out += [("Run", _kv(run)), ("Machine", _kv(machine))]
    out.append(
        (
            "CPU pinning (taskset)",
            _kv([(k, v if v else "not pinned") for k, v in pinning.items()])
            if pinning
            else _kv([("pinning", "not recorded")]),
        )
    )
    for name, database in databases(meta).items():
        out.append((f"Database: {name}", _kv(list(database.items()))))
    limits = limits_table(meta)
    out.append(
        ("Limits of each app (from its /limits endpoint)", limits or _kv([("limits", "not recorded")]))
    )
    packages = meta.get("packages") or {}
    lock = [("requirements.lock (sha256)", meta.get("lock_sha256") or "not recorded")]
    lock += [("the venv held exactly the lock", meta.get("lock_matches_venv"))]
    out.append(("Packages", _kv(lock + [(k, v or "not installed") for k, v in packages.items()])))
    config = meta.get("config") or {}
    if config:
        out.append(("Run configuration", _kv(list(config.items()))))
    return out
