"""The interference experiment (loadtests/interference.py): how much slower a fast request gets when it shares
the app with other work. Per app and neighbour kind, the probes' p50 and p99 (each repeat's from its own
per-route histogram) next to the same probes alone, as a factor with a log-ratio t interval (stats.CONFIDENCE)
over repeats; and, where the run was profiled (`--profile`), what the probes waited for: the GIL or the
CPU."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.analyse.layers import MEASURED, on_main_thread, parse_stacks, read_layers
from bench.analyse.stats import LEVEL, ratio_ci
from bench.catalog import app_rank
from bench.store.loadgen import merge_histograms, percentiles_ms
from bench.store.rundir import PROFILE_RUNNING, PROFILE_SUMMARY
from loadtests.probes import NEIGHBOURS, PROBE_REQUEST

PREFIX = "interference_"
KINDS = tuple(k for k in NEIGHBOURS if k != "none")  # beside the probes alone


def _probe(lg: Any) -> dict[str, float]:
    pct = percentiles_ms(lg.hdr_by_name.get(PROBE_REQUEST) if lg is not None else None)
    return {
        "p50": math.nan if pct["p50_ms"] is None else pct["p50_ms"],
        "p99": math.nan if pct["p99_ms"] is None else pct["p99_ms"],
    }


def interference(points: pd.DataFrame) -> pd.DataFrame:
    """One row per app x neighbour kind with probes measured both alone and beside that kind."""
    cols = ["backend", "app", "kind", "repeats", "p50_alone", "p99_alone", "p50_with", "p99_with"]
    cols += ["p50_factor", "p99_factor", "p99_low", "p99_high"]
    pts = points[points["scenario"].astype(str).str.startswith(PREFIX) & points["valid"]]
    rows: list[dict[str, Any]] = []
    backend_of = pts["backend"] if "backend" in pts.columns else pd.Series("mariadb", index=pts.index)
    for (backend, app), group in pts.assign(backend=backend_of).groupby(["backend", "app"], sort=False):
        alone = group[group["scenario"] == PREFIX + "none"]
        if alone.empty:
            continue
        ref = [_probe(lg) for lg in alone["loadgen"]]
        ref_hdr = merge_histograms(
            lg.hdr_by_name.get(PROBE_REQUEST) for lg in alone["loadgen"] if lg is not None
        )
        for kind in KINDS:
            beside = group[group["scenario"] == PREFIX + kind]
            if beside.empty:
                continue
            got = [_probe(lg) for lg in beside["loadgen"]]
            hdr = merge_histograms(
                lg.hdr_by_name.get(PROBE_REQUEST) for lg in beside["loadgen"] if lg is not None
            )
            p99 = ratio_ci([g["p99"] for g in got], [r["p99"] for r in ref])
            p50 = ratio_ci([g["p50"] for g in got], [r["p50"] for r in ref])
            a, w = percentiles_ms(ref_hdr), percentiles_ms(hdr)
            rows.append(
                {
                    "backend": backend,
                    "app": app,
                    "kind": kind,
                    "repeats": min(len(got), len(ref)),
                    "p50_alone": a["p50_ms"],
                    "p99_alone": a["p99_ms"],
                    "p50_with": w["p50_ms"],
                    "p99_with": w["p99_ms"],
                    "p50_factor": p50[0],
                    "p99_factor": p99[0],
                    "p99_low": p99[1],
                    "p99_high": p99[2],
                }
            )
    out = pd.DataFrame(rows, columns=cols)
    if out.empty:
        return out
    out["_rank"] = [app_rank(str(a)) for a in out["app"]]
    out["_kind"] = [KINDS.index(k) for k in out["kind"]]
    return (
        out.sort_values(["backend", "_rank", "_kind"]).drop(columns=["_rank", "_kind"]).reset_index(drop=True)
    )


def factor_text(row: pd.Series) -> str:
    """'12× (95% CI 9-16×)' or '12× (no CI: fewer than 2 repeats)'."""
    main = f"{row['p99_factor']:.1f}×"
    if all(np.isfinite([row["p99_low"], row["p99_high"]])):
        return f"{main} ({LEVEL} {row['p99_low']:.1f}–{row['p99_high']:.1f}×)"
    return f"{main} (no CI: fewer than 2 repeats)"


WAIT_COLUMNS = ["backend", "app", "kind", "cpu_busy", "gil_share", "loop_share"]
BUSY = 0.5  # below: the app's CPU was free half the time or more, so the probes' wait was not for it
MOSTLY = 0.75  # a share at least this large names what the probes waited for


def probe_waits(run_dir: Path) -> pd.DataFrame:
    """What the probes waited for, per app x neighbour kind, from the run's profiled interference points (each
    app alone with that neighbour work, under py-spy: bench/analyse/layers.py): `cpu_busy`, the app's CPU
    over the window (a fraction of its one core), and `gil_share`, the part of that CPU the GIL holder's
    samples cover (at most 1); `loop_share`, the part of the running threads' samples on the main thread (the
    event loop). A probe that has to wait finds the CPU taken by code holding the GIL (it waits for the GIL,
    and the CPU with it), by code that let the GIL go (Argon2's C code: it waits for the CPU only, which
    another core would give it), or by work on the event loop's own thread (it waits for the loop). Empty
    without profiled interference points."""
    layers = read_layers(run_dir)
    measured = layers[(layers["layer"] == MEASURED) & layers["scenario"].astype(str).str.startswith(PREFIX)]
    rows = []
    for path in sorted(run_dir.glob(f"points/*/{PROFILE_SUMMARY}")):
        point = json.loads(path.read_text()).get("point") or {}
        scenario = str(point.get("scenario", ""))
        if not scenario.startswith(PREFIX) or not point.get("valid") or point.get("app_cpu_mean") is None:
            continue
        found = measured[(measured["app"] == point["app"]) & (measured["scenario"] == scenario)]
        if found.empty or not float(found["us_per_request"].iloc[0]) > 0:
            continue
        share = float(found["gil_us"].iloc[0]) / float(found["us_per_request"].iloc[0])
        rows.append(
            {
                "backend": point.get("backend", "mariadb"),
                "app": point["app"],
                "kind": scenario.removeprefix(PREFIX),
                "cpu_busy": float(point["app_cpu_mean"]) / 100,
                "gil_share": min(1.0, share) if math.isfinite(share) else math.nan,
                "loop_share": _on_the_loop(path.parent / PROFILE_RUNNING),
            }
        )
    return pd.DataFrame(rows, columns=WAIT_COLUMNS)


def _on_the_loop(stacks_file: Path) -> float:
    """The running threads' samples on the main thread (the event loop), as a share of them all."""
    if not stacks_file.is_file():
        return math.nan
    stacks = parse_stacks(stacks_file.read_text(errors="replace"))
    total = sum(n for _, n in stacks)
    return sum(n for stack, n in stacks if on_main_thread(stack)) / total if total else math.nan


def waited_for(row: pd.Series, detail: bool = True) -> str:
    """What a probe waited for beside this work, from probe_waits()'s columns ('' unprofiled): a short label,
    or with `detail` a phrase with the figures."""
    busy, gil, loop = (float(row.get(k, math.nan)) for k in ("cpu_busy", "gil_share", "loop_share"))
    if not math.isfinite(busy):
        return ""
    if busy < BUSY:
        short, long = (
            "not the CPU",
            "not the CPU{}: a wait py-spy cannot see (a blocked event loop, the pool, the database)",
        )
    elif math.isfinite(loop) and loop >= MOSTLY:
        short, long = "the event loop", "the event loop, which runs the work itself{}"
    elif gil >= MOSTLY:
        short, long = "the GIL", "the GIL, and the CPU with it{}"
    elif gil <= 1 - MOSTLY:
        short, long = "the CPU", "the CPU, not the GIL{}"
    else:
        short, long = "the GIL or the CPU", "the GIL part of the time, the CPU alone the rest{}"
    return long.format(f" (app CPU busy {busy:.0%}, {gil:.0%} of it holding the GIL)") if detail else short


def with_waits(table: pd.DataFrame, waits: pd.DataFrame) -> pd.DataFrame:
    """interference()'s rows with the profiled `cpu_busy` and `gil_share` beside each kind (NaN where the run
    profiled nothing)."""
    if table.empty:
        return table
    return table.merge(waits, on=["backend", "app", "kind"], how="left")
