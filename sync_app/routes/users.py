"""Users and their items. Mirror of async_app/routes/users.py."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import status

from shared import models, schemas
from shared.security import hash_password
from shared.web import CONFLICT, NOT_FOUND, UNAVAILABLE
from sync_app import crud
from sync_app.deps import SessionDep, SessionRouter, SettingsDep

router = SessionRouter(prefix="/users", tags=["users"], responses=UNAVAILABLE)


@router.post("", response_model=schemas.User, status_code=status.HTTP_201_CREATED, responses=CONFLICT)
def create_user(*, db: SessionDep, settings: SettingsDep, body: schemas.UserCreate) -> models.User:
    return crud.create_user(db, body, hash_password(body.password, settings))


@router.get("", response_model=list[schemas.User])
def list_users(*, db: SessionDep, skip: schemas.Skip = 0, limit: schemas.Limit = 10) -> Sequence[models.User]:
    return crud.list_users(db, skip=skip, limit=limit)


@router.get("/{user_id}", response_model=schemas.User, responses=NOT_FOUND)
def get_user(*, db: SessionDep, user_id: schemas.UserId) -> models.User:
    return crud.get_user(db, user_id)


@router.patch("/{user_id}", response_model=schemas.User, responses={**NOT_FOUND, **CONFLICT})
def update_user(
    *, db: SessionDep, settings: SettingsDep, user_id: schemas.UserId, body: schemas.UserUpdate
) -> models.User:
    hashed = hash_password(body.password, settings) if body.password is not None else None
    return crud.update_user(db, user_id, body, hashed)


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete_user(*, db: SessionDep, user_id: schemas.UserId) -> None:
    crud.delete_user(db, user_id)


@router.post(
    "/{user_id}/items",
    response_model=schemas.Item,
    status_code=status.HTTP_201_CREATED,
    responses=NOT_FOUND,
)
def create_item(*, db: SessionDep, user_id: schemas.UserId, body: schemas.ItemCreate) -> models.Item:
    return crud.create_item(db, user_id, body)


@router.get("/{user_id}/items", response_model=list[schemas.Item], responses=NOT_FOUND)
def list_items(*, db: SessionDep, user_id: schemas.UserId) -> list[models.Item]:
    return crud.list_items(db, user_id)


@router.delete("/{user_id}/items/{item_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
def delete_item(*, db: SessionDep, user_id: schemas.UserId, item_id: schemas.ItemId) -> None:
    crud.delete_item(db, user_id, item_id)
