"""The answer on more than one CPU: a small summary of a full run (its verdicts with intervals, CPU per
request by layer, and the machine), written to `machines/<run-id>.json` (MACHINES_DIR) for the team to commit,
and every committed summary rendered side by side (`bench machines`: a table and a chart, one column per
machine). Pure: reads run folders and summaries, starts nothing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from bench.analyse.answer import workload
from bench.analyse.layers import compared, write_layers
from bench.analyse.stats import LEVEL
from bench.analyse.summary import Analysis, analyse
from bench.analyse.verdict import MARGIN, short
from bench.catalog import PAIRS, scenario_rank
from bench.store.run import load_run
from bench.store.rundir import write_json
from shared.config import REPO_ROOT

MACHINES_DIR = (
    REPO_ROOT / "machines"
)  # committed: one summary per kind of CPU (beside results/, which git ignores)
SUMMARY_KEYS = ("cpu_model", "cpu_count", "kernel", "virtualisation", "python", "packages", "lock_sha256")


def summary(meta: dict[str, Any], result: Analysis) -> dict[str, Any]:
    """What travels between machines: the verdicts with their intervals, the layers, and the machine."""
    verdicts = [
        {
            "pair": f"{r['first']} vs {r['second']}",
            "backend": r["backend"],
            "workload": workload(r),
            "scenario": r["scenario"],
            "db_ms": float(r["db_ms"]),
            "users": int(r["users"]),
            "ratio": _round(r["ratio"]),
            "low": _round(r["ratio_low"]),
            "high": _round(r["ratio_high"]),
            "winner": r["winner"],
            "instrument": r["instrument"],
        }
        for _, r in _ordered(result.paired).iterrows()
    ]
    layers = [
        {
            k: (r[k] if k not in ("sync_us", "async_us", "diff_us") else _round(r[k], 1))
            for k in ("sync", "async_", "scenario", "db_ms", "layer", "sync_us", "async_us", "diff_us")
        }
        for _, r in result.layer_pairs.iterrows()
    ]
    return {
        "run_id": meta.get("run_id"),
        "command": meta.get("command"),
        "git_sha": meta.get("git_sha"),
        "started_at": meta.get("started_at"),
        "machine": {k: meta.get(k) for k in SUMMARY_KEYS},
        "verdicts": verdicts,
        "layers": layers,
    }


def _ordered(paired: pd.DataFrame) -> pd.DataFrame:
    """The catalog's pair order, then the scenarios' order, then database time (as the report lists them)."""
    if paired.empty:
        return paired
    pair_rank = {(p.sync, p.async_): i for i, p in enumerate(PAIRS)}
    return paired.assign(
        _p=[
            pair_rank.get((a, b), len(PAIRS)) for a, b in zip(paired["first"], paired["second"], strict=True)
        ],
        _s=[scenario_rank(str(s))[0] for s in paired["scenario"]],
    ).sort_values(["_p", "_s", "db_ms"], kind="stable")


def _round(value: Any, digits: int = 4) -> float | None:
    x = float(value)
    return round(x, digits) if math.isfinite(x) else None


def write_summary(run_dir: Path, folder: Path) -> Path:
    """`folder/<run-id>.json` for a finished run."""
    data = load_run(run_dir)
    result = analyse(data.points)
    result.layer_pairs = compared(write_layers(run_dir))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{data.meta.get('run_id') or run_dir.name}.json"
    write_json(path, summary(data.meta, result))
    return path


def render(folder: Path) -> tuple[str, Path | None]:
    """machines.md (the table) and machines.png (the chart) in `folder`, from every summary there."""
    summaries = read_summaries(folder)
    if not summaries:
        raise ValueError(f"no machine summaries in {folder}: run `make bench` (it writes one there)")
    text = markdown(summaries)
    (folder / "machines.md").write_text(text)
    return text, chart(summaries, folder / "machines.png")


def read_summaries(folder: Path) -> list[dict[str, Any]]:
    """Every `<run-id>.json` of the folder, oldest first; a file that is no summary is named and skipped."""
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except ValueError as exc:
            raise ValueError(f"{path} is not valid JSON ({exc}): delete it or write it again") from None
        if not isinstance(data, dict) or "verdicts" not in data or "machine" not in data:
            raise ValueError(
                f"{path} is not a machine summary (no 'verdicts' and 'machine'): move it elsewhere"
            )
        out.append(data)
    return out


def column(data: dict[str, Any]) -> str:
    return f"{data['machine'].get('cpu_model') or '?'} ({data['run_id']})"


def side_by_side(summaries: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per comparison x workload, one column per machine: `ratio (low..high) verdict`."""
    rows: dict[tuple[str, str], dict[str, str]] = {}  # in the order the runs' reports list them
    for data in summaries:
        for v in data["verdicts"]:
            cell = (
                "–" if v["ratio"] is None else f"{v['ratio']:.3f} ({_bound(v['low'])}..{_bound(v['high'])})"
            )
            rows.setdefault((v["pair"], v["workload"]), {})[column(data)] = (
                f"{cell} {short(v['winner'], *v['pair'].split(' vs '))}"
            )
    table = pd.DataFrame.from_dict(rows, orient="index").fillna("not measured")
    if not table.empty:
        table.index = pd.MultiIndex.from_tuples(list(table.index), names=["comparison", "workload"])
    return table


def _bound(x: float | None) -> str:
    return "?" if x is None else f"{x:.3f}"


def markdown(summaries: list[dict[str, Any]]) -> str:
    table = side_by_side(summaries)
    head = ["comparison", "workload", *table.columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, row in zip(table.index, table.itertuples(index=False), strict=True):
        lines.append("| " + " | ".join([*map(str, key), *map(str, row)]) + " |")
    lines += ["", f"async/sync throughput ({LEVEL}) at the paired load; each column is one `make bench` run:"]
    lines += [
        f"- {column(d)}: `{d.get('command') or '?'}`, commit {str(d.get('git_sha') or '?')[:12]}, "
        f"{d['machine'].get('cpu_count')} CPUs, kernel {d['machine'].get('kernel')}, virtualisation "
        f"{d['machine'].get('virtualisation')}, Python {d['machine'].get('python')}"
        for d in summaries
    ]
    return "\n".join(lines) + "\n"


def chart(summaries: list[dict[str, Any]], path: Path) -> Path | None:
    """async/sync with its interval per workload, one colour per machine (the verdicts of the first pair of
    each summary's catalog order)."""
    points = [
        (column(d), v["pair"] + ": " + v["workload"], v["ratio"], v["low"], v["high"])
        for d in summaries
        for v in d["verdicts"]
        if v["ratio"] is not None
    ]
    if not points:
        return None
    cases = list(dict.fromkeys(p[1] for p in points))
    machines = list(dict.fromkeys(p[0] for p in points))
    fig = Figure(figsize=(7.5, 0.42 * len(cases) + 1.6), dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for i, machine in enumerate(machines):
        for m, case, ratio, low, high in points:
            if m != machine:
                continue
            y = cases.index(case) + (i - (len(machines) - 1) / 2) * 0.25
            err = [[ratio - (low or ratio)], [(high or ratio) - ratio]]
            ax.errorbar(
                ratio,
                y,
                xerr=err,
                fmt="o",
                color=f"C{i}",
                markersize=4,
                capsize=2,
                label=machine if case == next(p[1] for p in points if p[0] == machine) else None,
            )
    ax.axvline(1.0, color="0.3", linewidth=0.8)
    ax.axvspan(1 - MARGIN, 1 + MARGIN, color="0.9", zorder=0)
    ax.set_yticks(range(len(cases)), cases, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"async/sync throughput ({LEVEL}); > 1: async served more")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=1)
    fig.savefig(path)
    return path
