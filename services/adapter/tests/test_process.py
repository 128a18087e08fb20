"""`python -m adapter` as a real process: SIGKILL mid-stream and restart, SIGTERM, and what reaches its logs."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import IO, Any

from lxml import etree
from podkit_testing import wait_for

EVENTS = 6000
PER_WRITE = 40
PER_SEGMENT = 2000


def start(shared: Path, log: IO[bytes]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SHARED_DIR": str(shared),
        "METRICS_HOST": "127.0.0.1",
        "METRICS_PORT": "0",
        "XML_BATCH_MAX_EVENTS": "100",
        "RESCAN_INTERVAL_MS": "100",
        "LOG_LEVEL": "DEBUG",  # the most the logs can say: still no event value
    }
    return subprocess.Popen([sys.executable, "-m", "adapter"], env=env, stdout=log, stderr=subprocess.STDOUT)


class SidecarStandIn(threading.Thread):
    """Appends complete lines in single writes and rotates segments, as the login-sidecar does."""

    def __init__(self, shared: Path, kit: Any, marker: str) -> None:
        super().__init__(daemon=True)
        self.shared, self.kit, self.marker = shared, kit, marker
        self.event_ids: list[str] = []
        self.written = threading.Event()

    def run(self) -> None:
        for start in range(0, EVENTS, PER_WRITE):
            events = [
                self.kit.make_event(username=f"<&>{self.marker}\x01", user_agent=self.marker) for _ in range(PER_WRITE)
            ]
            self.event_ids += [event["event_id"] for event in events]
            data = self.kit.event_lines(events)
            if start == PER_SEGMENT:
                data += f"not json {self.marker}\n".encode()
            self.kit.append_segment(self.shared, 1 + start // PER_SEGMENT, data)
            if len(self.event_ids) % 400 == 0:
                threading.Event().wait(0.02)  # pace the writer so that the kill lands mid-stream
        self.written.set()


def test_sigkill_mid_stream_then_restart_converts_every_event_exactly_once(
    shared: Path, tmp_path: Path, kit: Any, xsd: etree.XMLSchema
) -> None:
    marker = f"MARKER{uuid.uuid4().hex}"
    writer = SidecarStandIn(shared, kit, marker)
    log_path = tmp_path / "adapter.log"
    with open(log_path, "wb") as log:
        first = start(shared, log)
        try:
            writer.start()
            wait_for(lambda: kit.checkpoint(shared) is not None, timeout=20, what="a first checkpoint")
            first.send_signal(signal.SIGKILL)
            assert first.wait(timeout=10) == -signal.SIGKILL
        finally:
            first.kill()
        killed_at = kit.checkpoint(shared)
        writer.join(timeout=30)
        assert writer.written.is_set()
        last = f"events-{(EVENTS - 1) // PER_SEGMENT + 1:08d}.jsonl"
        end = {"version": 1, "segment": last, "offset": (shared / "events" / last).stat().st_size}
        assert killed_at != end, "the kill came after the end: nothing was tested"

        second = start(shared, log)
        try:
            wait_for(lambda: kit.checkpoint(shared) == end, timeout=30, what="the last event converted")
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=15) == 0
        finally:
            second.kill()

    ids = kit.converted_ids(shared, xsd)  # every document well-formed and valid
    assert [i for i, count in collections.Counter(ids).items() if count > 1] == []
    assert sorted(ids) == sorted(writer.event_ids)
    assert [letter["reason"] for letter in kit.dead_letters(shared)] in (
        ["not valid JSON"],
        ["not valid JSON"] * 2,  # at least once: the kill may fall between the dead letter and its checkpoint
    )
    logs = log_path.read_text()
    assert '"msg": "adapter started"' in logs
    assert '"msg": "adapter stopped"' in logs
    assert marker not in logs
