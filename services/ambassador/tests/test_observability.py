"""The access log's lines and the metrics' exposition."""

from __future__ import annotations

import asyncio
import io
import json
import re

from ambassador.accesslog import AccessLog
from ambassador.metrics import Metrics
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families


async def test_access_log_lines_are_json_in_podkit_format() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    log.log("GET", '/a"b\\c\u00e9', 200, 17, 0.0012345, b"rid-1", "203.0.113.9", 200)
    log.log("POST", "/login", 429, 60, 0.0001, b"rid-2", "::1", None)
    assert stream.getvalue() == ""  # gathered, then written together
    deadline = asyncio.get_running_loop().time() + 5
    while not stream.getvalue() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.01)
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["ts"])
    assert {k: first[k] for k in ("level", "logger", "service", "msg")} == {
        "level": "info",
        "logger": "ambassador.access",
        "service": "ambassador",
        "msg": "request",
    }
    assert first["path"] == '/a"b\\c\u00e9'
    assert (first["method"], first["status"], first["bytes"], first["request_id"]) == ("GET", 200, 17, "rid-1")
    assert abs(first["duration_ms"] - 1.2345) <= 0.001
    assert (first["client_ip"], first["upstream_status"]) == ("203.0.113.9", 200)
    assert second["upstream_status"] is None


async def test_access_log_flushes_a_full_buffer_at_once() -> None:
    stream = io.StringIO()
    log = AccessLog(stream)
    lines = 0
    while not stream.getvalue():
        log.log("GET", "/" + "p" * 1000, 200, 0, 0.001, b"rid", "::1", 200)
        lines += 1
        assert lines < 200
    assert len(stream.getvalue().splitlines()) == lines


def test_metrics_exposition() -> None:
    metrics = Metrics(CollectorRegistry())
    metrics.request_done("GET", 200, 0.0004)
    metrics.request_done("GET", 200, 0.003)
    metrics.request_done("BREW", 405, 0.2)
    metrics.upstream_error("timeout")
    metrics.rate_limited += 2
    metrics.in_flight = 3
    families = {family.name: family for family in text_string_to_metric_families(metrics.render().decode())}
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in families.values()
        for sample in family.samples
    }
    assert samples[("loginpod_ambassador_requests_total", (("method", "GET"), ("status", "200")))] == 2
    assert samples[("loginpod_ambassador_requests_total", (("method", "OTHER"), ("status", "405")))] == 1
    assert samples[("loginpod_ambassador_request_duration_seconds_bucket", (("le", "0.0005"),))] == 1
    assert samples[("loginpod_ambassador_request_duration_seconds_bucket", (("le", "0.005"),))] == 2
    assert samples[("loginpod_ambassador_request_duration_seconds_bucket", (("le", "+Inf"),))] == 3
    assert samples[("loginpod_ambassador_request_duration_seconds_count", ())] == 3
    assert samples[("loginpod_ambassador_upstream_errors_total", (("kind", "timeout"),))] == 1
    assert samples[("loginpod_ambassador_rate_limited_total", ())] == 2
    assert samples[("loginpod_ambassador_in_flight_requests", ())] == 3
