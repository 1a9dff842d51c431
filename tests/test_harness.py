"""The harness end to end: real MariaDB, real uvicorn apps, real Locust; and its interruption."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from bench.backends.mariadb import MariaDB
from bench.catalog import resolve_app
from bench.config import OTHERS_CPU_LIMIT, AppLimits, SeedData
from bench.measure.telemetry import Role, RoleStats, Sampler, Telemetry
from bench.measure.validity import Observed, invalid_reasons
from bench.processes import Pinning, harness_on
from bench.stack import Stack
from bench.store.rows import POINT_COLUMNS
from bench.store.rundir import REPORT_ERROR_LOG
from shared.config import DB_ENV_FILE, REPO_ROOT, Settings
from tests.interrupt import cmdline, interrupt_when
from tests.runs import (
    BOTH,
    PAIRED,
    bench_env,
    command,
    flags,
    in_background,
    only_run_dir,
    run_args,
    run_bench,
)

pytestmark = pytest.mark.e2e
FIXTURES = Path(__file__).parent / "fixtures"


def test_run_writes_the_contract_and_flags_an_induced_failure(tmp_path: Path) -> None:
    scenarios = ["read_heavy", "signup", str(FIXTURES / "missing_route.py")]
    # --no-statements: the statement pass (missing_route.py is no catalog scenario) is tests/test_your_app.py
    options = flags(
        apps=BOTH, scenarios=scenarios, users="2,4", pool_size=4, same_apps=True, statements=False, **PAIRED
    )
    run = run_bench(*options, out=tmp_path)

    meta = json.loads((run / "meta.json").read_text())
    # 12 solo points (2 apps x 3 scenarios x 2 loads) and 3 paired ones (sync with async, at 4 users each)
    assert meta["complete"] is True and meta["points_done"] == meta["points_planned"] == 15
    assert set(meta["limits"]) == {"sync", "async"}
    for kind, limits in meta["limits"].items():
        assert limits["app"] == kind and limits["pool_size"] == 4 and limits["max_overflow"] == 0
        assert limits["workers"] == 1
    assert meta["limits"]["sync"]["thread_tokens"] == 4  # tokens = pool + overflow unless told otherwise
    assert meta["databases"]["mariadb"]["version"] and meta["pinning"] and meta["git_sha"]

    with (run / "points.csv").open() as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == POINT_COLUMNS
        rows = list(reader)
    assert len(rows) == 18
    paired, rows = [r for r in rows if r["partner"]], [r for r in rows if not r["partner"]]
    assert {(r["app"], r["users"]) for r in rows} == {(a, u) for a in ("sync", "async") for u in ("2", "4")}
    by_order: dict[str, list[dict[str, str]]] = {}
    for r in paired:
        by_order.setdefault(r["order"], []).append(r)
    assert len(by_order) == 3 and all(len(two) == 2 for two in by_order.values())
    for (
        first,
        second,
    ) in by_order.values():  # the first row is the point's first app, and they name each other
        assert (first["app"], first["partner"], second["app"], second["partner"]) == (
            "sync",
            "async",
            "async",
            "sync",
        )
        assert first["point_id"].endswith("__vs.async") and first["users"] == "4"
        assert first["valid"] == second["valid"] == str(first["scenario"] != "missing_route")

    # --same-apps: one process per app for the whole run, its rows name the same process.
    served = [r for r in paired + rows if r["scenario"] != "missing_route"]
    for app in ("sync", "async"):
        pids = {r["app_pid"] for r in served if r["app"] == app}
        assert len(pids) == 1 and pids.pop().isdigit(), app

    signup = [r for r in rows if r["scenario"] == "signup"]
    assert signup and all(
        r["valid"] == "True" and int(r["acked_writes"]) > 0 and r["missing_writes"] == "0" for r in signup
    )
    good = [r for r in rows if r["scenario"] == "read_heavy"]
    bad = [r for r in rows if r["scenario"] == "missing_route"]
    for r in good:
        assert r["valid"] == "True", r["invalid_reasons"]
        assert int(r["requests"]) > 0 and float(r["rps"]) > 0 and r["failures"] == "0"
        assert 0 < float(r["p50_ms"]) <= float(r["p99_ms"]) <= float(r["max_ms"])
        assert r["statements_check"].startswith("select 1.00/req ok") or "select 0.9" in r["statements_check"]
        assert float(r["locust_cpu_max"]) > 0 and float(r["app_cpu_mean"]) > 0
        assert 0 <= float(r["app_cpus_others"]) <= OTHERS_CPU_LIMIT  # nothing else ran on the app's CPUs
        assert r["pool_size"] == "4" and r["workers"] == "1"
        pdir = run / "points" / r["point_id"]
        for name in ("locust_stats.csv", "locust_stats_history.csv", "telemetry.csv", "counters.json"):
            assert (pdir / name).exists(), name
        assert len(list(pdir.glob("loadgen-*.json"))) == 1
    for r in bad:
        assert r["valid"] == "False" and "failures" in r["invalid_reasons"], r
    # Every Locust quit by itself once its window was over, not at its -t backstop a second later.
    recordings = list((run / "points").glob("*/loadgen-*.json"))
    assert len(recordings) == 18 and {json.loads(f.read_text())["ended"] for f in recordings} == {"window"}
    check_documented(run)
    assert set(meta["databases"]) == {"mariadb"} and {r["backend"] for r in rows} == {"mariadb"}
    assert meta["databases"]["mariadb"]["name"] == "app_test"
    check_no_secrets(run, MariaDB().settings(Settings()))
    for env_file in (DB_ENV_FILE, MariaDB().env_file):
        assert env_file.stat().st_mode & 0o777 == 0o600, f"{env_file} is readable by others"


def test_every_paired_point_gets_two_new_processes_by_default(tmp_path: Path) -> None:
    """The default (--fresh-apps): both apps of a paired point are started for it, never carried over from an
    earlier point (solo or paired), so every repeat samples new processes, started alike; solo points use
    whichever process is up. The run-to-run spread of one process pair then shows in the interval."""
    run = run_bench(
        *flags(apps=BOTH, repeats=2, paired_repeats=3, paired_duration=2, pool_size=4), out=tmp_path
    )
    meta = json.loads((run / "meta.json").read_text())
    assert meta["complete"] is True and meta["config"]["fresh_apps"] is True
    with (run / "points.csv").open() as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["order"]))
    assert len(rows) == 10 and all(r["valid"] == "True" for r in rows), rows
    paired = [r for r in rows if r["partner"]]
    assert len(paired) == 6
    for r in paired:
        earlier = {x["app_pid"] for x in rows if int(x["order"]) < int(r["order"])}
        assert r["app_pid"] not in earlier, (r["point_id"], r["app_pid"])
    for app in ("sync", "async"):
        pids = {int(r["app_pid"]) for r in rows if r["app"] == app}
        assert len({r["app_pid"] for r in paired if r["app"] == app}) == 3, app
        assert not any(psutil.pid_exists(pid) for pid in pids), (app, pids)
    assert any(  # the case that matters: a process that served a solo point is replaced for a paired one
        not r["partner"] and any(int(p["order"]) > int(r["order"]) for p in paired) for r in rows
    )


def test_one_run_on_both_backends_counts_every_statement(tmp_path: Path) -> None:
    """MariaDB and PostgreSQL in one run, their points shuffled together: each row names its backend, each
    server is recorded, and each server's own counters agree with the declared work, writes included."""
    apps = ["sync", "sync-psycopg", "async-asyncpg"]
    options = flags(apps=apps, scenarios=["read_heavy", "write_heavy"], paired_repeats=0, pool_size=4)
    run = run_bench("-b", "mariadb", "-b", "postgres", *options, out=tmp_path)
    meta = json.loads((run / "meta.json").read_text())
    assert meta["complete"] is True
    assert {b: d["name"] for b, d in meta["databases"].items()} == {
        "mariadb": "app_test",
        "postgres": "app_test",
    }
    with (run / "points.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {(r["app"], r["backend"], r["driver"]) for r in rows} == {
        ("sync", "mariadb", "pymysql"),
        ("sync-psycopg", "postgres", "psycopg"),
        ("async-asyncpg", "postgres", "asyncpg"),
    }
    for r in rows:
        assert r["valid"] == "True", (r["point_id"], r["invalid_reasons"])
        assert "MISMATCH" not in r["statements_check"] and "ok" in r["statements_check"], r[
            "statements_check"
        ]
        assert int(r["acked_writes"]) > 0 or r["scenario"] == "read_heavy"
        assert float(r["db_cpu_mean"]) >= 0 and int(r["threads_connected_max"]) > 0
    postgres = [r for r in rows if r["backend"] == "postgres" and r["scenario"] == "write_heavy"]
    assert postgres and all(
        int(r["com_insert"]) > 0 and int(r["com_update"]) > 0 and int(r["com_delete"]) > 0 for r in postgres
    )
    pdir = run / "points" / next(r["point_id"] for r in rows if r["backend"] == "postgres")
    with (pdir / "telemetry.csv").open() as f:  # the postmaster, its helpers and one process per connection
        assert max(int(t["pids"]) for t in csv.DictReader(f) if t["role"] == "db") > 4


README = REPO_ROOT / "results" / "README.md"


def documented(section: str) -> set[str]:
    """The names in the first column of the table under `## <section>` in results/README.md (a cell may
    name several: `a`, `b`)."""
    text = README.read_text().split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([^`]+)`", line.split("|")[1]))
    return names


def check_documented(run: Path) -> None:
    """Every file, column and key a real run writes is in results/README.md, and everything it documents
    is written (meta.json's optional `warnings` aside)."""
    meta = json.loads((run / "meta.json").read_text())
    assert set(meta) <= documented("meta.json") and documented("meta.json") - set(meta) <= {"warnings"}
    with (run / "points.csv").open() as f:
        assert set(next(csv.reader(f))) == documented("points.csv")
    pdir = next(p for p in (run / "points").iterdir() if "read_heavy" in p.name)
    loadgen = json.loads(next(pdir.glob("loadgen-*.json")).read_text())  # a process's or a worker's
    assert set(loadgen) == documented("loadgen-<pid>.json")
    assert {k for second in loadgen["per_second"] for k in second} == {"t", "requests", "failures", "hdr"}
    assert min(s["t"] for s in loadgen["per_second"]) < 0  # the warm-up's seconds are recorded too
    with (pdir / "telemetry.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert set(rows[0]) == documented("telemetry.csv")
    assert {r["role"] for r in rows} <= {"app", "partner", "db", "locust", "app_cpus", "app_cpus_irq"}
    assert "app_cpus" in {r["role"] for r in rows}  # the run is pinned: the app's CPUs are sampled
    counters = json.loads((pdir / "counters.json").read_text())
    paragraph = set(
        re.findall(r"`(\w+)`", README.read_text().split("## counters.json\n", 1)[1].split("\n## ")[0])
    )
    written = set(counters) | set(counters["before"]) | set(counters["delta"])
    assert written <= paragraph and {"before", "after", "delta", "connections"} <= written
    layout = README.read_text().split("## Layout of a run folder", 1)[1].split("\n## ")[0]
    for path in run.rglob("*"):
        name = path.name if path.parent != run / "points" else "<point-id>/"
        generic = re.sub(r"app-.*\.log", "app-<app>.log", name)
        generic = re.sub(
            r"loadgen-\d+", "loadgen-<pid>", re.sub(r"loadgen-w\d+", "loadgen-w<index>", generic)
        )
        assert generic in layout or path.is_dir(), f"{path.relative_to(run)} is not in results/README.md"


@pytest.mark.parametrize(
    ("entry", "sig"), [("module", signal.SIGINT), ("module", signal.SIGTERM), ("script", signal.SIGINT)]
)
def test_interrupting_a_run_leaves_no_process_and_an_incomplete_meta(
    tmp_path: Path, entry: str, sig: signal.Signals
) -> None:
    """`python -m bench` and the installed `bench` script are one entry point (bench.cli:main)."""
    options = flags(apps=BOTH, scenarios=["slow_db"], db_ms=5, sweep_users=2, users=None, repeats=5)
    script = (
        [str(Path(sys.executable).parent / "bench")] if entry == "script" else [sys.executable, "-m", "bench"]
    )
    proc = in_background([*script, *run_args(*options, out=tmp_path)])

    def ready(kids: list[psutil.Process]) -> bool:  # one point is done and the next one is loading
        return bool(list(tmp_path.glob("*/points.csv"))) and any("locust" in cmdline(k) for k in kids)

    interrupt_when(proc, ready, sig)
    meta = json.loads((only_run_dir(tmp_path) / "meta.json").read_text())
    assert meta["complete"] is False and 1 <= meta["points_done"] < meta["points_planned"]
    assert meta["finished_at"]


def test_a_report_that_fails_keeps_every_point_and_says_so_in_one_line(tmp_path: Path) -> None:
    """A file stands where the report's charts/ folder goes: the run ends with exit 1 and one error line that
    gives the command building the report again, the traceback in report-error.log, every point kept; the file
    removed, that command builds the report."""
    out = tmp_path / "out"
    out.mkdir()

    def block_charts() -> None:  # the run folder appears as the run starts, the report comes at its end
        deadline = time.monotonic() + 60
        while not (runs := [p for p in out.iterdir() if p.is_dir()]):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        (runs[0] / "charts").write_text("in the way\n")

    blocker = threading.Thread(target=block_charts, daemon=True)
    blocker.start()
    options = flags(users="2,4", paired_repeats=0, report=True)
    proc = command(*run_args(*options, out=out), env=bench_env(), timeout=240)
    blocker.join(timeout=1)
    run = only_run_dir(out)
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    assert proc.returncode == 1 and len(errors) == 1, proc.stderr[-3000:]
    assert "the report failed" in errors[0] and f"`bench report {run}`" in errors[0], errors[0]
    assert "Traceback" not in proc.stderr and proc.stdout.strip().splitlines()[-1] == str(run)
    # no terminal: the progress is one line per point, not a bar drawn once at the end
    lines = [line for line in proc.stderr.splitlines() if line.startswith("[")]
    assert re.fullmatch(r"\[1/2\] sync__read_heavy__u[24]__d0__r1: 0 s elapsed", lines[0]), lines
    assert re.fullmatch(r"\[2/2\] sync__read_heavy__u[24]__d0__r1: \d+ s elapsed, about \d+ s left", lines[1])
    assert "Traceback" in (run / REPORT_ERROR_LOG).read_text() and (run / "charts").is_file()
    with (run / "points.csv").open() as f:
        kept = list(csv.DictReader(f))
    assert len(kept) == 2 and all(r["valid"] == "True" for r in kept), kept

    (run / "charts").unlink()
    again = command("report", str(run))
    assert again.returncode == 0, again.stderr[-3000:]
    assert (run / "report.html").is_file() and list((run / "charts").glob("*.png"))


def check_no_secrets(run: Path, settings: Settings) -> None:
    """No password or hash in any file of a run: the seeded users' password, the passwords the signup
    scenario sends, an Argon2 hash, the database password (the app logs are in logs/)."""
    secrets = ["seeded-password", "correct horse", "$argon2", settings.db_password.get_secret_value()]
    for path in run.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".csv", ".log", ".md", ".html", ""):
            text = path.read_text(errors="replace")
            for secret in filter(None, secrets):
                assert secret not in text, f"{secret[:8]}... found in {path.relative_to(run)}"


def test_a_pair_restart_that_fails_says_why_and_leaves_no_process(tmp_path: Path) -> None:
    """--fresh-apps: when one new process of a pair never answers, restart_apps stops every process of the
    pair, old and new, raises with the app's own words, and the next point can start them again."""

    def uvicorns() -> list[psutil.Process]:
        return [c for c in psutil.Process().children(recursive=True) if "uvicorn" in cmdline(c)]

    apps = [resolve_app("sync"), resolve_app("async")]
    with Stack(
        MariaDB(),
        apps,
        limits=AppLimits(pool_size=2),
        seed=SeedData(users=50, items=1),
        pinning=Pinning.plan(False),
        log_dir=tmp_path,
        database="app_test",
    ) as stack:
        old = [stack.apps[name].proc for name in ("sync", "async")]
        assert len(uvicorns()) == 2
        stack.specs["async"] = resolve_app("async=tests.fixtures.no_such_module:app")
        with pytest.raises(RuntimeError, match=r"app async exited with code \d+: .*no_such_module"):
            stack.restart_apps(["sync", "async"])
        assert all(proc is not None and not proc.alive() for proc in old)
        assert uvicorns() == []
        stack.specs["async"] = resolve_app("async")
        assert stack.app("sync").healthy() and stack.app("async").healthy()
        assert len(uvicorns()) == 2
    assert uvicorns() == []


def _others_while(cpu: int, app_pid: int, seconds: float = 1.6) -> float | None:
    with Sampler({Role.APP: lambda: [app_pid]}, cpus=(cpu,), interval=0.2) as sampler:
        start = time.time()
        time.sleep(seconds)
    return sampler.summary(start, time.time()).others_on_app_cpus()


def test_a_program_on_the_app_cpus_makes_the_point_invalid() -> None:
    """The app_cpus_shared rule on real processes: a busy loop pinned to the app's CPU, measured once as a
    stranger beside an idle app (invalid) and once as the app itself (valid)."""
    cpu = max(os.sched_getaffinity(0))
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        os.sched_setaffinity(hog.pid, {cpu})
        os.sched_setaffinity(idle.pid, {cpu})
        observed = Observed(1, 100, 0, 0, 10.0, False, 0, True, None)
        beside = _others_while(cpu, idle.pid)
        assert beside is not None and beside > 80, beside
        assert invalid_reasons(replace(observed, app_cpus_others=beside)) == [
            f"app_cpus_shared({beside:.0f}%)"
        ]
        itself = _others_while(cpu, hog.pid)
        assert itself is not None and itself < OTHERS_CPU_LIMIT, itself
        assert invalid_reasons(replace(observed, app_cpus_others=itself)) == []
    finally:
        for proc in (hog, idle):
            proc.kill()
            proc.wait()


def test_the_harness_keeps_off_the_app_cpus_while_a_run_lasts() -> None:
    """harness_on: this process (and a thread it starts) moves to the load generator's CPUs, a plan made
    meanwhile still splits the whole machine, and the CPUs it had come back afterwards."""
    plan = Pinning.plan(True)
    if not plan.app:
        pytest.skip("one CPU: runs are not pinned, and harness_on has nothing to do")
    assert plan.loadgen and not set(plan.app) & set(plan.loadgen)
    before = os.sched_getaffinity(0)
    seen: list[set[int]] = []
    with harness_on(plan.loadgen):
        assert os.sched_getaffinity(0) == set(plan.loadgen)
        thread = threading.Thread(target=lambda: seen.append(os.sched_getaffinity(0)))
        thread.start()
        thread.join()
        assert Pinning.plan(True) == plan
    assert seen == [set(plan.loadgen)]
    assert os.sched_getaffinity(0) == before


def test_interrupt_work_on_the_app_cpus_is_reported_apart_from_other_programs() -> None:
    """The kernel's packet work for the app's own traffic (irq + softirq, in no process) is the app's, not
    another program's: it is subtracted from app_cpus_others and reported as app_cpus_irq."""
    stats = {
        Role.APP_CPUS: RoleStats(cpu_mean=60.0),
        Role.APP_CPUS_IRQ: RoleStats(cpu_mean=20.0),
        Role.APP: RoleStats(cpu_mean=35.0),
    }
    telemetry = Telemetry(stats, None)
    assert telemetry.irq_on_app_cpus() == 20.0
    assert telemetry.others_on_app_cpus() == 5.0  # 60 busy - 20 interrupts - 35 app
    cpu = max(os.sched_getaffinity(0))
    with Sampler({Role.APP: lambda: [os.getpid()]}, cpus=(cpu,), interval=0.2) as sampler:
        start = time.time()
        time.sleep(0.7)
    measured = sampler.summary(start, time.time())
    irq, busy = measured.irq_on_app_cpus(), measured.of(Role.APP_CPUS).cpu_mean
    assert irq is not None and busy is not None and 0 <= irq <= busy + 1  # real per-CPU times, sampled
