"""The SQL statements both apps run: one definition, so both cost the database the same work."""

from __future__ import annotations

from sqlalchemy import Delete, Select, TextClause, bindparam, delete, select, text
from sqlalchemy.orm import joinedload

from shared.dialects import db_sleep
from shared.models import Item, User

PING: TextClause = text("SELECT 1")
SLEEP: Select[tuple[float]] = select(db_sleep(bindparam("s")))  # SLEEP(s) on MariaDB


def user_by_id(user_id: int) -> Select[User]:
    """One user and its items in one SELECT (a LEFT OUTER JOIN; eager, since a lazy load would fail in
    async code and cost N+1). Results of a joined collection load need `.unique()`."""
    return select(User).options(joinedload(User.items)).where(User.id == user_id)


def users_page(*, skip: int, limit: int) -> Select[User]:
    """A page of users with their items, one SELECT (SQLAlchemy pages the users in a subquery first)."""
    return select(User).options(joinedload(User.items)).order_by(User.id).offset(skip).limit(limit)


def delete_user(user_id: int) -> Delete:
    return delete(User).where(User.id == user_id)


def delete_item(user_id: int, item_id: int) -> Delete:
    return delete(Item).where(Item.id == item_id, Item.owner_id == user_id)
