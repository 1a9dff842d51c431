"""Database work of the async app. Mirror of sync_app/crud.py: only `await` and the session differ."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from shared import queries, schemas
from shared.models import Item, User
from shared.web import NotFound, integrity_error


async def get_user(db: AsyncSession, user_id: int) -> User:
    user = (await db.scalars(queries.user_by_id(user_id))).unique().first()
    if user is None:
        raise NotFound("User", user_id)
    return user


async def list_users(db: AsyncSession, *, skip: int, limit: int) -> Sequence[User]:
    return (await db.scalars(queries.users_page(skip=skip, limit=limit))).unique().all()


async def create_user(db: AsyncSession, data: schemas.UserCreate, hashed_password: str) -> User:
    user = User(email=data.email, hashed_password=hashed_password, is_active=True, items=[])
    db.add(user)
    try:
        await db.commit()
    except IntegrityError as exc:
        await db.rollback()
        raise integrity_error(exc, user_id=None) from None
    return user


async def update_user(
    db: AsyncSession, user_id: int, data: schemas.UserUpdate, hashed_password: str | None
) -> User:
    user = await get_user(db, user_id)
    for field, value in data.model_dump(exclude_unset=True, exclude={"password"}).items():
        setattr(user, field, value)
    if hashed_password is not None:
        user.hashed_password = hashed_password
    try:
        await db.commit()
    except IntegrityError as exc:
        await db.rollback()
        raise integrity_error(exc, user_id=user_id) from None
    return user


async def delete_user(db: AsyncSession, user_id: int) -> None:
    result = await db.execute(queries.delete_user(user_id))
    await db.commit()
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("User", user_id)


async def create_item(db: AsyncSession, user_id: int, data: schemas.ItemCreate) -> Item:
    item = Item(**data.model_dump(), owner_id=user_id)
    db.add(item)
    try:
        await db.commit()
    except IntegrityError as exc:
        await db.rollback()
        raise integrity_error(exc, user_id=user_id) from None
    return item


async def list_items(db: AsyncSession, user_id: int) -> list[Item]:
    return (await get_user(db, user_id)).items


async def delete_item(db: AsyncSession, user_id: int, item_id: int) -> None:
    result = await db.execute(queries.delete_item(user_id, item_id))
    await db.commit()
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("Item", item_id)


async def sleep(db: AsyncSession, ms: int) -> None:
    await db.execute(queries.SLEEP, {"s": ms / 1000})


async def ping(db: AsyncSession) -> None:
    await db.execute(queries.PING)
