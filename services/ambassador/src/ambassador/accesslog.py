"""One JSON line per request on stdout, in podkit.jsonlog's format, at a few microseconds each.

Going through `logging` with `extra=` costs about 46 us per line on our cores (LogRecord, the formatter's
dict, json.dumps); filling a template costs about 3 us. Lines are gathered and written at most FLUSH_SECONDS
after the first of them (or once FLUSH_BYTES are waiting, and at shutdown): one write() for many requests,
not one per request (in a pod, each write wakes the container runtime's log reader).
"""

from __future__ import annotations

import asyncio
import sys
import time
from json.encoder import encode_basestring
from typing import TextIO

FLUSH_SECONDS = 0.05
FLUSH_BYTES = 64 * 1024

_LINE = (
    '{"ts":"%s.%03dZ","level":"info","logger":"ambassador.access","service":"ambassador","msg":"request",'
    '"method":%s,"path":%s,"status":%d,"bytes":%d,"duration_ms":%.3f,"request_id":"%s","client_ip":%s,'
    '"upstream_status":%s}\n'
)


class AccessLog:
    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lines: list[str] = []
        self._size = 0
        self._flush_scheduled = False
        self._second = -1
        self._second_text = ""

    def log(
        self,
        method: str,
        path: str,
        status: int,
        body_bytes: int,
        duration: float,
        request_id: bytes,
        client_ip: str,
        upstream_status: int | None,
    ) -> None:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        line = _LINE % (
            self._second_text,
            int((now - second) * 1000),
            encode_basestring(method),
            encode_basestring(path),
            status,
            body_bytes,
            duration * 1000.0,
            request_id.decode("ascii"),
            encode_basestring(client_ip),
            "null" if upstream_status is None else upstream_status,
        )
        self._lines.append(line)
        self._size += len(line)
        if self._size >= FLUSH_BYTES:
            self.flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._flush_later)

    def _flush_later(self) -> None:
        self._flush_scheduled = False
        self.flush()

    def flush(self) -> None:
        if self._lines:
            stream = self._stream or sys.stdout
            stream.write("".join(self._lines))
            self._lines.clear()
            self._size = 0
            stream.flush()
