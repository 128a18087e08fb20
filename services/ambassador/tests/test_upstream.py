"""The upstream side in-process: the transport against a real upstream, and what failures mean."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import httpx
import pytest
from ambassador.config import Settings
from ambassador.httptools_transport import HttptoolsTransport
from ambassador.upstream import BROKEN, BUSY, CONNECT_FAILED, TIMED_OUT, Upstream, classify

if TYPE_CHECKING:
    from conftest import EchoUpstream


def make_upstream(port: int, **env: str) -> Upstream:
    return Upstream(Settings.from_env({"UPSTREAM_URL": f"http://127.0.0.1:{port}", **env}))


async def get(upstream: Upstream, target: bytes) -> tuple[httpx.Response, bytes]:
    response = await upstream.send(upstream.request("GET", target, [(b"host", b"test")], None))
    try:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    finally:
        await response.aclose()
    return response, body


async def test_refused_connection_is_connect_failed(refused_port: int) -> None:
    upstream = make_upstream(refused_port)
    try:
        with pytest.raises(httpx.TransportError) as caught:
            await get(upstream, b"/")
        assert classify(caught.value) == CONNECT_FAILED
        assert await upstream.ready() is False
    finally:
        await upstream.aclose()


async def test_read_timeout_is_timed_out(upstream: EchoUpstream) -> None:
    client = make_upstream(upstream.port, READ_TIMEOUT="0.2")
    try:
        with pytest.raises(httpx.TransportError) as caught:
            await get(client, b"/slow")
        assert classify(caught.value) == TIMED_OUT
    finally:
        await client.aclose()


async def test_ready_when_healthz_answers(upstream: EchoUpstream) -> None:
    client = make_upstream(upstream.port)
    try:
        assert await client.ready() is True
    finally:
        await client.aclose()


async def test_a_server_that_hangs_up_is_broken() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    upstream = make_upstream(port)
    try:
        with pytest.raises(httpx.RemoteProtocolError) as caught:
            await get(upstream, b"/")
        assert classify(caught.value) == BROKEN
    finally:
        await upstream.aclose()
        server.close()


async def test_httptools_transport_keeps_connections_alive(upstream: EchoUpstream) -> None:
    client = make_upstream(upstream.port)
    try:
        ports = set()
        for _ in range(5):
            _, body = await get(client, b"/keepalive")
            ports.add(json.loads(body)["client_port"])
        assert len(ports) == 1
        # Concurrent requests need more connections, which are then kept too.
        results = await asyncio.gather(*(get(client, b"/concurrent") for _ in range(4)))
        ports |= {json.loads(body)["client_port"] for _, body in results}
        assert 2 <= len(ports) <= 5
    finally:
        await client.aclose()


async def test_httptools_transport_waits_for_a_free_connection(upstream: EchoUpstream) -> None:
    transport = HttptoolsTransport(httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=4))
    client = Upstream(Settings.from_env({"UPSTREAM_URL": f"http://127.0.0.1:{upstream.port}"}), transport)
    try:
        results = await asyncio.gather(*(get(client, b"/one-at-a-time") for _ in range(3)))
        assert len({json.loads(body)["client_port"] for _, body in results}) == 1
    finally:
        await client.aclose()


async def test_httptools_transport_survives_the_upstream_closing_idle_connections() -> None:
    """A kept-alive connection the upstream closed is not reused (or is retried once if it races)."""
    connections = 0

    async def one_response(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # without "Connection: close": the client only learns from the socket

    server = await asyncio.start_server(one_response, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = make_upstream(port)
    try:
        for _ in range(3):
            response, body = await get(client, b"/")
            assert (response.status_code, body) == (200, b"ok")
        assert connections == 3
    finally:
        await client.aclose()
        server.close()


async def test_httptools_transport_reads_bodies_delimited_by_close() -> None:
    async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
        for _ in range(3):
            writer.write(b"part;")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(until_close, "127.0.0.1", 0)
    client = make_upstream(server.sockets[0].getsockname()[1])
    try:
        _, body = await get(client, b"/")
        assert body == b"part;part;part;"
    finally:
        await client.aclose()
        server.close()


async def test_httptools_transport_pool_timeout_is_busy(upstream: EchoUpstream) -> None:
    transport = HttptoolsTransport(httpx.Limits(max_connections=1, max_keepalive_connections=1, keepalive_expiry=4))
    settings = Settings.from_env(
        {"UPSTREAM_URL": f"http://127.0.0.1:{upstream.port}", "CONNECT_TIMEOUT": "0.2", "READ_TIMEOUT": "1"}
    )
    client = Upstream(settings, transport)
    try:
        slow_seen = upstream.paths.count("/slow")
        holder = asyncio.ensure_future(get(client, b"/slow"))  # holds the only connection until its timeout
        deadline = asyncio.get_running_loop().time() + 10
        while upstream.paths.count("/slow") == slow_seen:
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.01)
        with pytest.raises(httpx.PoolTimeout) as caught:
            await get(client, b"/waits")
        assert classify(caught.value) == BUSY
        with pytest.raises(httpx.ReadTimeout):
            await holder
        _, body = await get(client, b"/after")  # the slot came back
        assert json.loads(body)["path"] == "/after"
    finally:
        await client.aclose()
