"""The audit trail at its edges (issue 9), on the real services in local mode.

- rotation overrun: the sidecar paused (SIGSTOP) while the webserver rotates its small events file many times
  over; with the sidecar's checkpoint read by the webserver nothing is lost, and with the hold capped the loss
  is detected, logged as an ERROR and counted in bytes;
- a partial line appended by another writer does not swallow the next login's event;
- the adapter's /readyz says not ready while its writes fail on a full disk (a real one: a small tmpfs);
- a sink that takes a batch and drops the connection gets it again with the same Idempotency-Key, in ever
  smaller batches, and the duplicates sent are counted;
- a login flood from many addresses gets quick 503s (one `overloaded` event each) and a normal user still
  logs in (behaviour only: the probe latencies and success rates are `make bench` figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import podkit_testing
import pytest
from localpod_runner import LocalPod
from podkit.volume import SIDECAR
from podkit_testing import Fault, LoginFlood, Request, SinkServer
from support import read_events, read_xml_events, wait_for

pytestmark = pytest.mark.e2e

PIPELINE_TIMEOUT = 30.0
ATTEMPTS_WHILE_PAUSED = 60  # about 400 bytes each: some 6 rotations of a 4096-byte file
# Unknown users are verified against the dummy hash: cheap parameters keep the test fast, the events the same.
FAST_ARGON2 = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024"}
SMALL_ROTATION = {"EVENTS_FILE_MAX_BYTES": "4096", "EVENTS_FILE_KEEP": "1"}
# Many attempts from one client: the ambassador's per-client limiter is not under test here.
NO_RATE_LIMIT = {"LOGIN_RATE_PER_MINUTE": "100000", "LOGIN_BURST": "100000"}


def login(pod: LocalPod, client: httpx.Client, username: str) -> str:
    """One answered failed login with a request id of our own; returns the id."""
    request_id = f"edge-{uuid.uuid4().hex}"
    response = client.post(
        f"{pod.url}/login",
        json={"username": username, "password": "edge-pass-0b7e"},
        headers={"x-request-id": request_id},
        timeout=30,
    )
    assert response.status_code == 401, response.text
    return request_id


def metric(pod: LocalPod, port_var: str, name: str) -> float:
    return podkit_testing.metric(f"http://127.0.0.1:{pod.env[port_var]}/metrics", name)


def run_paused_rotation(pod: LocalPod) -> tuple[list[str], list[dict[str, Any]]]:
    """Logins while the sidecar is stopped; returns the request ids answered and, once caught up, events/."""
    pid = pod.pid("login-sidecar")
    assert pid is not None
    sent: list[str] = []
    with httpx.Client() as client:
        first = login(pod, client, "edge-warmup")
        wait_for(
            lambda: any(e["request_id"] == first for e in read_events(pod.volume.events_dir)),
            timeout=PIPELINE_TIMEOUT,
            what="the first event in events/",
        )
        os.kill(pid, signal.SIGSTOP)
        try:
            for i in range(ATTEMPTS_WHILE_PAUSED):
                sent.append(login(pod, client, f"edge-user-{i:03d}"))
        finally:
            os.kill(pid, signal.SIGCONT)
        last = login(pod, client, "edge-last")
    sent.append(last)
    # The event after the pause proves the sidecar caught up with everything that still exists.
    wait_for(
        lambda: any(e["request_id"] == last for e in read_events(pod.volume.events_dir)),
        timeout=PIPELINE_TIMEOUT,
        what="the event sent after the pause in events/",
    )
    return sent, read_events(pod.volume.events_dir)


@pytest.fixture
def small_rotation_pod(tmp_path: Path) -> Iterator[LocalPod]:
    pod = LocalPod(tmp_path / ".run", {**SMALL_ROTATION, **FAST_ARGON2, **NO_RATE_LIMIT})
    pod.start()
    yield pod
    assert pod.stop() == 0, pod.logs()[-4000:]


def test_rotation_overrun_loses_nothing_while_the_sidecar_is_paused(small_rotation_pod: LocalPod) -> None:
    pod = small_rotation_pod
    sent, events = run_paused_rotation(pod)
    seen = {e["request_id"] for e in events}
    missing = [rid for rid in sent if rid not in seen]
    print(f"rotation overrun: {len(sent)} answered, {len(missing)} missing from events/")
    assert not missing, f"{len(missing)} of {len(sent)} answered logins never reached events/"
    assert metric(pod, "WEB_PORT", "loginpod_webserver_events_file_rotations_total") >= 3
    assert metric(pod, "SIDECAR_METRICS_PORT", "loginpod_sidecar_events_lost_bytes_total") == 0


def test_rotation_overrun_past_the_hard_cap_is_detected_logged_and_counted(tmp_path: Path) -> None:
    # EVENTS_FILE_KEEP_MAX = EVENTS_FILE_KEEP: the webserver may keep no unread file beyond the one it keeps.
    pod = LocalPod(tmp_path / ".run", {**SMALL_ROTATION, **FAST_ARGON2, **NO_RATE_LIMIT, "EVENTS_FILE_KEEP_MAX": "1"})
    pod.start()
    try:
        sent, events = run_paused_rotation(pod)
        seen = {e["request_id"] for e in events}
        missing = [rid for rid in sent if rid not in seen]
        print(f"rotation overrun past the cap: {len(sent)} answered, {len(missing)} missing from events/")
        assert missing, "the cap did not force a loss: the test proves nothing"
        ours = [e for e in events if e["request_id"].startswith("edge-")]
        sizes = [len(json.dumps(e, separators=(",", ":"))) + 1 for e in ours]
        lost = metric(pod, "SIDECAR_METRICS_PORT", "loginpod_sidecar_events_lost_bytes_total")
        # every missing event is counted, in bytes (the lines of this test differ only in their ids' digits)
        assert len(missing) * min(sizes) <= lost <= len(missing) * max(sizes)
        assert metric(pod, "WEB_PORT", "loginpod_webserver_events_unread_deleted_bytes_total") >= lost
    finally:
        assert pod.stop() == 0, pod.logs()[-4000:]
    errors = [json.loads(line) for line in pod.logs().splitlines() if '"lost_bytes"' in line]
    assert errors, "no log line reports the loss"
    assert all(e["level"].upper() == "ERROR" for e in errors)
    assert sum(e["lost_bytes"] for e in errors) == lost


def test_a_partial_line_from_another_writer_does_not_swallow_the_next_login(small_rotation_pod: LocalPod) -> None:
    pod = small_rotation_pod
    events_file = pod.run_dir / "webserver" / "events.jsonl"
    with httpx.Client() as client:
        login(pod, client, "edge-before")  # the webserver has written: it knows the file's size
        with events_file.open("ab") as other:  # another writer, cut before its newline
            other.write(b'{"event_id":"not-ours","reason":"cut short')
        after = login(pod, client, "edge-after")
    wait_for(
        lambda: [e for e in read_events(pod.volume.events_dir) if e["request_id"] == after],
        timeout=PIPELINE_TIMEOUT,
        what="the login after the fragment in events/ as a line of its own",
    )
    deadletters = (pod.volume.deadletter(SIDECAR)).read_text()
    assert "cut short" in deadletters  # the fragment stays one bad line, dead-lettered
    assert after not in deadletters


def _readyz(port: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_adapter_is_not_ready_while_its_writes_fail_with_enospc(tmp_path: Path) -> None:
    run_dir = tmp_path / ".run"
    xml_dir = run_dir / "shared" / "xml"
    xml_dir.mkdir(parents=True)
    # A real full disk: xml/ on its own 64 KiB tmpfs (the sidecar's events/ and every checkpoint stay writable).
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(xml_dir)], check=True)
    pod = LocalPod(run_dir, {**FAST_ARGON2, **NO_RATE_LIMIT})
    try:
        pod.start()
        port = pod.env["ADAPTER_METRICS_PORT"]
        with httpx.Client() as client:
            first = login(pod, client, "edge-space-1")
            wait_for(lambda: xml_has(pod, first), timeout=PIPELINE_TIMEOUT, what="the first login's XML")
            assert _readyz(port).status_code == 200
            filler = xml_dir / "filler.bin"
            with filler.open("wb", buffering=0) as fill, contextlib.suppress(OSError):
                while fill.write(b"\0" * 4096):
                    pass
            second = login(pod, client, "edge-space-2")
        not_ready = wait_for(
            lambda: (r := _readyz(port)).status_code == 503 and r, timeout=PIPELINE_TIMEOUT, what="adapter not ready"
        )
        assert "No space left on device" in not_ready.json()["detail"]
        assert not xml_has(pod, second)
        filler.unlink()
        wait_for(lambda: _readyz(port).status_code == 200, timeout=PIPELINE_TIMEOUT, what="adapter ready again")
        wait_for(lambda: xml_has(pod, second), timeout=PIPELINE_TIMEOUT, what="the second login's XML, late")
    finally:
        try:
            code = pod.stop()
        finally:
            subprocess.run(["umount", str(xml_dir)], check=True)
    assert code == 0, pod.logs()[-4000:]


def xml_has(pod: LocalPod, request_id: str) -> bool:
    return any(r.get("request_id") == request_id for r in read_xml_events(pod.volume.xml_dir))


class ThreadedSink:
    """podkit_testing.SinkServer (the fault-injecting sink) on an event loop of its own, for a synchronous test."""

    def __init__(self) -> None:
        self.server = SinkServer()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> SinkServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def request_ids(request: Request) -> list[str]:
    """The request ids of the events in one request to the sink (one per login: an id per event)."""
    return [json.loads(line)["request_id"] for line in request.lines()]


DROPPED_ANSWERS = 5
BATCH_EVENTS = 100


def test_a_sink_that_takes_a_batch_and_drops_the_connection_gets_bounded_duplicates(tmp_path: Path) -> None:
    with ThreadedSink() as sink:
        env = {**FAST_ARGON2, **NO_RATE_LIMIT, "SINK_URL": sink.url, "SINK_FLUSH_INTERVAL_MS": "100"}
        pod = LocalPod(tmp_path / ".run", {**env, "SINK_MAX_BACKOFF": "0.2"})
        pod.start()
        try:
            with httpx.Client() as client:
                warmup = login(pod, client, "edge-sink-warmup")
                wait_for(lambda: sink.accepted, timeout=PIPELINE_TIMEOUT, what="the warm-up batch accepted")
                pid = pod.pid("login-sidecar")
                assert pid is not None
                os.kill(pid, signal.SIGSTOP)  # the logins pile up: one batch of BATCH_EVENTS when it resumes
                try:
                    sent = {login(pod, client, f"edge-sink-{i:03d}") for i in range(BATCH_EVENTS)}
                    # a sink that reads each batch, keeps it, and drops the connection before answering
                    sink.fail_next(*[Fault(close=True)] * DROPPED_ANSWERS)
                finally:
                    os.kill(pid, signal.SIGCONT)
            wait_for(
                lambda: sent <= {e for r in sink.accepted for e in request_ids(r)},
                timeout=60,
                what="every event accepted by the sink",
            )
            duplicates_sent = metric(pod, "SIDECAR_METRICS_PORT", "loginpod_sidecar_ship_duplicates_sent_total")
        finally:
            assert pod.stop() == 0, pod.logs()[-4000:]
        requests = [r for r in sink.requests if warmup.encode() not in r.body]
    received = [e for r in requests for e in request_ids(r)]
    raw_duplicates = len(received) - len(set(received))
    # a receiver that drops a repeated Idempotency-Key whole
    keys: set[str] = set()
    kept: list[str] = []
    for request in requests:
        key = request.headers.get("idempotency-key")
        if key is None or key not in keys:
            kept += request_ids(request)
        if key is not None:
            keys.add(key)
    key_duplicates = len(kept) - len(set(kept))
    print(
        f"sink duplicates: {len(received)} events received for {len(set(received))}, {raw_duplicates} duplicates; "
        f"{key_duplicates} after dropping repeated Idempotency-Keys; metric {duplicates_sent:g}"
    )
    assert set(received) == sent
    # the same bytes always carry the same key, other bytes another one
    by_key: dict[str, set[bytes]] = {}
    for request in requests:
        by_key.setdefault(request.headers["idempotency-key"], set()).add(request.body)
    assert all(len(bodies) == 1 for bodies in by_key.values())
    assert len({body for bodies in by_key.values() for body in bodies}) == len(by_key)
    # repeated failure shrank the batch: fewer events sent again than the whole batch on every retry
    assert min(len(r.lines()) for r in requests) < BATCH_EVENTS
    assert raw_duplicates < DROPPED_ANSWERS * BATCH_EVENTS
    # every event sent again after a lost answer is counted, exactly
    assert duplicates_sent == raw_duplicates
    # the README's bound: one copy per distinct batch an event was in (the batch, then one per halving)
    assert key_duplicates <= BATCH_EVENTS * (DROPPED_ANSWERS // 3)


FLOOD_CLIENTS = 64  # addresses; with the default argon2 cost this offers far more than the hashing capacity


def test_a_login_flood_from_many_addresses_gets_quick_503s_and_a_normal_user_still_logs_in(tmp_path: Path) -> None:
    # The default argon2 parameters: a verify costs what it costs in production. The clients come through a
    # front proxy the pod trusts (LoginFlood); the ambassador's per-client limit is raised out of the way, as
    # more addresses than this test can run would make it.
    pod = LocalPod(tmp_path / ".run", {**NO_RATE_LIMIT, "ARGON2_MAX_WAITING": "8", "TRUSTED_PROXIES": "127.0.0.0/8"})
    pod.start()
    honest: list[int] = []
    try:
        with LoginFlood(f"{pod.url}/login", FLOOD_CLIENTS) as flood:
            wait_for(lambda: flood.statuses.get(503, 0) >= 50, timeout=60, what="the flood refused with 503s")
            with httpx.Client(timeout=30) as client:

                def honest_login() -> bool:
                    response = client.post(f"{pod.url}/login", json={"username": "demo", "password": "demo-password"})
                    honest.append(response.status_code)
                    if response.status_code == 503:
                        assert response.headers["retry-after"] == "1"
                    return response.status_code == 200

                wait_for(honest_login, timeout=60, interval=1.0, what="the normal user logged in during the flood")
                for probe in (f"{pod.url}/healthz", f"http://127.0.0.1:{pod.env['WEB_PORT']}/healthz"):
                    assert client.get(probe).status_code == 200
        flooded = dict(flood.statuses)  # after the block: every request in flight was answered
        print(f"overload: flood answers {flooded}, honest attempts {honest}")
        assert flood.retry_after_missing == 0
        assert set(flooded) <= {401, 503}, flooded  # refused or verified: nothing else
    finally:
        assert pod.stop() == 0, pod.logs()[-4000:]
    # one event per refused attempt, with its reason
    lines = (pod.run_dir / "webserver" / "events.jsonl").read_bytes().splitlines()
    reasons = Counter(json.loads(line)["reason"] for line in lines)
    assert reasons["overloaded"] == flooded[503] + honest.count(503)
    assert reasons["unknown_user"] == flooded.get(401, 0)
