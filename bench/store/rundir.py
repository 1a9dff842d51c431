"""A run folder on disk: its name, meta.json, and the environment every run records."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.store.lock import lock_state
from shared.config import REPO_ROOT

# A profiled point's files (bench/measure/profile.py writes them, bench/analyse/layers.py reads them).
PROFILE_STACKS = "profile.txt"  # py-spy's raw collapsed stacks: the GIL holder's
PROFILE_RUNNING = "profile-running.txt"  # the same, of every running thread, with or without the GIL
PROFILE_SUMMARY = "profile.json"  # the profiler's counts and the point's row
STATEMENTS_SUMMARY = "statements.json"  # a statement-pass point's row (its counts are in its loadgen file)
# The CPU loop timed before and after the run (bench/measure/calibrate.py writes it).
CALIBRATION_FILE = "calibration.json"
REPORT_ERROR_LOG = "report-error.log"  # why the report of a finished run failed (its points are kept)

PACKAGES = (
    "fastapi", "starlette", "uvicorn", "uvloop", "SQLAlchemy",
    "PyMySQL", "mysqlclient", "asyncmy", "aiomysql", "psycopg", "psycopg-binary", "asyncpg",
    "pydantic", "anyio", "locust", "gevent", "pwdlib", "argon2-cffi", "hdrhistogram",
)  # fmt: skip


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_dir(label: str, root: Path) -> Path:
    """`root/YYYYmmdd-HHMMSS-<label>/points/`, new (a second run in the same second gets `-2`)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for n in range(1, 100):
        path = root / (f"{stamp}-{label}" if n == 1 else f"{stamp}-{label}-{n}")
        try:
            path.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            continue
        (path / "points").mkdir()
        return path
    raise FileExistsError(f"cannot create a new run folder under {root}")


def write_json(path: Path, data: Any) -> None:
    """Atomically (a reader never sees half a file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


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


def virtualisation() -> str:
    """systemd-detect-virt's answer (kvm, microsoft, none...), else whether the CPU says it runs under one."""
    try:
        out = subprocess.run(
            ["systemd-detect-virt"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        if out:
            return out
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    return "a hypervisor (cpuinfo flag)" if " hypervisor" in flags else "none seen"


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
        "kernel": platform.release(),
        "virtualisation": virtualisation(),
        "packages": versions,
        **lock_state(),  # lock_sha256: which stack (requirements.lock) this run measured
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_available": len(os.sched_getaffinity(0)),
    }
