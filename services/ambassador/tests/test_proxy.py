"""End to end over real sockets: a client, `python -m ambassador`, and a real upstream that echoes."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import podkit_testing
import pytest

if TYPE_CHECKING:
    from conftest import Ambassador, EchoUpstream

HEX32 = re.compile(r"[0-9a-f]{32}")


def header_values(echo: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in echo["headers"] if key == name]


@pytest.fixture
def client(ambassador: Ambassador) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ambassador.url, timeout=10) as c:
        yield c


@pytest.fixture
def trusted_client(ambassador: Ambassador) -> Iterator[httpx.Client]:
    """A client connecting from 127.0.0.2, which the ambassadors trust as a proxy."""
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=ambassador.url, timeout=10, transport=transport) as c:
        yield c


def metric(ambassador: Ambassador, name: str, **labels: str) -> float:
    """0 for a labelled series not counted yet (the client shows none): these tests compare before and after."""
    return podkit_testing.metric(f"{ambassador.url}/metrics", name, default=0.0, **labels)


def assert_json_error(response: httpx.Response, status: int, request_id: str | None = None) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "request_id"}
    assert body["request_id"] == response.headers["x-request-id"]
    if request_id is not None:
        assert body["request_id"] == request_id
    return body


def test_forwards_method_path_query_and_body(client: httpx.Client) -> None:
    response = client.post("/some/path%2Fx?q=1&r=%20", content=b"hello", headers={"content-type": "text/plain"})
    assert response.status_code == 200
    echo = response.json()
    assert (echo["method"], echo["raw_path"], echo["query"]) == ("POST", "/some/path%2Fx", "q=1&r=%20")
    assert (echo["body_length"], header_values(echo, "content-type")) == (5, ["text/plain"])


def test_host_is_kept_and_forwarded_host_set(client: httpx.Client) -> None:
    echo = client.get("/echo", headers={"host": "pod.example:8000"}).json()
    assert header_values(echo, "host") == ["pod.example:8000"]
    assert header_values(echo, "x-forwarded-host") == ["pod.example:8000"]
    assert header_values(echo, "x-forwarded-proto") == ["http"]


def test_hop_by_hop_headers_are_stripped_both_ways(client: httpx.Client) -> None:
    response = client.get(
        "/echo",
        headers={
            "connection": "keep-alive, x-client-hop",
            "x-client-hop": "secret",
            "keep-alive": "timeout=5",
            "te": "trailers",
            "upgrade": "h2c",
            "proxy-authorization": "Basic eDp5",
            "proxy-connection": "keep-alive",
            "x-client-end": "kept",
        },
    )
    sent = {name for name, _ in response.json()["headers"]}
    assert "x-client-end" in sent
    assert not sent & {"connection", "x-client-hop", "keep-alive", "te", "upgrade", "proxy-authorization"}
    assert not any(name.startswith("proxy-") for name in sent)
    assert response.headers["x-upstream-end"] == "kept"
    for name in ("x-upstream-hop", "keep-alive", "proxy-authenticate"):
        assert name not in response.headers
    assert response.headers.get_list("x-request-id") != ["upstream-made-this-up"]


def test_forwarded_for_is_replaced_for_untrusted_peers(client: httpx.Client) -> None:
    echo = client.get("/echo", headers={"x-forwarded-for": "6.6.6.6", "x-forwarded-proto": "https"}).json()
    assert header_values(echo, "x-forwarded-for") == ["127.0.0.1"]
    assert header_values(echo, "x-forwarded-proto") == ["http"]


def test_forwarded_for_is_appended_for_trusted_peers(trusted_client: httpx.Client) -> None:
    echo = trusted_client.get("/echo", headers={"x-forwarded-for": "203.0.113.9", "x-forwarded-proto": "https"}).json()
    assert header_values(echo, "x-forwarded-for") == ["203.0.113.9, 127.0.0.2"]
    assert header_values(echo, "x-forwarded-proto") == ["https"]


def test_request_id_is_kept_sent_upstream_and_returned(client: httpx.Client, ambassador: Ambassador) -> None:
    response = client.get("/echo", headers={"x-request-id": "trace-abc:123"})
    assert header_values(response.json(), "x-request-id") == ["trace-abc:123"]
    assert response.headers.get_list("x-request-id") == ["trace-abc:123"]
    entry = ambassador.access_entry("trace-abc:123")
    assert (entry["method"], entry["path"], entry["status"], entry["upstream_status"]) == ("GET", "/echo", 200, 200)
    assert entry["client_ip"] == "127.0.0.1"
    assert entry["bytes"] == len(response.content)
    assert entry["duration_ms"] > 0


@pytest.mark.parametrize("incoming", [None, "not valid!", "x" * 129])
def test_request_id_is_generated_otherwise(client: httpx.Client, incoming: str | None) -> None:
    response = client.get("/echo", headers={"x-request-id": incoming} if incoming else {})
    generated = response.headers["x-request-id"]
    assert HEX32.fullmatch(generated)
    assert header_values(response.json(), "x-request-id") == [generated]


def test_body_over_the_limit_by_content_length_is_refused_up_front(ambassador: Ambassador, raw: Any) -> None:
    # Only the head is sent: the answer cannot have waited for the body.
    reply = raw(
        ambassador.port,
        b"POST /echo HTTP/1.1\r\nHost: pod\r\nX-Request-ID: big-cl\r\nContent-Length: 10000000\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 413 ")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower()
    assert json.loads(body) == {"error": "request body too large", "request_id": "big-cl"}


def test_chunked_body_over_the_limit_is_refused_while_streaming(client: httpx.Client, ambassador: Ambassador) -> None:
    before = metric(ambassador, "loginpod_ambassador_requests_total", method="POST", status="413")

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"y" * 16384

    response = client.post("/echo", content=chunks(), headers={"x-request-id": "big-chunked"})
    assert_json_error(response, 413, "big-chunked")
    assert metric(ambassador, "loginpod_ambassador_requests_total", method="POST", status="413") == before + 1


def test_chunked_body_under_the_limit_is_streamed_through(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        for n in range(4):
            yield bytes([65 + n]) * 10000

    echo = client.post("/echo", content=chunks()).json()
    assert echo["body_length"] == 40000
    assert header_values(echo, "transfer-encoding") == ["chunked"]


def test_headers_over_the_limit_get_431(client: httpx.Client) -> None:
    response = client.get("/echo", headers={"x-request-id": "fat-headers", "x-big": "a" * 5000})
    assert_json_error(response, 431, "fat-headers")


def test_huge_heads_are_refused_before_they_are_buffered(ambassador: Ambassador, raw: Any) -> None:
    # MAX_HEADER_BYTES=4096: a 30 KB header, never ended, is refused by the HTTP layer.
    reply = raw(ambassador.port, b"GET /echo HTTP/1.1\r\nHost: pod\r\nX-Huge: " + b"h" * 30_000)
    assert reply.startswith(b"HTTP/1.1 431 ")
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["error"] == "request headers too large"


def test_upstream_too_slow_gets_504(client: httpx.Client, ambassador: Ambassador) -> None:
    before = metric(ambassador, "loginpod_ambassador_upstream_errors_total", kind="timeout")
    response = client.get("/slow", headers={"x-request-id": "too-slow"})
    assert_json_error(response, 504, "too-slow")
    assert metric(ambassador, "loginpod_ambassador_upstream_errors_total", kind="timeout") == before + 1


def test_upstream_failing_mid_body_cuts_the_client_connection(client: httpx.Client, ambassador: Ambassador) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        client.get("/truncated", headers={"x-request-id": "cut-short"})
    entry = ambassador.access_entry("cut-short")
    assert (entry["status"], entry["upstream_status"], entry["bytes"]) == (200, 200, len(b"only this"))
    assert metric(ambassador, "loginpod_ambassador_upstream_errors_total", kind="protocol") >= 1


def test_upstream_down_gets_502_and_not_ready(ambassadors: dict[str, Ambassador]) -> None:
    down = ambassadors["down"]
    response = httpx.get(f"{down.url}/anything", headers={"x-request-id": "no-upstream"}, timeout=10)
    assert_json_error(response, 502, "no-upstream")
    assert metric(down, "loginpod_ambassador_upstream_errors_total", kind="connect") >= 1
    assert_json_error(httpx.get(f"{down.url}/readyz", timeout=10), 503)


def test_probes_are_answered_not_forwarded(
    client: httpx.Client, ambassador: Ambassador, upstream: EchoUpstream
) -> None:
    forwarded_before = upstream.paths.count("/metrics") + upstream.paths.count("/readyz")
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "loginpod_ambassador_requests_total" in metrics.text
    assert "loginpod_ambassador_in_flight_requests" in metrics.text
    assert upstream.paths.count("/metrics") + upstream.paths.count("/readyz") == forwarded_before
    assert_json_error(client.post("/healthz"), 405)


def test_absolute_form_for_another_host_is_refused(ambassador: Ambassador, upstream: EchoUpstream, raw: Any) -> None:
    reply = raw(
        ambassador.port,
        b"GET http://other.example/steal HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-ID: open-proxy\r\n\r\n",
    )
    assert reply.startswith(b"HTTP/1.1 400 ")
    assert json.loads(reply.partition(b"\r\n\r\n")[2])["request_id"] == "open-proxy"
    assert "/steal" not in upstream.paths


def test_absolute_form_for_the_own_host_is_forwarded(ambassador: Ambassador, raw: Any) -> None:
    reply = raw(ambassador.port, b"GET http://pod.example/mine?x=1 HTTP/1.1\r\nHost: pod.example\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 ")
    echo = json.loads(reply.partition(b"\r\n\r\n")[2])
    assert (echo["raw_path"], echo["query"]) == ("/mine", "x=1")


def test_connect_is_refused(ambassador: Ambassador, raw: Any) -> None:
    reply = raw(ambassador.port, b"CONNECT other.example:443 HTTP/1.1\r\nHost: other.example:443\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 405 ")  # with Allow: test_hardening


def test_login_rate_limit_per_client(ambassador: Ambassador, trusted_client: httpx.Client) -> None:
    # LOGIN_BURST=2, 6 per minute: the third attempt of one client within seconds is refused.
    before = metric(ambassador, "loginpod_ambassador_rate_limited_total")

    def login(client_ip: str) -> httpx.Response:
        return trusted_client.post("/login", data={"username": "u"}, headers={"x-forwarded-for": client_ip})

    assert [login("198.51.100.7").status_code for _ in range(2)] == [200, 200]
    refused = login("198.51.100.7")
    body = assert_json_error(refused, 429)
    assert body["error"] == "too many login attempts"
    assert 1 <= int(refused.headers["retry-after"]) <= 10
    assert login("198.51.100.8").status_code == 200  # another client
    assert trusted_client.get("/login").status_code == 200  # only POSTs count
    assert metric(ambassador, "loginpod_ambassador_rate_limited_total") == before + 1


def test_untrusted_clients_cannot_dodge_the_rate_limit_with_forwarded_for(ambassador: Ambassador) -> None:
    transport = httpx.HTTPTransport(local_address="127.0.0.3")
    with httpx.Client(base_url=ambassador.url, timeout=10, transport=transport) as client:
        statuses = [
            client.post("/login", content=b"x", headers={"x-forwarded-for": f"203.0.113.{n}"}).status_code
            for n in range(3)
        ]
    assert statuses == [200, 200, 429]


def test_large_response_is_streamed_not_buffered(
    ambassador: Ambassador, upstream: EchoUpstream, unique: Callable[[str], str]
) -> None:
    key, size = unique("stream"), 20 * 1024 * 1024
    peak_before = ambassador.peak_rss_kib()
    received = 0
    with httpx.stream("GET", f"{ambassador.url}/stream?size={size}&key={key}", timeout=30) as response:
        chunks = response.iter_raw()
        while received < upstream.stream_head:
            received += len(next(chunks))
        # The client has the first megabyte while the upstream still holds back the rest.
        assert not upstream.done(key).is_set()
        upstream.gate(key).set()
        for chunk in chunks:
            received += len(chunk)
    assert received == size
    assert upstream.done(key).is_set()
    assert ambassador.peak_rss_kib() - peak_before < 10 * 1024


def test_access_log_has_one_line_per_request(client: httpx.Client, ambassador: Ambassador) -> None:
    client.get("/logged/path?secret=1", headers={"x-request-id": "log-me"})
    client.get("/healthz", headers={"x-request-id": "log-me-too"})
    entry = ambassador.access_entry("log-me")
    assert entry["path"] == "/logged/path"
    assert ambassador.access_entry("log-me-too")["upstream_status"] is None
    assert sum(1 for line in ambassador.log_lines() if line.get("request_id") == "log-me") == 1


def test_shutdown_on_sigterm_exits_zero(ambassadors: dict[str, Ambassador]) -> None:
    # Last in this module: it stops the upstream-down ambassador, which the tests above used.
    down = ambassadors["down"]
    httpx.get(f"{down.url}/healthz", headers={"x-request-id": "before-stop"}, timeout=10)
    assert down.stop() == 0
    messages = [line.get("msg") for line in down.log_lines()]
    assert "ambassador stopped" in messages
    assert any(line.get("request_id") == "before-stop" for line in down.log_lines())
