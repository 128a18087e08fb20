"""At-least-once delivery of a batch to a sink, with the retry rules of Fluent Bit and Vector.

A batch is retried on connection errors, timeouts, 5xx and 429 (honouring Retry-After) with exponential
backoff and full jitter, for as long as it takes, or until `max_attempts` attempts failed (UNDELIVERED: the
caller tries again, with a smaller batch say): the caller's checkpoint does not move until the batch is
delivered, so nothing is dropped by an outage or a restart. Any other 4xx is final: the sink will never take
that batch, and the caller dead-letters it. `retry` is the loop; `HttpShipper` and the sidecar's syslog sink
each give it one attempt.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit, urlunsplit

import httpx

log = logging.getLogger("podkit.shipper")


class Delivery(enum.Enum):
    DELIVERED = "delivered"
    REJECTED = "rejected"  # a 4xx other than 408/429: final, dead-letter it
    UNDELIVERED = "undelivered"  # `max_attempts` failed: the caller retries (a smaller batch, say)


@dataclass(frozen=True)
class RetryPolicy:
    initial_backoff: float = 0.2
    max_backoff: float = 30.0
    max_retry_after: float = 300.0

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(max, initial * 2**attempt)] (the exponent capped: an outage of
        thousands of attempts must not overflow the float)."""
        ceiling = min(self.max_backoff, self.initial_backoff * (2 ** min(attempt, 64)))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not crypto


@dataclass(frozen=True)
class Outcome:
    delivery: Delivery
    status: int | None
    attempts: int
    possibly_delivered: bool = False  # a failed attempt lost its answer after the request went out
    resent: int = 0  # attempts made after such an attempt: each may be a duplicate at the sink


# The request went out and the answer was lost: the sink may have taken the batch.
_ANSWER_LOST = (httpx.ReadError, httpx.ReadTimeout, httpx.RemoteProtocolError)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # str.isdigit() alone also takes "²", which float() refuses
        return float(value)
    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
    except (TypeError, ValueError, OverflowError):
        return None


def redact_url(url: str) -> str:
    """The URL without user:password and query string, fit for a log line (sink URLs may carry tokens)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query=""))


def is_retryable(status: int) -> bool:
    return status >= 500 or status in (408, 429)


class AttemptFailed(Exception):
    """One attempt failed and is to be retried. `reason` labels the retry metric, `detail` the log line;
    `answer_lost`: the batch went out and may have reached the sink; `retry_after`: what the sink asked for."""

    def __init__(
        self,
        reason: str,
        *,
        detail: str | None = None,
        answer_lost: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail or reason)
        self.reason = reason
        self.detail = detail or reason
        self.answer_lost = answer_lost
        self.status = status
        self.retry_after = retry_after


async def retry(
    attempt: Callable[[], Awaitable[tuple[Delivery, int | None]]],
    *,
    policy: RetryPolicy,
    sink: str,
    on_retry: Callable[[str], None] | None = None,
    max_attempts: int | None = None,
    prior_failures: int = 0,
) -> Outcome:
    """Run `attempt` until it returns (DELIVERED or REJECTED, with a status) or, with `max_attempts`, until that
    many attempts raised AttemptFailed (UNDELIVERED, after the backoff). `prior_failures` continues the backoff
    of an earlier call for the same batch. `sink` names it in the log (redacted)."""
    attempts = 0
    lost_answer = False
    resent = 0
    while True:
        attempts += 1
        resent += lost_answer
        try:
            delivery, status = await attempt()
            return Outcome(delivery, status, attempts, lost_answer, resent)
        except AttemptFailed as failure:
            lost_answer = lost_answer or failure.answer_lost
            wait = policy.backoff(prior_failures + attempts - 1)
            if failure.retry_after is not None:
                # Never sooner than the sink asked, and still backing off when it asks for 0 every time.
                wait = min(max(failure.retry_after, wait), policy.max_retry_after)
            log.warning(
                "sink delivery failed, will retry",
                extra={"sink": sink, "reason": failure.detail, "attempt": attempts, "retry_in_s": round(wait, 3)},
            )
            if on_retry is not None:
                on_retry(failure.reason)
            await asyncio.sleep(wait)
            if max_attempts is not None and attempts >= max_attempts:
                return Outcome(Delivery.UNDELIVERED, failure.status, attempts, lost_answer, resent)


class HttpShipper:
    """POSTs batches to one URL through `retry`: 2xx is DELIVERED, another 4xx than 408/429 REJECTED.

    `on_retry` is called with the reason of each failed attempt (for metrics).
    """

    def __init__(
        self,
        url: str,
        *,
        content_type: str,
        timeout: float = 10.0,
        policy: RetryPolicy = RetryPolicy(),
        headers: dict[str, str] | None = None,
        client: httpx.AsyncClient | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.url = url
        self.display_url = redact_url(url)
        self.policy = policy
        self._headers = {"content-type": content_type, **(headers or {})}
        self._client = client or httpx.AsyncClient(timeout=timeout)
        self._on_retry = on_retry

    async def aclose(self) -> None:
        await self._client.aclose()

    async def deliver(
        self,
        body: bytes,
        *,
        extra_headers: dict[str, str] | None = None,
        max_attempts: int | None = None,
        prior_failures: int = 0,
    ) -> Outcome:
        """Send until the sink takes or refuses the batch, or, with `max_attempts`, until that many attempts
        failed (UNDELIVERED, after the backoff). `prior_failures` continues the backoff of an earlier call."""
        headers = {**self._headers, **(extra_headers or {})}

        async def attempt() -> tuple[Delivery, int | None]:
            try:
                response = await self._client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                raise AttemptFailed(type(exc).__name__, answer_lost=isinstance(exc, _ANSWER_LOST)) from exc
            status = response.status_code
            if 200 <= status < 300:
                return Delivery.DELIVERED, status
            if not is_retryable(status):
                log.warning("sink refused a batch", extra={"sink": self.display_url, "status": status})
                return Delivery.REJECTED, status
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
            raise AttemptFailed(f"status {status}", status=status, retry_after=retry_after)

        return await retry(
            attempt,
            policy=self.policy,
            sink=self.display_url,
            on_retry=self._on_retry,
            max_attempts=max_attempts,
            prior_failures=prior_failures,
        )
