"""write_heavy: create items, update users, delete items (no password hashing on the hot path).

Each user works on seeded users; items it created are remembered and some are deleted again. Every
item acknowledged as created and not deleted must exist afterwards."""

from __future__ import annotations

from typing import Any

from loadtests.common import PROCESS_TAG, MixUser, expect, user_ok

expect(
    {
        "POST /users/{id}/items": {"insert": 1, "commit": 1},
        "PATCH /users/{id}": {"select": 1, "update": 1, "commit": 1},
        "DELETE /users/{id}/items/{item_id}": {"delete": 1, "commit": 1},
    }
)


class WriteMixin(MixUser):
    abstract = True

    def create_item(self) -> None:
        uid = self.seeded_user()
        title = f"item of {uid} by user {self.n}"

        def check(body: Any) -> str | None:
            ok = isinstance(body, dict) and body.get("owner_id") == uid and body.get("title") == title
            return None if ok else "wrong item"

        item = self.call(
            "POST",
            f"/users/{uid}/items",
            name="/users/{id}/items",
            status=201,
            json_body={"title": title, "description": "written by the write_heavy scenario"},
            check=check,
        )
        if item is not None:
            self.mine.append((uid, item["id"]))
            self.acked("items", item["id"])

    def update_user(self) -> None:
        """A new email every time, so every PATCH really writes (an unchanged value is no UPDATE)."""
        uid = self.seeded_user()
        self.edits = getattr(self, "edits", 0) + 1
        email = f"user{uid}.{PROCESS_TAG}.{self.n}.{self.edits}@example.com"
        self.call(
            "PATCH",
            f"/users/{uid}",
            name="/users/{id}",
            status=200,
            json_body={"email": email},
            check=user_ok(uid, email=email),
        )

    def delete_item(self) -> None:
        if not self.mine:
            self.create_item()
            return
        uid, item_id = self.mine.pop(self.rng.randrange(len(self.mine)))
        self.gone("items", item_id)  # no longer expected to exist, whatever the outcome
        self.call("DELETE", f"/users/{uid}/items/{item_id}", name="/users/{id}/items/{item_id}", status=204)

    def on_start(self) -> None:
        self.mine: list[tuple[int, int]] = []
        super().on_start()


class WriteHeavy(WriteMixin):
    mix = (("create_item", 2), ("update_user", 2), ("delete_item", 1))
