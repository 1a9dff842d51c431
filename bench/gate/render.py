"""The gate's output: one console screen per comparison, and the chart of its per-second samples."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.analyse.stats import LEVEL
from bench.gate.statements import StatementCheck
from bench.gate.stats import FLAG_FRACTION, Comparison, KeyResult

_STYLE = {"regression": "bold red", "improvement": "green", "no change": ""}


def render(cmp: Comparison, console: Console) -> None:
    """One screen (fits 80 columns): a row per key, then the notes and the flagged keys in plain words."""
    current, base = (", ".join(p.name for p in paths) for paths in (cmp.current, cmp.baseline))
    title = (
        f"perf gate: {current} vs {base}"
        if current != base
        else f"perf gate: current vs base: apps in {current}"
    )
    table = Table(
        title=title,
        title_justify="left",
        box=None,
        header_style="bold underline",
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("key", overflow="fold", min_width=20)
    for name in ("n", "base/s", "cur/s", "Δ thr", LEVEL, "p", "Δ p99"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True, min_width=6)
    short = {"slower": "SLOWER", "faster": "faster", "within noise": "noise"}
    for r in cmp.rows:
        table.add_row(
            r.key.label,
            f"{sum(map(len, r.baseline))}/{sum(map(len, r.current))}",
            f"{r.baseline_rps:,.0f}",
            f"{r.current_rps:,.0f}",
            f"{r.effect:+.1%}",
            f"{r.ci[0]:+.0%}..{r.ci[1]:+.0%}",
            f"{r.p:.1g}",
            f"{r.p99_change:+.0%}" if r.p99_change is not None else "–",
            short.get(r.reason, f"<{cmp.min_effect * FLAG_FRACTION:.0%}"),
            style=_STYLE[r.verdict],
        )
    console.print(table)
    unit = _basis(cmp).upper() if not (cmp.normalised or cmp.interleaved) else _basis(cmp)
    console.print(
        f"throughput ({unit}). SLOWER = regression: ≤ -{cmp.min_effect * FLAG_FRACTION:.0%} (to catch "
        f"{cmp.min_effect:.0%} drops), p < {cmp.alpha:g} and CI < 0; <{cmp.min_effect * FLAG_FRACTION:.0%}: "
        "smaller change; noise: not significant.",
        highlight=False,
    )
    for note in cmp.notes:
        console.print(f"[dim]note: {note}[/]", highlight=False)
    for r in cmp.regressions + cmp.improvements:
        console.print(r.text, style=_STYLE[r.verdict], highlight=False)
    console.print(f"[bold]{cmp.headline}[/]", highlight=False)


def _basis(cmp: Comparison) -> str:
    if cmp.interleaved:
        return "paired: both sides in the same seconds, sharing the app's CPU"
    return "calibrated" if cmp.normalised else "not calibrated"


def plot(cmp: Comparison, path: Path) -> Path:
    """Baseline vs current per key: every sample divided by the baseline's median, as strips."""
    from matplotlib.figure import Figure  # no pyplot: no global state, Agg via savefig

    rows = cmp.rows
    fig = Figure(figsize=(10, 1.6 + 0.45 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    colors = {"regression": "#c0392b", "improvement": "#27ae60", "no change": "#2e86c1"}
    for i, r in enumerate(rows):
        color = colors[r.verdict]
        if cmp.interleaved:  # one strip: each second's current / baseline, with the estimate and its CI
            values = np.concatenate([(c + 1) / (b + 1) for b, c in zip(r.baseline, r.current, strict=True)])
            ax.scatter(
                values, i + rng.uniform(-0.15, 0.15, len(values)), s=10, color=color, alpha=0.5, linewidths=0
            )
            ax.plot(
                [1 + r.ci[0], 1 + r.ci[1]], [i, i], color=color, linewidth=5, alpha=0.6, solid_capstyle="butt"
            )
            ax.plot([1 + r.effect] * 2, [i - 0.25, i + 0.25], color=color, linewidth=2.5)
            continue
        ref = float(np.median(np.concatenate(r.baseline)))
        for offset, samples, shade in ((-0.18, r.baseline, "#7f8c8d"), (0.18, r.current, color)):
            values = np.concatenate(samples) / ref
            y = i + offset + rng.uniform(-0.07, 0.07, len(values))
            ax.scatter(values, y, s=10, color=shade, alpha=0.6, linewidths=0)
            med = float(np.median(values))
            ax.plot([med, med], [i + offset - 0.15, i + offset + 0.15], color=shade, linewidth=2.5)
    ax.axvline(1.0, color="#7f8c8d", linewidth=0.8)
    for edge in (1 - cmp.min_effect, 1 + cmp.min_effect):
        ax.axvline(edge, color="#7f8c8d", linewidth=0.8, linestyle=":")
    if cmp.interleaved:
        ax.axvline(1 - cmp.min_effect * FLAG_FRACTION, color="#c0392b", linewidth=0.8, linestyle="--")
    ax.set_yticks(range(len(rows)), [f"{r.key.label}  {r.effect:+.1%}" for r in rows])
    ax.invert_yaxis()
    unit = _basis(cmp)
    ax.set_xlabel(
        f"current ÷ baseline requests in the same second  (bar: estimate, band: {LEVEL}, dashed: flag line)"
        if cmp.interleaved
        else "requests per second ÷ baseline median  (grey: baseline, colour: current)"
    )
    ax.set_title(f"Perf gate: {cmp.headline}\nthroughput per second, {unit}", loc="left", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    return path


# --- the statement counts and the pull-request report -------------------------------------------------


def render_statements(check: StatementCheck, console: Console) -> None:
    """One line per backend and app, then every change in plain words."""
    for backend, apps in check.counts.items():
        for app, sides in apps.items():
            routes = len(sides["current"])
            same = not any(c.backend == backend and c.app == app for c in check.more + check.fewer)
            console.print(
                f"statements {app} on {backend}: {routes} routes, "
                + ("same as the baseline" if same else "CHANGED"),
                highlight=False,
            )
    for change in check.more:
        console.print(f"[bold red]more statements[/] {change.text(check.base_sha)}", highlight=False)
    for change in check.fewer:
        console.print(f"[green]fewer statements[/] {change.text(check.base_sha)}", highlight=False)
    for note in check.notes:
        console.print(f"[dim]note: {note}[/]", highlight=False)


@dataclass(frozen=True)
class GateView:
    """What the pull-request report shows."""

    base_sha: str
    current_sha: str
    statements: StatementCheck
    throughput: Comparison | None  # the comparison that decided (the re-measure when there was one)
    remeasured: bool
    failed: bool
    report_dir: Path


def _key_json(r: KeyResult) -> dict[str, Any]:
    return {
        "key": r.key.label,
        "app": r.key.app,
        "scenario": r.key.scenario,
        "users": r.key.users,
        "effect": round(r.effect, 5),
        "ci": [round(r.ci[0], 5), round(r.ci[1], 5)],
        "p": r.p,
        "baseline_rps": round(r.baseline_rps, 1),
        "current_rps": round(r.current_rps, 1),
        "p99_change": None if r.p99_change is None else round(r.p99_change, 4),
        "verdict": r.verdict,
        "reason": r.reason,
    }


def gate_json(view: GateView) -> dict[str, Any]:
    st = view.statements
    return {
        "verdict": "fail" if view.failed else "pass",
        "base_sha": view.base_sha,
        "current_sha": view.current_sha,
        "statements": st.counts,
        "statement_changes": [asdict(c) | {"direction": "more"} for c in st.more]
        + [asdict(c) | {"direction": "fewer"} for c in st.fewer],
        "statement_notes": st.notes,
        "throughput": [_key_json(r) for r in view.throughput.rows] if view.throughput else None,
        "remeasured": view.remeasured,
    }


def gate_markdown(view: GateView, chart: Path | None) -> str:
    st, cmp = view.statements, view.throughput
    head = "❌ **perf gate: FAIL**" if view.failed else "✅ **perf gate: pass**"
    lines = [f"{head} — current `{view.current_sha[:12]}` vs baseline `{view.base_sha[:12]}`", ""]
    if st.more:
        lines += ["**More statements per request** (fails at once):", ""]
        lines += [f"- {c.text(view.base_sha)}" for c in st.more] + [""]
    if st.fewer:
        lines += ["Fewer statements per request (improvements):", ""]
        lines += [f"- {c.text(view.base_sha)}" for c in st.fewer] + [""]
    if cmp is not None:
        lines += [
            f"| key | baseline req/s | current req/s | change | {LEVEL} | p | p99 | verdict |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in cmp.rows:
            p99 = f"{r.p99_change:+.0%}" if r.p99_change is not None else "–"
            lines.append(
                f"| {r.key.label} | {r.baseline_rps:,.0f} | {r.current_rps:,.0f} | {r.effect:+.1%} | "
                f"{r.ci[0]:+.1%}..{r.ci[1]:+.1%} | {r.p:.2g} | {p99} | {r.verdict} |"
            )
        lines += ["", *(f"- {r.text}" for r in cmp.regressions + cmp.improvements)]
        lines.append(f"- {cmp.headline}" + (" (after one re-measure)" if view.remeasured else ""))
        lines += [""] + [f"_{note}_" for note in cmp.notes] + [""]
    else:
        lines += ["No throughput run: the statement counts failed first.", ""]
    lines += ["<details><summary>Statements per request, per route</summary>", ""]
    for backend, apps in st.counts.items():
        for app, sides in apps.items():
            lines += [f"**{app} on {backend}**", "", "| route | baseline | current |", "|---|---|---|"]
            for route, kinds in sides["current"].items():

                def show(k: dict[str, float]) -> str:
                    return ", ".join(f"{kind} {n:g}" for kind, n in k.items()) or "none"

                lines.append(f"| `{route}` | {show(sides['baseline'].get(route, {}))} | {show(kinds)} |")
            lines.append("")
    lines += [f"_{note}_" for note in st.notes] + ["</details>", ""]
    if chart is not None:
        lines += [f"Chart: `{chart}`", ""]
    return "\n".join(lines)


def write_gate_report(view: GateView, chart: Path | None = None) -> None:
    """gate.md and gate.json in the gate's folder, and as results/gate.md|json (the workflow's summary)."""
    md, data = gate_markdown(view, chart), json.dumps(gate_json(view), indent=2, default=str) + "\n"
    for folder in (view.report_dir, view.report_dir.parent):
        (folder / "gate.md").write_text(md)
        (folder / "gate.json").write_text(data)
