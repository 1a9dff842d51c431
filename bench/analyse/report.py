"""The report of one run folder: charts/*.png, a self-contained report.html and report.md.

Both documents open with the verdicts (sync or async for each workload, and by how much), then the
charts, the detailed numbers, the environment and every limit, the invalid points and the command that
reproduces the run. The tables are built once as plain text cells and rendered twice (HTML and Markdown).
"""

from __future__ import annotations

import base64
import html
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from bench.analyse.answer import KIND_WORDS, Sentence, answer
from bench.analyse.answer import workload as case_name
from bench.analyse.interference import factor_text, probe_waits, waited_for, with_waits
from bench.analyse.layers import MEASURED, compared, coverage, gil_share, write_layers
from bench.analyse.plots import DPI, Chart, draw_all
from bench.analyse.stats import CONFIDENCE
from bench.analyse.summary import Analysis, analyse
from bench.analyse.work import KINDS as WORK_KINDS
from bench.analyse.work import route_statements, unequal
from bench.catalog import CEILINGS, PAIRS, SCENARIO_BY_NAME, scenario_rank
from bench.measure.calibrate import load_samples
from bench.measure.validity import OTHERS_CPU_LIMIT
from bench.store.lock import stack_line
from bench.store.rows import workload as _workload
from bench.store.run import Run, RunFolderError, load_run


def workload(scenario: str, mode: str, load: float, db_ms: float) -> str:
    entry = SCENARIO_BY_NAME.get(scenario)
    return _workload(scenario, mode, load, db_ms, sweeps_db_ms=entry is not None and entry.sweeps_db_ms)


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


def reproduce_command(meta: dict[str, Any]) -> str:
    command = str(meta.get("command") or "").strip()
    if command.startswith("bench"):
        return f".venv/bin/python -m {command}"
    return command


def incomplete_notice(meta: dict[str, Any]) -> str | None:
    if not meta:
        return "meta.json is missing: the environment and limits of this run are unknown."
    if meta.get("complete") is True:
        return None
    done, planned = meta.get("points_done", "?"), meta.get("points_planned", "?")
    return (
        f"Incomplete run: {done} of {planned} planned points finished (meta.json complete = false). "
        "The verdicts cover only the finished points."
    )


def databases(meta: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """backend -> what meta.json records of its server (`databases`; a single `database` in older runs)."""
    if isinstance(meta.get("databases"), dict) and meta["databases"]:
        return dict(meta["databases"])
    old = meta.get("database")
    if isinstance(old, dict):
        return {str(old.get("backend", "database")): old}
    return {"database": {"database": "not recorded"}}


def where_notice(meta: dict[str, Any]) -> str | None:
    """One sentence under the verdicts when some figures could not be measured on this set-up."""
    missing = [
        f"{r['part']}: {r['not_measured']}" for r in meta.get("measured_where") or [] if r.get("not_measured")
    ]
    if not missing:
        return None
    return "Not measured on this set-up (empty cells, not zeros): " + "; ".join(missing) + "."


# --- tables ------------------------------------------------------------------------------------------------


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
    level = f"{CONFIDENCE:.0%} CI"
    headers = ["Backend", "Scenario", "Workload", "Comparison", "Verdict", "Throughput (req/s) sync → async"]
    headers += [f"async/sync ({level})", "p99 (ms) sync / async", "Valid repeats sync / async"]
    table = Table(headers, [], [])
    for _, row in result.headline.iterrows():
        ratio = _num(row["ratio"], 2) + "×" if math.isfinite(row["ratio"]) else "–"
        if math.isfinite(row["ratio_low"]):
            ratio += f" ({_num(row['ratio_low'], 2)}..{_num(row['ratio_high'], 2)})"
        sync, async_ = str(row["sync_app"]), str(row["async_app"])
        table.rows.append(
            [
                str(row["backend"]),
                str(row["scenario"]),
                workload(str(row["scenario"]), str(row["mode"]), float(row["load"]), float(row["db_ms"])),
                f"{async_} vs {sync} ({row['pair'].split(':')[0]})",
                str(row["verdict"]),
                f"{_num(row['sync_rps'])} → {_num(row['async_rps'])}",
                ratio,
                f"{_p99(result.summary, sync, row)} / {_p99(result.summary, async_, row)}",
                f"{row['n_sync']} / {row['n_async']}",
            ]
        )
        assert table.classes is not None
        table.classes.append(f"winner-{row['winner'] or 'none'} pair-{row['pair_rank']}")
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
    level = f"{CONFIDENCE:.0%} CI"
    headers = [
        "App",
        "Backend",
        "Scenario",
        "Workload",
        "Valid repeats",
        "Invalid",
        "Throughput (req/s)",
        level,
    ]
    headers += ["p50 (ms)", "p95 (ms)", "p99 (ms)", "Latency from"]
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
                workload(str(r["scenario"]), str(r["mode"]), r["load"], r["db_ms"]),
            ]
            + [str(r["n"]), str(r["invalid"]), _num(r["rps_mean"]), ci or "–"]
            + [_num(r["p50_ms"]), _num(r["p95_ms"]), _num(r["p99_ms"]), str(r["latency_source"]) or "–"]
        )
    return Table(headers, rows)


def comparison_table(result: Analysis) -> Table:
    headers = [
        "Backend",
        "Comparison",
        "Scenario",
        "Workload",
        "Verdict",
        "async/sync",
        "CI low",
        "CI high",
        "n sync / async",
    ]
    rows = [
        [str(r["backend"]), f"{r['async_app']} vs {r['sync_app']}", str(r["scenario"])]
        + [workload(str(r["scenario"]), str(r["mode"]), r["load"], r["db_ms"]), str(r["verdict"])]
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
    headers = ["Backend", "Workload", "Comparison", "Verdict", "async/sync (95% CI)", "±", "Would have seen"]
    headers += ["Measured", "req/s sync → async", "Repeats"]
    table = Table(headers, [], [])
    for pair in PAIRS:
        rows = result.paired[(result.paired["first"] == pair.sync) & (result.paired["second"] == pair.async_)]
        rows = rows.assign(_rank=[scenario_rank(str(s))[0] for s in rows["scenario"]])
        for _, r in rows.sort_values(["backend", "_rank", "db_ms"]).iterrows():
            ci = f"{_num(r['ratio'], 3)}× ({_num(r['ratio_low'], 3)}..{_num(r['ratio_high'], 3)})"
            table.rows.append([
                str(r["backend"]), f"{r['scenario']}, {workload(str(r['scenario']), 'closed', r['users'], r['db_ms'])}",
                f"{pair.async_} vs {pair.sync} ({pair.label.split(':')[0]})", str(r["verdict"]), ci,
                _pct(r["half_width"]), f"> {_pct(r['mde'])}", _instrument(r),
                f"{_num(r['first_rps'], 0)} → {_num(r['second_rps'], 0)}", str(r["repeats"]),
            ])  # fmt: skip
            assert table.classes is not None
            winner = {"second": "async", "first": "sync"}.get(str(r["winner"]), "none")
            table.classes.append(f"winner-{winner}")
    return table


def _instrument(row: pd.Series) -> str:
    cpu = f"{_num(row['cpu_first'], 0)}% / {_num(row['cpu_second'], 0)}%"
    if row["instrument"] == "solo":
        return f"solo, whole CPU (the CPU was not the limit: {cpu} used alone)"
    return "paired, same CPU (half each)" + (f"; alone {cpu}" if math.isfinite(row["cpu_first"]) else "")


def ceilings_table(result: Analysis) -> Table:
    headers = [
        "Backend",
        "App",
        "Workload",
        "idiomatic / raw (95% CI)",
        "req/s raw → idiomatic (half a CPU each)",
    ]
    rows = [
        [
            str(r["backend"]),
            f"{r['second']} / {r['first']}",
            workload(str(r["scenario"]), "closed", r["users"], r["db_ms"]),
            f"{_num(r['ratio'], 2)}× ({_num(r['ratio_low'], 2)}..{_num(r['ratio_high'], 2)})",
            f"{_num(r['first_rps'], 0)} → {_num(r['second_rps'], 0)}",
        ]  # fmt: skip
        for idiomatic, raw in CEILINGS
        for _, r in result.paired[
            (result.paired["first"] == raw) & (result.paired["second"] == idiomatic)
        ].iterrows()
    ]
    return Table(headers, rows)


def interference_table(result: Analysis) -> Table:
    headers = [
        "Backend",
        "App",
        "Neighbour work",
        "Probe p50 alone → beside (ms)",
        "Probe p99 alone → beside (ms)",
    ]
    headers += ["p99 grew (95% CI over repeats)", "Repeats"]
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
        ]  # fmt: skip
        for _, r in result.interference.iterrows()
    ]
    return Table(headers, rows)


def _pct(x: Any) -> str:
    return _num(x, percent=True)


def invalid_table(result: Analysis) -> Table:
    headers = ["Point", "App", "Scenario", "Workload", "Repeat", "Failed requests", "Reasons"]
    rows = [
        [str(r["point_id"]), str(r["app"]), str(r["scenario"])]
        + [workload(str(r["scenario"]), str(r["mode"]), r["load"], r["db_ms"]), _num(r["repeat"], 0)]
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


METHOD_LAYERS = (
    "Microseconds of CPU per request, by layer: two py-spy samplers read each app's stacks 250 times a second "
    "(not pausing it) while it ran alone at the headline load, one profiled point per app and workload after "
    "the other points (never in a verdict); a sample counts for the layer of its innermost frame of a known "
    "package (rules: bench/catalog.py LAYER_RULES). One keeps the thread holding the GIL: its samples are CPU "
    "seconds ('of it holding the GIL' says how much of the measured CPU they cover). What ran without the GIL "
    "(system calls, Argon2's C code) is on no GIL holder's stack: the rest of 'measured' (the telemetry's CPU "
    "over the same seconds) goes to the layers where the other sampler, which keeps every running thread, "
    "saw more than the GIL holder's, in proportion ('layers / measured': 100% once placed; above, the GIL "
    "holder's samples exceeded the measured CPU). A compiled driver (asyncmy, asyncpg, mysqlclient) has no "
    "Python frames: its CPU counts for the code that called it (SQLAlchemy's greenlet bridge, the event loop); "
    "the pure-Python pair (sync vs async-aiomysql) shows the driver on both sides. One point per side: "
    "differences of a few tens of µs are within its noise. Flame graphs (the GIL holder's): "
    "flamegraphs/*.speedscope.json (open in https://www.speedscope.app)."
)


METHOD_WORK = (
    "Before the other points, each app replayed each scenario alone with one user for a few seconds, and the "
    "load generator read the database's own statement counters after every answer (MariaDB's Com_* status, "
    "PostgreSQL's pg_stat_statements): what the server executed between two answers is the later request's "
    "work. Statements per request, mean over the requests of that name."
)


def work_table(table: pd.DataFrame) -> Table:
    """Statements per request by route, each app of the run."""
    kinds = [k for k in WORK_KINDS if table[k].any()]
    out = Table(["Scenario", "Route", "App", "Requests", *kinds], [])
    for _, r in table.sort_values(["scenario", "route", "app"]).iterrows():
        out.rows.append([str(r["scenario"]), str(r["route"]), str(r["app"]), f"{r['requests']:,}",
                         *(f"{r[k]:g}" for k in kinds)])  # fmt: skip
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


# --- rendering ---------------------------------------------------------------------------------------------

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1b1b;background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:24px}
h1{font-size:1.6em;margin:0 0 12px}h2{margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0 16px;background:#fff;font-size:.92em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
table.verdicts{font-size:1em;width:100%}
ul.answer li{margin:6px 0}
tr.winner-async td:nth-child(4){color:#a33c00}tr.winner-sync td:nth-child(4){color:#00548a}
tr.winner-none td:nth-child(4){color:#555}
.banner{background:#fff3cd;border:1px solid #e0b400;padding:10px 14px;font-weight:600;margin:8px 0}
.note{color:#555;font-size:.9em}
figure{margin:18px 0;background:#fff;border:1px solid #e2e2e2;padding:10px}
figure img{max-width:100%;height:auto;display:block}
figcaption{color:#444;font-size:.9em;margin-top:6px}
pre{background:#272822;color:#f8f8f2;padding:10px;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
"""
# Lets a headless browser test read whether every chart decoded (the page needs no script otherwise).
SCRIPT = """window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  document.body.dataset.imagesTotal = String(imgs.length);
  document.body.dataset.imagesLoaded = String(imgs.filter(function (i) { return i.naturalWidth > 0; }).length);
});"""
METHOD_SOLO = (
    "Each verdict compares mean throughput over the valid repeats at the highest load where both apps have "
    "valid points (preferring loads with at least 2 valid repeats each). The {level} of the async/sync ratio "
    "is a log-ratio t interval (delta method, Welch–Satterthwaite degrees of freedom); a CI that includes 1.0 "
    "means no significant difference. Latency percentiles come from HdrHistograms merged over repeats. "
    "Invalid points are excluded from every statistic."
)
METHOD_PAIRED = (
    "Where each app alone used its whole CPU (the CPU was the limit), the verdict comes from paired points: the "
    "sync and the async app loaded at the same time, each by its own Locust, sharing the app's CPU, so whatever "
    "slows the machine in a given second slows both ({machine}); the ratio of their requests is then the ratio "
    "of their costs per request, which is their throughput ratio on a whole CPU. One sample per repeat (the log "
    "ratio over the window, both apps started anew for it unless the run said --same-apps), a Student t interval "
    "over repeats. Where an app alone "
    "used less than 90% of its CPU (the median over its solo repeats: queries that wait in the "
    "database, a pool that is the limit), sharing the CPU would make it the limit and change the answer: the "
    "verdict then comes from the solo points (each app alone, mean requests/s over repeats, a log-ratio t "
    "interval), which the machine's speed hardly moves there. 'The same within ±5%' when the whole interval "
    "lies inside ±5%; a winner when it excludes 1 (flagged 'at the ±5% line' when it also reaches inside ±5%); "
    "otherwise not enough evidence. '±' is the interval's "
    "half-width; 'would have seen' the smallest difference detected with 80% power. Latency and saturation "
    "come from the solo points, in the charts and tables below."
)


def machine_speed(data: Run, result: Analysis) -> str:
    """How much this run's machine changed speed, from its own measurements: the calibration loop's samples,
    the spread of one solo repeat that used the whole CPU, and what else ran on the app's CPU."""
    parts = []
    if len(samples := load_samples(data.run_dir)) >= 2:
        mid = statistics.median(samples)
        parts.append(
            f"a fixed CPU loop timed {len(samples)} times on the app's CPU before and after this run ran at "
            f"{min(samples) / mid:.2f}-{max(samples) / mid:.2f}× its median speed"
        )
    if result.spread:
        parts.append(
            f"the repeats of a solo point that used the whole CPU spread by {result.spread.sd:.0%} (sd, pooled "
            f"over {result.spread.groups} points)"
        )
    if "app_cpus_others" in data.points and len(others := data.points["app_cpus_others"].dropna()):
        over = int((others > OTHERS_CPU_LIMIT).sum())
        left_out = f" ({over} point{'s' * (over != 1)} above {OTHERS_CPU_LIMIT:.0f}%, left out as invalid)"
        parts.append(
            f"anything but the apps took at most {others.max():.0f}% of a core on the app's CPU in a window"
            + (left_out if over else "")
        )
    return "; ".join(parts) if parts else "the machine's speed was not measured in this run"


@dataclass
class Block:
    """One piece of the report, rendered to HTML and to Markdown alike."""

    kind: str  # "h1" | "h2" | "h3" | "p" | "note" | "banner" | "table" | "answer" | "charts" | "code"
    text: str = ""
    anchor: str = ""
    table: Table | None = None
    sentences: Sequence[Sentence] = ()
    charts: Sequence[Chart] = ()


def blocks(data: Run, result: Analysis, charts: Sequence[Chart]) -> list[Block]:
    meta = data.meta
    run_id = meta.get("run_id") or data.run_dir.name
    out = [Block("h1", f"Sync or async? Run {run_id}")]
    machine = f"{meta.get('cpu_model') or 'CPU not recorded'}, {meta.get('cpu_count') or '?'} CPUs"
    out.append(
        Block(
            "note", f"Measured on {machine}, Python {meta.get('python') or '?'}. Stack: {stack_line(meta)}."
        )
    )
    if notice := incomplete_notice(meta):
        out.append(Block("banner", notice))
    out += [Block("banner", f"Damaged point, left out: {problem}") for problem in data.problems]
    sentences = answer(result.paired, result.summary, result.interference, result.layer_pairs, result.work)
    if sentences:
        out += [Block("h2", "What this run says", "answer"), Block("answer", sentences=sentences)]
    out.append(Block("h2", "Verdicts", "verdicts"))
    if not result.paired.empty and paired_verdict_table(result).rows:
        method = METHOD_PAIRED.format(machine=machine_speed(data, result))
        out += [Block("table", table=paired_verdict_table(result)), Block("note", method)]
    else:
        out += [
            Block("table", table=verdict_table(result, sorted(set(data.points["app"])))),
            Block("note", METHOD_SOLO.format(level=f"{CONFIDENCE:.0%} confidence interval")),
        ]
    if where := where_notice(meta):
        out.append(Block("note", where))
    if found := unequal(result.work):
        out.append(Block("banner", "Different work: " + "; ".join(f"{u.scenario}: {u.text}" for u in found)
                         + ". A verdict between these apps compares their work as well as their speed."))  # fmt: skip
    if not result.work.empty:
        out += [
            Block("h2", "Statements per route", "statements"),
            Block("table", table=work_table(result.work)),
            Block("note", METHOD_WORK),
        ]
    if not result.layer_pairs.empty:
        out += [
            Block("h2", "Where a request's CPU goes", "layers"),
            Block("table", table=layers_table(result.layer_pairs)),
            Block("note", METHOD_LAYERS),
        ]
    out += [Block("h2", "Charts", "charts"), Block("charts", charts=charts)]
    if not result.interference.empty:
        out += [
            Block("h2", "Interference: does one request hold up the others?", "interference"),
            Block("table", table=interference_table(result)),
            Block(
                "note",
                "Probes: 4 users sending GET /users/{id} every 50 ms; the other users keep one kind "
                "of work busy. p50/p99 from each repeat's own histogram of the probes; the factor is the mean "
                "ratio over repeats with a log-ratio t interval.",
            ),  # fmt: skip
        ]
    if ceilings_table(result).rows:
        out += [
            Block("h2", "Ceilings: what the ORM and the framework cost", "ceilings"),
            Block("table", table=ceilings_table(result)),
            Block(
                "note",
                "The same routes and the same statements on the bare driver (raw PyMySQL with a plain "
                "pool, raw asyncmy with its pool), without the ORM, the Session and response-model "
                "validation, paired with the idiomatic app over the same seconds.",
            ),  # fmt: skip
        ]
    out += [Block("h2", "All measurements", "numbers"), Block("h3", "Solo points: per app and workload")]
    out.append(Block("table", table=summary_table(result)))
    if not result.pairs.empty:
        out += [
            Block("h3", "Solo sync/async comparisons (descriptive)"),
            Block("table", table=comparison_table(result)),
        ]
    out.append(Block("h2", "Environment and limits", "environment"))
    for title, table in environment_tables(meta):
        out += [Block("h3", title), Block("table", table=table)]
    invalid = invalid_table(result)
    out += [Block("h2", "Invalid points", "invalid")]
    out.append(Block("table", table=invalid) if invalid.rows else Block("p", "No invalid points."))
    command = reproduce_command(meta)
    out += [Block("h2", "Reproduce this run", "reproduce")]
    out.append(Block("code", command) if command else Block("p", "The command is not recorded in meta.json."))
    return out


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def html_table(table: Table, head: bool = True) -> str:
    out = ["<table>"]
    if head and any(table.headers):
        out.append("<thead><tr>" + "".join(f"<th>{_esc(h)}</th>" for h in table.headers) + "</tr></thead>")
    out.append("<tbody>")
    for i, row in enumerate(table.rows):
        cls = f' class="{_esc(table.classes[i])}"' if table.classes else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _md_cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def md_table(table: Table) -> str:
    headers = [h or " " for h in table.headers]
    lines = ["| " + " | ".join(_md_cell(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _img(chart: Chart) -> str:
    """The PNG inline, shown at 96/150 of its pixel width so text has the same size in every chart."""
    data = chart.path.read_bytes()
    width = int.from_bytes(data[16:20], "big") * 96 // DPI  # IHDR width
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return f'<img src="{uri}" width="{width}" alt="{_esc(chart.title)}">'


def _chart_id(chart: Chart) -> str:
    return "chart-" + chart.path.stem


def render_html(data: Run, result: Analysis, charts: Sequence[Chart]) -> str:
    run_id = data.meta.get("run_id") or data.run_dir.name
    parts = [
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Sync vs async: {_esc(run_id)}</title><style>{CSS}</style></head><body><main>",
    ]
    for block in blocks(data, result, charts):
        anchor = f' id="{_esc(block.anchor)}"' if block.anchor else ""
        if block.kind in ("h1", "h2", "h3"):
            parts.append(f"<{block.kind}{anchor}>{_esc(block.text)}</{block.kind}>")
        elif block.kind in ("p", "note", "banner"):
            cls = f' class="{block.kind}"' if block.kind != "p" else ""
            parts.append(f"<p{cls}>{_esc(block.text)}</p>")
        elif block.kind == "table" and block.table is not None:
            parts.append(html_table(block.table, head=any(block.table.headers)))
        elif block.kind == "answer":
            items = "".join(
                f'<li>{_esc(s.text)} <a href="#{_esc(s.link)}">[{_esc(s.link)}]</a></li>'
                for s in block.sentences
            )
            parts.append(f'<ul class="answer">{items}</ul>')
        elif block.kind == "charts":
            if not block.charts:
                parts.append("<p>No chart: the run has no measured points.</p>")
            for chart in block.charts:
                parts.append(
                    f'<figure id="{_chart_id(chart)}">{_img(chart)}'
                    f"<figcaption><strong>{_esc(chart.title)}.</strong> {_esc(chart.caption)}</figcaption></figure>"
                )
        elif block.kind == "code":
            parts.append(f"<pre><code>{_esc(block.text)}</code></pre>")
    parts += ["</main>", f"<script>{SCRIPT}</script>", "</body></html>\n"]
    return "\n".join(parts)


def render_md(data: Run, result: Analysis, charts: Sequence[Chart], run_dir: Path) -> str:
    parts: list[str] = []
    for block in blocks(data, result, charts):
        if block.kind in ("h1", "h2", "h3"):
            parts += ["#" * int(block.kind[1]) + " " + block.text, ""]
        elif block.kind == "banner":
            parts += [f"> **{block.text}**", ""]
        elif block.kind in ("p", "note"):
            parts += [block.text, ""]
        elif block.kind == "table" and block.table is not None:
            parts += [md_table(block.table), ""]
        elif block.kind == "answer":
            parts += [f"- {s.text} ([{s.link}](#{s.link}))" for s in block.sentences] + [""]
        elif block.kind == "charts":
            for chart in block.charts:
                rel = chart.path.relative_to(run_dir).as_posix()
                parts += [f"### {chart.title}", "", f"![{chart.title}]({rel})", "", chart.caption, ""]
            if not block.charts:
                parts += ["No chart: the run has no measured points.", ""]
        elif block.kind == "code":
            parts += ["```bash", block.text, "```", ""]
    return "\n".join(parts)


def build_report(run_dir: Path) -> tuple[Path, Path]:
    """Write charts/*.png, report.html and report.md into `run_dir`; return (report.html, report.md)."""
    return write_report(load_run(Path(run_dir)))


def write_report(data: Run) -> tuple[Path, Path]:
    result = analyse(data.points)
    result.layer_pairs = compared(write_layers(data.run_dir))
    result.interference = with_waits(result.interference, probe_waits(data.run_dir))
    result.work = route_statements(data.run_dir)
    charts = draw_all(data, result, data.run_dir / "charts")
    html_path, md_path = data.run_dir / "report.html", data.run_dir / "report.md"
    html_path.write_text(render_html(data, result, charts), encoding="utf-8")
    md_path.write_text(render_md(data, result, charts, data.run_dir), encoding="utf-8")
    return html_path, md_path


def report_command(run_dir: Path) -> None:
    """Build the report of a finished (or interrupted) run: charts/*.png, report.html and report.md.

    RUN_DIR is a run folder such as results/20251125-120000-bench. report.html is self-contained
    (charts embedded) and opens with the verdict: sync or async for each workload, and by how much.
    """
    console, errors = Console(), Console(stderr=True)
    try:
        data = load_run(run_dir)
        html_path, md_path = write_report(data)
    except RunFolderError as exc:
        errors.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        raise SystemExit(2) from None
    for problem in data.problems:
        errors.print(f"[yellow]warning:[/] {problem}", highlight=False, soft_wrap=True)
    for label, path in (
        ("report", html_path),
        ("markdown", md_path),
        ("charts", html_path.parent / "charts"),
    ):
        console.print(f"[green]{label}[/]: {path}", highlight=False, soft_wrap=True)
