"""The sidecar shipping to a real rsyslogd (Debian's rsyslog + rsyslog-relp), started by the test (issue 10).

The sidecar runs as a process (`python -m login_sidecar`) tailing a source file the test appends real
webserver events to; rsyslogd writes every message's MSG (the event JSON) to out.log. Counts are printed
(`pytest -s`) for the closing note.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import podkit_testing
import pytest
from peers import Rsyslog
from podkit_testing import free_port, wait_for
from webserver.events import build_event, encode_event


class Sidecar:
    def __init__(self, root: Path, sink_url: str, **env: str) -> None:
        self.source = root / "source" / "events.jsonl"
        self.source.parent.mkdir(parents=True)
        self.shared = root / "shared"
        self.metrics_port = free_port()
        self.log = root / "sidecar.log"
        self.env = {
            **os.environ,
            "SOURCE_FILE": str(self.source),
            "SHARED_DIR": str(self.shared),
            "METRICS_HOST": "127.0.0.1",
            "METRICS_PORT": str(self.metrics_port),
            "SINK_URL": sink_url,
            "SINK_BATCH_MAX_EVENTS": "50",
            "SINK_FLUSH_INTERVAL_MS": "20",
            "SINK_MAX_BACKOFF": "0.5",
            "SINK_TIMEOUT": "2",
            "POD_NAME": "sidecar-test",
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.ids: list[str] = []

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "login_sidecar"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(timeout=20)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def write(self, count: int, outcome_every: int = 3) -> None:
        """Append `count` real events (every third a failure) to the source file, as the webserver would."""
        lines = []
        for n in range(count):
            failed = n % outcome_every == 0
            event = build_event(
                event_type="login.failure" if failed else "login.success",
                reason="bad_password" if failed else None,
                username=f"user{len(self.ids)}",
                client_ip="192.0.2.10",
                user_agent="test",
                request_id=None,
                pod="loginpod-test-1",
            )
            self.ids.append(event["event_id"])
            lines.append(encode_event(event))
        with open(self.source, "ab") as file:
            file.write(b"".join(lines))

    def metric(self, name: str, default: float | None = None) -> float:
        return podkit_testing.metric(f"http://127.0.0.1:{self.metrics_port}/metrics", name, default=default)


def received(rsyslog: Rsyslog) -> Counter[str]:
    return Counter(json.loads(line)["event_id"] for line in rsyslog.lines())


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    server = Rsyslog(tmp_path / "rsyslog")
    server.start()
    yield server
    server.stop()


def test_relp_every_event_arrives_once_after_dedupe_across_kills(tmp_path: Path, rsyslog: Rsyslog) -> None:
    sidecar = Sidecar(tmp_path, f"relp://127.0.0.1:{rsyslog.port}")
    sidecar.start()
    try:
        # 1. rsyslogd SIGKILLed mid-stream, events written while it is down, then started again.
        sidecar.write(2000)
        wait_for(lambda: len(rsyslog.lines()) >= 200, timeout=30, what="the first events at rsyslog")
        rsyslog.kill()
        at_first_kill = len(rsyslog.lines())
        sidecar.write(1000)
        wait_for(lambda: sidecar.metric("loginpod_sidecar_ship_retries_total", 0.0) >= 2, timeout=30, what="retries")
        rsyslog.start()
        # 2. The sidecar SIGKILLed mid-stream (its ship checkpoint moves only on RELP acks), more events, restarted.
        wait_for(lambda: len(rsyslog.lines()) > at_first_kill + 200, timeout=30, what="shipping resumed")
        sidecar.kill()
        at_sidecar_kill = len(rsyslog.lines())
        sidecar.write(1000)
        sidecar.start()
        # 3. rsyslogd SIGKILLed once more while the backlog streams, and started again at once.
        wait_for(lambda: len(rsyslog.lines()) > at_sidecar_kill + 200, timeout=30, what="shipping after restart")
        rsyslog.kill()
        at_second_kill = len(rsyslog.lines())
        rsyslog.start()
        wait_for(lambda: set(received(rsyslog)) >= set(sidecar.ids), timeout=120, what="every event at rsyslog")
        wait_for(lambda: sidecar.metric("loginpod_sidecar_ship_lag_events") == 0, timeout=30, what="lag 0")
        assert sidecar.stop() == 0
    finally:
        if sidecar.process is not None and sidecar.process.poll() is None:
            sidecar.kill()
    counts = received(rsyslog)
    assert set(counts) == set(sidecar.ids)  # nothing lost, nothing foreign
    lines = len(rsyslog.lines())
    duplicates = lines - len(counts)
    print(
        f"\nRELP restart test: {len(sidecar.ids)} events written, {lines} messages received by rsyslog, "
        f"{len(counts)} distinct event_ids (all), {duplicates} duplicates; messages at rsyslog when it was "
        f"killed: {at_first_kill} and {at_second_kill}, when the sidecar was killed: {at_sidecar_kill}"
    )
    # at most the one batch (SINK_BATCH_MAX_EVENTS=50) in flight at each of the three kills: not a resend of more
    assert duplicates <= 3 * 50
    assert max(counts.values()) <= 4


def ship_all(sidecar: Sidecar, rsyslog: Rsyslog, count: int) -> None:
    """Start the sidecar, write `count` events, wait until rsyslog has them all, stop the sidecar (exit 0)."""
    sidecar.start()
    try:
        sidecar.write(count)
        wait_for(lambda: set(received(rsyslog)) >= set(sidecar.ids), timeout=30, what="every event at rsyslog")
        assert sidecar.stop() == 0
    finally:
        if sidecar.process is not None and sidecar.process.poll() is None:
            sidecar.kill()


def test_octet_counted_tcp_rfc5424_as_rsyslog_parses_it(tmp_path: Path, rsyslog: Rsyslog) -> None:
    sidecar = Sidecar(tmp_path, f"syslog+tcp://127.0.0.1:{rsyslog.tcp_port}")
    ship_all(sidecar, rsyslog, 300)
    counts = received(rsyslog)
    assert sorted(counts.values()) == [1] * 300  # no restart here: each exactly once
    events = [json.loads(line) for line in rsyslog.lines()]
    assert [e["event_id"] for e in events] == sidecar.ids  # in order, the JSON intact
    meta = rsyslog.meta.read_text().splitlines()
    assert len(meta) == 300
    for event, header in zip(events, meta, strict=True):
        pri, version, timestamp, hostname, app, procid, msgid, sd = header.split(" ")
        assert int(pri) == 10 * 8 + (6 if event["outcome"] == "success" else 5)  # authpriv.info / .notice
        assert version == "1"
        assert timestamp[:19] == event["timestamp"][:19]
        assert (hostname, app, procid, msgid, sd) == ("loginpod-test-1", "webserver", "-", event["event_type"], "-")


def test_syslog_over_tls_to_rsyslog(tmp_path: Path) -> None:
    rsyslog = Rsyslog(tmp_path / "rsyslog", tls=True)
    rsyslog.start()
    assert rsyslog.certificate is not None
    sidecar = Sidecar(tmp_path, f"syslog+tls://127.0.0.1:{rsyslog.tcp_port}", SINK_TLS_CA_FILE=str(rsyslog.certificate))
    try:
        ship_all(sidecar, rsyslog, 200)
    finally:
        rsyslog.stop()
    assert [json.loads(line)["event_id"] for line in rsyslog.lines()] == sidecar.ids


def test_syslog_over_tls_refuses_a_receiver_it_cannot_verify(tmp_path: Path) -> None:
    rsyslog = Rsyslog(tmp_path / "rsyslog", tls=True)
    rsyslog.start()
    sidecar = Sidecar(tmp_path, f"syslog+tls://127.0.0.1:{rsyslog.tcp_port}")  # no SINK_TLS_CA_FILE
    sidecar.start()
    try:
        sidecar.write(10)
        wait_for(lambda: "CERTIFICATE_VERIFY_FAILED" in sidecar.log.read_text(), timeout=30, what="a TLS failure")
        assert rsyslog.lines() == []  # nothing sent in clear or to an unverified receiver
        assert sidecar.metric("loginpod_sidecar_ship_lag_events") == 10  # kept, to be retried
    finally:
        sidecar.kill()
        rsyslog.stop()
