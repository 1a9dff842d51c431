"""Which apps the harness can start: the two mirror apps, their variants, or any `module:attr`."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

BASE_PREFIX = "base:"  # `base:sync`: the registered app `sync`, started from the baseline commit's source


@dataclass(frozen=True)
class AppSpec:
    name: str
    target: str  # uvicorn import string
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""
    root: Path | None = None  # the source tree to start it from (None: this repository)


APPS: dict[str, AppSpec] = {
    spec.name: spec
    for spec in (
        AppSpec("sync", "sync_app.main:app", {"SYNC_DRIVER": "pymysql"}, "def routes, Session, PyMySQL"),
        AppSpec("async", "async_app.main:app", {"ASYNC_DRIVER": "asyncmy"}, "async def routes, AsyncSession, asyncmy"),
        AppSpec("sync-mysqlclient", "sync_app.main:app", {"SYNC_DRIVER": "mysqlclient"}, "sync app on mysqlclient (C)"),
        AppSpec("async-aiomysql", "async_app.main:app", {"ASYNC_DRIVER": "aiomysql"}, "async app on aiomysql (pure Python)"),
        AppSpec("async-blocking", "sync_app.variants:blocking_app", {"SYNC_DRIVER": "pymysql"},
                "anti-pattern: async def routes calling the blocking Session (read routes only)"),
        AppSpec("sync-naive", "sync_app.variants:naive_app", {"SYNC_DRIVER": "pymysql"},
                "naive sync: session closed after serialization; deadlocks past pool + tokens (read routes only)"),
    )
}  # fmt: skip


def _is_import_string(text: str) -> bool:
    return ":" in text and all(p.replace(".", "").replace("_", "").isalnum() for p in text.split(":", 1))


def resolve_app(name: str, base_root: Path | None = None) -> AppSpec:
    """A registered name; an ASGI import string `package.module:attr` (used as its own name);
    `label=package.module:attr`, which runs that app under the label (for example
    `sync=tests.perfgate.slow_app:sync_app`, so a regression check compares it with the baseline's sync);
    or `base:NAME`, the registered app NAME started from `base_root` (the regression gate's baseline code)."""
    if name.startswith(BASE_PREFIX):
        spec = APPS.get(name.removeprefix(BASE_PREFIX))
        if spec is None or base_root is None:
            raise ValueError(
                f"{name!r}: 'base:' takes a registered app ({', '.join(APPS)}) and needs the baseline's "
                "source tree (bench perf-check provides it)"
            )
        return replace(spec, name=name, root=base_root, description=f"{spec.description} (baseline code)")
    if name in APPS:
        return APPS[name]
    label, _, target = name.rpartition("=")
    if _is_import_string(target) and (not label or label.replace("-", "").replace("_", "").isalnum()):
        base = APPS.get(label)
        env = base.env if base else {}
        return AppSpec(label or target, target, env, f"custom ASGI app {target}")
    raise ValueError(
        f"unknown app {name!r}: use one of {', '.join(APPS)}, an import string 'module:attr', "
        "or 'label=module:attr'"
    )


def app_kind(spec: AppSpec) -> str:
    """'sync' or 'async' family, for pairing in the report."""
    return "async" if spec.name.startswith("async") or "async_app" in spec.target else "sync"
