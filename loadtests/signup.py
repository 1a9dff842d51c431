"""signup: POST /users only. Argon2 hashing dominates: the CPU-bound, GIL-bound case, kept apart so it
does not hide the I/O comparison. Every acknowledged user must exist afterwards."""

from __future__ import annotations

from locust import task

from loadtests.common import PROCESS_TAG, BenchUser, expect, user_ok

expect({"POST /users": {"insert": 1, "commit": 1}})


class Signup(BenchUser):
    @task
    def sign_up(self) -> None:
        self.seq = getattr(self, "seq", 0) + 1
        email = f"signup-{PROCESS_TAG}-{self.n}-{self.seq}@example.com"
        body = {"email": email, "password": f"correct horse {self.seq} battery"}
        user = self.call(
            "POST", "/users", name="/users", status=201, json_body=body, check=user_ok(email=email)
        )
        if user is not None:
            self.acked("users", user["id"])
