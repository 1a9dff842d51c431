"""The stack a measurement runs against: the database (started if needed), its seed data, and the apps.

`with Stack(...) as stack:` brings everything up; leaving the block stops the apps it started and the
database if it started it. An external app (`--app NAME=http://host:port`) is only checked and read
(`/limits`), never started, restarted or stopped; its database is reachable only through DATABASE_URL (with
no DATABASE_URL and only external apps, no database is started at all). `stack.app(name)` hands out a running app and restarts one that died or stopped
answering (a deadlocked variant). `bench run`, `bench ui` and the regression gate all use it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from bench import processes
from bench.backends import Backend, ServerInfo
from bench.catalog import AppSpec
from bench.config import AppLimits, SeedData
from bench.processes import ManagedProcess, Pinning
from shared.config import REPO_ROOT, Settings


def url_host(host: str) -> str:
    """An address as the host part of a URL (an IPv6 address in brackets)."""
    return f"[{host}]" if ":" in host else host


@dataclass
class RunningApp:
    spec: AppSpec
    port: int
    proc: ManagedProcess | None  # None: an external app (`--app NAME=http://...`), never started here
    limits: dict[str, Any]  # what its /limits endpoint reported ({} when it serves none)
    host: str = "127.0.0.1"
    db_measured: bool = True  # its database is the one the harness reads counters and acked writes from

    @property
    def base_url(self) -> str:
        return self.spec.url or f"http://{url_host(self.host)}:{self.port}"

    def alive(self) -> bool | None:
        """Whether its process runs; None for an external app (cannot tell)."""
        return None if self.proc is None else self.proc.alive()

    def pids(self) -> list[int]:
        return [] if self.proc is None else self.proc.pids()

    def healthy(self) -> bool:
        if self.proc is None:
            return True  # not ours to judge or restart: its failures show in the point
        if not self.proc.alive():
            return False
        try:
            return httpx.get(f"{self.base_url}/healthz", timeout=3).status_code == 200
        except httpx.HTTPError:
            return False


class Stack:
    def __init__(
        self,
        backend: Backend,
        apps: Sequence[AppSpec],
        *,
        limits: AppLimits,
        seed: SeedData,
        pinning: Pinning,
        log_dir: Path,
        database: str | None = None,
        app_host: str = "127.0.0.1",
    ) -> None:
        self.backend = backend
        self.specs = {spec.name: spec for spec in apps}
        self.limits = limits
        self.seed_data = seed
        self.pinning = pinning
        self.log_dir = log_dir
        self.database = database
        self.app_host = app_host
        self.apps: dict[str, RunningApp] = {}
        self.info: ServerInfo | None = None
        self.settings = Settings()
        # External apps use a database of their own: the harness reaches it only through DATABASE_URL.
        self.database_url = self.settings.database_url is not None
        self.db_enabled = self.database_url or any(not spec.external for spec in apps)

    # --- lifecycle ---------------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        try:
            if self.db_enabled:
                self.info = self.backend.ensure(self.settings)
                self.settings = self.backend.settings(Settings(), self.database)
                if self.info.pid:
                    processes.pin(self.info.pid, self.pinning.db)
                self.backend.seed(self.settings, self.seed_data.users, self.seed_data.items)
            for name in self.specs:
                self.apps[name] = self._start(name)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        for app in self.apps.values():
            if app.proc is not None:
                app.proc.stop(grace=3.0)
        if self.info is not None and self.info.pid:
            processes.pin(self.info.pid, sorted(os.sched_getaffinity(0)))  # a reused server: unpinned
        if self.info is not None and self.info.started:
            self.backend.stop()

    @property
    def database_name(self) -> str:
        from shared.db_url import build_url

        return build_url(self.settings, self.settings.driver("sync")).database or ""

    # --- apps --------------------------------------------------------------------------------------

    def app_env(self, spec: AppSpec) -> dict[str, str]:
        """The app's settings as environment variables, explicit: an app started from another source tree
        (the gate's baseline) has no .run/db.env, and none may read another backend's."""
        s, lim = self.settings, self.limits
        env = {"BACKEND": s.backend, "DB_CONNECT_TIMEOUT": str(s.db_connect_timeout)}
        if s.database_url is not None:
            env["DATABASE_URL"] = s.database_url.get_secret_value()
        else:
            env |= {"DB_HOST": s.db_host, "DB_PORT": str(s.db_port), "DB_USER": s.db_user,
                    "DB_PASSWORD": s.db_password.get_secret_value(), "DB_NAME": s.db_name}  # fmt: skip
        env |= {"POOL_SIZE": str(lim.pool_size), "MAX_OVERFLOW": str(lim.max_overflow),
                "WEB_CONCURRENCY": str(lim.workers), "EVENT_LOOP": lim.event_loop, **spec.env}  # fmt: skip
        if lim.thread_tokens is not None:
            env["THREAD_TOKENS"] = str(lim.thread_tokens)
        if spec.root is not None:
            env["PYTHONPATH"] = str(spec.root)
        return env

    def _attach(self, spec: AppSpec) -> RunningApp:
        """An app already running elsewhere: check it answers, read /limits if it serves them."""
        assert spec.url is not None
        try:
            resp = httpx.get(f"{spec.url}/limits", timeout=5)
        except httpx.HTTPError as exc:
            raise RuntimeError(
                f"app {spec.name!r} at {spec.url} does not answer ({type(exc).__name__}): start it, or fix --app"
            ) from None
        try:
            limits = resp.json() if resp.status_code == 200 else {}
        except ValueError:
            limits = {}
        port = httpx.URL(spec.url).port or (443 if spec.url.startswith("https") else 80)
        limits = limits if isinstance(limits, dict) else {}
        return RunningApp(spec, port, None, limits, db_measured=self.database_url)

    def _start(self, name: str) -> RunningApp:
        spec = self.specs[name]
        if spec.external:
            return self._attach(spec)
        port = processes.free_port()
        argv = [
            *processes.python_tool("uvicorn"), spec.target, *(["--factory"] if spec.factory else []),
            "--host", self.app_host, "--port", str(port), "--workers", str(self.limits.workers),
            "--loop", self.limits.event_loop, "--no-access-log", "--log-level", "warning",
        ]  # fmt: skip
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"app-{spec.name.replace(':', '.')}.log"
        proc = processes.spawn(
            f"app {spec.name}", argv, env=self.app_env(spec), cpus=self.pinning.app, log_path=log,
            cwd=spec.root or REPO_ROOT,
        )  # fmt: skip
        url = f"http://{url_host(self.app_host)}:{port}"
        processes.wait_healthy(url, proc)
        limits = httpx.get(f"{url}/limits", timeout=5).json()
        return RunningApp(spec, port, proc, limits, self.app_host)

    def app(self, name: str) -> RunningApp:
        """The app, restarted first if it died or stopped answering."""
        app = self.apps.get(name)
        if app is not None and app.healthy():
            return app
        if app is not None and app.proc is not None:
            app.proc.stop()
        self.apps[name] = self._start(name)
        return self.apps[name]

    def stop_app(self, name: str) -> None:
        """Stop a stalled app now (it holds connections and open transactions); `app()` restarts it."""
        proc = self.apps[name].proc if name in self.apps else None
        if proc is not None:
            proc.stop()

    # --- data --------------------------------------------------------------------------------------

    def reset(self) -> None:
        if self.db_enabled:
            self.backend.reset(self.settings, self.seed_data.users, self.seed_data.items)

    def count_acked(self, acked: dict[str, list[int]]) -> int:
        """How many acknowledged writes exist in the database."""
        return sum(
            self.backend.count_existing(self.settings, table, ids) for table, ids in acked.items() if ids
        )
