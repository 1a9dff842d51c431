"""The `Backend` seam and what every private server shares: its folder, PID file, env file, and signals."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from signal import Signals
from typing import Any, ClassVar

import psutil
from pydantic import SecretStr
from sqlalchemy import create_engine

from shared.config import DB_ENV_FILE, RUN_DIR, Settings
from shared.db_url import build_url, connect_args
from shared.dialects import DIALECTS, Dialect
from shared.models import Base

SBIN = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")
BENCH_DATABASE = "app"  # what `make bench` measures in
TEST_DATABASE = "app_test"  # what `make test` writes to; never the benchmark's
COUNTER_KINDS = ("select", "insert", "update", "delete", "commit", "rollback", "questions")


class DatabaseError(RuntimeError):
    """A one-line, actionable reason the database is not available."""


@dataclass(frozen=True)
class ServerInfo:
    backend: str
    private: bool
    host: str
    port: int
    version: str
    pid: int | None
    max_connections: int
    started: bool = False  # True when this call started the server (so its caller should stop it)


class Counters(ABC):
    """A monitoring connection to the server under test. `read()` returns cumulative counts of the
    statements executed (COUNTER_KINDS, server-wide, own queries excluded) and `connections` (now open)."""

    @abstractmethod
    def read(self) -> dict[str, int]: ...

    @abstractmethod
    def close(self) -> None: ...


def which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))


def apt_install(*packages: str, why: str) -> None:
    """Install Debian packages (root only); a DatabaseError with the command to run otherwise."""
    if os.geteuid() != 0:
        raise DatabaseError(
            f"{why} and this user is not root: run 'sudo apt-get install -y {' '.join(packages)}', or set "
            "DATABASE_URL to an existing server"
        )
    if which("apt-get") is None:
        raise DatabaseError(
            f"{why} and apt-get is not available: install {' '.join(packages)}, or set DATABASE_URL"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"Installing {' '.join(packages)} with apt-get (once)...", flush=True)
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *packages]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DatabaseError(f"'{' '.join(cmd)}' failed: {last[0]}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_server(argv: list[str], log: Path, **popen: Any) -> int:
    """Start a database server detached: in a session of its own (Ctrl-C in the terminal that started it
    does not stop a server others use), not our child (it outlives `bench db up`; init reaps it), its
    output appended to `log` (opened here, so a server that drops to another user still writes it).
    `popen`: more subprocess arguments (cwd, user, group...). Returns its PID."""
    with log.open(
        "ab"
    ) as out:  # the server's stdout and stderr: sh's stderr (fd numbers > 9 are not portable)
        started = subprocess.run(
            ["sh", "-c", '"$@" >&2 </dev/null & echo $!', "sh", *argv],
            stdout=subprocess.PIPE,
            stderr=out,
            text=True,
            start_new_session=True,
            check=True,
            **popen,
        )
    return int(started.stdout.strip())


def _send(pids: list[int], sig: Signals) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(pids: list[int], timeout: float) -> bool:
    """Wait until none of `pids` runs; False if some still do after `timeout` s."""
    deadline = time.monotonic() + timeout
    while any(pid_alive(p) for p in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class Backend(ABC):
    """One database product. Subclasses fill in the server-specific parts."""

    name: ClassVar[str]
    default_port: ClassVar[int]  # of the private server (never the product's usual port)
    port_env: ClassVar[tuple[str, ...]]  # environment variables that choose the private server's port
    stop_signal: ClassVar[Signals] = signal.SIGTERM  # a clean shutdown that does not wait for clients
    product: ClassVar[str]  # as people write it: "MariaDB"
    package: ClassVar[str]  # the Debian package that brings the server
    initialised_marker: ClassVar[str]  # a file or folder every initialised datadir has
    secret_name: ClassVar[str]  # the superuser's password, in the server's folder (mode 600)
    log_name: ClassVar[str]  # the server's own log, in the server's folder

    @property
    def dialect(self) -> Dialect:
        return DIALECTS[self.name]

    # --- the private server's files ---------------------------------------------------------------

    @property
    def home(self) -> Path:
        return RUN_DIR / self.name

    @property
    def datadir(self) -> Path:
        return self.home / "data"

    @property
    def secret(self) -> Path:
        return self.home / self.secret_name

    @property
    def errlog(self) -> Path:
        return self.home / self.log_name

    def _log_tail(self, lines: int = 2) -> str:
        if not self.errlog.exists():
            return "(no log)"
        return " ".join(self.errlog.read_text(errors="replace").strip().splitlines()[-lines:])

    @property
    def pidfile(self) -> Path:
        return self.home / "server.pid"

    @property
    def env_file(self) -> Path:
        """The app user's coordinates on the private server (mode 600); DB_NAME is never stored."""
        return self.home / "app.env"

    def running_pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def pids(self) -> list[int]:
        """Every process of the private server, the main one first (PostgreSQL: the postmaster and its
        children); [] when none runs. Telemetry sums them; pinning and the fault signals reach them all."""
        pid = self.running_pid()
        if pid is None:
            return []
        try:
            return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
        except psutil.Error:
            return [pid]

    def private_port(self) -> int:
        """The port from the environment (the user's choice: `port_env`), else the port this server last
        used, else the default."""
        chosen = next((os.environ[v] for v in self.port_env if os.environ.get(v)), None)
        return int(chosen or self.read_env().get("DB_PORT") or self.default_port)

    def write_env(self, port: int, user: str, password: str) -> None:
        text = (
            f"BACKEND={self.name}\nDB_HOST=127.0.0.1\nDB_PORT={port}\n"
            f"DB_USER={user}\nDB_PASSWORD={password}\n"
        )
        for path in (self.env_file, DB_ENV_FILE):  # .run/db.env: what `make run-sync` uses by hand
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.chmod(0o600)
            path.write_text(text)

    def read_env(self) -> dict[str, str]:
        if not self.env_file.exists():
            return {}
        lines = self.env_file.read_text().splitlines()
        return {key: value for key, _, value in (line.partition("=") for line in lines) if key}

    def settings(self, base: Settings, database: str | None = None) -> Settings:
        """`base` pointed at this backend: DATABASE_URL as given, else the private server's coordinates
        (from its own env file, whatever .run/db.env says), and `database` when given."""
        update: dict[str, object] = {"backend": self.name}
        if base.database_url is None:
            env = self.read_env()
            update |= {
                "db_host": env.get("DB_HOST", "127.0.0.1"),
                "db_port": int(env.get("DB_PORT", self.default_port)),
            }
            update |= {
                "db_user": env.get("DB_USER", base.db_user),
                "db_password": SecretStr(env.get("DB_PASSWORD", "")),
            }
            if database is not None:
                update["db_name"] = database
        elif database is not None:
            url = build_url(base, base.driver("sync"), database).render_as_string(hide_password=False)
            update["database_url"] = SecretStr(url)
        return Settings.model_validate({**base.model_dump(), **update})

    # --- lifecycle -------------------------------------------------------------------------------

    def ensure(self, settings: Settings, *, max_connections: int = 500) -> ServerInfo:
        """Start (or reuse) the private server, or check DATABASE_URL; provision the app user and the
        databases (BENCH_DATABASE, TEST_DATABASE and settings.db_name); create the tables. Idempotent."""
        if settings.database_url is not None:
            self.create_schema(settings)
            self._check_external(settings)
            version, max_conn = self._server_info(settings)
            url = build_url(settings, self.dialect.sync_drivers[0])
            port = url.port or self.dialect.default_port
            return ServerInfo(self.name, False, url.host or "", port, version, None, max_conn)
        env = self.read_env()
        port = self.private_port()
        pid, started = self._start_private(port, max_connections)
        password = env.get("DB_PASSWORD") or secrets.token_urlsafe(18)
        databases = list(dict.fromkeys([BENCH_DATABASE, TEST_DATABASE, settings.db_name]))
        self._provision(port, settings.db_user, password, databases)
        self.write_env(port, settings.db_user, password)
        app = self.settings(settings)
        for name in databases:
            self.create_schema(app.model_copy(update={"db_name": name}))
        version, max_conn = self._server_info(app)
        return ServerInfo(self.name, True, "127.0.0.1", port, version, pid, max_conn, started)

    def _start_private(self, port: int, max_connections: int) -> tuple[int, bool]:
        """(pid, started): the private server already running, or a new one (a new datadir the first time)."""
        programs = self._programs()
        if programs is None:
            apt_install(self.package, why=f"{self.product}'s server is not installed")
            programs = self._programs()
            if programs is None:
                raise DatabaseError(
                    f"{self.package} was installed but its server programs are still not found"
                )
        pid = self.running_pid()
        fresh = not (self.datadir / self.initialised_marker).exists() or not self.secret.exists()
        if pid is not None and fresh:  # a half-made instance (interrupted set-up): start over
            self.stop()
            pid = None
        if pid is not None:
            return pid, False
        if port_in_use("127.0.0.1", port):
            raise DatabaseError(
                f"port {port} on 127.0.0.1 is taken by another process: stop it, or pick another port with "
                f"{self.port_env[0]}=<port> (or use DATABASE_URL)"
            )
        if fresh:
            self.home.mkdir(parents=True, exist_ok=True)
            if self.datadir.exists():
                shutil.rmtree(self.datadir)
            self._initialise(programs)
        pid = self._start(programs, port, max_connections)
        self._started(port, pid, fresh)
        return pid, True

    def _started(self, port: int, pid: int, fresh: bool) -> None:
        """After a start: wait until the superuser can log in."""
        self._wait_ready(port, self.secret.read_text().strip(), pid, timeout=60)

    def _wait_ready(self, port: int, password: str, pid: int | None, timeout: float) -> None:
        """Ready means a real login works (a server accepts TCP, and answers pings, before logins)."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if pid is not None and not pid_alive(pid):
                raise DatabaseError(f"{self.product} exited at start: {self._log_tail()} (see {self.errlog})")
            refused = self._login(port, password)
            if refused is None:
                return
            last = refused
            time.sleep(0.05)
        raise DatabaseError(
            f"private {self.product} on 127.0.0.1:{port} did not accept logins in {timeout:.0f}s: {last}"
        )

    def _superuser_password(self, port: int) -> str:
        """The superuser's password, checked against the running server."""
        password = self.secret.read_text().strip()
        try:
            self._wait_ready(port, password, None, timeout=10)
        except DatabaseError:
            raise DatabaseError(
                f"a {self.product} is running on port {port} but refuses our superuser login: run 'make "
                f"db-down', delete {self.home}, and try again"
            ) from None
        return password

    @abstractmethod
    def _programs(self) -> list[str] | None:
        """The server's programs (what `_initialise` and `_start` run); None when they are not installed."""

    @abstractmethod
    def _initialise(self, programs: list[str]) -> None:
        """A new datadir in an empty `datadir` (superuser password in `secret`, unless `_started` sets it)."""

    @abstractmethod
    def _start(self, programs: list[str], port: int, max_connections: int) -> int:
        """Start the server detached (`start_server`); its PID in `pidfile`."""

    @abstractmethod
    def _login(self, port: int, password: str) -> str | None:
        """Log in as the superuser and out again: None when that worked, else why not (one line)."""

    @abstractmethod
    def _provision(self, port: int, user: str, password: str, databases: list[str]) -> None:
        """The databases, the app user and its grants, as the server's superuser. Idempotent."""

    @abstractmethod
    def _server_info(self, settings: Settings) -> tuple[str, int]:
        """(version, max_connections) as the app user sees them."""

    def _check_external(self, settings: Settings) -> None:
        """What a server of DATABASE_URL must offer beyond the tables (nothing, unless a backend says)."""
        return None

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop the private server by the PID it wrote (`stop_signal`); SIGKILL every one of its processes
        if it has not stopped within `timeout` s. Returns the PID."""
        pids = self.pids()
        if not pids:
            return None
        _send(pids, signal.SIGCONT)  # a stalled server cannot act on the stop signal
        _send(pids[:1], self.stop_signal)
        if not _wait_gone(pids, timeout):
            _send(pids, signal.SIGKILL)
            _wait_gone(pids, 10)
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()
        return pids[0]

    # --- faults (the private server only) ----------------------------------------------------------

    def signal(self, sig: Signals) -> int:
        """Send `sig` to every process of the private server; returns the main PID."""
        return self._signal_all(sig)[0]

    def _signal_all(self, sig: Signals) -> list[int]:
        """The main process first, so a stopped postmaster forks no new child while its children are
        signalled. Returns the PIDs signalled, the main one first."""
        pid = self.running_pid()
        if pid is None:
            raise DatabaseError(f"no private {self.name} server is running: start it with `bench db up`")
        _send([pid], sig)
        pids = self.pids() or [pid]
        _send(pids[1:], sig)
        return pids

    def kill(self) -> int:
        """SIGKILL the private server, every process of it (a crash: no shutdown, no flush beyond what it
        committed). Returns the main PID."""
        pids = self._signal_all(signal.SIGKILL)
        _wait_gone(pids, 10)
        return pids[0]

    @contextlib.contextmanager
    def stalled(self) -> Iterator[int]:
        """SIGSTOP the private server for the block (it accepts TCP but answers nothing), then SIGCONT."""
        pids = self._signal_all(signal.SIGSTOP)
        try:
            yield pids[0]
        finally:
            _send(pids, signal.SIGCONT)

    # --- data --------------------------------------------------------------------------------------

    def create_schema(self, settings: Settings) -> None:
        """The tables of shared/models.py, made by SQLAlchemy as the app user (the backend's sync driver)."""
        driver = self.dialect.default_driver("sync")
        engine = create_engine(build_url(settings, driver), connect_args=connect_args(settings, driver))
        try:
            Base.metadata.create_all(engine)
        except Exception as exc:  # noqa: BLE001 - one line for the user, whatever the driver raised
            raise DatabaseError(
                f"cannot create the tables in {settings.db_name!r}: {exc}".splitlines()[0]
            ) from None
        finally:
            engine.dispose()

    @abstractmethod
    def seed(self, settings: Settings, users: int, items_per_user: int) -> None:
        """Deterministic data: users 1..N (`user{i}@example.com`), each with `items_per_user` items."""

    @abstractmethod
    def reset(self, settings: Settings, users: int, items_per_user: int) -> None:
        """Undo what a writing scenario did, with row-level statements and short lock waits."""

    @abstractmethod
    def count_existing(self, settings: Settings, table: str, ids: list[int]) -> int:
        """How many of `ids` exist in `table` (users or items): the acknowledged-writes check."""

    @abstractmethod
    def counters(self, settings: Settings) -> Counters: ...
