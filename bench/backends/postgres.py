"""PostgreSQL: a private server under .run/postgres/ (Debian's `postgresql`, installed when missing), or the
server of a postgresql:// DATABASE_URL. Statement counts come from `pg_stat_statements` (calls per
statement kind), which the private server preloads; connections from `pg_stat_activity`.

PostgreSQL refuses to run as root: as root, initdb and the server run as Debian's `postgres` system user,
which owns the data directory. PostgreSQL is several processes (the postmaster forks one per connection):
`pids()` lists them all for telemetry, pinning and the fault signals.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from signal import Signals
from typing import Any, ClassVar

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from bench.backends.base import (
    Backend,
    Counters,
    DatabaseError,
    start_server,
    which,
)
from shared.config import Settings
from shared.db_url import build_url

SUPERUSER = "postgres"  # of the private cluster (its own password, in .run/postgres/superuser.secret)
SYSTEM_USER = "postgres"  # who runs the private server when we are root (Debian's package creates it)

# The harness's own monitoring statements carry this alias, so the counts can leave them out.
MONITOR = "bench_monitor"
STATEMENT_CALLS = f"""
SELECT lower(substring(query from '^\\s*([A-Za-z]+)')) AS {MONITOR}_kind, sum(calls)::bigint
FROM pg_stat_statements WHERE query NOT LIKE '%{MONITOR}%' GROUP BY 1
"""
CONNECTIONS = (
    f"SELECT count(*) AS {MONITOR}_connections FROM pg_stat_activity WHERE backend_type = 'client backend'"
)
KIND = {
    "select": "select",
    "insert": "insert",
    "update": "update",
    "delete": "delete",
    "commit": "commit",
    "end": "commit",
    "rollback": "rollback",
    "abort": "rollback",
}


def connect(settings: Settings, *, autocommit: bool = False) -> psycopg.Connection[tuple[Any, ...]]:
    """A plain psycopg connection as the app user (the harness's own work: seeding, counting)."""
    url = build_url(settings, "psycopg")
    try:
        conninfo = make_conninfo(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password or "",
            dbname=url.database,
            connect_timeout=settings.db_connect_timeout,
            **{k: v if isinstance(v, str) else v[-1] for k, v in url.query.items()},
        )
        return psycopg.connect(conninfo, autocommit=autocommit)
    except psycopg.Error as exc:
        raise DatabaseError(
            f"cannot reach PostgreSQL at {url.host}:{url.port} as {url.username!r}: {_first_line(exc)} "
            "(check DATABASE_URL, or unset it to use the private server: `make db BACKEND=postgres`)"
        ) from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class StatementCounters(Counters):
    """pg_stat_statements' calls by the first word of each statement (SELECT, INSERT, ..., COMMIT,
    ROLLBACK; BEGIN and the rest only in `questions`), server-wide, this monitor's queries excluded."""

    def __init__(self, settings: Settings) -> None:
        self.conn = connect(settings, autocommit=True)
        self.lock = threading.Lock()

    def read(self) -> dict[str, int]:
        values = dict.fromkeys((*KIND.values(), "questions"), 0)
        with self.lock, self.conn.cursor() as cur:
            for first_word, calls in cur.execute(STATEMENT_CALLS).fetchall():
                values["questions"] += int(calls)
                if first_word in KIND:
                    values[KIND[first_word]] += int(calls)
            row = cur.execute(CONNECTIONS).fetchone()
        values["connections"] = int(row[0]) if row else 0
        return values

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


def server_bin(name: str) -> str | None:
    """A PostgreSQL server program: Debian keeps them in /usr/lib/postgresql/<version>/bin (newest wins)."""
    dirs = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name), reverse=True
    )
    for folder in dirs:
        if os.access(Path(folder) / name, os.X_OK):
            return str(Path(folder) / name)
    return which(name)


class Postgres(Backend):
    name: ClassVar[str] = "postgres"
    default_port: ClassVar[int] = 5433
    port_env: ClassVar[tuple[str, ...]] = ("POSTGRES_PORT",)
    stop_signal: ClassVar[Signals] = Signals.SIGINT  # "fast" shutdown: ends client sessions
    product: ClassVar[str] = "PostgreSQL"
    package: ClassVar[str] = "postgresql"
    initialised_marker: ClassVar[str] = "PG_VERSION"
    secret_name: ClassVar[str] = "superuser.secret"
    log_name: ClassVar[str] = "server.log"

    # --- who runs the server ------------------------------------------------------------------------

    def _run_as(self) -> dict[str, Any]:
        """Popen arguments that drop root to the `postgres` system user (nothing when not root)."""
        if os.geteuid() != 0:
            return {}
        try:
            entry = pwd.getpwnam(SYSTEM_USER)
        except KeyError:
            raise DatabaseError(
                f"PostgreSQL will not run as root and there is no '{SYSTEM_USER}' system user: install "
                "Debian's postgresql package (it creates one), or run as another user, or set DATABASE_URL"
            ) from None
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _own(self, path: Path) -> None:
        """Hand a folder (or file) to the user the server runs as."""
        run_as = self._run_as()
        if run_as:
            os.chown(path, run_as["user"], run_as["group"])

    def _check_reachable(self) -> None:
        run_as = self._run_as()
        if not run_as:
            return
        probe = subprocess.run(["test", "-w", str(self.datadir)], **run_as, cwd="/", capture_output=True)
        if probe.returncode != 0:
            raise DatabaseError(
                f"the '{SYSTEM_USER}' system user cannot write {self.datadir} (a parent folder is not "
                "searchable by others): `chmod o+x` the parent folders, or set DATABASE_URL"
            )

    # --- the private server ------------------------------------------------------------------------

    def _superuser_connect(
        self, port: int, password: str, dbname: str = "postgres"
    ) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host="127.0.0.1",
            port=port,
            user=SUPERUSER,
            password=password,
            dbname=dbname,
            connect_timeout=2,
            autocommit=True,
        )

    def _login(self, port: int, password: str) -> str | None:
        try:
            self._superuser_connect(port, password).close()
        except psycopg.OperationalError as exc:
            return _first_line(exc)
        return None

    def _programs(self) -> list[str] | None:
        initdb, postgres = server_bin("initdb"), server_bin("postgres")
        return None if initdb is None or postgres is None else [initdb, postgres]

    def _initialise(self, programs: list[str]) -> None:
        """A new cluster in .run/postgres/data, its superuser's password set by initdb (never on a command
        line: a file only the server's user can read, removed afterwards)."""
        password = secrets.token_urlsafe(24)
        self.datadir.mkdir(mode=0o700)
        self._own(self.datadir)
        self._check_reachable()
        pwfile = self.home / "initdb.pw"
        with contextlib.suppress(FileNotFoundError):
            pwfile.unlink()
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, password.encode())
        finally:
            os.close(fd)
        self._own(pwfile)
        cmd = [
            programs[0],
            "-D",
            str(self.datadir),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, cwd=self.home, **self._run_as())
        finally:
            pwfile.unlink()
        if proc.returncode != 0:
            raise DatabaseError(f"initdb failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
        self.secret.touch(mode=0o600)
        self.secret.write_text(password)

    def _start(self, programs: list[str], port: int, max_connections: int) -> int:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(port),
            "unix_socket_directories": "",
            "max_connections": str(max_connections),
            "shared_buffers": "256MB",
            "shared_preload_libraries": "pg_stat_statements",
            "pg_stat_statements.track_utility": "on",
            "pg_stat_statements.max": "10000",
            "logging_collector": "off",
        }
        self._check_reachable()
        cmd = [
            programs[1],
            "-D",
            str(self.datadir),
            *(a for k, v in settings.items() for a in ("-c", f"{k}={v}")),
        ]
        pid = start_server(cmd, self.errlog, cwd=self.home, **self._run_as())
        self.pidfile.write_text(f"{pid}\n")
        return pid

    def _provision(self, port: int, user: str, password: str, databases: list[str]) -> None:
        """The app user (it may read every session's statistics), its databases, pg_stat_statements in
        each. Idempotent."""
        root = self._superuser_password(port)
        role = sql.Identifier(user)
        with self._superuser_connect(port, root) as conn:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
            conn.execute(sql.SQL("{} {} LOGIN PASSWORD {}").format(verb, role, sql.Literal(password)))
            conn.execute(sql.SQL("GRANT pg_read_all_stats TO {}").format(role))
            for name in databases:
                db = sql.Identifier(name)
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(db, role))
                else:
                    conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} ENCODING 'UTF8'").format(db, role))
        for name in databases:
            with self._superuser_connect(port, root, name) as conn:
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def _check_external(self, settings: Settings) -> None:
        """The work check needs pg_stat_statements: on a server of DATABASE_URL, say so if it is missing."""
        with connect(settings, autocommit=True) as conn:
            with contextlib.suppress(psycopg.Error):
                conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            try:
                conn.execute("SELECT count(*) FROM pg_stat_statements").fetchone()
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"the server of DATABASE_URL cannot count statements ({_first_line(exc)}): load "
                    "pg_stat_statements (shared_preload_libraries) and CREATE EXTENSION pg_stat_statements "
                    "in the database, or unset DATABASE_URL to use the private server"
                ) from None

    def _server_info(self, settings: Settings) -> tuple[str, int]:
        with connect(settings) as conn:
            row = conn.execute(
                "SELECT current_setting('server_version'), current_setting('max_connections')::int"
            ).fetchone()
        assert row is not None
        return str(row[0]), int(row[1])

    # --- data --------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, settings: Settings) -> Iterator[psycopg.Cursor[tuple[Any, ...]]]:
        """One transaction as the app user: committed when the block ends, rolled back on an error."""
        with connect(settings) as conn, conn.cursor() as cur:
            yield cur

    def seed(self, settings: Settings, users: int, items_per_user: int) -> None:
        """Every seeded user has the same Argon2 hash (of 'seeded-password'). One transaction (COPY for
        speed): an interrupted seed leaves the old data. The id sequences continue after the seed."""
        from shared.security import hash_password

        hashed = hash_password("seeded-password", settings)
        with self._transaction(settings) as cur:
            cur.execute("DELETE FROM items")
            cur.execute("DELETE FROM users")
            with cur.copy(
                "COPY users (id, email, hashed_password, is_active, created_at) FROM STDIN"
            ) as copy:
                for i in range(1, users + 1):
                    copy.write_row((i, f"user{i}@example.com", hashed, True, "2026-01-01"))
            with cur.copy("COPY items (id, title, description, owner_id) FROM STDIN") as copy:
                for i in range(1, users + 1):
                    for k in range(items_per_user):
                        copy.write_row(
                            ((i - 1) * items_per_user + k + 1, f"item {k} of user {i}", "seeded", i)
                        )
            for table in ("users", "items"):
                cur.execute(
                    sql.SQL(
                        "SELECT setval(pg_get_serial_sequence({t}, 'id'), GREATEST(MAX(id), 1), MAX(id) IS "
                        "NOT NULL) FROM {table}"
                    ).format(t=sql.Literal(table), table=sql.Identifier(table))
                )

    def reset(self, settings: Settings, users: int, items_per_user: int) -> None:
        """A writing scenario adds rows, deletes only rows it added, and edits users' email and is_active.
        Lock waits are bounded: a stalled app's open transaction cannot hold the reset forever."""
        with self._transaction(settings) as cur:
            cur.execute("SET LOCAL lock_timeout = '15s'")
            cur.execute("DELETE FROM items WHERE id > %s", (users * items_per_user,))
            cur.execute("DELETE FROM users WHERE id > %s", (users,))
            cur.execute("UPDATE users SET is_active = true WHERE NOT is_active")
            cur.execute(
                "UPDATE users SET email = 'user' || id || '@example.com' WHERE email <> 'user' || id || "
                "'@example.com'"
            )

    def count_existing(self, settings: Settings, table: str, ids: list[int]) -> int:
        if table not in ("users", "items"):
            raise ValueError(table)
        with connect(settings) as conn:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE id = ANY(%s)").format(sql.Identifier(table)), (ids,)
            ).fetchone()
        return int(row[0]) if row else 0

    def counters(self, settings: Settings) -> Counters:
        return StatementCounters(settings)
