"""Pages, headers and probes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from webserver import pages


async def test_login_page_is_a_plain_form_with_security_headers(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert "<script" not in response.text
    assert "style=" not in response.text
    assert "<style" not in response.text
    assert re.search(r'<input type="hidden" name="csrf" value="[^"]+">', response.text)
    csrf_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in csrf_cookie
    assert "samesite=strict" in csrf_cookie
    css = await client.get("/style.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")


def test_pages_escape_what_they_show() -> None:
    html = pages.welcome_page("<b>&\"'", 'tok"><script>')
    assert "<b>" not in html
    assert "&lt;b&gt;&amp;&quot;&#x27;" in html
    assert 'value="tok&quot;&gt;&lt;script&gt;"' in html


async def test_logged_in_visitor_of_the_login_page_goes_to_welcome(client: httpx.AsyncClient, helpers: Any) -> None:
    await client.post("/login", json={"username": "alice", "password": helpers.password})
    response = await client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/welcome"


async def test_probes(make_client: Any, tmp_path: Path) -> None:
    async with make_client() as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        assert (await client.get("/readyz")).json() == {"status": "ready", "detail": "ok"}
    async with make_client(EVENTS_FILE=str(tmp_path / "no-such-dir" / "events.jsonl")) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert "events file not open" in response.json()["detail"]
        assert (await client.post("/login", json={"username": "alice", "password": "x"})).status_code == 503


async def test_metrics(client: httpx.AsyncClient, helpers: Any) -> None:
    await client.post("/login", json={"username": "alice", "password": helpers.password})
    await client.post("/login", json={"username": "alice", "password": "bad"})
    await client.request("BREW", "/")
    text = (await client.get("/metrics")).text
    assert 'loginpod_webserver_login_attempts_total{outcome="success",reason="none"} 1.0' in text
    assert 'loginpod_webserver_login_attempts_total{outcome="failure",reason="bad_password"} 1.0' in text
    assert "loginpod_webserver_login_duration_seconds_count 2.0" in text
    assert "loginpod_webserver_events_written_total 2.0" in text
    assert "loginpod_webserver_event_write_errors_total 0.0" in text
    assert 'loginpod_webserver_http_requests_total{method="POST",status="200"} 1.0' in text
    assert 'loginpod_webserver_http_requests_total{method="other",status="405"} 1.0' in text
    assert "loginpod_webserver_users_loaded 1.0" in text


async def test_no_api_docs_are_exposed(client: httpx.AsyncClient) -> None:
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert (await client.get(path)).status_code == 404
