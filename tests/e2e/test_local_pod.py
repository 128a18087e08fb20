"""The login pod end to end in local mode (`make run`): ambassador -> webserver -> sidecar -> adapter -> sink.

Every login attempt, however hostile, must yield exactly one event in events/, exactly one XML record in
xml/ (valid against the XSD) and exactly one record at the external logging service; no password may
reach any file; SIGKILLed sidecars and adapters lose and duplicate nothing.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from localpod_runner import LocalPod
from receiver import Receiver
from support import CONTRACTS, counts, read_events, read_xml_events, wait_for

pytestmark = pytest.mark.e2e

DEMO_USER, DEMO_PASSWORD = "demo", "demo-password"
SCHEMA = json.loads((CONTRACTS / "login-event.schema.json").read_text())
PIPELINE_TIMEOUT = 20.0


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with Receiver() as running:
        yield running


@pytest.fixture(scope="module")
def pod(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> Iterator[LocalPod]:
    run_dir = tmp_path_factory.mktemp("pod") / ".run"
    local = LocalPod(
        run_dir,
        {
            "SINK_URL": receiver.url,
            "SINK_FLUSH_INTERVAL_MS": "100",
            # the stream test sends many attempts from one client: keep the ambassador's limiter out of the way
            "LOGIN_RATE_PER_MINUTE": "100000",
            "LOGIN_BURST": "100000",
        },
    )
    local.start()
    yield local
    code = local.stop()
    assert code == 0, local.logs()[-4000:]


def attempt(pod: LocalPod, body: bytes | dict[str, Any], *, content_type: str = "application/json") -> tuple[str, int]:
    """One POST /login through the ambassador with a request id of our own, to find its event later."""
    request_id = f"e2e-{uuid.uuid4().hex}"
    content = json.dumps(body).encode() if isinstance(body, dict) else body
    response = httpx.post(
        f"{pod.url}/login",
        content=content,
        headers={"content-type": content_type, "x-request-id": request_id, "user-agent": "e2e-test"},
        timeout=30,
    )
    assert response.headers.get("x-request-id") == request_id
    return request_id, response.status_code


def by_request_id(records: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [r for r in records if r.get("request_id") == request_id]


HOSTILE_NAMES = {
    "control": "ev\x00il\x01\x07\x1b[31m\x7f\u0085name",
    "markup": "<script>alert(1)</script> & ]]> <![CDATA[x]]>",
    "long": "x" * 10_000,
}


def test_every_attempt_yields_one_event_one_xml_record_one_shipped_record(pod: LocalPod, receiver: Receiver) -> None:
    cases = {
        "success": ({"username": DEMO_USER, "password": DEMO_PASSWORD}, 200, "login.success", None),
        "bad_password": (
            {"username": DEMO_USER, "password": "wrong-password-7c1e"},
            401,
            "login.failure",
            "bad_password",
        ),
        "unknown_user": (
            {"username": "nobody-e2e", "password": "whatever-pass-3f9a"},
            401,
            "login.failure",
            "unknown_user",
        ),
        "malformed": (b'{"username": "demo", "password": ', 422, "login.failure", "malformed_request"),
    }
    for label, name in HOSTILE_NAMES.items():
        cases[f"hostile_{label}"] = ({"username": name, "password": "hostile-pass-91d2"}, 401, "login.failure", None)

    sent: dict[str, tuple[str, str, str | None]] = {}
    for label, (body, status, event_type, reason) in cases.items():
        request_id, got = attempt(pod, body)
        assert got == status, f"{label}: expected {status}, got {got}"
        sent[label] = (request_id, event_type, reason)

    def all_arrived() -> bool:
        events = read_events(pod.volume.events_dir)
        xml = read_xml_events(pod.volume.xml_dir)
        shipped = receiver.snapshot()
        return all(
            by_request_id(events, rid) and by_request_id(xml, rid) and by_request_id(shipped, rid)
            for rid, _, _ in sent.values()
        )

    wait_for(all_arrived, timeout=PIPELINE_TIMEOUT, what="every attempt in events/, xml/ and at the receiver")
    events = read_events(pod.volume.events_dir)
    xml = read_xml_events(pod.volume.xml_dir)
    shipped = receiver.snapshot()
    for label, (request_id, event_type, reason) in sent.items():
        [event] = by_request_id(events, request_id)
        jsonschema.validate(event, SCHEMA)
        assert event["event_type"] == event_type, label
        if reason is not None:
            assert event["reason"] == reason, label
        assert event["client_ip"] == "127.0.0.1"
        assert event["user_agent"] == "e2e-test"
        [record] = by_request_id(xml, request_id)
        assert record["event_id"] == event["event_id"]
        assert [r["event_id"] for r in by_request_id(shipped, request_id)] == [event["event_id"]]

    hostile = {label: by_request_id(events, sent[f"hostile_{label}"][0])[0] for label in HOSTILE_NAMES}
    assert hostile["markup"]["username"] == HOSTILE_NAMES["markup"]
    assert hostile["long"]["username"] == "x" * 256
    assert hostile["long"]["username_truncated"] is True
    [markup_xml] = by_request_id(xml, sent["hostile_markup"][0])
    assert markup_xml["username"] == HOSTILE_NAMES["markup"]


def test_no_password_reaches_any_file(pod: LocalPod) -> None:
    secrets = [DEMO_PASSWORD, "wrong-password-7c1e", "whatever-pass-3f9a", "hostile-pass-91d2"]
    request_id, status = attempt(pod, {"username": DEMO_USER, "password": DEMO_PASSWORD})
    assert status == 200
    wait_for(
        lambda: by_request_id(read_xml_events(pod.volume.xml_dir), request_id), timeout=PIPELINE_TIMEOUT, what="xml"
    )
    files = [path for path in pod.run_dir.rglob("*") if path.is_file()]
    assert any(path.suffix == ".xml" for path in files)
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret!r} found in {path}"


def test_form_login_reaches_welcome_page(pod: LocalPod) -> None:
    with httpx.Client(base_url=pod.url, timeout=30) as browser:
        page = browser.get("/")
        assert page.status_code == 200
        assert "<form" in page.text
        csrf = browser.cookies.get("csrf")
        assert csrf
        response = browser.post(
            "/login", data={"username": DEMO_USER, "password": DEMO_PASSWORD, "csrf": csrf}, follow_redirects=True
        )
        assert response.status_code == 200
        assert "demo" in response.text
        assert str(response.url).endswith("/welcome")


def test_sigkilled_sidecar_and_adapter_lose_and_duplicate_nothing(pod: LocalPod, receiver: Receiver) -> None:
    attempts = 150
    sent: list[str] = []
    done = threading.Event()

    def stream() -> None:
        for i in range(attempts):
            request_id, status = attempt(pod, {"username": f"stream-user-{i}", "password": "stream-pass-55aa"})
            assert status == 401
            sent.append(request_id)
        done.set()

    worker = threading.Thread(target=stream)
    worker.start()
    for container, after in (("login-sidecar", attempts // 3), ("adapter", 2 * attempts // 3)):
        wait_for(lambda after=after: len(sent) >= after, timeout=120, what=f"{after} attempts sent")
        pid = pod.pid(container)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda c=container, p=pid: pod.pid(c) not in (None, p), timeout=30, what=f"{container} restarted")
    worker.join(timeout=300)
    assert done.is_set()
    assert pod.status()["containers"]["login-sidecar"]["restarts"] >= 1
    assert pod.status()["containers"]["adapter"]["restarts"] >= 1

    def complete() -> bool:
        events = read_events(pod.volume.events_dir)
        xml = read_xml_events(pod.volume.xml_dir, validate=False)
        ids = {r["request_id"] for r in events}, {r["request_id"] for r in xml}
        return all(rid in ids[0] and rid in ids[1] for rid in sent)

    wait_for(complete, timeout=60, what="every streamed attempt in events/ and xml/")
    events = read_events(pod.volume.events_dir)
    xml = read_xml_events(pod.volume.xml_dir)
    assert max(counts(events).values()) == 1, "an event was duplicated in events/"
    assert max(counts(xml).values()) == 1, "an event was duplicated in xml/"
    assert counts(events).keys() == counts(xml).keys()
    assert all(len(by_request_id(events, rid)) == 1 for rid in sent)
    # Shipping is at least once: the receiver may see a retried batch twice, never a missing event nor one
    # that is not in events/. Both on what the receiver holds once everything arrived, not before.
    wait_for(lambda: set(counts(receiver.snapshot())) >= set(counts(events)), timeout=60, what="all shipped")
    assert set(counts(receiver.snapshot())) == set(counts(events))


def test_ctrl_c_stops_the_pod_cleanly_and_flushes(tmp_path: Path) -> None:
    pod = LocalPod(tmp_path / ".run")
    pod.start()
    request_id, status = attempt(pod, {"username": DEMO_USER, "password": DEMO_PASSWORD})
    assert status == 200
    assert pod.stop() == 0, pod.logs()[-4000:]
    assert by_request_id(read_events(pod.volume.events_dir), request_id)
    assert by_request_id(read_xml_events(pod.volume.xml_dir), request_id)
    assert '"pod stopped"' in pod.logs()
