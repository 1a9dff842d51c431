"""A real database with no manual step: a private MariaDB under .run/, or the one in DATABASE_URL.

`ensure_database()` is idempotent: it installs Debian's mariadb-server when `mariadbd` is missing
(as root), initialises a datadir under `.run/mariadb/`, starts the server on its own port, creates
the app and test databases, an app user with a generated password, and the tables; a second call
reuses the running server. `stop_database()` stops it by the PID it wrote.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass

import pymysql
from sqlalchemy import create_engine

from shared.config import DB_ENV_FILE, RUN_DIR, Settings
from shared.db_url import build_url, connect_args
from shared.models import Base

MARIADB_DIR = RUN_DIR / "mariadb"
DATADIR = MARIADB_DIR / "data"
SOCKET = MARIADB_DIR / "mysqld.sock"
PIDFILE = MARIADB_DIR / "mysqld.pid"
ERRLOG = MARIADB_DIR / "error.log"
SECRET = MARIADB_DIR / "root.secret"
SBIN = ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin")


class DatabaseError(RuntimeError):
    """A one-line, actionable reason the database is not available."""


@dataclass(frozen=True)
class DatabaseInfo:
    private: bool
    host: str
    port: int
    name: str
    test_name: str
    version: str
    pid: int | None
    max_connections: int
    started: bool = False  # True when this call started the server (so its caller should stop it)


def _which(name: str) -> str | None:
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *SBIN]))


def install_server() -> None:
    if os.geteuid() != 0:
        raise DatabaseError(
            "mariadb-server is not installed and this user is not root: "
            "run 'sudo apt-get install -y mariadb-server', or set DATABASE_URL to an existing server"
        )
    if _which("apt-get") is None:
        raise DatabaseError(
            "mariadbd is missing and apt-get is not available: install MariaDB, or set DATABASE_URL"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print("Installing mariadb-server with apt-get (once)...", flush=True)
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "mariadb-server"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise DatabaseError(f"'{' '.join(cmd)}' failed: {last[0]}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_pid() -> int | None:
    try:
        pid = int(PIDFILE.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _root_connect(port: int, password: str, timeout: float = 2.0) -> pymysql.Connection:
    return pymysql.connect(
        host="127.0.0.1",
        port=port,
        user="root",
        password=password,
        connect_timeout=max(1, int(timeout)),
        ssl_disabled=True,
        autocommit=True,
    )


def _wait_ready(port: int, password: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """Ready means a real login works (`mariadb-admin ping` says yes even to 'access denied')."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = ERRLOG.read_text(errors="replace").strip().splitlines()[-1:] if ERRLOG.exists() else []
            raise DatabaseError(
                f"mariadbd exited with code {proc.returncode}: {' '.join(tail)} (see {ERRLOG})"
            )
        try:
            _root_connect(port, password).close()
            return
        except pymysql.err.OperationalError as exc:
            last = str(exc.args[-1])
            time.sleep(0.1)
    raise DatabaseError(
        f"private MariaDB on 127.0.0.1:{port} did not accept logins in {timeout:.0f}s: {last}"
    )


def _initialise_datadir() -> None:
    install_db = _which("mariadb-install-db") or _which("mysql_install_db")
    if install_db is None:
        raise DatabaseError("mariadb-install-db not found although mariadbd is: reinstall mariadb-server")
    MARIADB_DIR.mkdir(parents=True, exist_ok=True)
    if DATADIR.exists():
        shutil.rmtree(DATADIR)
    cmd = [
        install_db,
        "--no-defaults",
        f"--datadir={DATADIR}",
        "--auth-root-authentication-method=normal",
        "--skip-test-db",
    ]
    if os.geteuid() == 0:
        cmd.append("--user=root")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise DatabaseError(f"mariadb-install-db failed: {(proc.stderr or proc.stdout).strip()[-300:]}")


def _start_server(mariadbd: str, port: int, max_connections: int) -> subprocess.Popen[bytes]:
    cmd = [
        mariadbd,
        "--no-defaults",  # must come first, or Debian's /etc/mysql moves the socket and pid file
        f"--datadir={DATADIR}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={SOCKET}",
        f"--pid-file={PIDFILE}",
        f"--log-error={ERRLOG}",
        f"--max-connections={max_connections}",
        "--skip-name-resolve",
        "--performance-schema=OFF",
        "--innodb-buffer-pool-size=256M",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
    ]
    if os.geteuid() == 0:
        cmd.append("--user=root")
    log = ERRLOG.open("ab")
    # A session of its own: Ctrl-C in the terminal that started it does not stop a shared server.
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)


def _write_env(settings: Settings, port: int, password: str) -> None:
    DB_ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    DB_ENV_FILE.write_text(
        f"DB_HOST=127.0.0.1\nDB_PORT={port}\nDB_USER={settings.db_user}\n"
        f"DB_PASSWORD={password}\nDB_NAME={settings.db_name}\n"
    )
    DB_ENV_FILE.chmod(0o600)


def _provision(port: int, root_password: str, settings: Settings, app_password: str) -> None:
    """Databases, the app user, and the tables. Idempotent."""
    conn = _root_connect(port, root_password)
    try:
        with conn.cursor() as cur:
            for name in (settings.db_name, test_database_name(settings)):
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{name}` CHARACTER SET utf8mb4")
            cur.execute(
                "CREATE USER IF NOT EXISTS %s@'127.0.0.1' IDENTIFIED BY %s", (settings.db_user, app_password)
            )
            cur.execute("ALTER USER %s@'127.0.0.1' IDENTIFIED BY %s", (settings.db_user, app_password))
            for name in (settings.db_name, test_database_name(settings)):
                cur.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO %s@'127.0.0.1'", (settings.db_user,))
            # The harness reads server counters (SHOW GLOBAL STATUS) as the app user.
            cur.execute("GRANT PROCESS ON *.* TO %s@'127.0.0.1'", (settings.db_user,))
    finally:
        conn.close()


def test_database_name(settings: Settings) -> str:
    return f"{settings.db_name}_test"


def create_schema(settings: Settings, database: str | None = None) -> None:
    engine = create_engine(
        build_url(settings, "pymysql", database), connect_args=connect_args(settings, "pymysql")
    )
    try:
        Base.metadata.create_all(engine)
    finally:
        engine.dispose()


def server_info(settings: Settings) -> tuple[str, int]:
    """(version, max_connections) of the configured server, or a DatabaseError saying why not."""
    url = build_url(settings, "pymysql")
    try:
        conn = pymysql.connect(
            host=url.host,
            port=url.port or 3306,
            user=url.username,
            password=url.password or "",
            database=url.database,
            connect_timeout=settings.db_connect_timeout,
            ssl_disabled=True,
        )
    except pymysql.err.MySQLError as exc:
        raise DatabaseError(
            f"cannot reach the database at {url.host}:{url.port} as {url.username!r}: {exc.args[-1]} "
            "(check DATABASE_URL, or unset it to use the private MariaDB)"
        ) from None
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION(), @@max_connections")
            version, max_conn = cur.fetchone()  # type: ignore[misc]
    finally:
        conn.close()
    return str(version), int(max_conn)


def ensure_database(settings: Settings | None = None, *, max_connections: int = 500) -> DatabaseInfo:
    """Start (or reuse) the private MariaDB, or check DATABASE_URL; create schema. Idempotent."""
    settings = settings or Settings()
    if settings.database_url is not None:
        version, max_conn = server_info(settings)
        create_schema(settings)
        url = build_url(settings, "pymysql")
        return DatabaseInfo(
            False, url.host or "", url.port or 3306, url.database or "", test_database_name(settings),
            version, None, max_conn,
        )  # fmt: skip

    port = settings.db_port
    mariadbd = _which("mariadbd") or _which("mysqld")
    if mariadbd is None:
        install_server()
        mariadbd = _which("mariadbd") or _which("mysqld")
        if mariadbd is None:
            raise DatabaseError("mariadb-server was installed but mariadbd is still not on PATH")

    pid = running_pid()
    started = False
    fresh = not (DATADIR / "mysql").is_dir() or not SECRET.exists()
    if pid is not None and fresh:  # a half-made instance (interrupted set-up): start over
        stop_database()
        pid = None
    if pid is None:
        if _port_in_use("127.0.0.1", port):
            raise DatabaseError(
                f"port {port} on 127.0.0.1 is taken by another process: stop it, or pick another port "
                f"with DB_PORT=<port> (or use DATABASE_URL)"
            )
        if fresh:
            _initialise_datadir()
        proc = _start_server(mariadbd, port, max_connections)
        root_password = "" if fresh else SECRET.read_text().strip()
        _wait_ready(port, root_password, proc, timeout=60)
        if fresh:
            root_password = secrets.token_urlsafe(24)
            conn = _root_connect(port, "")
            with conn.cursor() as cur:  # every root account, TCP ones included, gets the password
                cur.execute("SELECT Host FROM mysql.user WHERE User = 'root'")
                for (host,) in cur.fetchall():
                    if host in ("localhost", "127.0.0.1", "::1"):
                        cur.execute("ALTER USER 'root'@%s IDENTIFIED BY %s", (host, root_password))
                    else:
                        cur.execute("DROP USER 'root'@%s", (host,))
            conn.close()
            SECRET.write_text(root_password)
            SECRET.chmod(0o600)
        pid = proc.pid
        started = True
    root_password = SECRET.read_text().strip()
    try:
        _wait_ready(port, root_password, None, timeout=10)
    except DatabaseError:
        raise DatabaseError(
            f"a MariaDB is running (pid {pid}) but refuses our root login: "
            f"run 'make db-down', delete {MARIADB_DIR}, and try again"
        ) from None

    app_password = _app_password()
    _provision(port, root_password, settings, app_password)
    _write_env(settings, port, app_password)
    settings = settings.model_copy(update={"db_password": type(settings.db_password)(app_password)})
    create_schema(settings)
    version, max_conn = server_info(settings)
    return DatabaseInfo(
        True,
        "127.0.0.1",
        port,
        settings.db_name,
        test_database_name(settings),
        version,
        pid,
        max_conn,
        started,
    )


def _app_password() -> str:
    """The app user's password: generated once, kept in .run/db.env (git-ignored, mode 600)."""
    if DB_ENV_FILE.exists():
        for line in DB_ENV_FILE.read_text().splitlines():
            if line.startswith("DB_PASSWORD=") and line.split("=", 1)[1]:
                return line.split("=", 1)[1]
    return secrets.token_urlsafe(18)


def stop_database(timeout: float = 30.0) -> int | None:
    """Stop the private MariaDB by the PID it wrote; SIGKILL if it ignores SIGTERM. Returns the PID."""
    pid = running_pid()
    if pid is None:
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        PIDFILE.unlink()
    return pid


def settings_for(settings: Settings, database: str) -> Settings:
    """The same server and limits, another database (the test database, say)."""
    if settings.database_url is not None:
        url = build_url(settings, "pymysql", database).render_as_string(hide_password=False)
        return settings.model_copy(update={"database_url": type(settings.database_url)(url)})
    return settings.model_copy(update={"db_name": database})


def _app_connect(settings: Settings) -> pymysql.Connection:
    url = build_url(settings, "pymysql")
    return pymysql.connect(
        host=url.host, port=url.port or 3306, user=url.username, password=url.password or "",
        database=url.database, connect_timeout=5, ssl_disabled=True, autocommit=False,
    )  # fmt: skip


def seed(settings: Settings, users: int, items_per_user: int) -> None:
    """Deterministic data: users 1..N (`user{i}@example.com`), each with `items_per_user` items.

    Every seeded user has the same Argon2 hash (of 'seeded-password'): hashing 10,000 passwords is not
    what a seed should spend its time on."""
    from shared.security import hash_password

    hashed = hash_password("seeded-password", settings)
    conn = _app_connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute("SET FOREIGN_KEY_CHECKS = 0")
            cur.execute("TRUNCATE TABLE items")
            cur.execute("TRUNCATE TABLE users")
            cur.execute("SET FOREIGN_KEY_CHECKS = 1")
            chunk = 2000
            for lo in range(1, users + 1, chunk):
                ids = range(lo, min(users, lo + chunk - 1) + 1)
                cur.executemany(
                    "INSERT INTO users (id, email, hashed_password, is_active, created_at) "
                    "VALUES (%s, %s, %s, 1, '2026-01-01')",
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


def reset_to_seed(settings: Settings, users: int, items_per_user: int) -> None:
    """Undo what a writing scenario did: it adds rows, deletes only rows it added, and edits users'
    email and is_active. Row-level statements only, with short lock waits: no ALTER TABLE, whose metadata
    lock would wait forever behind a stalled app's open transaction. New ids simply keep growing."""
    conn = _app_connect(settings)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION innodb_lock_wait_timeout = 15, SESSION lock_wait_timeout = 15")
            cur.execute("DELETE FROM items WHERE id > %s", (users * items_per_user,))
            cur.execute("DELETE FROM users WHERE id > %s", (users,))
            cur.execute("UPDATE users SET is_active = 1 WHERE is_active = 0")
            cur.execute(
                "UPDATE users SET email = CONCAT('user', id, '@example.com') "
                "WHERE email <> CONCAT('user', id, '@example.com')"
            )
        conn.commit()
    finally:
        conn.close()


def count_existing(settings: Settings, table: str, ids: list[int]) -> int:
    """How many of `ids` exist in `table` (users or items): the acknowledged-writes check."""
    if table not in ("users", "items"):
        raise ValueError(table)
    found = 0
    conn = _app_connect(settings)
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
