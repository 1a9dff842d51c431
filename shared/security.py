"""Password hashing with Argon2 (pwdlib). Hashes are never returned or logged."""

from __future__ import annotations

from functools import lru_cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from shared.config import Settings, get_settings


@lru_cache
def _hasher(time_cost: int, memory_cost: int, parallelism: int) -> PasswordHash:
    return PasswordHash(
        (Argon2Hasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism),)
    )


def password_hasher(settings: Settings | None = None) -> PasswordHash:
    s = settings or get_settings()
    return _hasher(s.argon2_time_cost, s.argon2_memory_cost, s.argon2_parallelism)


def hash_password(password: str, settings: Settings | None = None) -> str:
    return password_hasher(settings).hash(password)


def verify_password(password: str, hashed: str, settings: Settings | None = None) -> bool:
    return password_hasher(settings).verify(password, hashed)
