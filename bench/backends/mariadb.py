"""MariaDB: a private server under .run/mariadb/ (Debian's mariadb-server, installed when missing), or
the server of a mysql:// DATABASE_URL. Statement counts come from GLOBAL STATUS (`Com_*`)."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import threading
from typing import ClassVar

import pymysql

from bench.backends.base import (
    Backend,
    Counters,
    DatabaseError,
    start_server,
    which,
)
from shared.config import Settings
from shared.db_url import build_url

STATUS = {
    "Com_select": "select",
    "Com_insert": "insert",
    "Com_update": "update",
    "Com_delete": "delete",
    "Com_commit": "commit",
    "Com_rollback": "rollback",
    "Questions": "questions",
    "Threads_connected": "connections",
}


def connect(settings: Settings, *, database: bool = True, autocommit: bool = False) -> pymysql.Connection:
    """A plain PyMySQL connection as the app user (the harness's own work: seeding, counting)."""
    url = build_url(settings, "pymysql")
    try:
        return pymysql.connect(
            host=url.host,
            port=url.port or 3306,
            user=url.username,
            password=url.password or "",
            database=url.database if database else None,
            connect_timeout=settings.db_connect_timeout,
            ssl_disabled=True,
            autocommit=autocommit,
        )
    except pymysql.err.MySQLError as exc:
        raise DatabaseError(
            f"cannot reach MariaDB at {url.host}:{url.port} as {url.username!r}: {exc.args[-1]} (check "
            "DATABASE_URL, or unset it to use the private server: `make db`)"
        ) from None


class StatusCounters(Counters):
    def __init__(self, settings: Settings) -> None:
        self.conn = connect(settings, database=False, autocommit=True)
        self.own_queries = 0
        self.lock = threading.Lock()

    def read(self) -> dict[str, int]:
        names = ", ".join(f"'{n}'" for n in STATUS)
        with self.lock, self.conn.cursor() as cur:
            cur.execute(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})")
            self.own_queries += 1
            values = {STATUS[str(k)]: int(v) for k, v in cur.fetchall()}
        values["questions"] -= self.own_queries  # our own SHOW GLOBAL STATUS calls
        return values

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


class MariaDB(Backend):
    name: ClassVar[str] = "mariadb"
    default_port: ClassVar[int] = 3307
    port_env: ClassVar[tuple[str, ...]] = ("MARIADB_PORT", "DB_PORT")  # DB_PORT: the historical name
    product: ClassVar[str] = "MariaDB"
    package: ClassVar[str] = "mariadb-server"
    initialised_marker: ClassVar[str] = "mysql"
    secret_name: ClassVar[str] = "root.secret"
    log_name: ClassVar[str] = "error.log"

    # --- the private server ------------------------------------------------------------------------

    def _root_connect(self, port: int, password: str) -> pymysql.Connection:
        return pymysql.connect(
            host="127.0.0.1",
            port=port,
            user="root",
            password=password,
            connect_timeout=2,
            ssl_disabled=True,
            autocommit=True,
        )

    def _login(self, port: int, password: str) -> str | None:
        """(`mariadb-admin ping` says yes even to 'access denied': only a real login tells.)"""
        try:
            self._root_connect(port, password).close()
        except pymysql.err.OperationalError as exc:
            return str(exc.args[-1])
        return None

    def _programs(self) -> list[str] | None:
        mariadbd = which("mariadbd") or which("mysqld")
        return None if mariadbd is None else [mariadbd]

    def _initialise(self, programs: list[str]) -> None:
        install_db = which("mariadb-install-db") or which("mysql_install_db")
        if install_db is None:
            raise DatabaseError("mariadb-install-db not found although mariadbd is: reinstall mariadb-server")
        cmd = [
            install_db,
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise DatabaseError(f"mariadb-install-db failed: {(proc.stderr or proc.stdout).strip()[-300:]}")

    def _start(self, programs: list[str], port: int, max_connections: int) -> int:
        cmd = [
            programs[0],
            "--no-defaults",  # must come first, or Debian's /etc/mysql moves the socket and pid file
            f"--datadir={self.datadir}",
            f"--port={port}",
            "--bind-address=127.0.0.1",
            f"--socket={self.home / 'mysqld.sock'}",
            f"--pid-file={self.pidfile}",
            f"--log-error={self.errlog}",
            f"--max-connections={max_connections}",
            "--skip-name-resolve",
            "--performance-schema=OFF",
            "--innodb-buffer-pool-size=256M",
            "--character-set-server=utf8mb4",
            "--collation-server=utf8mb4_unicode_ci",
        ]
        if os.geteuid() == 0:
            cmd.append("--user=root")
        return start_server(cmd, self.errlog)

    def _started(self, port: int, pid: int, fresh: bool) -> None:
        """A new datadir's root has no password yet: it gets one (every root account, TCP ones included)."""
        if not fresh:
            return super()._started(port, pid, fresh)
        self._wait_ready(port, "", pid, timeout=60)
        password = secrets.token_urlsafe(24)
        conn = self._root_connect(port, "")
        with conn.cursor() as cur:
            cur.execute("SELECT Host FROM mysql.user WHERE User = 'root'")
            for (host,) in cur.fetchall():
                if host in ("localhost", "127.0.0.1", "::1"):
                    cur.execute("ALTER USER 'root'@%s IDENTIFIED BY %s", (host, password))
                else:
                    cur.execute("DROP USER 'root'@%s", (host,))
        conn.close()
        self.secret.touch(mode=0o600)
        self.secret.write_text(password)
        return None

    def _provision(self, port: int, user: str, password: str, databases: list[str]) -> None:
        root = self._superuser_password(port)
        conn = self._root_connect(port, root)
        try:
            with conn.cursor() as cur:
                for name in databases:
                    cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
                cur.execute("CREATE USER IF NOT EXISTS %s@'127.0.0.1' IDENTIFIED BY %s", (user, password))
                cur.execute("ALTER USER %s@'127.0.0.1' IDENTIFIED BY %s", (user, password))
                for name in databases:
                    cur.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO %s@'127.0.0.1'", (user,))
                # The harness reads server counters (SHOW GLOBAL STATUS) as the app user.
                cur.execute("GRANT PROCESS ON *.* TO %s@'127.0.0.1'", (user,))
        finally:
            conn.close()

    def _server_info(self, settings: Settings) -> tuple[str, int]:
        conn = connect(settings)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT VERSION(), @@max_connections")
                version, max_conn = cur.fetchone()  # type: ignore[misc]
        finally:
            conn.close()
        return str(version), int(max_conn)

    # --- data --------------------------------------------------------------------------------------

    def seed(self, settings: Settings, users: int, items_per_user: int) -> None:
        """Every seeded user has the same Argon2 hash (of 'seeded-password'): hashing 10,000 passwords is
        not what a seed should spend its time on. One transaction: an interrupted seed leaves the old data."""
        from shared.security import hash_password

        hashed = hash_password("seeded-password", settings)
        conn = connect(settings)
        try:
            with conn.cursor() as cur:
                cur.execute("DELETE FROM items")  # DELETE, not TRUNCATE: inside the transaction
                cur.execute("DELETE FROM users")
                chunk = 2000
                for lo in range(1, users + 1, chunk):
                    ids = range(lo, min(users, lo + chunk - 1) + 1)
                    cur.executemany(
                        "INSERT INTO users (id, email, hashed_password, is_active, created_at) VALUES (%s, "
                        "%s, %s, 1, '2026-01-01')",
                        [(i, f"user{i}@example.com", hashed) for i in ids],
                    )
                    cur.executemany(
                        "INSERT INTO items (id, title, description, owner_id) VALUES (%s, %s, %s, %s)",
                        [
                            ((i - 1) * items_per_user + k + 1, f"item {k} of user {i}", "seeded", i)
                            for i in ids
                            for k in range(items_per_user)
                        ],
                    )
            conn.commit()
        finally:
            conn.close()

    def reset(self, settings: Settings, users: int, items_per_user: int) -> None:
        """A writing scenario adds rows, deletes only rows it added, and edits users' email and is_active.
        No ALTER TABLE: its metadata lock would wait forever behind a stalled app's open transaction."""
        conn = connect(settings)
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION innodb_lock_wait_timeout = 15, SESSION lock_wait_timeout = 15")
                cur.execute("DELETE FROM items WHERE id > %s", (users * items_per_user,))
                cur.execute("DELETE FROM users WHERE id > %s", (users,))
                cur.execute("UPDATE users SET is_active = 1 WHERE is_active = 0")
                cur.execute(
                    "UPDATE users SET email = CONCAT('user', id, '@example.com') WHERE email <> "
                    "CONCAT('user', id, '@example.com')"
                )
            conn.commit()
        finally:
            conn.close()

    def count_existing(self, settings: Settings, table: str, ids: list[int]) -> int:
        if table not in ("users", "items"):
            raise ValueError(table)
        found = 0
        conn = connect(settings)
        try:
            with conn.cursor() as cur:
                for lo in range(0, len(ids), 1000):
                    part = ids[lo : lo + 1000]
                    cur.execute(
                        f"SELECT COUNT(*) FROM {table} WHERE id IN ({', '.join(['%s'] * len(part))})", part
                    )
                    row = cur.fetchone()
                    found += int(row[0]) if row else 0
        finally:
            conn.close()
        return found

    def counters(self, settings: Settings) -> Counters:
        return StatusCounters(settings)
