"""A user's own pair of apps and their own plain Locust file, measured with the documented options only
(README.md, "Your own app"): real MariaDB, real uvicorn, real Locust.

The apps (tests/fixtures/tutorial_app/) are FastAPI's SQL tutorial as users write it: a `yield` Session
dependency, lazy relationships, trailing-slash routes, no /healthz, settings from an env file; the Locust
file is an HttpUser that imports nothing of ours. Their tables (tutorial_users, tutorial_items) sit beside
the harness's own users and items in the test database.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from bench.analyse.work import route_statements, unequal
from bench.backends import backend_for
from bench.backends.base import TEST_DATABASE
from bench.catalog import resolve_app
from bench.config import AppLimits, AppSource, SeedData
from bench.measure.locust import PLUGIN, failure_line
from bench.processes import Pinning
from bench.stack import Stack
from shared.config import REPO_ROOT, Settings
from shared.db_url import build_url
from tests.runs import PAIRED, bench_env, command, finished, flags, one_line_error, only_run_dir
from tests.test_harness import check_no_secrets

TUTORIAL = Path(__file__).parent / "fixtures" / "tutorial_app"
LOCUSTFILE = TUTORIAL / "locustfile.py"
THEIR_APPS = ("-a", "sync=tutorial_sync.main:app", "-a", "async=tutorial_async.main:app")
TINY = flags(apps=(), scenarios=(), users=2, **PAIRED)


def mariadb_settings() -> Settings:
    settings = Settings()
    if settings.database_url is not None and settings.dialect.name != "mariadb":
        pytest.skip(f"DATABASE_URL names a {settings.dialect.name} server; the tutorial apps use MariaDB")
    return backend_for("mariadb").settings(settings, TEST_DATABASE)


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    """The user's settings: where each of their apps finds the (test) database."""
    settings = mariadb_settings()
    path = tmp_path / "tutorial.env"
    lines = [
        f"{key}='{build_url(settings, driver).render_as_string(hide_password=False)}'"
        for key, driver in (("TUTORIAL_DATABASE_URL", "pymysql"), ("TUTORIAL_ASYNC_DATABASE_URL", "asyncmy"))
    ]
    path.write_text("\n".join(["# the tutorial apps' settings", *lines]) + "\n")
    return path


def rows_of(run: Path) -> list[dict[str, str]]:
    with (run / "points.csv").open() as f:
        return list(csv.DictReader(f))


@pytest.mark.e2e
def test_their_apps_and_their_locustfile_give_valid_points(tmp_path: Path, env_file: Path) -> None:
    out = tmp_path / "results"
    proc = finished(
        "--app-dir",
        str(TUTORIAL),
        "--env-file",
        str(env_file),
        *THEIR_APPS,
        "-s",
        str(LOCUSTFILE),
        *TINY,
        out=out,
    )
    run = only_run_dir(out)
    rows = rows_of(run)
    # each app alone at 2 users, and the pair (sync, async) over the same seconds: two rows
    assert sorted((r["app"], r["partner"]) for r in rows) == [
        ("async", ""),
        ("async", "sync"),
        ("sync", ""),
        ("sync", "async"),
    ]
    for r in rows:
        assert r["valid"] == "True", (r["point_id"], r["invalid_reasons"])
        assert int(r["requests"]) > 0 and r["failures"] == "0" and r["scenario"] == "locustfile"
        assert r["statements_check"] == "not declared by the scenario"
    for loadgen in run.glob("points/*/loadgen-*.json"):  # the plugin recorded their three tasks
        assert set(json.loads(loadgen.read_text())["by_name"]) == {
            "GET /users/{id}",
            "GET /users/?limit=20",
            "POST /users/",
        }
    assert "invalid" not in proc.stderr
    check_no_secrets(run, mariadb_settings())  # the env file's password stays out of the run folder
    # The statement pass (automatic: their work is not declared) ran first, one user per app, and shows
    # the tutorial's lazy `items` load: one SELECT per listed user in sync, one selectin query in async.
    table = route_statements(run)
    selects = {(str(r["app"]), str(r["route"])): float(r["select"]) for _, r in table.iterrows()}
    listing = "GET /users/?limit=20"
    assert selects[("sync", listing)] >= 10 > 3 >= selects[("async", listing)], selects
    assert selects[("sync", "GET /users/{id}")] == selects[("async", "GET /users/{id}")]
    flagged = {u.route: u for u in unequal(table)}
    assert flagged[listing].n_plus_one and "likely N+1 in sync" in flagged[listing].text
    assert "GET /users/{id}" not in flagged
    assert sorted(p.name for p in (run / "points").iterdir() if p.name.endswith("__stmt")) == [
        "async__locustfile__u1__d0__r1__stmt",
        "sync__locustfile__u1__d0__r1__stmt",
    ]


@pytest.mark.e2e
def test_a_locustfile_that_fails_says_why_in_its_point(tmp_path: Path) -> None:
    """Locust stops at once on a broken locustfile: the point's reason is Locust's own error line, printed
    as the run goes, not a bare no_loadgen_output."""
    broken = tmp_path / "broken.py"
    broken.write_text(LOCUSTFILE.read_text().replace("def read_users(self) -> None:", "def read_users(self)"))
    out = tmp_path / "results"
    proc = finished(*flags(scenarios=[str(broken)], users=1, paired_repeats=0, duration=1, warmup=0), out=out)
    [row] = rows_of(only_run_dir(out))
    assert row["valid"] == "False" and row["invalid_reasons"] == "locust_failed(SyntaxError: expected ':')"
    assert "invalid sync__broken__u1__d0__r1: locust_failed(SyntaxError: expected ':')" in proc.stderr


def locust(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "locust", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_the_plugin_loads_beside_any_locustfile_once(tmp_path: Path) -> None:
    """`-f plugin.py,their_file.py` gives a plain file the plugin's options; beside a scenario that imports
    it too (and twice over) its options are not registered twice. Alone, a plain file rejects them, and
    failure_line finds Locust's own words in its log."""
    plugin_options = ("--seed-users", "5", "--bench-out-dir", str(tmp_path))
    for files in (
        f"{PLUGIN},{LOCUSTFILE}",
        f"{PLUGIN},{REPO_ROOT / 'loadtests' / 'read_heavy.py'}",
        f"{PLUGIN},{PLUGIN},{LOCUSTFILE}",
    ):
        proc = locust("-f", files, "--list", *plugin_options, cwd=tmp_path)
        assert proc.returncode == 0 and "Available Users" in proc.stdout, proc.stderr[-2000:]
    alone = locust("-f", str(LOCUSTFILE), "--list", *plugin_options, cwd=tmp_path)
    assert alone.returncode == 2
    log = tmp_path / "locust.log"
    log.write_text(alone.stderr)
    line = failure_line(log)  # argparse's line, cut to one short reason
    assert line and line.startswith("error: unrecognized arguments: --seed-users") and len(line) <= 120, line


@pytest.mark.e2e
def test_the_health_check_takes_their_path_or_any_answer(tmp_path: Path, env_file: Path) -> None:
    """Their app has no /healthz: by default any answer counts as up; --health-path names a path of theirs,
    which must answer 200. No /limits either: the limits are empty, not a 404 body."""
    spec = AppSource(TUTORIAL, env_file, "/docs").apply(resolve_app("sync=tutorial_sync.main:app"))
    assert spec.root == TUTORIAL and spec.health_path == "/docs" and "TUTORIAL_DATABASE_URL" in spec.env
    with Stack(
        backend_for("mariadb"),
        [spec],
        limits=AppLimits(pool_size=2),
        seed=SeedData(users=50, items=1),
        pinning=Pinning.plan(False),
        log_dir=tmp_path,
        database=TEST_DATABASE,
    ) as stack:
        app = stack.app("sync")
        assert app.healthy() and app.limits == {}
        assert not replace(app, spec=replace(spec, health_path="/healthz")).healthy()  # theirs has none
        assert replace(app, spec=replace(spec, health_path=None)).healthy()


def test_their_options_say_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return command("run", *args, timeout=60)

    one_line_error(run("--app-dir", str(tmp_path / "nope"), *THEIR_APPS), "--app-dir", "no such folder")
    one_line_error(run("--env-file", str(tmp_path / "nope.env"), *THEIR_APPS), "--env-file", "no such file")
    one_line_error(run("--health-path", "docs", *THEIR_APPS), "--health-path", "starting with /")
    one_line_error(run("--app-dir", str(TUTORIAL), "-a", "sync"), "your own apps", "NAME=module:attr")


@pytest.mark.e2e
def test_the_gate_catches_an_extra_query_in_their_pull_request(tmp_path: Path, env_file: Path) -> None:
    """Their repository: the tutorial apps committed (the base), then a change that sends one more SELECT
    on GET /users/{id} in the sync app. `bench perf-check` with their app, their locustfile and the base
    commit fails at once on the statement counts, naming the route."""
    repo = tmp_path / "their-repo"
    shutil.copytree(TUTORIAL, repo, ignore=shutil.ignore_patterns("__pycache__"))

    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=repo,
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "base")
    app = repo / "tutorial_sync" / "main.py"
    text = app.read_text()
    slower = text.replace(
        "    user = db.get(User, user_id)\n",
        "    db.scalar(select(User.id).limit(1))\n    user = db.get(User, user_id)\n",
    )
    assert slower != text
    app.write_text(slower)  # the pull request, not committed: the working tree is the current code
    proc = command(
        "perf-check",
        "--app-dir",
        str(repo),
        "--env-file",
        str(env_file),
        "-a",
        "sync=tutorial_sync.main:app",
        "-s",
        str(repo / "locustfile.py"),
        "--base-ref",
        "HEAD",
        "--out",
        str(tmp_path / "results"),
        env=bench_env(),
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "FAILED: more statements per request" in proc.stderr
    text = (tmp_path / "results" / "gate.md").read_text()  # the workflow's summary, as the gate writes it
    assert "GET /users/{id}: SELECT 2 → 3 per request (sync" in text, text


def test_the_workflow_a_team_copies_runs_the_documented_gate() -> None:
    """docs/workflows/perf-gate-your-app.yml parses, and its gate step uses options `bench perf-check` has."""
    flow = yaml.safe_load((REPO_ROOT / "docs" / "workflows" / "perf-gate-your-app.yml").read_text())
    step = next(
        s for s in flow["jobs"]["perf-gate"]["steps"] if s.get("name") == "Perf gate against the merge base"
    )
    options = set(re.findall(r"(--[a-z-]+)", step["run"]))
    assert {"--app-dir", "--env-file", "--base-ref"} <= options
    help_text = command("perf-check", "--help", env={**os.environ, "COLUMNS": "200"}).stdout
    assert all(option in help_text for option in options), options
