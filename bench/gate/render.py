"""The gate's output: one console screen per comparison, and the chart of its per-second samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from bench.gate.stats import FLAG_FRACTION, Comparison

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
        title=title, title_justify="left", box=None, header_style="bold underline", pad_edge=False,
        collapse_padding=True,
    )  # fmt: skip
    table.add_column("key", overflow="fold", min_width=20)
    for name in ("n", "base/s", "cur/s", "Δ thr", "95% CI", "p", "Δ p99"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True, min_width=6)
    short = {"slower": "SLOWER", "faster": "faster", "within noise": "noise"}
    for r in cmp.rows:
        table.add_row(
            r.key.label, f"{sum(map(len, r.baseline))}/{sum(map(len, r.current))}", f"{r.baseline_rps:,.0f}",
            f"{r.current_rps:,.0f}", f"{r.effect:+.1%}", f"{r.ci[0]:+.0%}..{r.ci[1]:+.0%}", f"{r.p:.1g}",
            f"{r.p99_change:+.0%}" if r.p99_change is not None else "–",
            short.get(r.reason, f"<{cmp.min_effect * FLAG_FRACTION:.0%}"), style=_STYLE[r.verdict],
        )  # fmt: skip
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
        "current ÷ baseline requests in the same second  (bar: estimate, band: 95% CI, dashed: flag line)"
        if cmp.interleaved
        else "requests per second ÷ baseline median  (grey: baseline, colour: current)"
    )
    ax.set_title(f"Perf gate: {cmp.headline}\nthroughput per second, {unit}", loc="left", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150)
    return path
