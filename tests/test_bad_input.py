"""The harness given bad input: damaged run folders given to `bench report` / `bench compare`, bad flags,
and a seed interrupted half-way. One line says what is wrong and what to do; nothing is half-written."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bench.backends import Backend
from bench.config import Matrix
from shared.config import Settings
from tests.runs import command, one_line_error

FIXTURE = Path(__file__).parent / "fixtures" / "run-small"


@pytest.fixture
def run_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURE, tmp_path / FIXTURE.name))


def test_truncated_points_csv(run_copy: Path) -> None:
    table = run_copy / "points.csv"
    table.write_text(table.read_text()[:-40])  # the last row cut short, as a crash mid-write leaves it
    one_line_error(command("report", str(run_copy)), "points.csv", "truncated", "run the benchmark again")
    one_line_error(command("compare", str(run_copy), str(FIXTURE)), "truncated")


def test_a_folder_of_another_format(run_copy: Path) -> None:
    (run_copy / "points.csv").write_text("name,value\nthroughput,500\n")
    one_line_error(command("report", str(run_copy)), "lacks the columns", "results/README.md")


def test_not_a_run_folder_and_an_empty_run(tmp_path: Path) -> None:
    one_line_error(command("report", str(tmp_path / "nope")), "no run folder")
    one_line_error(command("report", str(tmp_path)), "not a run folder")
    empty = tmp_path / "20260101-000000-empty"
    empty.mkdir()
    (empty / "meta.json").write_text('{"run_id": "x", "complete": false}')
    assert command("report", str(empty)).returncode == 0  # a run with no point yet still reports
    one_line_error(command("compare", str(empty), str(FIXTURE)), "has no points.csv")
    (empty / "meta.json").write_text('{"run_id": ')
    one_line_error(command("report", str(empty)), "meta.json", "not valid JSON")


def test_a_corrupt_loadgen_file_is_named_and_its_point_left_out(run_copy: Path) -> None:
    point = next(p for p in (run_copy / "points").iterdir() if "read_heavy" in p.name)
    next(point.glob("loadgen-*.json")).write_text('{"requests": 12, "hdr": "AAA')
    proc = command("report", str(run_copy))
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and point.name in warnings[0] and "run again" in warnings[0], proc.stderr
    page = (run_copy / "report.html").read_text()
    assert "Damaged point, left out" in page and "loadgen_unreadable" in page


def test_bad_flags_say_what_is_wrong_in_one_line() -> None:
    one_line_error(command("run", "--users", "4,x"), "--users", "comma-separated integers")
    one_line_error(command("run", "--app", "nope"), "unknown app 'nope'", "sync")
    one_line_error(command("run", "--scenario", "nope"), "unknown scenario 'nope'", "read_heavy")
    one_line_error(command("run", "--loop", "tokio"), "--loop")
    proc = command("run", "-a", "async-blocking", "-s", "signup")
    one_line_error(proc, "nothing to run")


# Per backend: how the test finds the seeding session, and how it ends it (as a crash would).
SEED_SESSION = {
    "mariadb": (
        "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT INTO users%'",
        "KILL CONNECTION {}",
    ),
    "postgres": (
        "SELECT pid FROM pg_stat_activity WHERE query LIKE 'COPY users%' AND pid <> pg_backend_pid()",
        "SELECT pg_terminate_backend({})",
    ),
}


def test_help_shows_the_defaults_its_texts_name() -> None:
    """The defaults written into help texts ("[default: 16,64]") are shown, not swallowed as style tags."""
    for words, defaults in (
        (
            ("run",),
            (
                "[default: 16,64]",
                "[default: 4]",
                "mixed_crud: twice). [default: 4]",
                # the repeats it states are the ones a run uses (they were left behind once: 3 after 4)
                f"sharing the app CPU (the verdicts). [default: {Matrix().paired_repeats}]",
                f"where the CPU was not the limit). [default: {Matrix().sweep_repeats}]",
                "[default: --fresh-apps]",
                "[default: 0,5,20,50]",
            ),
        ),
        (("perf-check",), ("[default: sync, async]", "[default: mariadb, postgres]")),
        (("db", "up"), ("[default: mariadb, or DATABASE_URL's]",)),
    ):
        proc = command(*words, "--help", timeout=60, env={**os.environ, "COLUMNS": "250"})
        assert proc.returncode == 0, proc.stderr
        text = " ".join(proc.stdout.split())
        for default in defaults:
            assert default in text, (words, default)


def test_an_interrupted_seed_leaves_the_previous_data(
    backend: Backend, settings: Settings, db_engine: Engine
) -> None:
    """The seed is one transaction: ending its session half-way (as a Ctrl-C or a crash would end it)
    leaves the data as it was, never half a seed."""
    find, end = SEED_SESSION[backend.name]
    backend.seed(settings, 50, 2)
    failure: list[BaseException] = []

    def big_seed() -> None:
        try:
            backend.seed(settings, 200_000, 3)
        except BaseException as exc:  # noqa: BLE001 - the test looks at what ended it
            failure.append(exc)

    thread = threading.Thread(target=big_seed)
    thread.start()
    try:
        with db_engine.connect() as monitor:
            victim = None
            deadline = time.monotonic() + 20
            while victim is None and time.monotonic() < deadline:
                victim = monitor.execute(text(find)).scalar()
                monitor.rollback()
                time.sleep(0.01)
            assert victim is not None, "the seed never reached its inserts"
            monitor.execute(text(end.format(int(victim))))
    finally:
        thread.join(timeout=60)
    assert failure and not isinstance(failure[0], AssertionError), failure
    with db_engine.connect() as conn:
        users: int = conn.execute(text("SELECT COUNT(*) FROM users")).scalar_one()
        items: int = conn.execute(text("SELECT COUNT(*) FROM items")).scalar_one()
    assert (users, items) == (50, 100)


def test_a_missing_loadgen_file_is_named(run_copy: Path) -> None:
    point = next(p for p in (run_copy / "points").iterdir() if "slow_db" in p.name)
    for path in point.glob("loadgen-*.json"):
        path.unlink()
    proc = command("report", str(run_copy))
    assert proc.returncode == 0, proc.stderr
    assert point.name in proc.stderr and "no loadgen" in proc.stderr and "run it again" in proc.stderr
