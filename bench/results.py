"""Run-folder I/O: meta.json, points.csv (appended point by point), and the load generator's files."""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from shared.config import REPO_ROOT

RESULTS_ROOT = REPO_ROOT / "results"
POINT_COLUMNS = [
    "run_id", "point_id", "app", "variant", "driver", "scenario", "users", "db_ms", "repeat", "order", "mode",
    "recorded", "target_rps", "warmup_s", "duration_s", "requests", "failures", "rps", "p50_ms", "p90_ms", "p95_ms",
    "p99_ms", "max_ms", "mean_ms", "p99_uncorrected_ms", "late", "locust_cpu_max", "locust_cpu_mean",
    "app_cpu_mean", "app_rss_max_mb", "db_cpu_mean", "db_rss_max_mb", "threads_connected_max",
    "com_select", "com_insert", "com_update", "com_delete", "com_commit", "com_rollback", "questions",
    "statements_expected", "statements_check", "acked_writes", "missing_writes", "valid", "invalid_reasons",
    "workers", "thread_tokens", "pool_size", "max_overflow", "event_loop",
]  # fmt: skip
PACKAGES = (
    "fastapi", "starlette", "uvicorn", "uvloop", "SQLAlchemy", "PyMySQL", "mysqlclient", "asyncmy", "aiomysql",
    "pydantic", "anyio", "locust", "gevent", "pwdlib", "argon2-cffi", "hdrhistogram",
)  # fmt: skip


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_dir(label: str, root: Path = RESULTS_ROOT) -> Path:
    run_id = f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{label}"
    path = root / run_id
    path.mkdir(parents=True, exist_ok=False)
    (path / "points").mkdir()
    return path


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        try:
            return subprocess.run(
                ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"git_sha": git("rev-parse", "HEAD") or None, "git_dirty": bool(git("status", "--porcelain"))}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        **git_state(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": versions,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)),
    }


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def append_point(run_dir: Path, row: dict[str, Any]) -> None:
    path = run_dir / "points.csv"
    new = not path.exists()
    with path.open("a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=POINT_COLUMNS, extrasaction="ignore")
        if new:
            w.writeheader()
        w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in POINT_COLUMNS})


@dataclass
class LoadgenResult:
    """The merged output of every Locust process of one point."""

    files: int = 0
    requests: int = 0
    failures: int = 0
    late: int = 0
    hdr: HdrHistogram | None = None
    hdr_uncorrected: HdrHistogram | None = None
    per_second: dict[int, int] = field(default_factory=dict)
    by_name: dict[str, dict[str, int]] = field(default_factory=dict)
    acked: dict[str, list[int]] = field(default_factory=lambda: {"users": [], "items": []})
    failure_samples: list[str] = field(default_factory=list)
    window: tuple[float, float] | None = None
    expected_statements: dict[str, dict[str, float]] = field(default_factory=dict)


def _merge_hdr(into: HdrHistogram | None, encoded: str | None) -> HdrHistogram | None:
    if not encoded:
        return into
    hist = HdrHistogram.decode(encoded)
    if into is None:
        return hist
    into.add(hist)
    return into


def read_loadgen(*point_dirs: Path) -> LoadgenResult:
    """Every Locust process's output of one point (or of several points run together), merged."""
    out = LoadgenResult()
    for path in sorted(p for d in point_dirs for p in d.glob("loadgen-*.json")):
        data = read_json(path)
        out.files += 1
        out.requests += int(data.get("requests", 0))
        out.failures += int(data.get("failures", 0))
        out.late += int(data.get("late", 0) or 0)
        out.hdr = _merge_hdr(out.hdr, data.get("hdr"))
        out.hdr_uncorrected = _merge_hdr(out.hdr_uncorrected, data.get("hdr_uncorrected"))
        for sec in data.get("per_second", []):
            out.per_second[int(sec["t"])] = out.per_second.get(int(sec["t"]), 0) + int(sec["requests"])
        for name, counts in data.get("by_name", {}).items():
            agg = out.by_name.setdefault(name, {"requests": 0, "failures": 0})
            agg["requests"] += int(counts.get("requests", 0))
            agg["failures"] += int(counts.get("failures", 0))
        for kind in ("users", "items"):
            out.acked[kind].extend(int(i) for i in data.get("acked", {}).get(kind, []))
        out.failure_samples.extend(data.get("failure_samples", [])[:20])
        out.expected_statements.update(data.get("expected_statements") or {})
        win = data.get("window") or {}
        if win.get("start") and win.get("end"):
            out.window = (float(win["start"]), float(win["end"]))
    return out


def percentiles_ms(hist: HdrHistogram | None) -> dict[str, float | None]:
    """p50..max from an HdrHistogram of microseconds, in milliseconds."""
    keys = {"p50_ms": 50.0, "p90_ms": 90.0, "p95_ms": 95.0, "p99_ms": 99.0}
    if hist is None or hist.get_total_count() == 0:
        return {**dict.fromkeys(keys), "max_ms": None, "mean_ms": None}
    out: dict[str, float | None] = {
        k: round(hist.get_value_at_percentile(p) / 1000, 3) for k, p in keys.items()
    }
    out["max_ms"] = round(hist.get_max_value() / 1000, 3)
    out["mean_ms"] = round(hist.get_mean_value() / 1000, 3)
    return out
