"""Reports of real runs of the make targets, rebuilt from their recorded files (tests/fixtures/runs/, each
made by the command tests/fixtures/README.md names): every target's report must build and say what it
measured. Pure: copies a folder and runs `bench report`, no server."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import REPO_ROOT

RUNS = Path(__file__).parent / "fixtures" / "runs"


def report(name: str, tmp_path: Path) -> str:
    run = Path(shutil.copytree(RUNS / name, tmp_path / name))
    proc = subprocess.run([sys.executable, "-m", "bench", "report", str(run)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run / "report.html").is_file()
    return (run / "report.md").read_text()


def test_the_paired_report_gives_verdicts(tmp_path: Path) -> None:
    """The default report's path: paired points only (5 repeats of sync and async sharing the CPU)."""
    text = report("paired", tmp_path)
    says = text.split("## What this run says", 1)[1].split("\n## ", 1)[0]
    assert (
        "async served more on read_heavy (+7.4%" in says and "sync served more on write_heavy (+8.5%" in says
    )
    verdicts = text.split("## Verdicts", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in verdicts.splitlines() if line.startswith("| mariadb |")]
    assert [r.split(" | ")[1] for r in rows] == ["read_heavy, 16 users", "write_heavy, 16 users"], verdicts
    assert all("paired, same CPU" in r and r.endswith("| 5 |") for r in rows), rows


def test_the_interference_report_builds_from_interference_points_alone(tmp_path: Path) -> None:
    """`make bench-interference` crashed at its report (issue 26: the run's spread merged an empty table
    of other solo points, 'merge on float64 and object columns for key load'); it must build and give the
    probes' table: 3 apps x 3 kinds of neighbour work."""
    text = report("interference", tmp_path)
    table = text.split("## Interference: does one request hold up the others?", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| mariadb |")]
    assert len(rows) == 9, table
    assert "| mariadb | async-blocking | slow queries | 6.0 → 419.8 |" in table


@pytest.mark.parametrize("name", sorted(p.name for p in RUNS.iterdir()))
def test_every_fixture_is_small_and_has_no_logs(name: str) -> None:
    files = [p for p in (RUNS / name).rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < 1_000_000
    assert not [p for p in files if p.suffix == ".log" or p.name.startswith(("locust", "telemetry"))]
