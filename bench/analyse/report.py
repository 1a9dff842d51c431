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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from bench.analyse.plots import DPI, Chart, draw_all
from bench.analyse.stats import CONFIDENCE
from bench.analyse.summary import Analysis, analyse
from bench.catalog import SCENARIO_BY_NAME
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


def _num(value: Any, digits: int = 1) -> str:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "–"
    return f"{x:,.{digits}f}" if math.isfinite(x) else "–"


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
            ["–", "–", "–", "–", f"no sync/async pair in this run (apps: {have})", "–", "–", "–", "–"]
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
    out.append(
        (
            "Packages",
            _kv([(k, v or "not installed") for k, v in packages.items()])
            if packages
            else _kv([("packages", "not recorded")]),
        )
    )
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
#verdicts table{font-size:1em;width:100%}
#verdicts td:nth-child(4){font-weight:600}
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
METHOD = (
    "Each verdict compares mean throughput over the valid repeats at the highest load where both apps have "
    "valid points (preferring loads with at least 2 valid repeats each). The {level} of the async/sync ratio "
    "is a log-ratio t interval (delta method, Welch–Satterthwaite degrees of freedom); a CI that includes 1.0 "
    "means no significant difference. Latency percentiles come from HdrHistograms merged over repeats. "
    "Invalid points are excluded from every statistic."
)


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


def render_html(data: Run, result: Analysis, charts: Sequence[Chart]) -> str:
    meta = data.meta
    run_id = meta.get("run_id") or data.run_dir.name
    notice = incomplete_notice(meta)
    apps = sorted(set(data.points["app"]))
    parts = [
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Sync vs async: {_esc(run_id)}</title><style>{CSS}</style></head><body><main>",
        '<section id="verdicts">',
        f"<h1>Sync or async? Run {_esc(run_id)}</h1>",
        f'<p class="banner">{_esc(notice)}</p>' if notice else "",
        *(f'<p class="banner">Damaged point, left out: {_esc(problem)}</p>' for problem in data.problems),
        html_table(verdict_table(result, apps)),
        f'<p class="note">{_esc(METHOD.format(level=f"{CONFIDENCE:.0%} confidence interval"))}</p>',
        f'<p class="note">{_esc(where)}</p>' if (where := where_notice(meta)) else "",
        "</section>",
        '<section id="charts"><h2>Charts</h2>',
    ]
    if not charts:
        parts.append("<p>No chart: the run has no measured points.</p>")
    for chart in charts:
        parts.append(
            f"<figure>{_img(chart)}"
            f"<figcaption><strong>{_esc(chart.title)}.</strong> {_esc(chart.caption)}</figcaption></figure>"
        )
    parts += [
        "</section>",
        '<section id="numbers"><h2>All measurements</h2>',
        "<h3>Per app and workload</h3>",
        html_table(summary_table(result)),
    ]
    if not result.pairs.empty:
        parts += ["<h3>Every sync/async comparison</h3>", html_table(comparison_table(result))]
    parts += ["</section>", '<section id="environment"><h2>Environment and limits</h2>']
    for title, table in environment_tables(meta):
        parts += [f"<h3>{_esc(title)}</h3>", html_table(table, head=any(table.headers))]
    invalid = invalid_table(result)
    parts += ["</section>", '<section id="invalid"><h2>Invalid points</h2>']
    parts.append(html_table(invalid) if invalid.rows else "<p>No invalid points.</p>")
    command = reproduce_command(meta)
    parts += [
        "</section>",
        '<section id="reproduce"><h2>Reproduce this run</h2>',
        f"<pre><code>{_esc(command)}</code></pre>"
        if command
        else "<p>The command is not recorded in meta.json.</p>",
        "</section></main>",
        f"<script>{SCRIPT}</script>",
        "</body></html>\n",
    ]
    return "\n".join(p for p in parts if p)


def render_md(data: Run, result: Analysis, charts: Sequence[Chart], run_dir: Path) -> str:
    meta = data.meta
    run_id = meta.get("run_id") or data.run_dir.name
    notice = incomplete_notice(meta)
    parts = [f"# Sync or async? Run {run_id}", ""]
    if notice:
        parts += [f"> **{notice}**", ""]
    parts += [f"> **Damaged point, left out:** {problem}\n" for problem in data.problems]
    parts += ["## Verdicts", "", md_table(verdict_table(result, sorted(set(data.points["app"])))), ""]
    parts += [METHOD.format(level=f"{CONFIDENCE:.0%} confidence interval"), ""]
    if where := where_notice(meta):
        parts += [where, ""]
    parts += ["## Charts", ""]
    for chart in charts:
        rel = chart.path.relative_to(run_dir).as_posix()
        parts += [f"### {chart.title}", "", f"![{chart.title}]({rel})", "", chart.caption, ""]
    if not charts:
        parts += ["No chart: the run has no measured points.", ""]
    parts += ["## All measurements", "", md_table(summary_table(result)), ""]
    if not result.pairs.empty:
        parts += ["### Every sync/async comparison", "", md_table(comparison_table(result)), ""]
    parts += ["## Environment and limits", ""]
    for title, table in environment_tables(meta):
        parts += [f"### {title}", "", md_table(table), ""]
    invalid = invalid_table(result)
    parts += ["## Invalid points", "", md_table(invalid) if invalid.rows else "No invalid points.", ""]
    command = reproduce_command(meta)
    parts += ["## Reproduce this run", ""]
    parts += ["```bash", command, "```", ""] if command else ["The command is not recorded in meta.json.", ""]
    return "\n".join(parts)


def build_report(run_dir: Path) -> tuple[Path, Path]:
    """Write charts/*.png, report.html and report.md into `run_dir`; return (report.html, report.md)."""
    return write_report(load_run(Path(run_dir)))


def write_report(data: Run) -> tuple[Path, Path]:
    result = analyse(data.points)
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
