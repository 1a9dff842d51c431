"""The one registry: every app, variant, scenario and sync/async pair the harness knows, in display order,
with its colour. Tables, charts, `--help` texts and test parametrisation all read from here, so adding a
variant or a scenario is one entry below plus its own code (a module in variants/ or loadtests/).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

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


@dataclass(frozen=True)
class ScenarioEntry:
    name: str  # loadtests/<name>.py
    description: str
    writes: bool = False  # needs the write routes
    sweeps_db_ms: bool = False  # run at every --db-ms level (the simulated database latency)

    @property
    def locustfile(self) -> Path:
        return REPO_ROOT / "loadtests" / f"{self.name}.py"


@dataclass(frozen=True)
class PairEntry:
    """A sync/async comparison the report draws a verdict for."""

    sync: str
    async_: str
    label: str
    colour: str


# Okabe-Ito colours (colour-blind safe): sync apps blue/green, async apps orange/red/pink.
APPS: tuple[AppEntry, ...] = (
    AppEntry("sync", "sync_app.main:create_app", "sync", "def routes, Session, PyMySQL", "#0072B2", "o"),
    AppEntry("async", "async_app.main:create_app", "async", "async def routes, AsyncSession, asyncmy", "#D55E00", "s"),
    AppEntry("sync-mysqlclient", "sync_app.main:create_app", "sync", "sync app on mysqlclient (C)", "#56B4E9", "^",
             settings={"sync_driver": "mysqlclient"}),
    AppEntry("async-aiomysql", "async_app.main:create_app", "async", "async app on aiomysql (pure Python)", "#E69F00",
             "D", settings={"async_driver": "aiomysql"}),
    AppEntry("async-blocking", "variants.blocking:create_app", "async",
             "anti-pattern: async def routes calling the blocking Session", "#CC79A7", read_only=True, contract=False),
    AppEntry("sync-naive", "variants.naive:create_app", "sync",
             "naive sync: session closed after serialization; deadlocks past pool + tokens", "#009E73",
             read_only=True, contract=False),
    AppEntry("sync-raw", "variants.raw_sync:create_app", "sync",
             "ceiling: def routes on raw PyMySQL with a plain pool; no ORM, no response models", "#003D5C", "P",
             read_only=True, contract=False),
)  # fmt: skip

SCENARIOS: tuple[ScenarioEntry, ...] = (
    ScenarioEntry("read_heavy", "GET /users/{id} and pages of users, 9:1"),
    ScenarioEntry("write_heavy", "create items, update users, delete items", writes=True),
    ScenarioEntry(
        "mixed_crud", "every route: mostly reads, some writes, sign-ups and deletions", writes=True
    ),
    ScenarioEntry(
        "slow_db", "GET /io/sleep?ms=N: a query that waits N ms in the database", sweeps_db_ms=True
    ),
    ScenarioEntry("signup", "POST /users only: Argon2 hashing dominates (CPU-bound)", writes=True),
)

PAIRS: tuple[PairEntry, ...] = (
    PairEntry("sync", "async", "default drivers: PyMySQL vs asyncmy", "#222222"),
    PairEntry("sync-mysqlclient", "async", "compiled drivers: mysqlclient vs asyncmy", "#56B4E9"),
    PairEntry("sync", "async-aiomysql", "pure-Python drivers: PyMySQL vs aiomysql", "#E69F00"),
)

DEFAULT_APPS = ("sync", "async")
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
    if name.startswith(BASE_PREFIX):
        entry = APP_BY_NAME.get(_base(name))
        if entry is None or base_root is None:
            raise ValueError(
                f"{name!r}: 'base:' takes a catalog app ({app_names()}) and needs the baseline's source "
                "tree (bench perf-check provides it)"
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
        return AppSpec(label or target, target, False, env, f"custom ASGI app {target}", entry=entry)
    raise ValueError(
        f"unknown app {name!r}: use one of {app_names()}, an import string 'module:attr', 'label=module:attr', "
        "or 'label=http://host:port' (an app already running)"
    )


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
    """Whether `app` can serve `scenario` (read-only variants lack the write routes)."""
    entry, scen = app.entry, SCENARIO_BY_NAME.get(scenario_name(scenario))
    return not (entry and entry.read_only and scen and scen.writes)
