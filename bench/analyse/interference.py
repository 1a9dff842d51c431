"""The interference experiment (loadtests/interference.py): how much slower a fast request gets when it
shares the app with other work. Per app and neighbour kind, the probes' p50 and p99 (each repeat's from its
own per-route histogram) next to the same probes alone, as a factor with a 95% log-ratio t interval over
repeats."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.analyse.stats import ratio_ci
from bench.catalog import app_rank
from bench.store.loadgen import merge_histograms, percentiles_ms

PROBE = "GET /users/{id} probe"
PREFIX = "interference_"
KINDS = ("cpu", "argon2", "io")


def _probe(lg: Any) -> dict[str, float]:
    pct = percentiles_ms(lg.hdr_by_name.get(PROBE) if lg is not None else None)
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
        ref_hdr = merge_histograms(lg.hdr_by_name.get(PROBE) for lg in alone["loadgen"] if lg is not None)
        for kind in KINDS:
            beside = group[group["scenario"] == PREFIX + kind]
            if beside.empty:
                continue
            got = [_probe(lg) for lg in beside["loadgen"]]
            hdr = merge_histograms(lg.hdr_by_name.get(PROBE) for lg in beside["loadgen"] if lg is not None)
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
                }  # fmt: skip
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
    """'12× (95% CI 9-16×)' or '12× (1 repeat: no CI)'."""
    main = f"{row['p99_factor']:.1f}×"
    if all(np.isfinite([row["p99_low"], row["p99_high"]])):
        return f"{main} (95% CI {row['p99_low']:.1f}–{row['p99_high']:.1f}×)"
    return f"{main} (no CI: fewer than 2 repeats)"
