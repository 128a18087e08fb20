"""POST /login, form and JSON: answers, cookies, and exactly one schema-valid event per attempt."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

GENERIC = "Invalid username or password."


async def test_form_login_success_sets_a_strict_session_cookie(client: httpx.AsyncClient, helpers: Any) -> None:
    response = await helpers.form_login(client, "alice", helpers.password)
    assert response.status_code == 303
    assert response.headers["location"] == "/welcome"
    session_cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("session="))
    attributes = [a.strip().lower() for a in session_cookie.split(";")]
    assert {"httponly", "samesite=strict", "path=/"} <= set(attributes)
    assert "secure" not in attributes  # plain http from a direct client
    welcome = await client.get("/welcome")
    assert welcome.status_code == 200
    assert "Welcome, alice" in welcome.text
    [event] = helpers.events()
    assert event["event_type"] == "login.success"
    assert (event["outcome"], event["reason"], event["username"]) == ("success", None, "alice")
    assert (event["service"], event["pod"], event["client_ip"]) == ("webserver", "test-pod", "127.0.0.1")


async def test_json_login_success(client: httpx.AsyncClient, helpers: Any) -> None:
    response = await client.post(
        "/login",
        json={"username": "alice", "password": helpers.password},
        headers={"x-request-id": "req-1", "user-agent": "pytest-agent"},
    )
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert client.cookies.get("session")
    [event] = helpers.events()
    assert (event["event_type"], event["request_id"], event["user_agent"]) == ("login.success", "req-1", "pytest-agent")
    assert (await client.get("/welcome")).status_code == 200


async def test_unknown_user_and_bad_password_get_the_same_answer(client: httpx.AsyncClient, helpers: Any) -> None:
    token = await helpers.csrf_token(client)
    answers = []
    for username, password in [("alice", "wrong"), ("nobody", "wrong"), ("nobody", helpers.password)]:
        form = await client.post("/login", data={"username": username, "password": password, "csrf": token})
        data = await client.post("/login", json={"username": username, "password": password})
        answers.append((form.status_code, form.content, data.status_code, data.content))
        assert GENERIC in form.text
        assert form.text.count('class="error"') == 1
    assert answers[0] == answers[1] == answers[2]
    assert answers[0][0] == answers[0][2] == 401
    assert [e["reason"] for e in helpers.events()] == ["bad_password"] * 2 + ["unknown_user"] * 4
    assert "session" not in client.cookies


@pytest.mark.parametrize(
    ("body", "username"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'"alice"', None),
        (b"{}", None),
        (b'{"username": "alice"}', "alice"),
        (b'{"username": "alice", "password": 12}', "alice"),
        (b'{"username": ["alice"], "password": "x"}', None),
        (b'{"username": null, "password": "x"}', None),
        (b"[" * 100_00 + b"]" * 100_00, None),
        (b"\xff\xfe{", None),
    ],
)
async def test_malformed_json_is_422_with_one_event(
    client: httpx.AsyncClient, helpers: Any, body: bytes, username: str | None
) -> None:
    response = await client.post("/login", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert "error" in response.json()
    [event] = helpers.events()
    assert (event["reason"], event["username"], event["event_type"]) == ("malformed_request", username, "login.failure")


@pytest.mark.parametrize(
    "headers",
    [
        {"content-type": "text/plain"},
        {"content-type": "multipart/form-data; boundary=x"},
        {"content-type": "application/xml"},
        {},
    ],
)
async def test_other_content_types_are_415_with_one_event(
    client: httpx.AsyncClient, helpers: Any, headers: dict[str, str]
) -> None:
    response = await client.post("/login", content=b"username=alice&password=x", headers=headers)
    assert response.status_code == 415
    [event] = helpers.events()
    assert (event["reason"], event["username"]) == ("malformed_request", None)


async def test_malformed_form_is_422_with_the_form_again(client: httpx.AsyncClient, helpers: Any) -> None:
    token = await helpers.csrf_token(client)
    missing = await client.post("/login", data={"username": "alice", "csrf": token})
    repeated = await client.post(
        "/login",
        content=f"username=a&username=b&password=x&csrf={token}",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    for response in (missing, repeated):
        assert response.status_code == 422
        assert '<form method="post" action="/login">' in response.text
    assert [(e["reason"], e["username"]) for e in helpers.events()] == [
        ("malformed_request", "alice"),
        ("malformed_request", "a"),
    ]


async def test_body_over_max_is_413_with_one_event(make_client: Any, helpers: Any) -> None:
    async with make_client(MAX_BODY_BYTES="2048") as client:
        response = await client.post("/login", json={"username": "alice", "password": "x" * 4096})
        assert response.status_code == 413
    [event] = helpers.events()
    assert (event["reason"], event["username"]) == ("malformed_request", None)


@pytest.mark.parametrize(
    ("username", "reason"),
    [
        ("ali\x00ce", "invalid_username"),
        ("alice\r\nforged line", "invalid_username"),
        ("alice\u202e", "invalid_username"),
        ("\ud800alice", "invalid_username"),
        ("", "invalid_username"),
        ("x" * 10_000, "invalid_username"),
        ("<script>alert(1)</script>", "unknown_user"),
        ("a&b", "unknown_user"),
        ("]]><x/>", "unknown_user"),
        ("x" * 256, "unknown_user"),
    ],
)
async def test_hostile_usernames_fail_generically_and_are_recorded_safely(
    client: httpx.AsyncClient, helpers: Any, username: str, reason: str
) -> None:
    body = json.dumps({"username": username, "password": helpers.password})  # ASCII: \ud800 stays escaped
    response = await client.post("/login", content=body, headers={"content-type": "application/json"})
    assert (response.status_code, response.json()) == (401, {"error": "invalid username or password"})
    attempts = 1
    if "\ud800" not in username:  # a lone surrogate cannot be form-encoded
        form = await helpers.form_login(client, username, helpers.password)
        assert form.status_code == 401
        assert "<script>" not in form.text
        assert "]]><x/>" not in form.text
        attempts = 2
    events = helpers.events()
    assert [e["reason"] for e in events] == [reason] * attempts
    expected = username.replace("\ud800", "\ufffd")[:256]
    assert events[0]["username"] == expected
    assert events[0]["username_truncated"] is (len(username) > 256)
    raw = helpers.events_file.read_bytes()
    assert raw.isascii()
    assert raw.count(b"\n") == attempts


async def test_overlong_password_fails_without_hashing_it_all(client: httpx.AsyncClient, helpers: Any) -> None:
    long_password = helpers.password + "x" * 2000
    response = await client.post("/login", json={"username": "alice", "password": long_password})
    assert response.status_code == 401
    [event] = helpers.events()
    assert event["reason"] == "bad_password"


async def test_no_password_or_token_in_the_events_file(client: httpx.AsyncClient, helpers: Any) -> None:
    await client.post("/login", json={"username": "alice", "password": "wrong-secret-1"})
    await client.post("/login", json={"username": "nobody", "password": "wrong-secret-2"})
    await helpers.form_login(client, "alice", helpers.password)
    session = client.cookies.get("session")
    csrf = client.cookies.get("csrf")
    assert session
    assert csrf
    await client.post("/logout", json={})
    raw = helpers.events_file.read_text()
    for secret in ("wrong-secret-1", "wrong-secret-2", helpers.password, session, session.split(".")[0], csrf):
        assert secret not in raw
    assert [e["event_type"] for e in helpers.events()] == ["login.failure", "login.failure", "login.success", "logout"]


async def test_request_id_and_user_agent_are_capped_or_dropped(client: httpx.AsyncClient, helpers: Any) -> None:
    await client.post(
        "/login",
        json={"username": "alice", "password": "x"},
        headers={"x-request-id": "r" * 500, "user-agent": "u" * 2000},
    )
    await client.post("/login", json={"username": "alice", "password": "x"}, headers={"x-request-id": "bad\x7fid"})
    first, second = helpers.events()
    assert first["request_id"] == "r" * 128
    assert first["user_agent"] == "u" * 512
    assert second["request_id"] is None
