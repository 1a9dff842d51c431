"""No 5xx for any input: schemathesis generates requests from each app's own OpenAPI document and checks
every answer, against the app served for real (uvicorn on a free port, the real database).

Every check of schemathesis runs (`--checks all`), none excluded: the two that concern authentication
(`ignored_auth`, `object_level_authorization`) apply only to operations that declare security, and this API
declares none, so they pass vacuously. The phases: coverage (boundary and invalid values of every
parameter), fuzzing (random valid and invalid requests), and stateful (create -> read -> update -> delete
chains along the OpenAPI links FastAPI's document lets schemathesis infer).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.backends import Backend
from bench.catalog import APP_BY_NAME, AppEntry
from shared.config import Settings
from tests.conftest import serve

pytestmark = pytest.mark.e2e
SEED = 20261125
EXAMPLES = 120  # per operation and phase: about 1,200-1,300 cases per app, 40-50 s here
MIN_CASES = 1000


def schemathesis() -> str:
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is missing: it is a dev dependency (make venv installs it)"
    return found


@pytest.mark.parametrize("entry", [APP_BY_NAME["sync"], APP_BY_NAME["async"]], ids=lambda e: e.name)
def test_schemathesis_finds_no_failure(
    entry: AppEntry, backend: Backend, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both apps on MariaDB (the contract and fault tests cover PostgreSQL; the apps' code is the same)."""
    with serve(entry, settings, tmp_path / "app.log") as app:
        proc = subprocess.run(
            [
                schemathesis(),
                "run",
                f"{app.base_url}/openapi.json",
                "--checks",
                "all",
                "-n",
                str(EXAMPLES),
                "--seed",
                str(SEED),
                "--workers",
                "2",
                "--no-color",
                "--generation-database",
                "none",
                "--phases",
                "coverage,fuzzing,stateful",
                "--request-timeout",
                "30",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,  # its .schemathesis/ cache: not in the repo
        )
    out = proc.stdout + proc.stderr
    generated = re.search(r"(\d+) generated", out)
    cases = int(generated.group(1)) if generated else 0
    with capsys.disabled():
        print(
            f"\n  schemathesis against {entry.name} on {backend.name}: seed {SEED}, {cases} cases, exit "
            f"{proc.returncode}"
        )
    assert proc.returncode == 0, out[-6000:]
    assert cases >= MIN_CASES, out[-3000:]
    log = app.log_path.read_text()
    assert "Traceback" not in log and "database error" not in log, log[-3000:]
