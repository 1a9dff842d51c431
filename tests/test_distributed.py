"""Beyond one machine, for real: Locust workers on other "hosts" (network namespaces joined to this one by
veth pairs), workers in separate folders on loopback (nothing travels by disk), the failures a user meets
(a worker that never connects, one that dies mid-point), and apps that are already running (external).

Every address a test sends to is loopback, or one the test assigned to an interface it created itself; the
namespaces and veth pairs are removed on exit, also on failure (finalisers registered before creating).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from bench.analyse.report import build_report
from bench.backends import Backend
from bench.catalog import APP_BY_NAME, AppEntry, resolve_app
from bench.cli.worker import parse_master
from bench.config import OTHERS_CPU_LIMIT, Loadgen
from bench.measure.locust import loopback, worker_command
from bench.measure.validity import Observed, invalid_reasons
from bench.processes import Pinning
from bench.store.loadgen import LoadgenResult, read_loadgen
from shared.config import REPO_ROOT, Settings
from shared.db_url import build_url
from tests.netns import Hosts, NamespacesRefused, make_hosts
from tests.runs import (
    BOTH,
    PAIRED,
    RUN_TIMEOUT_S,
    bench,
    bench_env,
    flags,
    in_background,
    only_run_dir,
    run_bench,
)
from tests.test_harness import check_documented

pytestmark = pytest.mark.e2e


# --- workers -----------------------------------------------------------------------------------------------


@dataclass
class Worker:
    """One `bench worker` (its own process group), started in its own empty folder."""

    proc: subprocess.Popen[str]
    folder: Path
    seen: set[int] = field(default_factory=set)  # every process it started, for the no-orphan check

    def descendants(self) -> list[psutil.Process]:
        try:
            kids = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        self.seen |= {k.pid for k in kids}
        return kids

    def locust(self) -> psutil.Process | None:
        kids = [k for k in self.descendants() if "locust" in " ".join(k.cmdline())]
        return kids[0] if kids else None

    def stop(self) -> str:
        """Ctrl-C, as a user would; returns its output. Asserts a clean exit and no process left."""
        self.descendants()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, _ = self.proc.communicate(timeout=10)
            pytest.fail(f"bench worker ignored Ctrl-C for 30 s: {out[-1000:]}")
        left = [
            p
            for p in self.seen
            if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
        assert not left, f"bench worker left processes running: {left}"
        assert self.proc.returncode == 130, out[-2000:]
        return out


def worker_env() -> dict[str, str]:
    """A worker host's environment: nothing of the harness's (no BENCH_*, no database)."""
    drop = ("BENCH_", "DB_", "DATABASE_URL")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)} | {"PYTHONUNBUFFERED": "1"}


def off_the_app_cpus() -> list[str]:
    """The workers stand in for other hosts, whose CPUs are not the app's: they run on the load generator's
    CPUs, or a point is rightly invalid as app_cpus_shared (CI met 16% from two unpinned workers)."""
    cpus = Pinning.plan().loadgen
    return ["taskset", "-c", ",".join(map(str, cpus))] if cpus else []


def start_worker(master: str, folder: Path, prefix: list[str] | None = None) -> Worker:
    folder.mkdir(parents=True, exist_ok=True)
    argv = [*off_the_app_cpus(), *(prefix or []), sys.executable, "-m", "bench", "worker", "--master", master]
    proc = in_background(argv, cwd=folder, env=worker_env(), merged=True)
    return Worker(proc, folder)


@pytest.fixture
def workers(request: pytest.FixtureRequest) -> Callable[..., Worker]:
    """`workers(master, folder, prefix)` starts a `bench worker`; each is stopped (Ctrl-C) at the end."""

    def make(master: str, folder: Path, prefix: list[str] | None = None) -> Worker:
        worker = start_worker(master, folder, prefix)
        request.addfinalizer(worker.stop)
        return worker

    return make


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def at_master(bind: str, port: int) -> dict[str, Any]:
    """`bench run`'s options for a Locust master on bind:port that waits for two workers."""
    return {"loadgen_workers": 2, "master_bind": bind, "master_port": port}


def on_hosts(hosts: Hosts, port: int) -> dict[str, Any]:
    """The same, the master and the apps on the address the namespaces' workers reach."""
    return {**at_master(hosts.master, port), "app_host": hosts.master}


def rows(run: Path) -> list[dict[str, str]]:
    with (run / "points.csv").open() as f:
        return list(csv.DictReader(f))


def check_merged(pdir: Path, workers: int) -> LoadgenResult:
    """The point's worker files add up exactly to the merged recording."""
    files = sorted(pdir.glob("loadgen-w*.json"))
    assert len(files) == workers and not list(pdir.glob("loadgen-[0-9]*.json")), files
    each = [json.loads(f.read_text()) for f in files]
    assert sorted(d["worker_index"] for d in each) == list(range(workers))
    assert all(d["requests"] > 0 for d in each), "a worker sent no request"
    assert all(d["cpu_max"] is not None and abs(d["clock_offset_s"]) < 0.5 for d in each)
    merged = read_loadgen(pdir)
    assert merged.files == workers and merged.requests == sum(d["requests"] for d in each)
    assert merged.hdr is not None and merged.hdr.get_total_count() == merged.requests
    for t, second in merged.seconds.items():
        assert second.requests == sum(s["requests"] for d in each for s in d["per_second"] if s["t"] == t)
    assert sum(merged.per_second.values()) == merged.requests
    return merged


def check_row(row: dict[str, str], requests: int) -> None:
    assert row["valid"] == "True", row["invalid_reasons"]
    assert int(row["requests"]) == requests and row["failures"] == "0"
    assert "MISMATCH" not in row["statements_check"] and "ok" in row["statements_check"], row[
        "statements_check"
    ]
    assert row["missing_writes"] == "0"
    assert float(row["locust_cpu_max"]) > 0


# --- two load-generator hosts in network namespaces --------------------------------------------------------


READ_WRITE = ("read_heavy", "write_heavy")


@pytest.fixture
def hosts(request: pytest.FixtureRequest) -> Hosts:
    """Two load-generator hosts in network namespaces (tests/netns.py), removed by a finaliser."""
    undo = ExitStack()
    request.addfinalizer(undo.close)
    try:
        return make_hosts(undo)
    except NamespacesRefused as exc:
        pytest.skip(str(exc))


def test_two_worker_hosts_in_namespaces_load_one_point_merged_exactly(
    hosts: Hosts, workers: Callable[..., Worker], tmp_path: Path
) -> None:
    port = free_port(hosts.master)
    master = f"{hosts.master}:{port}"
    started = [workers(master, tmp_path / ns, ["ip", "netns", "exec", ns]) for ns in hosts.namespaces]
    options = flags(scenarios=READ_WRITE, **on_hosts(hosts, port))
    run = run_bench(*options, out=tmp_path / "out")
    for row in rows(run):
        merged = check_merged(run / "points" / row["point_id"], workers=2)
        check_row(row, merged.requests)
        if row["scenario"] == "write_heavy":  # acknowledged ids travelled too, and exist
            assert int(row["acked_writes"]) == len(merged.acked["items"]) > 0
    meta = json.loads((run / "meta.json").read_text())
    loadgen = next(r for r in meta["measured_where"] if r["part"] == "load generator")
    assert f"on {master}" in loadgen["where"]
    check_documented(run)
    for worker in started:
        out = worker.stop()
        assert "point 2 served" in out, out  # each host served both points


# --- loopback: separate folders, failures ------------------------------------------------------------------


def test_workers_in_separate_folders_send_everything_over_the_network(
    workers: Callable[..., Worker], tmp_path: Path
) -> None:
    port = free_port("127.0.0.1")
    started = [workers(f"127.0.0.1:{port}", tmp_path / f"host{i}") for i in (1, 2)]
    out = tmp_path / "master"
    run = run_bench(
        *flags(apps=["async"], scenarios=["write_heavy"], **at_master("127.0.0.1", port)), out=out
    )
    (row,) = rows(run)
    merged = check_merged(run / "points" / row["point_id"], workers=2)
    check_row(row, merged.requests)
    for worker in started:
        worker.stop()
        written = [p.name for p in worker.folder.rglob("*")]
        assert written == [], f"a worker wrote into its folder: {written}"


def test_a_missing_worker_and_a_worker_dying_mid_point_give_invalid_points_not_hangs(
    workers: Callable[..., Worker], tmp_path: Path
) -> None:
    port = free_port("127.0.0.1")
    alive = workers(f"127.0.0.1:{port}", tmp_path / "host1")
    options = at_master("127.0.0.1", port)

    # Only one of two workers: the point waits --worker-wait seconds, then is invalid; the run ends.
    t0 = time.monotonic()
    proc = subprocess.run(
        bench(*flags(**options, worker_wait=3), out=tmp_path / "one"),
        cwd=REPO_ROOT,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.monotonic() - t0 < 60
    (row,) = rows(only_run_dir(tmp_path / "one"))
    assert row["valid"] == "False" and "loadgen_workers(1/2 connected)" in row["invalid_reasons"], row
    assert (
        "1 of 2 Locust worker(s) connected" in proc.stderr
        and " ".join([*off_the_app_cpus(), "bench worker --master 127.0.0.1"]) in proc.stderr
    )

    # Both connect, then one dies mid-point: the other's recording arrives, the point is invalid.
    doomed = workers(f"127.0.0.1:{port}", tmp_path / "host2")
    runner = in_background(bench(*flags(**options, duration=4), out=tmp_path / "died"))
    try:
        deadline = time.monotonic() + 90
        while not list((tmp_path / "died").glob("*/points/*/window.json")):
            assert time.monotonic() < deadline, "the master never planned its window"
            time.sleep(0.1)
        victim = doomed.locust()
        assert victim is not None
        victim.kill()
        _, err = runner.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if runner.poll() is None:
            os.killpg(runner.pid, signal.SIGKILL)
    assert runner.returncode == 0, err[-3000:]
    (row,) = rows(only_run_dir(tmp_path / "died"))
    assert row["valid"] == "False" and "loadgen_workers(1/2 reported)" in row["invalid_reasons"], row
    assert alive.proc.poll() is None and doomed.proc.poll() is None  # both keep serving
    assert victim.pid not in {p.pid for p in doomed.descendants()}  # a new Locust took its place


# --- apps already running elsewhere ------------------------------------------------------------------------


@pytest.fixture
def running_app(base_settings: Settings, tmp_path: Path) -> Iterator[str]:
    """The sync app, started by the test as someone else's service would be: the harness must not touch it."""
    port = free_port("127.0.0.1")
    s = base_settings
    env = {
        **os.environ,
        "DB_HOST": s.db_host,
        "DB_PORT": str(s.db_port),
        "DB_USER": s.db_user,
        "DB_PASSWORD": s.db_password.get_secret_value(),
        "DB_NAME": s.db_name,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "sync_app.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, "the app did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
        assert proc.poll() is None, "the harness stopped an app it did not start"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# The external app is the MariaDB sync app: these tests run under the mariadb backend only.
ON_MARIADB = pytest.mark.parametrize("entry", [APP_BY_NAME["sync"]], ids=["sync"])


@ON_MARIADB
def test_an_external_app_is_measured_with_the_database_when_reachable(
    entry: AppEntry, running_app: str, base_settings: Settings, tmp_path: Path
) -> None:
    url = build_url(base_settings, "pymysql").render_as_string(hide_password=False)
    env = {**bench_env(), "DATABASE_URL": url}
    run = run_bench(
        *flags(apps=[f"sync={running_app}"], scenarios=READ_WRITE), out=tmp_path / "with-db", env=env
    )
    for row in rows(run):
        assert row["valid"] == "True", row["invalid_reasons"]
        assert "ok" in row["statements_check"] and row["missing_writes"] == "0"
        assert row["app_cpu_mean"] == "" and row["app_rss_max_mb"] == ""  # not measured: not ours
        assert row["pool_size"] == "10" and row["driver"] == "pymysql"  # from its /limits
    meta = json.loads((run / "meta.json").read_text())
    app = next(r for r in meta["measured_where"] if r["part"] == "app sync")
    assert running_app in app["where"] and "CPU and memory" in app["not_measured"]


@ON_MARIADB
def test_an_external_app_without_a_reachable_database_is_not_measured_there(
    entry: AppEntry, running_app: str, backend: Backend, base_settings: Settings, tmp_path: Path
) -> None:
    backend.seed(base_settings, 200, 3)  # its owner seeded it
    env = {k: v for k, v in bench_env().items() if k != "DATABASE_URL"}
    run = run_bench(*flags(apps=[f"mine={running_app}"]), out=tmp_path / "no-db", env=env)
    (row,) = rows(run)
    assert row["valid"] == "True", row["invalid_reasons"]  # not measured is not invalid
    assert row["statements_check"].startswith("not measured") and row["com_select"] == ""
    assert row["missing_writes"] == "" and row["db_cpu_mean"] == "" and row["threads_connected_max"] == ""
    meta = json.loads((run / "meta.json").read_text())
    assert meta["databases"] == {"mariadb": {"backend": "mariadb", "reachable": False}}
    _, md = build_report(run)  # the report says plainly what was not measured, and where
    text = md.read_text()
    assert "Not measured on this set-up" in text and "statement counters and acknowledged writes" in text
    assert f"already running at {running_app}" in text


# --- the small parts
# -----------------------------------------------------------------------------------------


def test_master_addresses_parse_or_fail_with_a_reason() -> None:
    assert parse_master("10.0.0.1") == ("10.0.0.1", 5557)
    assert parse_master("lg-master:6000") == ("lg-master", 6000)
    assert parse_master("[fd00::1]:6000") == ("fd00::1", 6000)
    for bad in ("", ":5557", "host:port", "host:70000", "[fd00::1]x"):
        with pytest.raises(ValueError, match="--master"):
            parse_master(bad)


def test_workers_on_this_machine_are_told_to_keep_off_the_app_cpus() -> None:
    here, there = Loadgen(loadgen_workers=2), Loadgen(loadgen_workers=2, master_bind="10.0.0.1")
    assert worker_command(here, (0,)) == "taskset -c 0 bench worker --master 127.0.0.1:5557"
    assert worker_command(replace(here, master_bind="localhost"), (0, 1)).startswith("taskset -c 0,1 ")
    assert worker_command(here, ()) == "bench worker --master 127.0.0.1:5557"  # not pinned
    assert worker_command(there, (0,)) == "bench worker --master 10.0.0.1:5557"  # another host's CPUs
    assert worker_command(replace(there, master_bind="*"), (0,)).startswith("bench worker --master <")
    assert all(map(loopback, ("127.0.0.1", "127.0.0.2", "::1", "localhost")))
    assert not any(map(loopback, ("10.0.0.1", "*", "0.0.0.0", "lg-master")))


def test_external_app_urls_resolve_or_fail_with_a_reason() -> None:
    spec = resolve_app("sync=http://10.1.2.3:8001/")
    assert spec.external and spec.url == "http://10.1.2.3:8001" and spec.entry is not None
    assert resolve_app("mine=https://api.example:443").entry is None
    for bad in ("=http://h:1", "x=http://h:0", "x=http://h:99999", "my app=http://h:1", "x=http://"):
        with pytest.raises(ValueError, match="--app"):
            resolve_app(bad)


def test_distributed_validity_rules() -> None:
    base = Observed(
        loadgen_files=2,
        requests=100,
        failures=0,
        missing_writes=0,
        loadgen_cpu_max=40.0,
        open_loop=False,
        late=0,
        app_alive=None,
        work=None,
        loadgen_expected=2,
        clock_offset_s=0.01,
    )
    assert invalid_reasons(base) == []
    assert invalid_reasons(replace(base, loadgen_files=1)) == ["loadgen_workers(1/2 reported)"]
    assert invalid_reasons(replace(base, loadgen_files=3)) == ["loadgen_workers(3/2 reported)"]
    assert invalid_reasons(replace(base, clock_offset_s=0.9)) == ["clock_offset(0.90s)"]
    assert invalid_reasons(replace(base, loadgen_cpu_max=95.0)) == ["loadgen_cpu>90%"]
    never = replace(base, loadgen_files=0, requests=0, loadgen_problem="loadgen_workers(0/2 connected)")
    assert invalid_reasons(never) == ["loadgen_workers(0/2 connected)", "no_loadgen_output"]


def test_the_readme_recipe_at_16_users_gives_valid_paired_and_solo_points(
    hosts: Hosts, workers: Callable[..., Worker], tmp_path: Path
) -> None:
    """Two worker hosts over veth, both apps at 16 users (the README's recipe): a paired point (two masters,
    on --master-port and the next, every worker serving both, one window) and solo points. The kernel's
    packet work for the apps' traffic lands on their CPU as irq/softirq time, reported apart, never making a
    point invalid (issue 25 saw app_cpus_shared(19-20%) here before it was)."""
    port = free_port(hosts.master)
    master = f"{hosts.master}:{port}"
    started = [workers(master, tmp_path / ns, ["ip", "netns", "exec", ns]) for ns in hosts.namespaces]
    options = flags(apps=BOTH, users=16, sweep_repeats=0, **PAIRED, **on_hosts(hosts, port))
    run = run_bench(*options, out=tmp_path / "out")
    found = rows(run)
    assert sorted((r["app"], bool(r["partner"])) for r in found) == [
        ("async", False),
        ("async", True),
        ("sync", False),
        ("sync", True),
    ], [r["point_id"] for r in found]
    for row in found:
        merged = check_merged(run / "points" / row["point_id"], workers=2)
        check_row(row, merged.requests)
        assert float(row["app_cpus_irq"]) >= 0 and float(row["app_cpus_others"]) <= OTHERS_CPU_LIMIT
    paired = [run / "points" / r["point_id"] for r in found if r["partner"]]
    windows = [json.loads((p / "window.json").read_text()) for p in paired]
    assert windows[0] == windows[1], windows  # both sides measured over the same seconds
    for worker in started:
        out = worker.stop()
        assert f"(port {port + 1})" in out, out  # the second side's master was served by every host


def test_a_paired_run_whose_second_master_port_is_taken_is_refused_at_once(tmp_path: Path) -> None:
    """A paired point's second side needs --master-port + 1: taken, the run says so before any point."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1]) - 1
        proc = subprocess.run(
            bench(*flags(apps=BOTH, **at_master("127.0.0.1", port)), out=tmp_path),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{port + 1}" in lines[0] and "--paired-repeats 0" in lines[0], proc.stderr
