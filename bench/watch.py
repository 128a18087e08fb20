"""`python -m bench.watch EVENTS_DIR XML_DIR PREFIX OUT`: when each request id appears in events/ and in xml/.

A separate process that sleeps in inotify until the sidecar appends to a segment or the adapter renames a
document into place, reads what is new, and writes `events|xml REQUEST_ID MONOTONIC_NS` lines to OUT.
CLOCK_MONOTONIC is the same clock in every process, so the load generator's response times compare with
these directly. Polling would add its interval to every figure; inotify adds microseconds.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import select
import signal
import struct
import sys
import time
from pathlib import Path

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
_HEADER = struct.Struct("iIII")
_XML_REQUEST_ID = re.compile(rb"<request_id[^>]*>([^<]*)</request_id>")


class Inotify:
    def __init__(self) -> None:
        self._libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")

    def watch(self, directory: Path, mask: int) -> int:
        wd = int(self._libc.inotify_add_watch(self.fd, os.fsencode(directory), mask))
        if wd < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {directory}")
        return wd

    def read(self) -> list[tuple[int, int, str]]:
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        events, offset = [], 0
        while offset < len(data):
            wd, mask, _cookie, length = _HEADER.unpack_from(data, offset)
            offset += _HEADER.size
            name = data[offset : offset + length].rstrip(b"\0").decode(errors="replace")
            offset += length
            events.append((wd, mask, name))
        return events


class Watcher:
    def __init__(self, events_dir: Path, xml_dir: Path, prefix: str) -> None:
        self.events_dir, self.xml_dir, self.prefix = events_dir, xml_dir, prefix
        self.inotify = Inotify()
        self.events_wd = self.inotify.watch(events_dir, IN_MODIFY | IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO)
        self.xml_wd = self.inotify.watch(xml_dir, IN_MOVED_TO | IN_CLOSE_WRITE)
        self.offsets: dict[str, int] = {}
        self.partial: dict[str, bytes] = {}
        self.documents: set[str] = set()
        # what is already there does not count: only what appears from now on
        for segment in events_dir.glob("events-*.jsonl"):
            self.offsets[segment.name] = segment.stat().st_size
        self.documents.update(path.name for path in xml_dir.glob("*.xml"))

    def step(self, timeout_ms: int) -> list[str]:
        poller = select.poll()
        poller.register(self.inotify.fd, select.POLLIN)
        if not poller.poll(timeout_ms):
            return []
        now = time.monotonic_ns()
        lines: list[str] = []
        for wd, _mask, name in self.inotify.read():
            if wd == self.events_wd and name.startswith("events-") and name.endswith(".jsonl"):
                lines += [f"events {rid} {now}" for rid in self._new_request_ids(name)]
            elif wd == self.xml_wd and self._is_new_document(name):
                self.documents.add(name)
                lines += [f"xml {rid} {now}" for rid in self._document_request_ids(name)]
        return lines

    def _is_new_document(self, name: str) -> bool:
        """A document renamed into place (or closed under its final name), not a temporary file."""
        return name.endswith(".xml") and not name.startswith(".") and name not in self.documents

    def _new_request_ids(self, name: str) -> list[str]:
        path = self.events_dir / name
        offset = self.offsets.get(name, 0)
        try:
            with path.open("rb") as segment:
                segment.seek(offset)
                data = segment.read()
        except FileNotFoundError:
            return []
        self.offsets[name] = offset + len(data)
        data = self.partial.pop(name, b"") + data
        complete, _, rest = data.rpartition(b"\n")
        if rest:
            self.partial[name] = rest
        found = []
        for line in complete.split(b"\n"):
            if self.prefix.encode() not in line:
                continue
            try:
                request_id = json.loads(line).get("request_id")
            except ValueError:
                continue
            if isinstance(request_id, str) and request_id.startswith(self.prefix):
                found.append(request_id)
        return found

    def _document_request_ids(self, name: str) -> list[str]:
        try:
            data = (self.xml_dir / name).read_bytes()
        except FileNotFoundError:
            return []
        prefix = self.prefix.encode()
        return [m.decode() for m in _XML_REQUEST_ID.findall(data) if m.startswith(prefix)]


def main() -> None:
    events_dir, xml_dir, prefix, out = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    watcher = Watcher(events_dir, xml_dir, prefix)
    with out.open("w") as sink:
        sink.write("ready\n")
        sink.flush()
        while not stopping:
            lines = watcher.step(100)
            if lines:
                sink.write("\n".join(lines) + "\n")
                sink.flush()


if __name__ == "__main__":
    main()
