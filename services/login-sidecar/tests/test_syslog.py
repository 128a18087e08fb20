"""The syslog pieces on their own: RFC 5424 headers from events, octet counting, RELP frames and addresses.
(The whole path against a real rsyslogd: tests/syslog_sink/.)"""

from __future__ import annotations

import asyncio
import json

import pytest
from login_sidecar.relp import RelpError, frame, read_frame
from login_sidecar.sinks import SyslogSink
from login_sidecar.syslog import MessageFormatter, check_sink_url, octet_counted, parse_address
from podkit.config import ConfigError
from podkit.shipper import RetryPolicy

EVENT = {
    "event_id": "5f0c7a52-3f7e-4a53-9d59-1c1c3f9b2d10",
    "timestamp": "2026-12-04T16:00:00.123456Z",
    "event_type": "login.failure",
    "outcome": "failure",
    "service": "webserver",
    "pod": "loginpod-7d9c",
}


def test_an_event_becomes_one_rfc5424_message_with_its_json_as_msg() -> None:
    line = json.dumps(EVENT).encode() + b"\n"
    message = MessageFormatter("fallback").format(line)
    assert message == (
        b"<85>1 2026-12-04T16:00:00.123456Z loginpod-7d9c webserver - login.failure - " + line[:-1]
    )  # authpriv.notice for a failure
    success = {**EVENT, "outcome": "success", "event_type": "login.success"}
    assert MessageFormatter().format(json.dumps(success).encode()).startswith(b"<86>1 ")


def test_header_fields_are_made_safe_or_nil() -> None:
    odd = {"timestamp": "yesterday", "pod": "pod with spaces\u00e9", "event_type": "x" * 40, "service": 7}
    message = MessageFormatter("host name").format(json.dumps(odd).encode())
    header = message.split(b" {", 1)[0]
    assert header == b"<85>1 - pod_with_spaces_ loginpod - " + b"x" * 32 + b" -"
    # Not JSON at all (cannot be in events/, but never a crash): NIL fields, the fallback host, the bytes kept.
    assert MessageFormatter("host name").format(b"\xff not json") == b"<85>1 - host_name loginpod - - - \xff not json"


def test_a_batch_is_cut_into_events_at_newlines_only() -> None:
    """A raw CR is JSON whitespace: the event that holds one is still one message, its JSON intact."""
    with_cr = json.dumps(EVENT).replace(", ", ",\r").encode()
    other = json.dumps({**EVENT, "event_id": "other"}).encode()
    sink = SyslogSink(parse_address("SINK_URL", "syslog+tcp://127.0.0.1:514"), timeout=1, policy=RetryPolicy())
    messages = sink.messages(with_cr + b"\n" + other + b"\n")
    assert len(messages) == 2
    assert [json.loads(m.split(b" - ", 2)[2]) for m in messages] == [EVENT, {**EVENT, "event_id": "other"}]


def test_octet_counting_counts_bytes() -> None:
    assert octet_counted("é".encode()) == b"2 \xc3\xa9"


def test_relp_frames_round_trip() -> None:
    assert frame(1, b"open", b"a=b") == b"1 open 3 a=b\n"
    assert frame(7, b"close") == b"7 close 0\n"

    async def parse(data: bytes) -> tuple[int, bytes, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await read_frame(reader)

    assert asyncio.run(parse(b"2 rsp 6 200 OK\n")) == (2, b"rsp", b"200 OK")
    assert asyncio.run(parse(b"0 serverclose 0\n")) == (0, b"serverclose", b"")
    for bad in (b"2 rsp 6 200 OK", b"x rsp 0\n", b"2 rsp 3 200 OK\n", b"2 rsp 99999999999 x\n"):
        with pytest.raises(RelpError):
            asyncio.run(parse(bad))


def test_addresses() -> None:
    assert parse_address("SINK_URL", "relp://logs.example").port == 2514
    assert parse_address("SINK_URL", "syslog+tls://logs.example").port == 6514
    assert parse_address("SINK_URL", "syslog+tcp://[::1]:1514").host == "::1"
    assert check_sink_url("SINK_URL", "https://collector.example/ingest") == "https://collector.example/ingest"
    with pytest.raises(ConfigError):
        check_sink_url("SINK_URL", "udp://logs.example:514")
