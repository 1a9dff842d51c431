"""Database work of the sync app. Mirror of async_app/crud.py: only `await` and the session differ."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shared import queries, schemas
from shared.models import Item, User
from shared.web import NotFound, integrity_error


def get_user(db: Session, user_id: int) -> User:
    user = db.scalars(queries.user_by_id(user_id)).unique().first()
    if user is None:
        raise NotFound("User", user_id)
    return user


def list_users(db: Session, *, skip: int, limit: int) -> Sequence[User]:
    return db.scalars(queries.users_page(skip=skip, limit=limit)).unique().all()


def create_user(db: Session, data: schemas.UserCreate, hashed_password: str) -> User:
    user = User(email=data.email, hashed_password=hashed_password, is_active=True, items=[])
    db.add(user)
    try:
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        raise integrity_error(exc, user_id=None) from None
    return user


def update_user(db: Session, user_id: int, data: schemas.UserUpdate, hashed_password: str | None) -> User:
    user = get_user(db, user_id)
    for field, value in data.model_dump(exclude_unset=True, exclude={"password"}).items():
        setattr(user, field, value)
    if hashed_password is not None:
        user.hashed_password = hashed_password
    try:
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        raise integrity_error(exc, user_id=user_id) from None
    return user


def delete_user(db: Session, user_id: int) -> None:
    result = db.execute(queries.delete_user(user_id))
    db.commit()
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("User", user_id)


def create_item(db: Session, user_id: int, data: schemas.ItemCreate) -> Item:
    item = Item(**data.model_dump(), owner_id=user_id)
    db.add(item)
    try:
        db.commit()
    except IntegrityError as exc:
        db.rollback()
        raise integrity_error(exc, user_id=user_id) from None
    return item


def list_items(db: Session, user_id: int) -> list[Item]:
    return get_user(db, user_id).items


def delete_item(db: Session, user_id: int, item_id: int) -> None:
    result = db.execute(queries.delete_item(user_id, item_id))
    db.commit()
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise NotFound("Item", item_id)


def sleep(db: Session, ms: int) -> None:
    db.execute(queries.SLEEP, {"s": ms / 1000})


def ping(db: Session) -> None:
    db.execute(queries.PING)
