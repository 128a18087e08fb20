"""podkit_testing: the deadline poller and the fault-injecting sink behave as the suites rely on."""

from __future__ import annotations

import httpx
import pytest
from podkit_testing import Fault, SinkServer, wait_until


async def test_wait_until_returns_the_value_or_fails_after_the_deadline() -> None:
    calls: list[int] = []

    def third_time() -> int:
        calls.append(1)
        return len(calls) if len(calls) >= 3 else 0

    assert await wait_until(third_time, interval=0) == 3

    async def never() -> bool:
        return False

    with pytest.raises(AssertionError, match=r"timed out after 0\.05 s waiting for nothing"):
        await wait_until(never, within=0.05, what="nothing")


async def test_sink_answers_as_told_and_records_every_attempt() -> None:
    async with SinkServer() as sink, httpx.AsyncClient() as client:
        sink.fail_next(Fault(429, retry_after="7"), Fault(400))
        first = await client.post(sink.url, content=b"a\n")
        second = await client.post(sink.url, content=b"b\n")
        sink.outage = Fault(503)
        third = await client.post(sink.url, content=b"c\n")
        sink.outage = None
        fourth = await client.post(sink.url, content=b"d\ne\n")
        assert [first.status_code, second.status_code, third.status_code, fourth.status_code] == [429, 400, 503, 200]
        assert first.headers["retry-after"] == "7"
        sink.fail_next(Fault(close=True))
        with pytest.raises(httpx.RemoteProtocolError):
            await client.post(sink.url, content=b"f\n")
    assert [request.status for request in sink.requests] == [429, 400, 503, 200, None]
    assert sink.accepted_lines() == [b"d", b"e"]
