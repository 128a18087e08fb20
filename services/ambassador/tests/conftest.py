"""Fixtures: a real upstream (uvicorn in a thread, echoing what it received) and real ambassadors
(`python -m ambassador` subprocesses on free ports), talking over real sockets.

The ambassadors start in parallel once per session; each test uses request ids, paths or client
addresses of its own so the tests do not depend on each other's traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import uvicorn
from podkit_testing import wait_for

STREAM_HEAD = 1024 * 1024  # /stream sends this much, then waits for its gate before the rest
DEADLINE = 20.0


async def poll(event: threading.Event, timeout: float) -> None:
    """Waits in the upstream's loop for an event the test thread sets (no executor thread held)."""
    deadline = time.monotonic() + timeout
    while not event.is_set() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


@dataclass
class EchoUpstream:
    """The upstream: answers /echo-like requests with what it received, plus a few fault injections.

    - any path: 200, JSON {method, path, raw_path, query, headers, body_length, body_sha256}, with
      hop-by-hop response headers the ambassador must strip;
    - /slow: waits until the test ends (the ambassador's READ_TIMEOUT fires first: 504);
    - /stream?size=N&key=K: STREAM_HEAD bytes, then waits for gate K, then the rest;
    - /truncated: a response whose connection ends before its Content-Length;
    - /healthz: 200.
    """

    port: int = 0
    stream_head: int = STREAM_HEAD
    paths: list[str] = field(default_factory=list)
    gates: dict[str, threading.Event] = field(default_factory=dict)
    finished: dict[str, threading.Event] = field(default_factory=dict)
    stopping: threading.Event = field(default_factory=threading.Event)

    def gate(self, key: str) -> threading.Event:
        return self.gates.setdefault(key, threading.Event())

    def done(self, key: str) -> threading.Event:
        return self.finished.setdefault(key, threading.Event())

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        self.paths.append(path)
        query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
        if path == "/slow":
            await poll(self.stopping, 60)
            await self._json(send, 200, {"slow": True})
        elif path == "/truncated":
            # Content-Length promises more than is sent; uvicorn then drops the connection.
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100000")]})
            await send({"type": "http.response.body", "body": b"only this"})
        elif path == "/stream":
            await self._stream(send, int(query["size"]), query["key"])
        else:
            digest, length = hashlib.sha256(), 0
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return
                digest.update(message.get("body", b""))
                length += len(message.get("body", b""))
                if not message.get("more_body"):
                    break
            payload = {
                "method": scope["method"],
                "path": path,
                "raw_path": scope["raw_path"].decode("latin-1"),
                "query": scope["query_string"].decode("latin-1"),
                "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
                "body_length": length,
                "body_sha256": digest.hexdigest(),
                "client_port": scope["client"][1],
            }
            extra = [
                (b"connection", b"x-upstream-hop"),
                (b"x-upstream-hop", b"secret"),
                (b"keep-alive", b"timeout=5"),
                (b"proxy-authenticate", b"Basic realm=x"),
                (b"x-upstream-end", b"kept"),
                (b"x-request-id", b"upstream-made-this-up"),
            ]
            await self._json(send, 200, payload, extra)

    async def _stream(self, send: Any, size: int, key: str) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"%d" % size)]})
        chunk = b"x" * 65536
        sent = 0
        while sent < size:
            if sent == self.stream_head:
                await poll(self.gate(key), 30)
            piece = chunk[: min(len(chunk), size - sent)]
            sent += len(piece)
            await send({"type": "http.response.body", "body": piece, "more_body": sent < size})
        self.done(key).set()

    @staticmethod
    async def _json(send: Any, status: int, payload: Any, extra: list[tuple[bytes, bytes]] | None = None) -> None:
        body = json.dumps(payload).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)), *(extra or [])]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="session")
def upstream() -> Iterator[EchoUpstream]:
    echo = EchoUpstream()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    echo.port = sock.getsockname()[1]
    config = uvicorn.Config(echo, http="httptools", lifespan="off", log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=DEADLINE, what="the upstream to start")
    yield echo
    echo.stopping.set()
    for gate in echo.gates.values():
        gate.set()
    server.should_exit = True
    thread.join(10)
    sock.close()


@dataclass
class Ambassador:
    """A running `python -m ambassador`."""

    process: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.log_path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                lines.append(json.loads(line))
        return lines

    def access_entry(self, request_id: str) -> dict[str, Any]:
        """The access-log line of one request (waits for it: lines are flushed once per loop iteration)."""

        def find() -> dict[str, Any] | None:
            for line in self.log_lines():
                if line.get("logger") == "ambassador.access" and line.get("request_id") == request_id:
                    return line
            return None

        entry: dict[str, Any] = wait_for(find, timeout=DEADLINE, what=f"the access log line of {request_id}")
        return entry

    def peak_rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


BASE_ENV = {
    "AMBASSADOR_HOST": "127.0.0.1",
    "AMBASSADOR_PORT": "0",
    # 127.0.0.2 is a trusted proxy: tests connect from it (a second loopback address) to be one.
    "TRUSTED_PROXIES": "127.0.0.2/32",
    "MAX_BODY_BYTES": "65536",
    "MAX_HEADER_BYTES": "4096",
    "READ_TIMEOUT": "0.5",
    "CONNECT_TIMEOUT": "1.0",
    "LOGIN_RATE_PER_MINUTE": "6",
    "LOGIN_BURST": "2",
    "LOGIN_PATHS": "/login",
}


# The transports the ambassador was measured against, which only its benchmark builds (`--serve`).
BENCH_TRANSPORTS = Path(__file__).resolve().parents[1] / "bench" / "transports.py"


def start_ambassador(log_path: Path, env: dict[str, str], transport: str | None = None) -> Ambassador:
    """`python -m ambassador`, or with `transport` the same ambassador on one of the benchmark's transports."""
    log = log_path.open("wb")
    command = [sys.executable, "-m", "ambassador"]
    if transport is not None:
        command = [sys.executable, str(BENCH_TRANSPORTS), "--serve", transport]
    process = subprocess.Popen(
        command,
        env={**os.environ, **BASE_ENV, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    return Ambassador(process, log_path)


def wait_listening(ambassador: Ambassador) -> Ambassador:
    def port() -> int | None:
        assert ambassador.process.poll() is None, ambassador.log_path.read_text()
        for line in ambassador.log_lines():
            if line.get("msg") == "ambassador listening":
                return int(line["port"])
        return None

    ambassador.port = wait_for(port, timeout=DEADLINE, what="the ambassador to listen")
    return ambassador


@pytest.fixture(scope="session")
def refused_port() -> Iterator[int]:
    """A port where nothing listens, held so nobody else takes it: connecting is refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


# What the hostile upstream answers, by request path (a second response glued to the first, for the
# one-response-per-request tests; it would redirect the client and plant a cookie if it were read).
SECOND = b"HTTP/1.1 302 Found\r\nSet-Cookie: session=evil\r\nLocation: /evil\r\nContent-Length: 4\r\n\r\nevil"
HOSTILE_REPLIES = {
    "/ok": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "/http10": b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",  # an older upstream (Via names its version)
    "/extra-after-length": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nSet-Cookie: a=good\r\n\r\nhello" + SECOND,
    "/extra-after-204": b"HTTP/1.1 204 No Content\r\nSet-Cookie: a=good\r\n\r\n" + SECOND,
    "/extra-after-chunked": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a=good\r\n\r\n"
    b"5\r\nhello\r\n0\r\n\r\n" + SECOND,
    "/trailers": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Evil, Set-Cookie\r\n\r\n"
    b"5\r\nhello\r\n0\r\nX-Evil: 1\r\nSet-Cookie: session=evil\r\n\r\n",
    "/huge-head": b"HTTP/1.1 200 OK\r\n"
    + b"".join(b"X-Pad-%d: %b\r\n" % (i, b"p" * 1000) for i in range(1024))
    + b"Content-Length: 2\r\n\r\nok",
    "/early-hints": b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    "/die-mid-body": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial",  # then the connection ends
    "/unknown-length": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n",
}


@dataclass(frozen=True)
class Seen:
    connection: int  # the upstream connection it came on, numbered from 1
    method: str
    path: str
    head: bytes


@dataclass
class HostileUpstream:
    """A raw HTTP/1.1 upstream that misbehaves on purpose (HOSTILE_REPLIES), on asyncio streams in a thread.

    Besides those: /echo-head answers with the request head it got; /close-on-reuse answers the first
    request of a connection and closes a reused connection after reading the request, without a word.
    Every request it read is in `seen`.
    """

    port: int = 0
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0

    def paths(self) -> list[str]:
        return [request.path for request in self.seen]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        connection, served = self.connections, 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, target = head.split(b" ", 2)[:2]
                path = target.decode("latin-1").split("?")[0]
                lowered = head.lower()
                if b"\r\ncontent-length:" in lowered:
                    length = int(lowered.split(b"\r\ncontent-length:")[1].split(b"\r\n")[0])
                    await reader.readexactly(length)
                elif b"\r\ntransfer-encoding: chunked" in lowered:
                    while not (await reader.readuntil(b"\r\n\r\n")).endswith(b"0\r\n\r\n"):
                        pass
                self.seen.append(Seen(connection, method.decode(), path, head))
                served += 1
                if path == "/close-on-reuse" and served > 1:
                    return
                if path == "/echo-head":
                    reply = b"HTTP/1.1 200 OK\r\nVia: 1.1 upstream-cache\r\nContent-Length: %d\r\n\r\n%b" % (
                        len(head),
                        head,
                    )
                else:
                    reply = HOSTILE_REPLIES.get(path, HOSTILE_REPLIES["/ok"])
                writer.write(reply)
                await writer.drain()
                if path in ("/die-mid-body", "/unknown-length"):
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            return
        finally:
            writer.close()


@pytest.fixture(scope="session")
def hostile() -> Iterator[HostileUpstream]:
    upstream = HostileUpstream()
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(upstream.handle, "127.0.0.1", 0, limit=1 << 20))
    upstream.port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield upstream
    loop.call_soon_threadsafe(server.close)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


# The hostile upstream's ambassador: short client timeouts for the slowloris tests.
HOSTILE_ENV = {"CLIENT_HEADER_TIMEOUT": "1", "CLIENT_BODY_TIMEOUT": "1", "READ_TIMEOUT": "5"}


@pytest.fixture(scope="session")
def ambassadors(
    upstream: EchoUpstream, hostile: HostileUpstream, refused_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Ambassador]]:
    """All the ambassadors of the session, started together: the default, one on each transport of the
    transports benchmark, one whose upstream is down, and one in front of the hostile upstream."""
    logs = tmp_path_factory.mktemp("ambassadors")
    up = f"http://127.0.0.1:{upstream.port}"
    started = {
        "hostile": start_ambassador(
            logs / "hostile.log", {"UPSTREAM_URL": f"http://127.0.0.1:{hostile.port}", **HOSTILE_ENV}
        ),
        "httptools": start_ambassador(logs / "httptools.log", {"UPSTREAM_URL": up}),
        "aiohttp": start_ambassador(logs / "aiohttp.log", {"UPSTREAM_URL": up}, "aiohttp"),
        "httpcore": start_ambassador(logs / "httpcore.log", {"UPSTREAM_URL": up}, "httpcore"),
        "down": start_ambassador(logs / "down.log", {"UPSTREAM_URL": f"http://127.0.0.1:{refused_port}"}),
    }
    try:
        for ambassador in started.values():
            wait_listening(ambassador)
        yield started
    finally:
        for ambassador in started.values():
            ambassador.stop()


@pytest.fixture(scope="session")
def ambassador(ambassadors: dict[str, Ambassador]) -> Ambassador:
    """The ambassador as it runs (its own transport, ambassador.httptools_transport)."""
    return ambassadors["httptools"]


@pytest.fixture(params=["httptools", "aiohttp", "httpcore"])
def any_ambassador(request: pytest.FixtureRequest, ambassadors: dict[str, Ambassador]) -> Ambassador:
    """The ambassador, then the same on each transport the transports benchmark compares it with."""
    return ambassadors[request.param]


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Unique names per call (request ids, stream keys)."""
    counter = iter(range(1_000_000))
    return lambda prefix: f"{prefix}-{os.getpid()}-{time.monotonic_ns()}-{next(counter)}"


def raw_request(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Sends raw bytes and returns everything the server sends until it closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = []
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                    break
        return b"".join(chunks)


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


@pytest.fixture
def raw() -> Callable[..., bytes]:
    return raw_request
