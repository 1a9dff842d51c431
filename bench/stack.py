"""The stack a measurement runs against: the database (started if needed), its seed data, and the apps.

`with Stack(...) as stack:` brings everything up; leaving the block stops the apps it started and the database
if it started it. An external app (`--app NAME=http://host:port`) is only checked and read (`/limits`), never
started, restarted or stopped; its database is reachable only through DATABASE_URL (with no DATABASE_URL and
only external apps, no database is started at all). `stack.app(name)` hands out a running app and restarts one
that died or stopped answering (a deadlocked variant). `bench run`, `bench ui` and the regression gate all use
it.
"""

from __future__ import annotations

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


def settings_env(settings: Settings) -> dict[str, str]:
    """Settings as an app process's environment, explicit: an app started from another source tree (the
    gate's baseline) has no .run/db.env, and none may read another backend's."""
    s = settings
    env = {
        "BACKEND": s.backend,
        "DB_CONNECT_TIMEOUT": str(s.db_connect_timeout),
        "DB_READ_TIMEOUT": str(s.db_read_timeout),
    }
    if s.database_url is not None:
        env["DATABASE_URL"] = s.database_url.get_secret_value()
    else:
        env |= {
            "DB_HOST": s.db_host,
            "DB_PORT": str(s.db_port),
            "DB_USER": s.db_user,
            "DB_PASSWORD": s.db_password.get_secret_value(),
            "DB_NAME": s.db_name,
        }
    env |= {
        "POOL_SIZE": str(s.pool_size),
        "MAX_OVERFLOW": str(s.max_overflow),
        "POOL_TIMEOUT": str(s.pool_timeout),
        "WEB_CONCURRENCY": str(s.workers),
        "EVENT_LOOP": s.event_loop,
        "ARGON2_TIME_COST": str(s.argon2_time_cost),
        "ARGON2_MEMORY_COST": str(s.argon2_memory_cost),
        "ARGON2_PARALLELISM": str(s.argon2_parallelism),
    }
    if s.thread_tokens is not None:
        env["THREAD_TOKENS"] = str(s.thread_tokens)
    return env


def uvicorn_argv(
    spec: AppSpec, port: int, *, workers: int = 1, loop: str = "auto", host: str = "127.0.0.1"
) -> list[str]:
    return [
        *processes.python_tool("uvicorn"),
        spec.target,
        *(["--factory"] if spec.factory else []),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        loop,
        "--no-access-log",
        "--log-level",
        "warning",
    ]


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
        """Its process runs and its health path answers 200 (an app without one: answers at all)."""
        if self.proc is None:
            return True  # not ours to judge or restart: its failures show in the point
        if not self.proc.alive():
            return False
        path = self.spec.health_path
        try:
            resp = httpx.get(f"{self.base_url}{path or '/'}", timeout=3)
        except httpx.HTTPError:
            return False
        return path is None or resp.status_code == 200


def _limits(url: str) -> dict[str, Any]:
    """What the app's /limits reports; {} when it serves none (a user's own app)."""
    resp = httpx.get(f"{url}/limits", timeout=5)
    try:
        limits = resp.json() if resp.status_code == 200 else {}
    except ValueError:
        limits = {}
    return limits if isinstance(limits, dict) else {}


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
                for pid in self.db_pids():
                    processes.pin(pid, self.pinning.db)
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
        for pid in self.db_pids():
            processes.pin(pid, processes.MACHINE_CPUS)  # a reused server: unpinned
        if self.info is not None and self.info.started:
            self.backend.stop()

    @property
    def database_name(self) -> str:
        from shared.db_url import build_url

        return build_url(self.settings, self.settings.driver("sync")).database or ""

    def db_pids(self) -> list[int]:
        """The private server's processes (PostgreSQL: the postmaster and one per connection), none for
        the server of a DATABASE_URL."""
        return self.backend.pids() if self.info is not None and self.info.private else []

    def database_info(self) -> dict[str, object]:
        """What meta.json records of the server (`databases.<backend>`)."""
        info = self.info
        if info is None:
            return {"backend": self.backend.name, "reachable": False}
        return {
            "backend": info.backend,
            "name": self.database_name,
            "private": info.private,
            "version": info.version,
            "max_connections": info.max_connections,
            "host": info.host,
            "port": info.port,
            "pid": info.pid,
        }

    # --- apps --------------------------------------------------------------------------------------

    def app_env(self, spec: AppSpec) -> dict[str, str]:
        """The run's settings with its limits, then the app's own (its driver), as environment variables."""
        lim = self.limits
        limited = self.settings.model_copy(
            update={
                "pool_size": lim.pool_size,
                "max_overflow": lim.max_overflow,
                "workers": lim.workers,
                "thread_tokens": lim.thread_tokens,
            }
        )
        env = settings_env(limited) | {"EVENT_LOOP": lim.event_loop, **spec.env}
        if spec.root is not None:
            env["PYTHONPATH"] = str(spec.root)
        return env

    def _attach(self, spec: AppSpec) -> RunningApp:
        """An app already running elsewhere: check it answers, read /limits if it serves them."""
        assert spec.url is not None
        try:
            limits = _limits(spec.url)
        except httpx.HTTPError as exc:
            raise RuntimeError(
                f"app {spec.name!r} at {spec.url} does not answer ({type(exc).__name__}): start it, or fix "
                "--app"
            ) from None
        port = httpx.URL(spec.url).port or (443 if spec.url.startswith("https") else 80)
        return RunningApp(spec, port, None, limits, db_measured=self.database_url)

    def _spawn(self, name: str, taken: Sequence[int] = ()) -> tuple[ManagedProcess, int]:
        """Start the app's process (`taken`: ports of apps started beside it that may not be bound yet)."""
        spec = self.specs[name]
        port = processes.free_port()
        while port in taken:
            port = processes.free_port()
        argv = uvicorn_argv(
            spec, port, workers=self.limits.workers, loop=self.limits.event_loop, host=self.app_host
        )
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"app-{spec.name.replace(':', '.')}.log"
        proc = processes.spawn(
            f"app {spec.name}",
            argv,
            env=self.app_env(spec),
            cpus=self.pinning.app,
            log_path=log,
            cwd=spec.root or REPO_ROOT,
        )
        return proc, port

    def _ready(self, name: str, proc: ManagedProcess, port: int) -> RunningApp:
        url = f"http://{url_host(self.app_host)}:{port}"
        try:
            processes.wait_healthy(url, proc, path=self.specs[name].health_path)
            limits = _limits(url)
        except BaseException:  # Ctrl-C or a failed start: not yet in self.apps, so stop it here
            proc.stop(grace=3.0)
            raise
        return RunningApp(self.specs[name], port, proc, limits, self.app_host)

    def _start(self, name: str) -> RunningApp:
        if self.specs[name].external:
            return self._attach(self.specs[name])
        return self._ready(name, *self._spawn(name))

    def app(self, name: str) -> RunningApp:
        """The app, restarted first if it died or stopped answering."""
        app = self.apps.get(name)
        if app is not None and app.healthy():
            return app
        if app is not None and app.proc is not None:
            app.proc.stop()
        self.apps[name] = self._start(name)
        return self.apps[name]

    def restart_apps(self, names: Sequence[str]) -> None:
        """New processes for these apps (a paired point's two sides, --fresh-apps): the old ones are told to
        stop and the new ones spawned at once, so their shutdown overlaps the new ones' start."""
        names = [n for n in names if not self.specs[n].external]
        old = [self.apps[n].proc for n in names if n in self.apps]
        for proc in old:
            if proc is not None:
                proc.terminate()
        started: list[tuple[str, ManagedProcess, int]] = []
        try:
            for name in names:
                started.append((name, *self._spawn(name, [port for _n, _p, port in started])))
            for proc in old:
                if proc is not None:
                    proc.stop()
            for name, proc, port in started:
                self.apps[name] = self._ready(name, proc, port)
        except BaseException:  # a failed start or Ctrl-C: none of the new processes is left behind
            for _name, proc, _port in started:
                proc.stop(grace=3.0)
            raise

    def stop_app(self, name: str) -> None:
        """Stop an app now: a stalled one (it holds connections and open transactions); `app()` starts it
        again when next asked for."""
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
