"""mixed_crud: a realistic blend of every route: mostly reads, some writes, a few sign-ups and deletions."""

from __future__ import annotations

from typing import Any

from loadtests.common import PROCESS_TAG, expect, user_ok
from loadtests.read_heavy import Reads
from loadtests.write_heavy import WriteMixin

expect(
    {
        "GET /users/{id}": {"select": 1},
        "GET /users?skip&limit": {"select": 1},
        "GET /users/{id}/items": {"select": 1},
        "POST /users": {"insert": 1, "commit": 1},
        "DELETE /users/{id}": {"delete": 1, "commit": 1},
    }
)


class MixedCrud(WriteMixin, Reads):
    mix = (
        ("read_user", 40),
        ("read_page", 10),
        ("list_items", 10),
        ("create_item", 10),
        ("update_user", 5),
        ("delete_item", 5),
        ("sign_up", 2),
        ("delete_user", 1),
    )

    def on_start(self) -> None:
        self.signed_up: list[int] = []
        self.seq = 0
        super().on_start()

    def list_items(self) -> None:
        uid = self.seeded_user()

        def check(body: Any) -> str | None:
            ok = isinstance(body, list) and all(i.get("owner_id") == uid for i in body)
            return None if ok else "wrong items"

        self.call("GET", f"/users/{uid}/items", name="/users/{id}/items", status=200, check=check)

    def sign_up(self) -> None:
        self.seq += 1
        email = f"mixed-{PROCESS_TAG}-{self.n}-{self.seq}@example.com"
        body = {"email": email, "password": f"correct horse {self.seq} battery"}
        user = self.call(
            "POST", "/users", name="/users", status=201, json_body=body, check=user_ok(email=email)
        )
        if user is not None:
            self.signed_up.append(user["id"])
            self.acked("users", user["id"])

    def delete_user(self) -> None:
        if not self.signed_up:
            return self.sign_up()
        uid = self.signed_up.pop()
        self.gone("users", uid)
        self.call("DELETE", f"/users/{uid}", name="/users/{id}", status=204)
        return None
