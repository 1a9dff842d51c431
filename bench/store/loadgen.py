"""The load generator's output of one point, merged: `loadgen-<pid>.json` from a single Locust process, or
`loadgen-w<index>.json`, one per worker, written by the master from the recordings its workers sent.

Histograms are merged, never averaged: `merge_histograms` is the one place that adds HdrHistograms,
used here, by the analysis and by the gate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

FloatArray = np.ndarray[tuple[int], np.dtype[np.float64]]
PERCENTILES = {"p50_ms": 50.0, "p90_ms": 90.0, "p95_ms": 95.0, "p99_ms": 99.0}


class LoadgenError(ValueError):
    """A loadgen file that cannot be read: the message names it."""


@dataclass
class Second:
    """Completions in one second of a point, counted from the window's start (negative: warm-up)."""

    requests: int = 0
    failures: int = 0
    hdr: HdrHistogram | None = None  # latencies completed in that second (absent in older runs)


@dataclass
class LoadgenResult:
    """The merged output of every Locust process of one point (or of the points run together)."""

    files: int = 0
    requests: int = 0
    failures: int = 0
    late: int = 0
    hdr: HdrHistogram | None = None
    hdr_uncorrected: HdrHistogram | None = None
    seconds: dict[int, Second] = field(default_factory=dict)
    by_name: dict[str, dict[str, int]] = field(default_factory=dict)
    hdr_by_name: dict[str, HdrHistogram] = field(default_factory=dict)  # per route (absent in older runs)
    acked: dict[str, list[int]] = field(default_factory=lambda: {"users": [], "items": []})
    failure_samples: list[str] = field(default_factory=list)
    window: tuple[float, float] | None = None
    expected_statements: dict[str, dict[str, float]] = field(default_factory=dict)
    loadgen_cpu_max: float | None = None  # the busiest Locust process's own CPU reading (%, one core)
    clock_offset_max: float | None = None  # distributed: the largest |master clock - worker clock| (s)
    hosts: list[str] = field(default_factory=list)  # the load generators' host names, one per file

    @property
    def per_second(self) -> dict[int, int]:
        """Requests completed in each second of the window (t >= 0)."""
        return {t: s.requests for t, s in self.seconds.items() if t >= 0}

    def window_samples(self) -> FloatArray:
        return window_samples(self.per_second, self.window)


def merge_histograms(hists: Iterable[HdrHistogram | None]) -> HdrHistogram | None:
    """A new histogram holding every value of `hists` (the inputs are left untouched)."""
    present = [h for h in hists if h is not None]
    if not present:
        return None
    first = present[0]
    out = HdrHistogram(first.lowest_trackable_value, first.highest_trackable_value, first.significant_figures)
    for hist in present:
        out.add(hist)
    return out


def _decode(encoded: str | None) -> HdrHistogram | None:
    return HdrHistogram.decode(encoded) if encoded else None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LoadgenError(
            f"{path} is not readable JSON ({type(exc).__name__}): the point must be run again"
        ) from None
    if not isinstance(data, dict):
        raise LoadgenError(f"{path} is not a loadgen object: the point must be run again")
    return data


def read_loadgen(*point_dirs: Path) -> LoadgenResult:
    """Every Locust process's output of one point (or of several points run together), merged."""
    out = LoadgenResult()
    for path in sorted(p for d in point_dirs for p in d.glob("loadgen-*.json")):
        data = _read(path)
        try:
            _merge(out, data)
        except (KeyError, TypeError, ValueError) as exc:
            raise LoadgenError(f"{path} has a malformed field ({exc}): the point must be run again") from None
    return out


def _merge(out: LoadgenResult, data: dict[str, Any]) -> None:
    out.files += 1
    out.requests += int(data.get("requests", 0))
    out.failures += int(data.get("failures", 0))
    out.late += int(data.get("late", 0) or 0)
    out.hdr = merge_histograms([out.hdr, _decode(data.get("hdr"))])
    out.hdr_uncorrected = merge_histograms([out.hdr_uncorrected, _decode(data.get("hdr_uncorrected"))])
    for sec in data.get("per_second", []):
        second = out.seconds.setdefault(int(sec["t"]), Second())
        second.requests += int(sec["requests"])
        second.failures += int(sec.get("failures", 0))
        second.hdr = merge_histograms([second.hdr, _decode(sec.get("hdr"))])
    for name, encoded in (data.get("hdr_by_name") or {}).items():
        merged = merge_histograms([out.hdr_by_name.get(name), _decode(encoded)])
        if merged is not None:
            out.hdr_by_name[name] = merged
    for name, counts in data.get("by_name", {}).items():
        agg = out.by_name.setdefault(name, {"requests": 0, "failures": 0})
        agg["requests"] += int(counts.get("requests", 0))
        agg["failures"] += int(counts.get("failures", 0))
    for kind in ("users", "items"):
        out.acked[kind].extend(int(i) for i in data.get("acked", {}).get(kind, []))
    out.failure_samples.extend(data.get("failure_samples", [])[:20])
    out.expected_statements.update(data.get("expected_statements") or {})
    cpu = data.get("cpu_max")
    if cpu is not None:
        out.loadgen_cpu_max = max(out.loadgen_cpu_max or 0.0, float(cpu))
    offset = data.get("clock_offset_s")
    if offset is not None:
        out.clock_offset_max = max(out.clock_offset_max or 0.0, abs(float(offset)))
    if data.get("host"):
        out.hosts.append(str(data["host"]))
    win = data.get("window") or {}
    if win.get("start") and win.get("end"):
        out.window = (float(win["start"]), float(win["end"]))


def window_samples(per_second: dict[int, int], window: tuple[float, float] | None) -> FloatArray:
    """Requests per second over the window; a second without any completed request counts 0."""
    if window is not None:
        seconds = range(int(np.ceil(window[1] - window[0] - 1e-6)))
    elif per_second:
        seconds = range(min(per_second), max(per_second) + 1)
    else:
        seconds = range(0)
    return np.array([per_second.get(t, 0) for t in seconds], dtype=np.float64)


def percentiles_ms(hist: HdrHistogram | None) -> dict[str, float | None]:
    """p50..p99, max and mean from an HdrHistogram of microseconds, in milliseconds."""
    if hist is None or hist.get_total_count() == 0:
        return {**dict.fromkeys(PERCENTILES), "max_ms": None, "mean_ms": None}
    out: dict[str, float | None] = {
        k: round(hist.get_value_at_percentile(p) / 1000, 3) for k, p in PERCENTILES.items()
    }
    out["max_ms"] = round(hist.get_max_value() / 1000, 3)
    out["mean_ms"] = round(hist.get_mean_value() / 1000, 3)
    return out


def p99_ms(hist: HdrHistogram | None) -> float:
    value = percentiles_ms(hist)["p99_ms"]
    return math.nan if value is None else value
