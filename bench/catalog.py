"""The one registry: every app, variant, scenario and sync/async pair the harness knows, in display order,
with its colour. Tables, charts, `--help` texts and test parametrisation all read from here, so adding a
variant or a scenario is one entry below plus its own code (a module in variants/ or loadtests/).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from loadtests.probes import NEIGHBOURS, PROBES_TEXT
from shared.config import REPO_ROOT

Family = Literal["sync", "async"]


@dataclass(frozen=True)
class AppEntry:
    name: str
    factory: str  # `module:function` returning the ASGI app (uvicorn --factory); takes optional Settings
    family: Family  # which side of a sync/async comparison it is on
    description: str
    colour: str
    marker: str = "v"
    settings: Mapping[str, str] = field(default_factory=dict)  # Settings overrides (driver choice...)
    backend: str = "mariadb"
    read_only: bool = False  # serves the read routes and /io/sleep only (no writing scenario)
    contract: bool = True  # passes the full API contract (tests/test_contract.py runs it in-process)
    scenarios: tuple[str, ...] | None = None  # measured in these scenarios only (None: every one it serves)
    users: tuple[int, ...] | None = None  # its own load levels (None: the run's)
    db_ms: tuple[int, ...] | None = None  # its own database-time levels (None: the run's)


@dataclass(frozen=True)
class ScenarioEntry:
    name: str
    description: str
    writes: bool = False  # needs the write routes
    sweeps_db_ms: bool = False  # run at every --db-ms level (the simulated database latency)
    duration_factor: float = 1.0  # longer windows for slow or uneven workloads (few requests per second)
    file: str = ""  # loadtests/<file>.py (default: the name)
    options: tuple[str, ...] = ()  # more Locust command-line options (the scenario's own parameters)
    default: bool = True  # part of `bench run`'s default matrix

    @property
    def locustfile(self) -> Path:
        return REPO_ROOT / "loadtests" / f"{self.file or self.name}.py"


@dataclass(frozen=True)
class PairEntry:
    """A sync/async comparison the report draws a verdict for."""

    sync: str
    async_: str
    label: str
    colour: str


# Okabe-Ito colours (colour-blind safe): sync apps blue/green, async apps orange/red/pink.
APPS: tuple[AppEntry, ...] = (
    AppEntry("sync", "sync_app.main:create_app", "sync",
             "def routes, Session, PyMySQL", "#0072B2", "o"),
    AppEntry("async", "async_app.main:create_app", "async",
             "async def routes, AsyncSession, asyncmy", "#D55E00", "s"),
    AppEntry("sync-mysqlclient", "sync_app.main:create_app", "sync",
             "sync app on mysqlclient (C)", "#56B4E9", "^", settings={"sync_driver": "mysqlclient"}),
    AppEntry("async-aiomysql", "async_app.main:create_app", "async",
             "async app on aiomysql (pure Python)", "#E69F00", "D", settings={"async_driver": "aiomysql"}),
    AppEntry("async-blocking", "variants.blocking:create_app", "async",
             "anti-pattern: async def routes calling the blocking Session", "#CC79A7",
             read_only=True, contract=False),
    AppEntry("sync-naive", "variants.naive:create_app", "sync",
             "naive sync: session closed after serialization; deadlocks past pool + tokens", "#009E73",
             read_only=True, contract=False),
    AppEntry("sync-raw", "variants.raw_sync:create_app", "sync",
             "ceiling: def routes on raw PyMySQL with a plain pool; no ORM, no response models",
             "#003D5C", "P",
             read_only=True, contract=False),
    AppEntry("async-raw", "variants.raw_async:create_app", "async",
             "ceiling: async def routes on raw asyncmy with its pool; no ORM, no response models",
             "#7A2E00", "p",
             read_only=True, contract=False),
    AppEntry("async-admission", "variants.admission:create_app", "async",
             "async app behind a FIFO admission limit of pool-size requests in progress (the rest queue)",
             "#F0A0A0", "<", contract=False),
    # The latency sweep where the pool is not the limit: 64 connections (and 64 thread tokens) for 64 users.
    AppEntry("sync-wide", "sync_app.main:create_app", "sync",
             "sync app, pool 64 and 64 thread tokens: the pool is not the limit at 64 users", "#5D9C59", "d",
             settings={"pool_size": "64"}, contract=False,
             scenarios=("slow_db",), users=(64,), db_ms=(0, 20, 50)),
    AppEntry("async-wide", "async_app.main:create_app", "async",
             "async app, pool 64: the pool is not the limit at 64 users", "#882255", "v",
             settings={"pool_size": "64"}, contract=False,
             scenarios=("slow_db",), users=(64,), db_ms=(0, 20, 50)),
    AppEntry("sync-40", "sync_app.main:create_app", "sync",
             "sync app at AnyIO's default of 40 thread tokens (threads then wait for pool connections)",
             "#6A9FCF", ">", settings={"thread_tokens": "40"}, contract=False),
    # PostgreSQL: psycopg 3 is one driver with a sync and an async interface, so sync-psycopg vs async-psycopg
    # differs only by the concurrency model; asyncpg is the other async choice.
    AppEntry("sync-psycopg", "sync_app.main:create_app", "sync",
             "def routes, Session, psycopg 3 (sync)", "#332288", "X",
             settings={"sync_driver": "psycopg"}, backend="postgres"),
    AppEntry("async-psycopg", "async_app.main:create_app", "async",
             "async def routes, AsyncSession, psycopg 3 (async)", "#AA3377", "h",
             settings={"async_driver": "psycopg"}, backend="postgres"),
    AppEntry("async-asyncpg", "async_app.main:create_app", "async",
             "async def routes, AsyncSession, asyncpg", "#EE7733", "*",
             settings={"async_driver": "asyncpg"}, backend="postgres"),
)  # fmt: skip

SCENARIOS: tuple[ScenarioEntry, ...] = (
    ScenarioEntry("read_heavy", "GET /users/{id} and pages of users, 9:1"),
    ScenarioEntry("write_heavy", "create items, update users, delete items", writes=True),
    ScenarioEntry(
        "mixed_crud",
        "every route: mostly reads, some writes, sign-ups and deletions",
        writes=True,
        duration_factor=2.0,
    ),
    ScenarioEntry(
        "slow_db", "GET /io/sleep?ms=N: a query that waits N ms in the database", sweeps_db_ms=True
    ),
    ScenarioEntry(
        "signup", "POST /users only: Argon2 hashing dominates (CPU-bound)", writes=True, duration_factor=2.0
    ),
    # Interference (make bench-interference): paced probes, the other users one kind of neighbour work.
    *(
        ScenarioEntry(
            f"interference_{kind}",
            f"probes ({PROBES_TEXT}) beside {what}",
            file="interference",
            options=("--neighbour", kind),
            default=False,
        )  # fmt: skip
        for kind, what in NEIGHBOURS.items()
    ),
)

PAIRS: tuple[PairEntry, ...] = (
    PairEntry("sync", "async", "default drivers: PyMySQL vs asyncmy", "#222222"),
    PairEntry("sync-mysqlclient", "async", "compiled drivers: mysqlclient vs asyncmy", "#56B4E9"),
    PairEntry("sync", "async-aiomysql", "pure-Python drivers: PyMySQL vs aiomysql", "#E69F00"),
    PairEntry("sync-wide", "async-wide", "pool 64 at 64 users: the pool is not the limit", "#5D9C59"),
    PairEntry("sync-psycopg", "async-psycopg", "same driver: psycopg sync vs psycopg async", "#AA3377"),
    PairEntry("sync-psycopg", "async-asyncpg", "asyncpg: psycopg vs asyncpg", "#EE7733"),
)

# Ceilings: the same routes and statements without the ORM and response models (idiomatic, raw).
CEILINGS: tuple[tuple[str, str], ...] = (("sync", "sync-raw"), ("async", "async-raw"))

# Where a request's CPU goes (bench run --profile, bench/analyse/layers.py). A sampled stack counts for the
# layer of its innermost frame whose file matches one of these prefixes, tried in this order (the more
# specific first; `path:name` names a function or class of a file); frames of no known package (the stdlib's
# socket, json...) count for their caller, and a stack with no known frame at all for `other`. Paths are
# py-spy's: relative to site-packages, the stdlib or the project. `app` is the app's own code: APP_PACKAGES,
# or the top package of a user's `module:attr`.
LAYERS: tuple[str, ...] = (
    "server", "framework", "validation", "orm", "sql_core", "async_bridge", "driver", "thread_handoff", "app",
    "other",
)  # fmt: skip
LAYER_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("app", ("argon2/", "_argon2_cffi_bindings/", "bcrypt/", "passlib/")),  # the app's own work: hashing
    ("async_bridge", ("greenlet/", "sqlalchemy/util/_concurrency_py3k.py", "sqlalchemy/util/concurrency.py",
                      "sqlalchemy/connectors/asyncio.py", "sqlalchemy/ext/asyncio/")),
    ("orm", ("sqlalchemy/orm/",)),
    ("sql_core", ("sqlalchemy/",)),
    ("driver", ("pymysql/", "MySQLdb/", "asyncmy/", "aiomysql/",
                "psycopg/", "psycopg_binary/", "psycopg_pool/", "asyncpg/")),
    ("validation", ("pydantic/", "pydantic_core/", "annotated_types/", "email_validator/",
                    "fastapi/encoders.py", "fastapi/_compat")),
    ("thread_handoff", ("anyio/to_thread.py", "anyio/from_thread.py", "starlette/concurrency.py",
                        "threading.py", "queue.py", "concurrent/futures/",
                        "anyio/_backends/_asyncio.py:run_sync_in_worker_thread",
                        "anyio/_backends/_asyncio.py:WorkerThread",
                        "anyio/_backends/_asyncio.py:CapacityLimiter")),
    ("framework", ("fastapi/", "starlette/", "anyio/")),
    ("server", ("uvicorn/", "httptools/", "h11/", "uvloop/", "asyncio/", "selectors.py")),
)  # fmt: skip
APP_PACKAGES = ("sync_app", "async_app", "shared", "variants")  # the catalog apps' own code
LAYER_COLOURS = dict(zip(LAYERS, ("#4E79A7", "#A0CBE8", "#B07AA1", "#F28E2B", "#FFBE7D", "#E15759", "#59A14F",
                                  "#8CD17D", "#9C755F", "#BAB0AC"), strict=True))  # fmt: skip

DEFAULT_APPS = ("sync", "async")
# What `bench run --backend NAME` measures when no --app is given: each backend's default pair(s).
DEFAULT_APPS_OF: dict[str, tuple[str, ...]] = {
    "mariadb": (*DEFAULT_APPS, "sync-wide", "async-wide"),
    "postgres": ("sync-psycopg", "async-psycopg", "async-asyncpg"),
}
BASE_PREFIX = "base:"  # `base:sync`: the catalog's `sync`, started from the baseline commit's code
OTHER_COLOURS = ("#555555", "#8C564B", "#BCBD22", "#17BECF", "#9467BD")

APP_BY_NAME = {a.name: a for a in APPS}
SCENARIO_BY_NAME = {s.name: s for s in SCENARIOS}


def app_names() -> str:
    return ", ".join(APP_BY_NAME)


def scenario_names() -> str:
    return ", ".join(SCENARIO_BY_NAME)


# --- display order and colours (for any name, catalogued or not) -------------------------------------


def _base(name: str) -> str:
    return name.removeprefix(BASE_PREFIX)


def app_rank(name: str) -> tuple[int, str]:
    names = list(APP_BY_NAME)
    return (names.index(_base(name)) if _base(name) in names else len(names), name)


def sweeps_db_ms(scenario: object) -> bool:
    """Whether the scenario runs at every --db-ms level (slow_db): its rows differ by database time."""
    entry = SCENARIO_BY_NAME.get(scenario_name(str(scenario)))
    return bool(entry and entry.sweeps_db_ms)


# --- how a workload is named for a reader: the only place -------------------------------------------


def workload_name(scenario: object, db_ms: float) -> str:
    """'read_heavy', or with the database time where the scenario sweeps it: 'slow_db 5 ms'."""
    return f"{scenario} {float(db_ms):g} ms" if sweeps_db_ms(scenario) else str(scenario)


def load_words(scenario: object, mode: str, load: float, db_ms: float) -> str:
    """A point's load: '32 users', '500 req/s', or with the swept database time '20 ms DB, 32 users'."""
    amount = f"{load:g}" if math.isfinite(load) else "?"
    what = f"{amount} req/s" if mode == "open" else f"{amount} users"
    return f"{db_ms:g} ms DB, {what}" if db_ms or sweeps_db_ms(scenario) else what


def scenario_rank(name: str) -> tuple[int, str]:
    names = list(SCENARIO_BY_NAME)
    return (names.index(name) if name in names else len(names), name)


def ordered_apps(names: Iterable[str]) -> list[str]:
    return sorted(set(names), key=app_rank)


def app_colour(name: str) -> str:
    entry = APP_BY_NAME.get(_base(name))
    return entry.colour if entry else OTHER_COLOURS[zlib.crc32(name.encode()) % len(OTHER_COLOURS)]


def app_marker(name: str) -> str:
    entry = APP_BY_NAME.get(_base(name))
    return entry.marker if entry else "v"


def present_pairs(apps: Iterable[str]) -> list[PairEntry]:
    have = set(apps)
    return [p for p in PAIRS if p.sync in have and p.async_ in have]


def pair_backend(pair: PairEntry) -> str:
    """The database a pair runs on (both of its apps run on the same one)."""
    return APP_BY_NAME[pair.sync].backend


# --- backends: which apps run on which database --------------------------------------------------------


def apps_on(backend: str) -> str:
    return ", ".join(a.name for a in APPS if a.backend == backend)


def default_apps(backends: Sequence[str], *, first_pair: bool = False) -> tuple[str, ...]:
    """The apps `bench run` measures when no --app is given: each backend's default pair(s), or only its first
    pair (`--quick`)."""
    return tuple(app for b in backends for app in DEFAULT_APPS_OF.get(b, ())[: 2 if first_pair else None])


def assign_backends(apps: Sequence[AppSpec], backends: Sequence[str]) -> dict[str, str]:
    """app name -> the backend it runs on. A catalog app runs on its own backend, which must be one of
    `backends` (when any are given); an app from outside the catalog runs on the only backend of the run.
    Every chosen backend needs at least one app. ValueError (one line) otherwise."""
    chosen = list(dict.fromkeys(backends))
    out: dict[str, str] = {}
    for app in apps:
        if app.entry is None:
            if len(chosen) != 1:
                raise ValueError(
                    f"app {app.name!r} is not in the catalog, so it needs exactly one --backend to run on"
                )
            out[app.name] = chosen[0]
        elif chosen and app.entry.backend not in chosen:
            wanted = " or ".join(chosen)
            raise ValueError(
                f"app {app.name!r} runs on {app.entry.backend}, not {wanted}: "
                + "; ".join(f"on {b} use {apps_on(b) or 'a module:attr app'}" for b in chosen)
            )
        else:
            out[app.name] = app.entry.backend
    idle = [b for b in chosen if b not in out.values()]
    if idle:
        raise ValueError(f"--backend {idle[0]}: no --app runs on it (its apps: {apps_on(idle[0])})")
    return out


# --- what `--app` and `--scenario` accept ------------------------------------------------------------


@dataclass(frozen=True)
class AppSpec:
    """An app as a run starts it: a catalog entry, or a user's ASGI app under a label."""

    name: str  # the label in points.csv
    target: str  # uvicorn import string
    factory: bool  # `target` is a factory (uvicorn --factory) rather than an app object
    env: Mapping[str, str] = field(default_factory=dict)
    description: str = ""
    root: Path | None = None  # the source tree to start it from (None: this repository)
    entry: AppEntry | None = None  # the catalog entry it stands for (its family, backend, scenarios)
    url: str | None = None  # an app already running somewhere: the harness starts nothing for it
    custom: bool = False  # a user's `module:attr` app (bench run's --app-dir, --env-file, --health-path)
    health_path: str | None = "/healthz"  # a 200 there means it is up; None: any HTTP answer on its port

    @property
    def external(self) -> bool:
        return self.url is not None


def _env(entry: AppEntry) -> dict[str, str]:
    return {k.upper(): v for k, v in entry.settings.items()}


def _is_import_string(text: str) -> bool:
    return ":" in text and all(p.replace(".", "").replace("_", "").isalnum() for p in text.split(":", 1))


def _is_label(text: str) -> bool:
    return bool(text) and text.replace("-", "").replace("_", "").replace(".", "").isalnum()


def _external(label: str, url: str) -> AppSpec:
    """`label=http://host:port`: an app already running (the user's own service, or one of ours)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ValueError(f"--app {label}={url}: the URL must look like http://host:port")
    try:
        if parts.port == 0:
            raise ValueError
    except ValueError:
        raise ValueError(f"--app {label}={url}: the port is not a number from 1 to 65535") from None
    if not _is_label(label):
        raise ValueError(
            f"--app {label}={url}: give the app a name: NAME=http://host:port (letters, digits, -_.)"
        )
    entry = APP_BY_NAME.get(label)
    return AppSpec(label, "", False, {}, f"external app at {url}", entry=entry, url=url.rstrip("/"))


def resolve_app(name: str, base_root: Path | None = None) -> AppSpec:
    """A catalog name; an ASGI import string `package.module:attr` (used as its own name);
    `label=package.module:attr`, which runs that app under the label with the label's settings (for example
    `sync=tests.perfgate.slow_app:sync_app`, compared by the gate with the baseline's sync); `base:NAME`,
    the catalog's NAME started from `base_root` (the regression gate's baseline code); or
    `label=http://host:port`, an app already running elsewhere, measured under the label (a catalog name
    as label keeps that app's family, colour and pairs)."""
    label, sep, url = name.partition("=")
    if sep and url.split("://", 1)[0] in ("http", "https"):
        return _external(label, url)
    if (
        name.startswith(BASE_PREFIX)
        and base_root is not None
        and _is_import_string(_base(name).rpartition("=")[2])
    ):
        spec = resolve_app(_base(name))  # a user's `label=module:attr`, started from the baseline's tree
        return replace(
            spec,
            name=BASE_PREFIX + spec.name,
            root=base_root,
            description=f"{spec.description} (baseline code)",
        )
    if name.startswith(BASE_PREFIX):
        entry = APP_BY_NAME.get(_base(name))
        if entry is None or base_root is None:
            raise ValueError(
                f"{name!r}: 'base:' takes a catalog app ({app_names()}) and needs the baseline's source tree "
                "(bench perf-check provides it)"
            )
        spec = resolve_app(entry.name)
        return replace(spec, name=name, root=base_root, description=f"{entry.description} (baseline code)")
    if name in APP_BY_NAME:
        entry = APP_BY_NAME[name]
        return AppSpec(name, entry.factory, True, _env(entry), entry.description, entry=entry)
    label, _, target = name.rpartition("=")
    if _is_import_string(target) and (not label or label.replace("-", "").replace("_", "").isalnum()):
        entry = APP_BY_NAME.get(label)
        env = _env(entry) if entry else {}
        return AppSpec(
            label or target, target, False, env, f"custom ASGI app {target}", entry=entry, custom=True,
            health_path=None,
        )  # fmt: skip
    raise ValueError(
        f"unknown app {name!r}: use one of {app_names()}, an import string 'module:attr', "
        "'label=module:attr', or 'label=http://host:port' (an app already running)"
    )


def app_packages(app: AppSpec) -> tuple[str, ...]:
    """The packages whose code is the app's own (the layer `app`): ours, and a user app's top package."""
    top = app.target.split(":", 1)[0].split(".", 1)[0] if app.target else ""
    return tuple(dict.fromkeys([*APP_PACKAGES, *([top] if top else [])]))


def scenario_options(scenario: str) -> tuple[str, ...]:
    entry = SCENARIO_BY_NAME.get(scenario)
    return entry.options if entry else ()


def locustfile(scenario: str) -> Path:
    """A catalog scenario's locustfile, or a path to the user's own."""
    path = SCENARIO_BY_NAME[scenario].locustfile if scenario in SCENARIO_BY_NAME else Path(scenario)
    if not path.is_file() or (scenario not in SCENARIO_BY_NAME and path.suffix != ".py"):
        raise ValueError(f"unknown scenario {scenario!r}: use one of {scenario_names()} or a locustfile path")
    return path.resolve()


def scenario_name(scenario: str) -> str:
    """How a scenario is named in points.csv: the catalog name, or a locustfile's stem."""
    return Path(scenario).stem if scenario.endswith(".py") else scenario


def serves(app: AppSpec, scenario: str) -> bool:
    """Whether `app` is measured in `scenario`: read-only variants lack the write routes, and an entry may
    name its own scenarios (the pool-64 apps: the latency sweep only)."""
    entry, scen = app.entry, SCENARIO_BY_NAME.get(scenario_name(scenario))
    if entry is not None and entry.scenarios is not None and scenario_name(scenario) not in entry.scenarios:
        return False
    return not (entry and entry.read_only and scen and scen.writes)


def pairs_among(apps: Iterable[str]) -> list[tuple[str, str]]:
    """The paired comparisons a run of `apps` makes: every catalog sync/async pair, then every ceiling
    (raw first, so the ratio reads idiomatic/raw), whose two apps are both in the run."""
    have = set(apps)
    ceilings = [(raw, idiomatic) for idiomatic, raw in CEILINGS if idiomatic in have and raw in have]
    return [(p.sync, p.async_) for p in present_pairs(have)] + ceilings
