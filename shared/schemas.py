"""Pydantic v2 schemas in the seed's layering: Base -> Create (input) / read model (output)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query
from pydantic import BaseModel, ConfigDict, EmailStr, Field

Password = Annotated[str, Field(min_length=8, max_length=128)]
Title = Annotated[str, Field(min_length=1, max_length=200)]
Description = Annotated[str, Field(max_length=10_000)]
MAX_ID = 2_147_483_647  # MySQL INT
UserId = Annotated[int, Path(ge=1, le=MAX_ID)]
ItemId = Annotated[int, Path(ge=1, le=MAX_ID)]
Skip = Annotated[int, Query(ge=0, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=100)]
SleepMs = Annotated[int, Query(ge=0, le=2000, description="How long the database sleeps, in ms")]


class ItemBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: Description | None = None


class ItemCreate(ItemBase):
    pass


class Item(ItemBase):
    model_config = ConfigDict(from_attributes=True)

    id: int
    owner_id: int


class UserBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr


class UserCreate(UserBase):
    password: Password


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = None
    password: Password | None = None
    is_active: bool | None = None


class User(UserBase):
    """What the API returns: never the password or its hash."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    is_active: bool
    items: list[Item] = []


class Health(BaseModel):
    status: str
    detail: str | None = None


class Slept(BaseModel):
    slept_ms: int


class Limits(BaseModel):
    """The effective concurrency settings of one app process, recorded by the harness."""

    app: str
    variant: str
    driver: str
    workers: int
    thread_tokens: int
    pool_size: int
    max_overflow: int
    pool_timeout: float
    event_loop: str
    pid: int


class ErrorDetail(BaseModel):
    detail: str
