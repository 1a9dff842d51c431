"""One contract, every proper app on every driver: each route's success and error paths on real MariaDB and
PostgreSQL servers."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from sqlalchemy import Engine, text

from shared.config import Settings
from shared.security import verify_password
from tests.conftest import Client, closed_port

PASSWORD = "correct horse battery"


def new_user(client: Client, email: str = "ada@example.com", password: str = PASSWORD) -> dict[str, Any]:
    resp = client.request("POST", "/users", json={"email": email, "password": password})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def stored_hash(db_engine: Engine, user_id: int) -> str:
    with db_engine.connect() as conn:
        return str(
            conn.execute(text("SELECT hashed_password FROM users WHERE id = :i"), {"i": user_id}).scalar_one()
        )


# --- users: create -------------------------------------------------------------------------------


def test_create_user_returns_201_and_never_the_password(client: Client, db_engine: Engine) -> None:
    resp = client.request("POST", "/users", json={"email": "ada@example.com", "password": PASSWORD})
    assert resp.status_code == 201
    body = resp.json()
    assert set(body) == {"id", "email", "is_active", "items"}
    assert body["email"] == "ada@example.com" and body["is_active"] is True and body["items"] == []
    assert PASSWORD not in resp.text and "hash" not in resp.text and "argon2" not in resp.text
    hashed = stored_hash(db_engine, body["id"])
    assert hashed.startswith("$argon2id$") and PASSWORD not in hashed
    assert verify_password(PASSWORD, hashed)


def test_duplicate_email_is_409(client: Client) -> None:
    new_user(client)
    resp = client.request("POST", "/users", json={"email": "ada@example.com", "password": "another password"})
    assert resp.status_code == 409
    assert resp.json() == {"detail": "Email already registered"}


def test_racing_duplicate_creates_give_one_201_and_the_rest_409(client: Client, db_engine: Engine) -> None:
    calls = [
        ("POST", "/users", {"json": {"email": "race@example.com", "password": f"password-{i}"}})
        for i in range(6)
    ]
    codes = sorted(r.status_code for r in client.concurrently(calls))
    assert codes == [201] + [409] * 5
    with db_engine.connect() as conn:
        n: int = conn.execute(
            text("SELECT COUNT(*) FROM users WHERE email = 'race@example.com'")
        ).scalar_one()
    assert n == 1


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "not-an-email", "password": PASSWORD},
        {"email": "ada@example.com", "password": "short"},
        {"email": "ada@example.com", "password": "x" * 129},
        {"email": "ada@example.com"},
        {"password": PASSWORD},
        {"email": "ada@example.com", "password": PASSWORD, "is_admin": True},
        {"email": 12, "password": PASSWORD},
        [],
    ],
    ids=[
        "bad-email",
        "short-password",
        "long-password",
        "no-password",
        "no-email",
        "extra-field",
        "wrong-type",
        "list",
    ],
)
def test_invalid_user_is_422_and_stores_nothing(client: Client, db_engine: Engine, payload: Any) -> None:
    resp = client.request("POST", "/users", json=payload)
    assert resp.status_code == 422
    assert PASSWORD not in resp.text
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM users")).scalar_one() == 0


def test_malformed_json_is_422(client: Client) -> None:
    resp = client.request(
        "POST", "/users", content=b'{"email": ', headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422


# --- users: read ---------------------------------------------------------------------------------


def test_get_user_and_404(client: Client) -> None:
    user = new_user(client)
    resp = client.request("GET", f"/users/{user['id']}")
    assert resp.status_code == 200 and resp.json() == user
    missing = client.request("GET", f"/users/{user['id'] + 1000}")
    assert missing.status_code == 404
    assert missing.json() == {"detail": f"User {user['id'] + 1000} not found"}


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "2147483648"])
def test_bad_user_id_is_422(client: Client, bad: str) -> None:
    assert client.request("GET", f"/users/{bad}").status_code == 422


def test_list_users_pagination(client: Client) -> None:
    ids = [new_user(client, f"u{i}@example.com")["id"] for i in range(12)]
    first = client.request("GET", "/users")
    assert first.status_code == 200
    assert [u["id"] for u in first.json()] == ids[:10]  # default limit 10, ordered by id
    page = client.request("GET", "/users", params={"skip": 10, "limit": 5}).json()
    assert [u["id"] for u in page] == ids[10:]
    assert len(client.request("GET", "/users", params={"limit": 100}).json()) == 12
    assert client.request("GET", "/users", params={"skip": 50}).json() == []


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 101}, {"skip": -1}, {"limit": "ten"}])
def test_list_users_bounds_are_422(client: Client, params: dict[str, Any]) -> None:
    assert client.request("GET", "/users", params=params).status_code == 422


# --- users: update and delete --------------------------------------------------------------------


def test_patch_user(client: Client, db_engine: Engine) -> None:
    user = new_user(client)
    before = stored_hash(db_engine, user["id"])
    resp = client.request("PATCH", f"/users/{user['id']}", json={"is_active": False})
    assert resp.status_code == 200 and resp.json()["is_active"] is False
    assert stored_hash(db_engine, user["id"]) == before  # no password given: hash untouched
    resp = client.request(
        "PATCH", f"/users/{user['id']}", json={"email": "new@example.com", "password": "a new password"}
    )
    assert resp.status_code == 200 and resp.json()["email"] == "new@example.com"
    assert "a new password" not in resp.text
    after = stored_hash(db_engine, user["id"])
    assert after != before and verify_password("a new password", after)
    assert client.request("GET", f"/users/{user['id']}").json()["email"] == "new@example.com"


def test_patch_errors(client: Client) -> None:
    ada = new_user(client)
    bob = new_user(client, "bob@example.com")
    taken = client.request("PATCH", f"/users/{bob['id']}", json={"email": "ada@example.com"})
    assert taken.status_code == 409
    assert client.request("GET", f"/users/{bob['id']}").json()["email"] == "bob@example.com"
    assert client.request("PATCH", "/users/999999", json={"is_active": False}).status_code == 404
    assert client.request("PATCH", f"/users/{ada['id']}", json={"email": "nope"}).status_code == 422
    assert client.request("PATCH", f"/users/{ada['id']}", json={"password": "short"}).status_code == 422
    assert client.request("PATCH", f"/users/{ada['id']}", json={"hashed_password": "x"}).status_code == 422


def test_delete_user_removes_its_items(client: Client, db_engine: Engine) -> None:
    user = new_user(client)
    for title in ("a", "b", "c"):
        assert client.request("POST", f"/users/{user['id']}/items", json={"title": title}).status_code == 201
    resp = client.request("DELETE", f"/users/{user['id']}")
    assert resp.status_code == 204 and resp.content == b""
    assert client.request("GET", f"/users/{user['id']}").status_code == 404
    assert client.request("GET", f"/users/{user['id']}/items").status_code == 404
    assert client.request("DELETE", f"/users/{user['id']}").status_code == 404
    with db_engine.connect() as conn:
        left: int = conn.execute(
            text("SELECT COUNT(*) FROM items WHERE owner_id = :i"), {"i": user["id"]}
        ).scalar_one()
    assert left == 0


# --- items ---------------------------------------------------------------------------------------


def test_items_create_list_delete(client: Client) -> None:
    user = new_user(client)
    resp = client.request(
        "POST", f"/users/{user['id']}/items", json={"title": "Book", "description": "A good one"}
    )
    assert resp.status_code == 201
    item = resp.json()
    assert item == {"id": item["id"], "title": "Book", "description": "A good one", "owner_id": user["id"]}
    second = client.request("POST", f"/users/{user['id']}/items", json={"title": "Pen"}).json()
    assert second["description"] is None
    listed = client.request("GET", f"/users/{user['id']}/items")
    assert listed.status_code == 200 and listed.json() == [item, second]
    assert client.request("GET", f"/users/{user['id']}").json()["items"] == [item, second]
    assert client.request("DELETE", f"/users/{user['id']}/items/{item['id']}").status_code == 204
    assert client.request("GET", f"/users/{user['id']}/items").json() == [second]
    assert client.request("DELETE", f"/users/{user['id']}/items/{item['id']}").status_code == 404


def test_item_errors(client: Client) -> None:
    ada = new_user(client)
    bob = new_user(client, "bob@example.com")
    item = client.request("POST", f"/users/{ada['id']}/items", json={"title": "Mine"}).json()
    assert client.request("POST", "/users/999999/items", json={"title": "x"}).status_code == 404
    assert client.request("GET", "/users/999999/items").status_code == 404
    assert client.request("POST", f"/users/{ada['id']}/items", json={"title": ""}).status_code == 422
    assert (
        client.request("POST", f"/users/{ada['id']}/items", json={"description": "no title"}).status_code
        == 422
    )
    # Someone else's item is not yours to delete.
    assert client.request("DELETE", f"/users/{bob['id']}/items/{item['id']}").status_code == 404
    assert client.request("GET", f"/users/{ada['id']}/items").json() == [item]


# --- system routes -------------------------------------------------------------------------------


def test_healthz(client: Client) -> None:
    resp = client.request("GET", "/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok", "detail": None}


def test_io_sleep_waits_on_the_database(client: Client) -> None:
    start = time.perf_counter()
    resp = client.request("GET", "/io/sleep", params={"ms": 60})
    assert resp.status_code == 200 and resp.json() == {"slept_ms": 60}
    assert time.perf_counter() - start >= 0.055
    assert client.request("GET", "/io/sleep", params={"ms": 2001}).status_code == 422
    assert client.request("GET", "/io/sleep", params={"ms": -1}).status_code == 422


def test_limits_report_the_effective_settings(client: Client) -> None:
    settings: Settings = client.app.state.settings
    body = client.request("GET", "/limits").json()
    assert body["app"] == client.kind and body["variant"] == "proper"
    assert body["driver"] == settings.driver(client.kind)  # type: ignore[arg-type]
    assert body["pool_size"] == 5 and body["max_overflow"] == 0 and body["pool_timeout"] == 10.0
    assert body["thread_tokens"] == 5  # defaults to the pool's capacity: threads never queue for connections
    assert body["workers"] == 1 and body["event_loop"] in ("asyncio", "uvloop") and body["pid"] > 0


def test_unreachable_database_gives_503_not_500(client_factory: Any, settings: Settings) -> None:
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value().rsplit("@", 1)[0] + f"@127.0.0.1:{closed_port()}/x"
        down = settings.model_copy(update={"database_url": type(settings.database_url)(url)})
    else:
        down = settings.model_copy(update={"db_port": closed_port()})
    for kind in ("sync", "async"):
        for c in client_factory(kind, down):
            health = c.request("GET", "/healthz")
            assert health.status_code == 503, (kind, health.text)
            assert health.json()["detail"].startswith("Database unavailable")
            assert c.request("GET", "/users/1").status_code == 503
            post = c.request("POST", "/users", json={"email": "ada@example.com", "password": PASSWORD})
            assert post.status_code == 503 and PASSWORD not in post.text


def test_openapi_documents_are_equal_apart_from_the_title() -> None:
    import async_app.main
    import sync_app.main

    sync_doc = sync_app.main.create_app().openapi()
    async_doc = async_app.main.create_app().openapi()
    assert sync_doc["info"].pop("title") == "Users CRUD (sync)"
    assert async_doc["info"].pop("title") == "Users CRUD (async)"
    assert sync_doc == async_doc
    assert {
        "/users",
        "/users/{user_id}",
        "/users/{user_id}/items",
        "/healthz",
        "/io/sleep",
        "/limits",
    } <= set(sync_doc["paths"])


# --- the exact contract (what the OpenAPI document says, and nothing looser) ---------------------------


@pytest.mark.parametrize(
    "body",
    [{"email": None}, {"is_active": None}, {"password": None}, {"email": None, "is_active": None}],
    ids=["email", "is_active", "password", "both"],
)
def test_patch_with_explicit_null_is_422_and_changes_nothing(client: Client, body: dict[str, Any]) -> None:
    user = new_user(client)
    resp = client.request("PATCH", f"/users/{user['id']}", json=body)
    assert resp.status_code == 422, resp.text
    assert "not null" in resp.text
    assert client.request("GET", f"/users/{user['id']}").json() == user


@pytest.mark.parametrize("value", [0, 1, "true", "false", "yes"])
def test_booleans_are_strict(client: Client, value: Any) -> None:
    user = new_user(client)
    assert client.request("PATCH", f"/users/{user['id']}", json={"is_active": value}).status_code == 422


def test_emails_the_document_calls_valid_are_accepted(client: Client) -> None:
    for email in ("x@y.test", "a.b-c+d@example.org", "z*1@qb7bu20a.test", "UPPER@Example.COM"):
        resp = client.request("POST", "/users", json={"email": email, "password": PASSWORD})
        assert resp.status_code == 201, (email, resp.text)
    for email in ("x@y.local", "x@localhost", "no-at-sign", "a@b", "x" * 250 + "@example.com"):
        assert (
            client.request("POST", "/users", json={"email": email, "password": PASSWORD}).status_code == 422
        )


@pytest.mark.parametrize(
    "body",
    [
        {"title": "nul \x00 inside"},  # PostgreSQL cannot store it; the document's pattern refuses it
        {"title": "lone \ud800 surrogate"},  # not UTF-8: no database can store it
        {"title": "ok", "description": "\x00"},
    ],
    ids=["nul-title", "surrogate", "nul-description"],
)
def test_text_the_database_cannot_store_is_422(client: Client, body: dict[str, Any]) -> None:
    user = new_user(client)
    raw = json.dumps(body).encode()  # json.dumps keeps a lone surrogate as \ud800, as a client may send it
    resp = client.request(
        "POST", f"/users/{user['id']}/items", content=raw, headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422, resp.text
    assert client.request("GET", f"/users/{user['id']}/items").json() == []


def test_a_body_that_is_not_utf8_is_422_like_any_invalid_body(client: Client) -> None:
    resp = client.request(
        "POST", "/users", content=b"\xff\xfe{", headers={"content-type": "application/json"}
    )
    assert resp.status_code == 422 and resp.json()["detail"][0]["loc"] == ["body"]


@pytest.mark.parametrize(
    ("path", "allowed"),
    [
        ("/users", "GET, HEAD, POST"),
        ("/users/1", "DELETE, GET, HEAD, PATCH"),
        ("/users/1/items", "GET, HEAD, POST"),
        ("/users/1/items/2", "DELETE"),
        ("/healthz", "GET, HEAD"),
    ],
)
def test_a_wrong_method_and_options_get_405_with_every_method_of_the_path(
    client: Client, path: str, allowed: str
) -> None:
    for method in ("OPTIONS", "PUT", "TRACE"):
        resp = client.request(method, path)
        assert resp.status_code == 405, (method, path, resp.status_code)
        assert resp.headers["allow"] == allowed, (method, path)


def test_only_outages_are_503(settings: Settings, db_engine: Engine) -> None:
    """Real errors from the real server: a refused connection is an outage; a statement the database
    rejects is our bug, and must not be reported as an outage."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError

    from shared.db_url import build_url, connect_args
    from shared.web import unavailable

    with pytest.raises(DBAPIError) as rejected, db_engine.connect() as conn:
        conn.execute(text("SELECT no_such_column FROM users"))
    assert not unavailable(rejected.value)
    down = settings.model_copy(update={"db_port": closed_port(), "database_url": None})
    driver = down.driver("sync")
    engine = create_engine(build_url(down, driver), connect_args=connect_args(down, driver))
    with pytest.raises(DBAPIError) as refused, engine.connect():
        pass
    engine.dispose()
    assert unavailable(refused.value)
