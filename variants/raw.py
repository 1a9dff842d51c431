"""What the raw ceilings share: the same statements the ORM apps send, without the ORM, and JSON built by
hand without response-model validation. `raw_sync` and `raw_async` differ only by the driver calls.

Statements (as the ORM apps): a user, then its items (`WHERE owner_id IN (...) ORDER BY id`, as SQLAlchemy's
selectinload sends); a page of users, then their items; `SELECT SLEEP(s)`. Connections run in autocommit,
so no COMMIT or ROLLBACK is sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from shared.config import Settings
from shared.db_url import build_url
from shared.web import build_app, log

USER_BY_ID = "SELECT id, email, is_active FROM users WHERE id = %s"
USERS_PAGE = "SELECT id, email, is_active FROM users ORDER BY id LIMIT %s OFFSET %s"
SLEEP = "SELECT SLEEP(%s)"
PING = "SELECT 1"

Row = Sequence[Any]


def items_of(user_ids: Sequence[int]) -> str:
    marks = ", ".join(["%s"] * len(user_ids))
    return f"SELECT id, title, description, owner_id FROM items WHERE owner_id IN ({marks}) ORDER BY id"


def users_json(users: Sequence[Row], items: Sequence[Row]) -> list[dict[str, Any]]:
    by_owner: dict[int, list[dict[str, Any]]] = {int(u[0]): [] for u in users}
    for item_id, title, description, owner_id in items:
        by_owner[int(owner_id)].append(
            {"title": title, "description": description, "id": item_id, "owner_id": owner_id}
        )
    return [
        {"email": email, "id": uid, "is_active": bool(active), "items": by_owner[int(uid)]}
        for uid, email, active in users
    ]


def not_found(user_id: int) -> JSONResponse:
    return JSONResponse({"detail": f"User {user_id} not found"}, status_code=status.HTTP_404_NOT_FOUND)


def connect_kwargs(settings: Settings) -> dict[str, Any]:
    url = build_url(settings, "pymysql")
    return {
        "host": url.host, "port": url.port or 3306, "user": url.username, "password": url.password or "",
        "db": url.database, "connect_timeout": settings.db_connect_timeout, "autocommit": True,
        "charset": "utf8mb4",
    }  # fmt: skip


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
