"""read_heavy: mostly GET /users/{id} over the seeded ids, some paginated lists (9:1)."""

from __future__ import annotations

from typing import Any

from loadtests.common import MixUser, expect, user_ok
from loadtests.options import Params

PAGE = 20
expect({"GET /users/{id}": {"select": 1}, "GET /users?skip&limit": {"select": 1}})


def page_ok(skip: int) -> Any:
    def check(body: Any) -> str | None:
        if not isinstance(body, list) or len(body) != PAGE:
            return "wrong page size"
        if [u["id"] for u in body] != list(range(skip + 1, skip + PAGE + 1)):
            return "wrong page"
        return None

    return check


class Reads(MixUser):
    """The read requests, shared by read_heavy and mixed_crud (each weights them as its own tasks)."""

    abstract = True

    def read_user(self) -> None:
        uid = self.seeded_user()
        self.call("GET", f"/users/{uid}", name="/users/{id}", status=200, check=user_ok(uid))

    def read_page(self) -> None:
        skip = self.rng.randint(0, max(Params.seed_users - PAGE, 0))
        url = f"/users?skip={skip}&limit={PAGE}"
        self.call("GET", url, name="/users?skip&limit", status=200, check=page_ok(skip))


class ReadHeavy(Reads):
    mix = (("read_user", 9), ("read_page", 1))
