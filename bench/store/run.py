"""A run folder read back: meta.json and points.csv as one tidy table, with each point's merged
HdrHistogram, measurement window and per-second counts from its loadgen files.

This is the one reader of finished runs: the analysis, the report, `bench compare` and the gate all start
here. A damaged table (a truncated points.csv, a folder from an older format, an empty run) raises
`RunFolderError` with one line saying what is wrong and what to run again. A point whose loadgen file is
corrupt is kept, marked invalid (`loadgen_unreadable`), and named in `Run.problems`.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.store.loadgen import LoadgenError, LoadgenResult, read_loadgen
from bench.store.rows import POINT_COLUMNS, TEXT_COLUMNS
from bench.store.rundir import CALIBRATION_FILE

REQUIRED = ("point_id", "app", "scenario", "users", "db_ms", "repeat", "valid")


class RunFolderError(ValueError):
    """A run folder that cannot be read as one: the message says why and what to repeat."""


@dataclass
class Run:
    """`points`: one row per point: the points.csv columns typed, plus `load` (users, or target req/s in
    open loop), `hdr` (merged histogram), `window_start`/`window_end` and `loadgen` (the merged
    LoadgenResult, or None when the point wrote no file)."""

    run_dir: Path
    meta: dict[str, Any]
    points: pd.DataFrame
    problems: list[str] = field(default_factory=list)  # one line per damaged point

    @property
    def run_id(self) -> str:
        return str(self.meta.get("run_id") or self.run_dir.name)


def _as_bool(value: Any) -> bool:
    return str(value).strip().lower() in ("true", "1", "yes")


def tidy_points(raw: pd.DataFrame) -> pd.DataFrame:
    """points.csv rows (or any subset of its columns) with types fixed and `load` added."""
    df = raw.copy()
    for col in POINT_COLUMNS:
        if col not in df.columns:
            df[col] = None
    for col in POINT_COLUMNS:
        if col not in TEXT_COLUMNS and col not in ("valid", "recorded"):
            df[col] = pd.to_numeric(df[col], errors="coerce")
    for col in TEXT_COLUMNS:
        df[col] = df[col].fillna("").astype(str)
    df["mode"] = df["mode"].replace("", "closed")
    df["db_ms"] = df["db_ms"].fillna(0)
    df["valid"] = pd.Series([_as_bool(v) for v in df["valid"]], index=df.index, dtype=bool)
    df["load"] = np.where(df["mode"] == "open", df["target_rps"], df["users"])
    for col, default in (
        ("hdr", None),
        ("loadgen", None),
        ("window_start", math.nan),
        ("window_end", math.nan),
    ):
        if col not in df.columns:
            df[col] = default
    df["hdr"] = df["hdr"].astype(object)
    df["loadgen"] = df["loadgen"].astype(object)
    return df.reset_index(drop=True)


def read_meta(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "meta.json"
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text())
    except ValueError:
        raise RunFolderError(f"{path} is not valid JSON: the run was cut off; run it again") from None
    if not isinstance(meta, dict):
        raise RunFolderError(f"{path} is not a meta.json object; run it again")
    return meta


def read_table(run_dir: Path) -> pd.DataFrame:
    """points.csv as text, checked: a header with the required columns, and whole rows only."""
    path = run_dir / "points.csv"
    if not path.exists():
        return pd.DataFrame(columns=list(REQUIRED))
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return pd.DataFrame(columns=list(REQUIRED))
    header, body = rows[0], rows[1:]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise RunFolderError(
            f"{path} lacks the columns {', '.join(missing)}: it is not a points.csv of this harness "
            "(results/README.md); run the benchmark again"
        )
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise RunFolderError(
                f"{path} line {number} has {len(row)} of {len(header)} fields (truncated?): run the "
                "benchmark again, or delete that line to report the rows before it"
            )
    return pd.DataFrame(body, columns=header, dtype=str)


def load_run(run_dir: Path) -> Run:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunFolderError(f"no run folder at {run_dir}")
    meta = read_meta(run_dir)
    table = read_table(run_dir)
    if table.empty and not meta:
        raise RunFolderError(f"{run_dir} is not a run folder (no points.csv, no meta.json)")
    df = tidy_points(table)
    older = meta.get("database")
    before_postgres = str(older.get("backend") or "mariadb") if isinstance(older, dict) else "mariadb"
    df["backend"] = df["backend"].replace("", before_postgres)  # runs from before the backend column
    loadgens: list[LoadgenResult | None] = []
    problems: list[str] = []
    unreadable: list[bool] = []
    for point_id, requests in zip(df["point_id"], df["requests"], strict=True):
        pdir = run_dir / "points" / point_id
        lg, broken = None, False
        try:
            lg = read_loadgen(pdir) if point_id else None
        except LoadgenError as exc:
            problems.append(str(exc))
            broken = True
        if not broken and (lg is None or not lg.files) and requests > 0:
            problems.append(
                f"{pdir} has no loadgen-*.json although {requests:.0f} requests were counted: its latency "
                "histogram and per-second counts are lost (its percentiles come from points.csv); run it "
                "again"
            )
        unreadable.append(broken)
        loadgens.append(lg if lg is not None and lg.files else None)
    bad = pd.Series(unreadable, index=df.index, dtype=bool)
    df.loc[bad, "valid"] = False
    df.loc[bad, "invalid_reasons"] = [
        ";".join(filter(None, [r, "loadgen_unreadable"])) for r in df.loc[bad, "invalid_reasons"]
    ]
    df["loadgen"] = pd.Series(loadgens, index=df.index, dtype=object)
    df["hdr"] = pd.Series([lg.hdr if lg else None for lg in loadgens], index=df.index, dtype=object)
    df["window_start"] = [lg.window[0] if lg and lg.window else math.nan for lg in loadgens]
    df["window_end"] = [lg.window[1] if lg and lg.window else math.nan for lg in loadgens]
    return Run(run_dir, meta, df, problems)


def load_samples(run_dir: Path) -> list[float]:
    """The before + after samples (loops/s) in `run_dir/calibration.json`; empty if absent."""
    try:
        data = json.loads((run_dir / CALIBRATION_FILE).read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict):
        return []
    values: list[float] = []
    for part in ("before", "after"):
        section = data.get(part)
        if isinstance(section, dict):
            values += [float(v) for v in section.get("samples", []) if float(v) > 0]
    return values


def load_calibration(run_dir: Path) -> float | None:
    """Median of the before + after samples in `run_dir/calibration.json`; None if absent or empty."""
    values = load_samples(run_dir)
    return statistics.median(values) if values else None
