"""podkit.shipper against a real local HTTP sink (podkit_testing.SinkServer) that fails on demand."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from podkit.shipper import Delivery, HttpShipper, RetryPolicy, retry_after_seconds
from podkit_testing import Fault, SinkServer, wait_until

BODY = b'{"event_id":"a"}\n{"event_id":"b"}\n'


@dataclass(frozen=True)
class FixedBackoff(RetryPolicy):
    """Backoff without jitter, so the waits can be asserted."""

    def backoff(self, attempt: int) -> float:
        return 0.05


def retry_waits(caplog: pytest.LogCaptureFixture) -> list[float]:
    return [record.retry_in_s for record in caplog.records if hasattr(record, "retry_in_s")]


@pytest.fixture
async def sink() -> AsyncIterator[SinkServer]:
    async with SinkServer() as server:
        yield server


def make_shipper(url: str, retries: list[str] | None = None, **kwargs: object) -> HttpShipper:
    return HttpShipper(
        url,
        content_type="application/x-ndjson",
        policy=FixedBackoff(),
        on_retry=None if retries is None else retries.append,
        **kwargs,  # type: ignore[arg-type]
    )


async def test_delivers_on_2xx_with_the_content_type(sink: SinkServer) -> None:
    shipper = make_shipper(sink.url)
    outcome = await shipper.deliver(BODY)
    await shipper.aclose()
    assert (outcome.delivery, outcome.status, outcome.attempts) == (Delivery.DELIVERED, 200, 1)
    [request] = sink.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-ndjson"
    assert request.body == BODY


async def test_retries_5xx_until_delivered(sink: SinkServer) -> None:
    retries: list[str] = []
    sink.fail_next(Fault(503), Fault(500))
    shipper = make_shipper(sink.url, retries)
    outcome = await shipper.deliver(BODY)
    await shipper.aclose()
    assert (outcome.delivery, outcome.attempts) == (Delivery.DELIVERED, 3)
    assert retries == ["status 503", "status 500"]
    assert [request.body for request in sink.requests] == [BODY] * 3


async def test_429_waits_at_least_retry_after(sink: SinkServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "podkit.shipper")
    sink.fail_next(Fault(429, retry_after="1"))
    shipper = make_shipper(sink.url)
    outcome = await shipper.deliver(BODY)
    await shipper.aclose()
    assert (outcome.delivery, outcome.attempts) == (Delivery.DELIVERED, 2)
    assert retry_waits(caplog) == [1.0]


async def test_retry_after_zero_still_backs_off(sink: SinkServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "podkit.shipper")
    sink.fail_next(Fault(429, retry_after="0"), Fault(503, retry_after="0"))
    shipper = make_shipper(sink.url)
    outcome = await shipper.deliver(BODY)
    await shipper.aclose()
    assert outcome.attempts == 3
    assert retry_waits(caplog) == [0.05, 0.05]


async def test_other_4xx_is_final(sink: SinkServer) -> None:
    retries: list[str] = []
    sink.fail_next(Fault(400))
    shipper = make_shipper(sink.url, retries)
    outcome = await shipper.deliver(BODY)
    await shipper.aclose()
    assert (outcome.delivery, outcome.status, outcome.attempts) == (Delivery.REJECTED, 400, 1)
    assert retries == []


async def test_408_is_retried(sink: SinkServer) -> None:
    sink.fail_next(Fault(408))
    shipper = make_shipper(sink.url)
    outcome = await shipper.deliver(BODY)
    await shipper.aclose()
    assert (outcome.delivery, outcome.attempts) == (Delivery.DELIVERED, 2)


async def test_connection_closed_without_answer_is_retried(sink: SinkServer) -> None:
    retries: list[str] = []
    sink.fail_next(Fault(close=True))
    shipper = make_shipper(sink.url, retries)
    outcome = await shipper.deliver(BODY)
    await shipper.aclose()
    assert (outcome.delivery, outcome.attempts) == (Delivery.DELIVERED, 2)
    assert retries == ["RemoteProtocolError"]


async def test_timeout_is_retried(sink: SinkServer) -> None:
    retries: list[str] = []
    sink.fail_next(Fault(200, delay=1.0))
    shipper = make_shipper(sink.url, retries, timeout=0.2)
    outcome = await shipper.deliver(BODY)
    await shipper.aclose()
    assert outcome.delivery is Delivery.DELIVERED
    assert retries == ["ReadTimeout"]


async def test_sink_down_is_retried_until_cancelled() -> None:
    sink = await SinkServer().start()
    url = sink.url
    await sink.close()  # nothing listens on that port now: connection refused
    retries: list[str] = []
    shipper = make_shipper(url, retries)
    delivery = asyncio.create_task(shipper.deliver(BODY))
    await wait_until(lambda: len(retries) >= 3, what="three retries")
    delivery.cancel()
    with pytest.raises(asyncio.CancelledError):
        await delivery
    await shipper.aclose()
    assert set(retries) == {"ConnectError"}


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("12", 12.0),
        (" 3 ", 3.0),
        ("0", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("1.5", None),
        ("-1", None),
        ("\u00b2", None),  # a digit to str.isdigit(), not to float()
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
    ],
)
def test_retry_after_header(header: str | None, seconds: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert retry_after_seconds(header, now) == seconds


def test_redact_url_drops_credentials_and_query() -> None:
    from podkit.shipper import redact_url

    assert redact_url("https://user:s3cret@logs.example:8443/in?token=abc") == "https://logs.example:8443/in"
    assert redact_url("http://sink/in") == "http://sink/in"


async def test_gives_up_after_max_attempts_and_tells_whether_an_answer_was_lost(sink: SinkServer) -> None:
    shipper = make_shipper(sink.url)
    sink.fail_next(Fault(503), Fault(503))
    undelivered = await shipper.deliver(BODY, max_attempts=2)
    assert (undelivered.delivery, undelivered.attempts, undelivered.possibly_delivered) == (
        Delivery.UNDELIVERED,
        2,
        False,
    )
    sink.fail_next(Fault(close=True), Fault(503))  # the first one read the batch: the sink may hold it
    delivered = await shipper.deliver(BODY, max_attempts=5, extra_headers={"idempotency-key": "k1"})
    await shipper.aclose()
    assert (delivered.delivery, delivered.attempts, delivered.possibly_delivered) == (Delivery.DELIVERED, 3, True)
    assert delivered.resent == 2  # both attempts after the lost answer re-sent the batch
    assert [r.headers["idempotency-key"] for r in sink.requests[-3:]] == ["k1"] * 3


def test_backoff_stays_bounded_after_thousands_of_failed_attempts() -> None:
    """The sidecar carries its failure count across calls for one batch: hours of outage must not overflow it."""
    policy = RetryPolicy(max_backoff=30.0)
    assert all(0 <= policy.backoff(attempt) <= 30.0 for attempt in (0, 10, 1023, 1024, 5000, 10**6))
