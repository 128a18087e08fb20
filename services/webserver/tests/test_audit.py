"""The audit recorder: a login whose event cannot be written is refused (503), counted and logged."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
async def test_login_is_refused_with_503_when_the_event_cannot_be_written(
    make_client: Any, helpers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="webserver")
    async with make_client(EVENTS_FILE="/dev/full") as client:
        token = await helpers.csrf_token(client)
        form = await client.post("/login", data={"username": "alice", "password": helpers.password, "csrf": token})
        data = await client.post("/login", json={"username": "alice", "password": helpers.password})
        bad = await client.post("/login", json={"username": "alice", "password": "wrong"})
        assert form.status_code == data.status_code == bad.status_code == 503
        assert "unavailable" in form.text
        assert data.json() == {"error": "login unavailable, try again later"}
        assert "session" not in client.cookies
        assert (await client.get("/welcome")).status_code == 303
        metrics = (await client.get("/metrics")).text
    assert "loginpod_webserver_event_write_errors_total 3.0" in metrics
    assert 'loginpod_webserver_login_attempts_total{outcome="failure",reason="audit_unavailable"} 3.0' in metrics
    assert "loginpod_webserver_events_written_total 0.0" in metrics
    errors = [r for r in caplog.records if "no event exists" in r.getMessage()]
    assert len(errors) == 3
    assert all(r.levelno == logging.ERROR for r in errors)
    assert helpers.password not in caplog.text
