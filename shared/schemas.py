"""Pydantic v2 schemas in the seed's layering: Base -> Create (input) / read model (output).

The input types say exactly what the OpenAPI document says, so a request the document calls valid is
accepted and anything else is a 422 (never a database error): text the database can store (no NUL
character, which PostgreSQL refuses; no lone surrogate, which is not UTF-8), strict booleans (`0` is
not `false`), email addresses by RFC 5322 syntax without a deliverability check, and fields that may be
left out but never set to `null` (`UserUpdate`).
"""

from __future__ import annotations

from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, WithJsonSchema, model_validator
from pydantic.json_schema import SkipJsonSchema

NO_NUL = r"^[^\x00]*$"  # in the document too, so a generator of valid requests knows


def _storable(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (a lone surrogate is not)") from None
    return value


def _email(value: str) -> str:
    """Syntax only (we never send mail). Special-use domains that can never receive mail (.local,
    .localhost, .invalid, .onion, .arpa) are refused, as the document says; .test and .example are not."""
    try:
        return validate_email(value, check_deliverability=False, test_environment=True).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"value is not a valid email address: {exc}") from None


def text(**constraints: Any) -> Any:
    """A str field the database can store, with length constraints."""
    return Field(pattern=NO_NUL, **constraints)


Email = Annotated[
    str,
    Field(max_length=254),
    AfterValidator(_storable),
    AfterValidator(_email),
    WithJsonSchema(
        {
            "type": "string",
            "format": "email",
            "maxLength": 254,
            "description": "An address by RFC 5322 syntax; domains reserved for special use that can never "
            "receive mail (.local, .localhost, .invalid, .onion, .arpa) are refused.",
        }
    ),
]
Password = Annotated[str, text(min_length=8, max_length=128), AfterValidator(_storable)]
Title = Annotated[str, text(min_length=1, max_length=200), AfterValidator(_storable)]
Description = Annotated[str, text(max_length=10_000), AfterValidator(_storable)]
MAX_ID = 2_147_483_647  # MySQL INT
UserId = Annotated[int, Path(ge=1, le=MAX_ID)]
ItemId = Annotated[int, Path(ge=1, le=MAX_ID)]
Skip = Annotated[int, Query(ge=0, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=100)]
SleepMs = Annotated[int, Query(ge=0, le=2000, description="How long the database sleeps, in ms")]
CpuMs = Annotated[int, Query(ge=0, le=1000, description="CPU time of pure-Python work, in ms")]


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

    email: Email


class UserCreate(UserBase):
    password: Password


class UserUpdate(BaseModel):
    """Every field may be left out (unchanged); none may be `null` (the columns are NOT NULL)."""

    model_config = ConfigDict(extra="forbid")

    # SkipJsonSchema: the document says "string" / "boolean", not "or null"; None is only the default.
    email: Email | SkipJsonSchema[None] = None
    password: Password | SkipJsonSchema[None] = None
    is_active: StrictBool | SkipJsonSchema[None] = None

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(k for k, v in data.items() if v is None and k in cls.model_fields)
            if nulls:
                raise ValueError(f"{', '.join(nulls)} may be left out, but not null")
        return data


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


class Burned(BaseModel):
    cpu_ms: int


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
    connect_timeout: int
    read_timeout: int
    event_loop: str
    pid: int


class PoolStatus(BaseModel):
    """The app's connection pool now (one worker process): what a leak would show."""

    size: int
    checked_out: int
    overflow: int
    pid: int


class ErrorDetail(BaseModel):
    detail: str
