"""Which apps the harness can start: the two mirror apps, their variants, or any `module:attr`."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class AppSpec:
    name: str
    target: str  # uvicorn import string
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""


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


def resolve_app(name: str) -> AppSpec:
    """A registered name, or an ASGI import string `package.module:attr` (used as its own name)."""
    if name in APPS:
        return APPS[name]
    if ":" in name and all(part.replace(".", "").replace("_", "").isalnum() for part in name.split(":", 1)):
        return AppSpec(name, name, {}, "custom ASGI app")
    raise ValueError(f"unknown app {name!r}: use one of {', '.join(APPS)} or an import string 'module:attr'")


def app_kind(spec: AppSpec) -> str:
    """'sync' or 'async' family, for pairing in the report."""
    return "async" if spec.name.startswith("async") or "async_app" in spec.target else "sync"
