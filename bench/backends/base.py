"""The `Backend` seam and what every private server shares: its folder, PID file, env file, and signals."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydantic import SecretStr

from shared.config import DB_ENV_FILE, RUN_DIR, Settings
from shared.dialects import DIALECTS, Dialect

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
            f"{why} and this user is not root: run 'sudo apt-get install -y {' '.join(packages)}', "
            "or set DATABASE_URL to an existing server"
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


def start_server(argv: list[str], log: Path) -> int:
    """Start a database server detached: in a session of its own (Ctrl-C in the terminal that started it
    does not stop a server others use), not our child (it outlives `bench db up`; init reaps it), its
    output appended to `log`. Returns its PID."""
    script = 'log=$1; shift; "$@" >>"$log" 2>&1 </dev/null & echo $!'
    out = subprocess.run(
        ["sh", "-c", script, "sh", str(log), *argv],
        capture_output=True,
        text=True,
        start_new_session=True,
        check=True,
    )
    return int(out.stdout.strip())


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class Backend(ABC):
    """One database product. Subclasses fill in the server-specific parts."""

    name: ClassVar[str]
    default_port: ClassVar[int]  # of the private server (never the product's usual port)

    @property
    def dialect(self) -> Dialect:
        return DIALECTS[self.name]

    # --- the private server's files ---------------------------------------------------------------

    @property
    def home(self) -> Path:
        return RUN_DIR / self.name

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

    def private_port(self) -> int:
        """DB_PORT from the environment (the user's choice), else the port this server last used."""
        return int(os.environ.get("DB_PORT") or self.read_env().get("DB_PORT") or self.default_port)

    def write_env(self, port: int, user: str, password: str) -> None:
        text = f"BACKEND={self.name}\nDB_HOST=127.0.0.1\nDB_PORT={port}\nDB_USER={user}\nDB_PASSWORD={password}\n"
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
            from shared.db_url import build_url

            url = build_url(base, base.driver("sync"), database).render_as_string(hide_password=False)
            update["database_url"] = SecretStr(url)
        return Settings.model_validate({**base.model_dump(), **update})

    # --- lifecycle -------------------------------------------------------------------------------

    @abstractmethod
    def ensure(self, settings: Settings, *, max_connections: int = 500) -> ServerInfo:
        """Start (or reuse) the private server, or check DATABASE_URL; provision the app user and the
        databases (BENCH_DATABASE, TEST_DATABASE and settings.db_name); create the tables. Idempotent."""

    def stop(self, timeout: float = 30.0) -> int | None:
        """Stop the private server by the PID it wrote; SIGKILL if it ignores SIGTERM. Returns the PID."""
        pid = self.running_pid()
        if pid is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)  # a stalled server cannot act on SIGTERM
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.1)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()
        return pid

    # --- faults (the private server only) ----------------------------------------------------------

    def signal(self, sig: signal.Signals) -> int:
        pid = self.running_pid()
        if pid is None:
            raise DatabaseError(f"no private {self.name} server is running: start it with `bench db up`")
        os.kill(pid, sig)
        return pid

    def kill(self) -> int:
        """SIGKILL the private server (a crash: no shutdown, no flush beyond what it committed)."""
        pid = self.signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        return pid

    @contextlib.contextmanager
    def stalled(self) -> Iterator[int]:
        """SIGSTOP the private server for the block (it accepts TCP but answers nothing), then SIGCONT."""
        pid = self.signal(signal.SIGSTOP)
        try:
            yield pid
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    # --- data --------------------------------------------------------------------------------------

    @abstractmethod
    def create_schema(self, settings: Settings) -> None: ...

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
