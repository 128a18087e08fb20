"""Test support shared by the suites and the benchmarks: polling with a deadline, free ports, a failing sink.

A package of its own (lib/podkit-testing), installed in the development venv by `make install` and never in
an image: the runtime wheel of podkit holds only what the services run.

`SinkServer` stands in for an external log sink: a tiny HTTP/1.1 server on a free port that records every
request and answers 200, or, as a test tells it (fault injection), 503, 429 with Retry-After, 400, a slow
answer, or a connection closed without an answer. `LoginFlood` floods a login endpoint from many loopback
addresses (the overload test and benchmark).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import NoReturn, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families

T = TypeVar("T")

_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 413: "Payload Too Large", 429: "Too Many Requests"}


class WaitTimeout(AssertionError, TimeoutError):
    """A wait ran out: a failed assertion in a test, a TimeoutError to a benchmark that may go on."""


def free_port() -> int:
    """A TCP port nobody listens on right now (never a fixed port: other work shares the machine)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], T], *, timeout: float, interval: float = 0.05, what: str = "condition") -> T:
    """Poll `condition` until it returns something truthy, or raise WaitTimeout after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


REQUIRE_ENV = "LOGINPOD_REQUIRE_CONTAINERS"  # CI's "every engine and real peer must be there"


def skip_or_fail(reason: str) -> NoReturn:
    """Skip on a developer machine that lacks an engine or a peer; fail where CI said they must be tested."""
    import pytest  # only under pytest: the benchmarks import this package too

    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{reason} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(reason)


def metric(url: str, name: str, *, default: float | None = None, **labels: str) -> float:
    """The value of sample `name` at `url` (a /metrics endpoint), summed over the series whose labels include
    `labels`. No such series is an AssertionError (a renamed metric must fail the test), unless `default` is
    given: for a labelled counter that has not counted yet, which Prometheus' client does not show."""
    text = httpx.get(url, timeout=10).text
    values = [
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    ]
    if not values:
        if default is None:
            raise AssertionError(f"no series {name}{labels or ''} at {url}")
        return default
    return float(sum(values))


async def wait_until(
    condition: Callable[[], T | Awaitable[T]], *, within: float = 10.0, interval: float = 0.01, what: str = ""
) -> T:
    """Poll `condition` (sync or async) until it returns something truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what or condition}")
        await asyncio.sleep(interval)


@dataclass(frozen=True)
class Fault:
    """How to answer one request instead of 200: a status (with Retry-After), a delay, or no answer at all."""

    status: int = 503
    retry_after: str | None = None
    close: bool = False  # close the connection after reading the request, without answering
    delay: float = 0.0


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int | None  # what was answered (None: the connection was closed)

    def lines(self) -> list[bytes]:
        return self.body.splitlines()


@dataclass
class SinkServer:
    """`fail_next(...)` queues faults for the next requests; `outage` fails every request while it is set."""

    host: str = "127.0.0.1"
    outage: Fault | None = None
    requests: list[Request] = field(default_factory=list)  # every attempt, in order
    _faults: deque[Fault] = field(default_factory=deque)
    _server: asyncio.Server | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/ingest"

    @property
    def accepted(self) -> list[Request]:
        return [request for request in self.requests if request.status is not None and request.status < 300]

    def accepted_lines(self) -> list[bytes]:
        return [line for request in self.accepted for line in request.lines()]

    def fail_next(self, *faults: Fault) -> None:
        self._faults.extend(faults)

    async def start(self) -> SinkServer:
        self._server = await asyncio.start_server(self._handle, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def __aenter__(self) -> SinkServer:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._answer_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _answer_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        request_line = await reader.readline()
        if not request_line:
            return False
        method, path, _ = request_line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        fault = self._faults.popleft() if self._faults else self.outage
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.close:
            self.requests.append(Request(method, path, headers, body, None))
            return False
        status = 200 if fault is None else fault.status
        self.requests.append(Request(method, path, headers, body, status))
        extra = "" if fault is None or fault.retry_after is None else f"Retry-After: {fault.retry_after}\r\n"
        reason = _REASONS.get(status, "Service Unavailable" if status >= 500 else "Error")
        writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Length: 0\r\n{extra}\r\n".encode())
        await writer.drain()
        return True


@dataclass
class LoginFlood:
    """Failed logins as fast as they are answered, from `clients` clients at once (one request in flight each),
    in a thread of its own: the flood of the overload test and benchmark. Each client connects from a loopback
    address of its own (127.77.x.y) and names itself in X-Forwarded-For with an address of the benchmarking
    range 198.18.0.0/15 (a header value: no traffic goes there), as many clients behind a front proxy the pod
    trusts (the ambassador's TRUSTED_PROXIES=127.0.0.0/8): per-client limits do not stop it.
    `with LoginFlood(url, 64) as flood:` floods until the block ends; each client finishes the request it has
    in flight, so every answer is counted.
    """

    login_url: str
    clients: int
    timeout: float = 30.0
    niceness: int = 0  # added to the flood thread's nice value: on one machine, the pod's CPU comes first
    statuses: dict[int, int] = field(default_factory=dict)  # answers by status; 0: a transport error
    retry_after_missing: int = 0  # 503 answers without Retry-After
    overload_ms: list[float] = field(default_factory=list)  # time to each 503
    _stop: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _started: threading.Event = field(default_factory=threading.Event)

    @staticmethod
    def address(index: int) -> str:
        return f"127.77.{index // 250}.{index % 250 + 1}"

    @staticmethod
    def client_address(index: int) -> str:
        return f"198.18.{index // 250}.{index % 250 + 1}"

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def __enter__(self) -> LoginFlood:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), name="login-flood", daemon=True)
        self._thread.start()
        self._started.wait(timeout=30)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=self.timeout + 10)

    async def _run(self) -> None:
        if self.niceness:
            tid = threading.get_native_id()
            os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + self.niceness)
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        clients = [
            httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=self.address(i)), timeout=self.timeout)
            for i in range(self.clients)
        ]
        self._started.set()
        try:
            await asyncio.gather(*(self._client(i, client) for i, client in enumerate(clients)))
        finally:
            for client in clients:
                await client.aclose()

    async def _client(self, index: int, client: httpx.AsyncClient) -> None:
        assert self._stop is not None
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            body = {"username": f"flood-{index}-{attempt}", "password": "flood-password"}
            started = time.monotonic()
            try:
                response = await client.post(
                    self.login_url, json=body, headers={"x-forwarded-for": self.client_address(index)}
                )
                status = response.status_code
            except httpx.HTTPError:
                status = 0
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status == 503:
                self.overload_ms.append((time.monotonic() - started) * 1000)
                if "retry-after" not in response.headers:
                    self.retry_after_missing += 1
            elif status == 0:
                await asyncio.sleep(0.05)  # the pod is not answering: do not spin
