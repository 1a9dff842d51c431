"""What a run is asked to do, as small frozen values combined with `dataclasses.replace()`.

`RunConfig` = the matrix (what to measure) + the apps' limits (the same for both sides) + the load
generator + the seed data + the pairing with a baseline (the regression gate) + where the output goes.
Presets (`QUICK`, the gate's suite) are values too.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from bench.catalog import DEFAULT_APPS, SCENARIOS, AppSpec
from shared.config import REPO_ROOT, Settings

RESULTS_ROOT = REPO_ROOT / "results"
MIN_EFFECT = 0.10  # the slowdown the gate must catch, as a fraction (a key is flagged past half of it)
# When a point is invalid (bench/measure/validity.py applies them; the report and charts state them):
LOADGEN_CPU_LIMIT = 90.0  # % of one core: above it, the load generator may be what limits throughput
# % of one core: the app's CPUs busy with anything but the apps under test (another program, a test run
# started during the bench). Quiet runs read 0-4% (q1-q3 and pgq, docs/methods.md: the kernel's own
# work); a program that takes more changes a CPU-bound point's throughput by as much.
OTHERS_CPU_LIMIT = 15.0


@dataclass(frozen=True)
class Matrix:
    """Two kinds of points. Paired points (the verdicts): two apps loaded at the same time over the same
    seconds, sharing the app's CPU, `paired_repeats` times at the headline load. Solo points (behaviour under
    load: latency, saturation): each app alone at every load of `users`, `repeats` times."""

    apps: tuple[str, ...] = DEFAULT_APPS
    backends: tuple[str, ...] = ()  # the databases to run on; empty: the apps' own (bench/catalog.py)
    scenarios: tuple[str, ...] = tuple(s.name for s in SCENARIOS if s.default)
    users: tuple[int, ...] = (16, 64)
    repeats: int = 1  # of every solo point (0: no solo points)
    sweep_repeats: int | None = 4  # of the solo points of the latency sweep (None: `repeats`)
    paired_repeats: int = 5  # of every paired comparison (0: none)
    pairs: tuple[tuple[str, str], ...] | None = None  # (first, second); None: the catalog's pairs among apps
    headline_users: int | None = 16  # the paired load; None: the middle of `users`
    duration_s: float = 3.0  # measured seconds of a solo point
    paired_duration_s: float = 4.0  # of a paired point (a scenario's duration_factor multiplies both)
    warmup_s: float = 1.0
    db_ms: tuple[int, ...] = (0, 5, 20, 50)
    sweep_users: tuple[int, ...] | None = None  # the latency sweep's solo loads; default: the headline load
    rates: tuple[float, ...] = ()  # open-loop target req/s; empty = closed loop
    recording_overhead: bool = False  # also run every point without latency recording
    profile: bool = False  # also a py-spy profiled point per app and scenario (bench/measure/profile.py)
    profile_duration_s: float = 4.0  # its window (whole seconds: py-spy's unit)
    # The statement pass: each app alone with one user per scenario before the other points, the server's
    # counters read after every request (statements per route). None: where the work is not declared (an
    # app or a locustfile from outside the catalog).
    statements: bool | None = None
    statements_duration_s: float = 3.0
    # Start both apps anew for every paired point, so that each repeat samples new processes (see
    # docs/methods.md, "Run-to-run spread": one process pair for a whole run is itself a sample of one).
    fresh_apps: bool = True
    shuffle_seed: int = 20261124


# The apps' own defaults (shared/config.py's Settings): a run's limits start from them.
_APP_SETTINGS = Settings.model_fields


@dataclass(frozen=True)
class AppLimits:
    """The same for every app of a run, recorded in meta.json and every row."""

    workers: int = _APP_SETTINGS["workers"].default
    pool_size: int = _APP_SETTINGS["pool_size"].default
    max_overflow: int = _APP_SETTINGS["max_overflow"].default
    thread_tokens: int | None = _APP_SETTINGS["thread_tokens"].default  # None: pool size + overflow
    event_loop: str = "uvloop"  # named for every run (the apps' own default, "auto", leaves it to uvicorn)


@dataclass(frozen=True)
class Loadgen:
    processes: int = 1  # >1: Locust --processes N (one master, N workers) for bigger machines
    open_users: int = 64  # open loop: users that take the scheduled requests (more than ever in flight)
    # Locust's distributed mode across hosts: >0 runs only the master here, bound to master_bind:master_port,
    # and waits up to worker_wait_s per point for that many `bench worker`s to connect.
    loadgen_workers: int = 0
    master_bind: str = "127.0.0.1"
    master_port: int = 5557
    worker_wait_s: float = 60.0
    app_host: str = "127.0.0.1"  # the address the apps the harness starts listen on (and are loaded at)

    @property
    def distributed(self) -> bool:
        return self.loadgen_workers > 0

    @property
    def load_processes(self) -> int:
        """Locust processes that send requests (each gets its share of an open-loop rate)."""
        return self.loadgen_workers or self.processes


@dataclass(frozen=True)
class SeedData:
    users: int = 10_000
    items: int = 3


@dataclass(frozen=True)
class Pairing:
    """The regression gate's baseline code: where the `base:` apps come from (the matrix pairs them)."""

    base_root: Path | None = None  # source tree of the `base:` apps
    base_sha: str | None = None


@dataclass(frozen=True)
class AppSource:
    """Where a user's own apps (`--app NAME=module:attr`) come from: the folder they are imported from and
    started in (`--app-dir`, as uvicorn's), a file of settings for their processes (`--env-file`, KEY=value
    lines, as uvicorn's; its values win over the harness's own), and the path whose 200 says they are up
    (`--health-path`; None: any HTTP answer on the port). The catalog's apps keep this repository, the run's
    settings and /healthz."""

    app_dir: Path | None = None
    env_file: Path | None = None
    health_path: str | None = None

    @property
    def given(self) -> bool:
        return (self.app_dir, self.env_file, self.health_path) != (None, None, None)

    def apply(self, spec: AppSpec) -> AppSpec:
        if not spec.custom:
            return spec
        env = dict(spec.env)
        if self.env_file is not None:
            env |= {k: v for k, v in dotenv_values(self.env_file).items() if v is not None}
        return replace(spec, env=env, root=spec.root or self.app_dir, health_path=self.health_path)


@dataclass(frozen=True)
class Output:
    label: str = "bench"
    out_root: Path = RESULTS_ROOT
    report: bool = True
    calibration_samples: int = 10  # 0: skip the machine calibration
    database: str | None = None  # the database to measure in (default: the settings' DB_NAME)


@dataclass(frozen=True)
class RunConfig:
    matrix: Matrix = Matrix()
    limits: AppLimits = AppLimits()
    loadgen: Loadgen = Loadgen()
    seed: SeedData = SeedData()
    pairing: Pairing = Pairing()
    output: Output = Output()
    source: AppSource = AppSource()
    pin: bool = True
    argv: tuple[str, ...] = field(default_factory=lambda: tuple(sys.argv))

    def flat(self) -> dict[str, Any]:
        """Every setting under its own name (meta.json `config`; the names are unique across parts)."""
        out: dict[str, Any] = {}
        for part in (self.matrix, self.limits, self.loadgen, self.pairing, self.output, self.source):
            out |= asdict(part)
        out |= {"seed_users": self.seed.users, "seed_items": self.seed.items, "pin": self.pin}
        out["loadgen_processes"], out["open_users"] = out.pop("processes"), out["open_users"]
        return {
            k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v)
            for k, v in out.items()
        }


# `make bench-quick`: the headline verdict only (read_heavy, sync and async paired at 16 users), 8 paired
# repeats of 3 s: `make bench-quick` took 71 s, half-width 1.1%, run 20261205-030923-quick (AMD EPYC); 2
# repeats of each of three workloads had given no verdict at all (one degree of freedom: ±4.6-10.9%).
QUICK = Matrix(
    scenarios=("read_heavy",),
    users=(16,),
    repeats=1,
    paired_repeats=8,
    duration_s=3.0,
    paired_duration_s=3.0,
    warmup_s=1.0,
    db_ms=(0,),
    sweep_repeats=None,
)
