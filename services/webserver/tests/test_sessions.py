"""CSRF double-submit, sessions, logout and revocation, and the Secure flag behind TLS."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from webserver.sessions import CsrfTokens, RevokedSessions, SessionCodec


async def test_form_login_without_a_matching_csrf_token_is_403(client: httpx.AsyncClient, helpers: Any) -> None:
    token = await helpers.csrf_token(client)
    forged = CsrfTokens(b"another key" * 4).new()
    cases = [
        {"username": "alice", "password": helpers.password},  # no field
        {"username": "alice", "password": helpers.password, "csrf": token + "x"},  # mismatch
    ]
    for data in cases:
        response = await client.post("/login", data=data)
        assert response.status_code == 403
        assert "<form" in response.text
    client.cookies.set("csrf", forged)  # cookie and field equal, but not signed by us
    response = await client.post("/login", data={"username": "alice", "password": helpers.password, "csrf": forged})
    assert response.status_code == 403
    client.cookies.delete("csrf")  # no cookie at all
    response = await client.post("/login", data={"username": "alice", "password": helpers.password, "csrf": token})
    assert response.status_code == 403
    assert "session" not in client.cookies
    events = helpers.events()
    assert [(e["reason"], e["username"]) for e in events] == [("csrf_failed", "alice")] * 4


async def test_csrf_cookie_is_reused_and_rotated_on_login(client: httpx.AsyncClient, helpers: Any) -> None:
    first = await helpers.csrf_token(client)
    assert await helpers.csrf_token(client) == first
    response = await client.post("/login", data={"username": "alice", "password": helpers.password, "csrf": first})
    assert response.status_code == 303
    assert client.cookies.get("csrf") not in (None, first)


async def test_logout_by_form_revokes_the_session(client: httpx.AsyncClient, helpers: Any) -> None:
    assert (await helpers.form_login(client, "alice", helpers.password)).status_code == 303
    stolen = client.cookies.get("session")
    welcome = await client.get("/welcome")
    token = client.cookies.get("csrf")
    assert f'value="{token}"' in welcome.text
    assert 'action="/logout"' in welcome.text
    refused = await client.post("/logout", data={"csrf": "nope"})
    assert refused.status_code == 403
    assert (await client.get("/welcome")).status_code == 200  # a failed logout leaves the session alone
    response = await client.post("/logout", data={"csrf": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    assert "session" not in client.cookies
    client.cookies.set("session", stolen)  # the old token replayed
    redirect = await client.get("/welcome")
    assert redirect.status_code == 303
    assert redirect.headers["location"] == "/"
    again = await client.post("/logout", json={})
    assert again.status_code == 401
    events = helpers.events()
    assert [(e["event_type"], e["outcome"], e["reason"], e["username"]) for e in events] == [
        ("login.success", "success", None, "alice"),
        ("logout", "failure", "csrf_failed", "alice"),
        ("logout", "success", None, "alice"),
        ("logout", "failure", "no_session", None),
    ]
    assert len(helpers.services(client).sessions.revoked) == 1


async def test_logout_by_json(client: httpx.AsyncClient, helpers: Any) -> None:
    await client.post("/login", json={"username": "alice", "password": helpers.password})
    response = await client.post("/logout", headers={"content-type": "application/json"})
    assert (response.status_code, response.json()) == (200, {"status": "logged out"})
    assert (await client.get("/welcome")).status_code == 303
    bad = await client.post("/logout", content=b"x", headers={"content-type": "text/plain"})
    assert bad.status_code == 415
    assert [e["reason"] for e in helpers.events()] == [None, None, "malformed_request"]


async def test_welcome_needs_a_valid_session(client: httpx.AsyncClient, helpers: Any) -> None:
    assert (await client.get("/welcome")).status_code == 303
    codec = SessionCodec(helpers.session_key.encode(), 3600)
    _, good = codec.issue("alice")
    payload, mac = good.split(".")
    for token in (f"{payload}.{mac[:-2]}AA", f"{payload}x.{mac}", "garbage", "a" * 5000):
        client.cookies.set("session", token)
        assert (await client.get("/welcome")).status_code == 303
    _, foreign = SessionCodec(b"x" * 40, 3600).issue("alice")
    client.cookies.set("session", foreign)
    assert (await client.get("/welcome")).status_code == 303
    client.cookies.set("session", good)
    assert (await client.get("/welcome")).status_code == 200


async def test_session_tokens_expire_and_revocations_are_pruned() -> None:
    now = [1000.0]
    revoked = RevokedSessions(clock=lambda: now[0])
    codec = SessionCodec(b"s" * 32, 60, clock=lambda: now[0], revoked=revoked)
    session, token = codec.issue("alice")
    assert await codec.read(token) == session
    await revoked.revoke(session)
    assert await codec.read(token) is None
    now[0] += 61
    other, _other_token = codec.issue("bob")
    assert await codec.read(token) is None  # expired anyway
    await revoked.revoke(other)
    assert len(revoked) == 1  # alice's entry was dropped once her token expired


@pytest.mark.parametrize(
    ("peer", "base_url", "headers", "secure"),
    [
        ("127.0.0.1", "http://testserver", {"x-forwarded-proto": "https"}, True),
        ("127.0.0.1", "https://testserver", {}, True),
        ("10.1.2.3", "http://testserver", {"x-forwarded-proto": "https"}, True),  # in TRUSTED_PROXIES
        ("203.0.113.7", "http://testserver", {"x-forwarded-proto": "https"}, False),  # not trusted
        ("127.0.0.1", "http://testserver", {}, False),
    ],
)
async def test_session_cookie_is_secure_when_the_request_came_over_tls(
    make_client: Any, helpers: Any, peer: str, base_url: str, headers: dict[str, str], secure: bool
) -> None:
    async with make_client(peer=peer, base_url=base_url, TRUSTED_PROXIES="10.0.0.0/8") as client:
        response = await client.post(
            "/login", json={"username": "alice", "password": helpers.password}, headers=headers
        )
    assert response.status_code == 200
    cookies = {c.split("=", 1)[0]: c.lower() for c in response.headers.get_list("set-cookie")}
    assert ("; secure" in cookies["session"]) is secure
    assert ("; secure" in cookies["csrf"]) is secure
