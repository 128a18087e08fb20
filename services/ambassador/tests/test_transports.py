"""The same proxying through the ambassador's transport (httptools) and through the two its benchmark
compares it with (aiohttp, httpcore: services/ambassador/bench/transports.py), end to end: the comparison
measures ambassadors that proxy alike."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import httpx

if TYPE_CHECKING:
    from conftest import Ambassador, EchoUpstream


def test_get_with_headers(any_ambassador: Ambassador) -> None:
    response = httpx.get(
        f"{any_ambassador.url}/t/get?a=1",
        headers={"x-request-id": "t-get", "accept-encoding": "identity", "x-custom": "1"},
        timeout=10,
    )
    assert response.status_code == 200
    echo = response.json()
    sent = {name: value for name, value in echo["headers"]}
    assert (echo["method"], echo["raw_path"], echo["query"]) == ("GET", "/t/get", "a=1")
    assert sent["x-custom"] == "1"
    assert sent["x-request-id"] == "t-get"
    assert sent["accept-encoding"] == "identity"
    assert "user-agent" in sent  # the client's own
    assert sent["user-agent"].startswith("python-httpx")
    assert response.headers["x-request-id"] == "t-get"
    assert "x-upstream-hop" not in response.headers


def test_bodies_with_length_and_chunked(any_ambassador: Ambassador) -> None:
    body = bytes(range(256)) * 200
    with httpx.Client(base_url=any_ambassador.url, timeout=10) as client:
        echo = client.put("/t/put", content=body).json()
        assert (echo["method"], echo["body_length"], echo["body_sha256"]) == (
            "PUT",
            len(body),
            hashlib.sha256(body).hexdigest(),
        )

        def chunks() -> Iterator[bytes]:
            yield body[:1000]
            yield body[1000:]

        echo = client.post("/t/chunked", content=chunks()).json()
        assert (echo["body_length"], echo["body_sha256"]) == (len(body), hashlib.sha256(body).hexdigest())
        empty = client.post("/t/empty").json()
        assert empty["body_length"] == 0


def test_head_then_reuse(any_ambassador: Ambassador) -> None:
    with httpx.Client(base_url=any_ambassador.url, timeout=10) as client:
        head = client.head("/t/head")
        assert head.status_code == 200
        assert head.content == b""
        assert int(head.headers["content-length"]) > 0
        assert client.get("/t/after-head").json()["path"] == "/t/after-head"


def test_chunked_body_over_the_limit(any_ambassador: Ambassador) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"z" * 16384

    response = httpx.post(f"{any_ambassador.url}/t/big", content=chunks(), timeout=10)
    assert response.status_code == 413
    assert response.json()["error"] == "request body too large"


def test_slow_upstream_gets_504(any_ambassador: Ambassador) -> None:
    response = httpx.get(f"{any_ambassador.url}/slow", timeout=10)
    assert response.status_code == 504
    assert response.json()["error"] == "upstream timed out"


def test_streaming(any_ambassador: Ambassador, upstream: EchoUpstream, unique: Callable[[str], str]) -> None:
    key, size = unique("t-stream"), 4 * 1024 * 1024
    received = 0
    with httpx.stream("GET", f"{any_ambassador.url}/stream?size={size}&key={key}", timeout=30) as response:
        chunks = response.iter_raw()
        while received < upstream.stream_head:
            received += len(next(chunks))
        assert not upstream.done(key).is_set()
        upstream.gate(key).set()
        received += sum(len(chunk) for chunk in chunks)
    assert received == size
