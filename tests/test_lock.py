"""The lock: .venv holds exactly requirements.lock, and a run says which lock it measured, so that two runs
on different stacks are never compared as if they were the same."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from rich.console import Console

from bench.analyse.report import build_report
from bench.cli.compare import compare_command
from bench.store import lock
from shared.config import REPO_ROOT
from tests.test_compare import make_run

VENV_PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
FIXTURE = Path(__file__).parent / "fixtures" / "run-small"


def moved_lock(tmp_path: Path, package: str = "uvicorn", version: str = "0.54.0") -> Path:
    """A copy of the lock with one package pinned to another version."""
    text = lock.LOCK_FILE.read_text()
    moved, n = re.subn(rf"(?m)^{package}==\S+", f"{package}=={version}", text)
    assert n == 1 and moved != text
    path = tmp_path / "requirements.lock"
    path.write_text(moved)
    return path


def test_the_venv_holds_exactly_the_lock() -> None:
    """`make venv` installs requirements.lock and nothing else (the project itself and pip aside)."""
    proc = subprocess.run(
        [str(VENV_PYTHON), "-m", "bench.store.lock", "check"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pins = lock.pins()
    assert len(pins) > 50 and all(v for v in pins.values())  # direct and transitive, every one pinned
    assert {"fastapi", "sqlalchemy", "uvicorn", "locust", "mypy", "ruff", "greenlet", "starlette"} <= set(
        pins
    )
    # every pin carries hashes (pip --require-hashes refuses the lock otherwise)
    blocks = re.split(r"(?m)^(?=[A-Za-z0-9])", lock.LOCK_FILE.read_text())
    pinned = [b for b in blocks if "==" in b.split("\n", 1)[0]]
    assert len(pinned) == len(pins) and all("--hash=sha256:" in b for b in pinned)


def test_differences_name_missing_moved_and_extra_packages() -> None:
    locked = {"fastapi": "0.165.0", "uvicorn": "0.55.0", "mysqlclient": "2.3.2"}
    present = {"fastapi": "0.165.0", "uvicorn": "0.54.0", "leftover": "1.0", "pip": "23.2.1"}
    diff = lock.differences(locked, present)
    assert diff == {
        "missing": [],
        "other_version": ["uvicorn 0.54.0 (lock: 0.55.0)"],
        "not_in_lock": ["leftover"],
    }
    fixed = lock.differences(locked, present | {"uvicorn": "0.55.0"})
    assert fixed == {"missing": [], "other_version": [], "not_in_lock": ["leftover"]}  # mysqlclient: optional
    assert lock.differences(locked, {})["missing"] == ["fastapi", "uvicorn"]
    assert lock.normalize("PyMySQL") == lock.normalize("pymysql") == "pymysql"
    assert lock.normalize("zope.interface") == "zope-interface"


def test_a_moved_package_changes_the_hash_the_report_and_compare_show(tmp_path: Path) -> None:
    moved = moved_lock(tmp_path)
    assert lock.pins(moved)["uvicorn"] == "0.54.0" != lock.pins()["uvicorn"]
    sha_now, sha_moved = lock.digest(), lock.digest(moved)
    assert sha_now and sha_moved and sha_now != sha_moved

    # two runs, each recording its own lock (as meta.json does through bench.store.rundir.environment)
    runs: list[Path] = []
    for name, sha, uvicorn in (("a", sha_now, "0.55.0"), ("b", sha_moved, "0.54.0")):
        run = make_run(tmp_path, name, 1000, seed=len(runs) + 1)
        meta = {
            "lock_sha256": sha,
            "lock_matches_venv": True,
            "packages": {"uvicorn": uvicorn, "fastapi": "1"},
        }
        (run / "meta.json").write_text(json.dumps(meta))
        runs.append(run)
    out = io.StringIO()
    assert compare_command(runs[0], runs[1], console=Console(file=out, width=200)) == 0
    text = out.getvalue()
    assert f"requirements.lock {sha_now[:12]} vs {sha_moved[:12]}" in text, text
    assert "uvicorn 0.55.0 -> 0.54.0" in text
    # the same stack: no such note
    out = io.StringIO()
    compare_command(runs[0], runs[0], console=Console(file=out, width=200))
    assert "different stacks" not in out.getvalue()

    # the report's header names the lock's hash and the key packages
    run = tmp_path / "report"
    shutil.copytree(FIXTURE, run)
    meta = json.loads((run / "meta.json").read_text()) | {"lock_sha256": sha_moved, "lock_matches_venv": True}
    (run / "meta.json").write_text(json.dumps(meta))
    html, md = build_report(run)
    head = md.read_text().split("## ", 1)[0]
    assert f"requirements.lock {sha_moved[:12]}" in head and "Measured on" in head
    assert sha_moved in html.read_text()


def test_the_installed_bench_script_is_the_module_entry_point() -> None:
    script = Path(sys.executable).parent / "bench"
    proc = subprocess.run([str(script), "run", "--users", "x"], cwd=REPO_ROOT, capture_output=True, text=True)
    assert proc.returncode == 2 and "--users" in proc.stderr, proc.stderr
    entry = next(e for e in metadata.entry_points(group="console_scripts") if e.name == "bench")
    assert entry.value == "bench.cli:main"
