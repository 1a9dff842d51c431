"""A client-side read timeout for the drivers that have none: psycopg 3 (libpq), asyncpg and aiomysql.

PyMySQL, mysqlclient and asyncmy give up on a server that stops answering after DB_READ_TIMEOUT seconds (a
socket timeout), so a stalled MariaDB costs a request that long and a 503. libpq has no such timeout, and
asyncpg's `command_timeout` ends the statement but then waits for the server to take its cancel request:
a stalled PostgreSQL (its processes stopped, its kernel still acknowledging TCP, so no keepalive helps)
held every request for as long as the stall lasted (tests/test_faults.py measured it). aiomysql (MariaDB, a
variant) has no read timeout either.

`bound_waits(engine, seconds)` gives such an engine the same bound. Every call that waits for the server
(a statement, a COMMIT, a ROLLBACK) arms a deadline for its connection; one watchdog thread per process
checks the armed deadlines every TICK_S and shuts down the socket of a call that has waited `seconds`. The
driver then reads the end of the connection ("server closed the connection"), SQLAlchemy invalidates it
(the pool opens a new one later) and the apps answer 503 (shared/web.py: an outage). A call that ends in
time disarms its deadline. The cost: an `os.dup` and an `os.close` per call, and ten wake-ups a second.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event

TICK_S = 0.1  # the watchdog's resolution: a stalled call ends within `seconds` + TICK_S


def socket_fd(dbapi_connection: Any) -> int | None:
    """The file descriptor of a DBAPI connection's socket (psycopg, sync or async; asyncpg; aiomysql), or
    None."""
    raw = getattr(dbapi_connection, "driver_connection", dbapi_connection)  # SQLAlchemy's async adapters
    pgconn = getattr(raw, "pgconn", None)  # psycopg
    if pgconn is not None:
        try:
            return int(pgconn.socket)
        except Exception:  # a closed connection has no socket
            return None
    transport = getattr(raw, "_transport", None)  # asyncpg
    if transport is None and getattr(raw, "_writer", None) is not None:  # aiomysql
        transport = raw._writer.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    return sock.fileno() if sock is not None else None


class Watchdog:
    """Deadlines of the calls in progress, by connection; a thread that shuts down the overdue ones."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._armed: dict[int, tuple[float, int]] = {}  # id(connection) -> (deadline, a dup of its socket)
        self._thread: threading.Thread | None = None

    def arm(self, dbapi_connection: Any) -> None:
        fd = socket_fd(dbapi_connection)
        if fd is None or fd < 0:
            return
        dup = os.dup(fd)  # ours to close: the driver may close and reuse its own number meanwhile
        with self._lock:
            old = self._armed.pop(id(dbapi_connection), None)
            self._armed[id(dbapi_connection)] = (time.monotonic() + self.seconds, dup)
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="db-read-timeout", daemon=True)
                self._thread.start()
        if old is not None:
            os.close(old[1])

    def disarm(self, dbapi_connection: Any) -> None:
        with self._lock:
            old = self._armed.pop(id(dbapi_connection), None)
        if old is not None:
            os.close(old[1])

    def _watch(self) -> None:
        while True:
            time.sleep(TICK_S)
            now = time.monotonic()
            with self._lock:
                overdue = [key for key, (deadline, _) in self._armed.items() if deadline <= now]
                cut = [self._armed.pop(key)[1] for key in overdue]
            for dup in cut:
                with socket.socket(fileno=dup) as sock:  # closes the dup
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:  # already closed by the server or the driver
                        pass


def bound_waits(engine: Engine, seconds: float) -> Watchdog:
    """Every statement, COMMIT and ROLLBACK of `engine` (an AsyncEngine's `sync_engine`) ends within
    `seconds` (+ TICK_S): a call still waiting for the server then loses its connection."""
    dog = Watchdog(seconds)

    @event.listens_for(engine, "before_cursor_execute")
    def _arm(conn: Any, *_args: Any) -> None:
        dog.arm(conn.connection.dbapi_connection)

    @event.listens_for(engine, "after_cursor_execute")
    def _disarm(conn: Any, *_args: Any) -> None:
        dog.disarm(conn.connection.dbapi_connection)

    @event.listens_for(engine, "handle_error")
    def _failed(context: Any) -> None:
        try:
            dog.disarm(context.connection.connection.dbapi_connection)
        except Exception:  # no connection (it failed to connect), or one already invalidated: none armed
            pass

    @event.listens_for(engine, "checkin")
    @event.listens_for(engine, "invalidate")
    def _done(dbapi_connection: Any, *_args: Any) -> None:
        # A call cut short by what no event reports (a task cancelled mid-statement) must not leave its
        # deadline behind for the next user of the connection.
        if dbapi_connection is not None:
            dog.disarm(dbapi_connection)

    dialect = engine.dialect

    def bounded(call: Callable[[Any], None]) -> Callable[[Any], None]:
        def run(dbapi_connection: Any) -> None:
            dog.arm(dbapi_connection)
            try:
                call(dbapi_connection)
            finally:
                dog.disarm(dbapi_connection)

        return run

    for name in ("do_commit", "do_rollback"):  # this engine's own dialect object: no other engine changes
        setattr(dialect, name, bounded(getattr(dialect, name)))
    return dog
