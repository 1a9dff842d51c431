"""What the raw ceilings share: the same statements the ORM apps send, without the ORM, and JSON built by
hand without response-model validation. `raw_sync` and `raw_async` differ only by the driver calls.

Statements (as the ORM apps): one SELECT of a user LEFT OUTER JOIN its items (as SQLAlchemy's joinedload
sends); one SELECT of a page of users (paged in a subquery) joined to their items; `SELECT SLEEP(s)`.
Connections run in autocommit, so no COMMIT or ROLLBACK is sent (the ORM apps send one ROLLBACK per read).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from shared.config import Settings
from shared.db_url import build_url
from shared.web import build_app, log

_COLUMNS = "u.id, u.email, u.is_active, i.id, i.title, i.description"
USER_BY_ID = (
    f"SELECT {_COLUMNS} FROM users u LEFT OUTER JOIN items i ON i.owner_id = u.id WHERE u.id = %s ORDER BY "
    "i.id"
)
USERS_PAGE = (
    f"SELECT {_COLUMNS} FROM (SELECT id, email, is_active FROM users ORDER BY id LIMIT %s OFFSET %s) u LEFT "
    "OUTER JOIN items i ON i.owner_id = u.id ORDER BY u.id, i.id"
)
SLEEP = "SELECT SLEEP(%s)"
PING = "SELECT 1"

Row = Sequence[Any]


def users_json(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Joined rows (a user's columns repeated for each of its items) -> users with their items."""
    users: dict[int, dict[str, Any]] = {}
    for uid, email, active, item_id, title, description in rows:
        user = users.setdefault(uid, {"email": email, "id": uid, "is_active": bool(active), "items": []})
        if item_id is not None:
            user["items"].append({"title": title, "description": description, "id": item_id, "owner_id": uid})
    return list(users.values())


def not_found(user_id: int) -> JSONResponse:
    return JSONResponse({"detail": f"User {user_id} not found"}, status_code=status.HTTP_404_NOT_FOUND)


def connect_kwargs(settings: Settings) -> dict[str, Any]:
    url = build_url(settings, "pymysql")
    return {
        "host": url.host,
        "port": url.port or 3306,
        "user": url.username,
        "password": url.password or "",
        "db": url.database,
        "connect_timeout": settings.db_connect_timeout,
        "autocommit": True,
        "charset": "utf8mb4",
    }


def create(
    *,
    title: str,
    variant: str,
    routers: list[Any],
    lifespan: Any,
    settings: Settings,
    driver_errors: tuple[type[Exception], ...],
) -> FastAPI:
    """The shared skeleton (errors, /limits' settings), plus 503 for the bare driver's errors."""
    app = build_app(title=title, lifespan=lifespan, routers=routers, settings=settings, variant=variant)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
        return JSONResponse({"detail": f"Database unavailable ({type(exc).__name__})"}, status_code=503)

    for error in (*driver_errors, TimeoutError):
        app.add_exception_handler(error, unavailable)
    return app
