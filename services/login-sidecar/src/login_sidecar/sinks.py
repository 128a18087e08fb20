"""The syslog outputs of the sidecar (SINK_URL relp://, syslog+tls://, syslog+tcp://), as a BatchSink.

`SyslogSink.deliver` has the contract of login_sidecar.shipping.BatchSink, like the HTTP sink, so the
shipping loop and its checkpoint, batch-shrinking and duplicate-counting rules are the same for every output:
it returns DELIVERED only once the batch is delivered, UNDELIVERED after `max_attempts` failed attempts (the
loop then sends a smaller batch), and the loop moves ship.json only after DELIVERED. "Delivered" means
acknowledged by the receiver for RELP (`200` for every message), and only "written to the socket" for plain
syslog over TCP or TLS, which has no acknowledgement (see login_sidecar.syslog). A syslog receiver never
refuses a batch for good, so there is no REJECTED here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable

from podkit.shipper import AttemptFailed, Delivery, Outcome, RetryPolicy, retry

from login_sidecar.config import Settings, tls_context
from login_sidecar.metrics import Metrics
from login_sidecar.relp import RelpError, RelpSession
from login_sidecar.syslog import MessageFormatter, SyslogAddress, octet_counted, parse_address

log = logging.getLogger("login_sidecar.sinks")


class SyslogSink:
    """A BatchSink (login_sidecar.shipping) over syslog: NDJSON batches as RFC 5424 messages over RELP, or
    octet-counted over TCP or TLS. Syslog has no place for the batch's key: receivers deduplicate on event_id."""

    def __init__(
        self,
        address: SyslogAddress,
        *,
        timeout: float,
        policy: RetryPolicy,
        tls: ssl.SSLContext | None = None,
        hostname: str | None = None,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        self.address = address
        self.display_url = address.display
        self.policy = policy
        self._timeout = timeout
        self._tls = tls
        self._on_retry = on_retry
        self._formatter = MessageFormatter(hostname)
        self._relp = RelpSession(address.host, address.port, timeout=timeout) if address.scheme == "relp" else None
        self._reader: asyncio.StreamReader | None = None  # plain syslog's connection (read only to see EOF)
        self._writer: asyncio.StreamWriter | None = None

    async def deliver(self, body: bytes, *, key: str, max_attempts: int, prior_failures: int) -> Outcome:
        """Send through podkit.shipper.retry until delivered, or until `max_attempts` attempts failed
        (UNDELIVERED). An attempt that failed after its messages went out (no ack, or a plain connection that
        broke) may have delivered them."""
        messages = self.messages(body)

        async def attempt() -> tuple[Delivery, int | None]:
            try:
                await self._connect()
            except (RelpError, OSError, TimeoutError) as exc:
                raise AttemptFailed(type(exc).__name__, detail=f"{type(exc).__name__}: {exc}") from exc
            try:
                await self._send(messages)
            except (RelpError, OSError, TimeoutError) as exc:
                detail = f"{type(exc).__name__}: {exc}"
                raise AttemptFailed(type(exc).__name__, detail=detail, answer_lost=True) from exc
            return Delivery.DELIVERED, 200 if self._relp is not None else None

        return await retry(
            attempt,
            policy=self.policy,
            sink=self.display_url,
            on_retry=self._on_retry,
            max_attempts=max_attempts,
            prior_failures=prior_failures,
        )

    def messages(self, body: bytes) -> list[bytes]:
        """One syslog message per event line of an NDJSON batch. Only b"\\n" ends an event: a raw \\r is JSON
        whitespace inside one (bytes.splitlines would cut the event there)."""
        return [self._formatter.format(line) for line in body.split(b"\n") if line]

    async def _connect(self) -> None:
        """Opens the session or connection if it is not open: nothing of the batch has left when this fails."""
        if self._relp is not None:
            if not self._relp.is_open:
                await self._relp.open()
            return
        if self._reader is not None and self._reader.at_eof():  # the receiver closed it (a restart): reconnect
            self._close_plain()
        if self._writer is None:
            try:
                self._reader, self._writer = await asyncio.wait_for(
                    asyncio.open_connection(self.address.host, self.address.port, ssl=self._tls), self._timeout
                )
            except BaseException:
                self._close_plain()
                raise

    async def _send(self, messages: list[bytes]) -> None:
        if self._relp is not None:
            await self._relp.send(messages)
            return
        writer = self._writer
        assert writer is not None
        try:
            writer.write(b"".join(octet_counted(message) for message in messages))
            await asyncio.wait_for(writer.drain(), self._timeout)
        except BaseException:
            self._close_plain()
            raise

    def _close_plain(self) -> None:
        if self._writer is not None:
            writer, self._writer, self._reader = self._writer, None, None
            writer.close()

    async def aclose(self) -> None:
        if self._relp is not None:
            await self._relp.close()
        if self._writer is not None:
            writer = self._writer
            self._close_plain()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), self._timeout)


def syslog_sink(settings: Settings, metrics: Metrics) -> SyslogSink | None:
    """The sink for a syslog SINK_URL; None for an http(s) one (login_sidecar.shipping.HttpSink's)."""
    if settings.sink_url is None or settings.sink_url.startswith(("http://", "https://")):
        return None
    address = parse_address("SINK_URL", settings.sink_url)
    if address.scheme != "relp":
        log.warning(
            "syslog over TCP/TLS has no acknowledgements: events in flight when the receiver fails can be lost "
            "unnoticed; use relp:// for at-least-once delivery",
            extra={"sink": address.display},
        )
    return SyslogSink(
        address,
        timeout=settings.sink_timeout,
        policy=RetryPolicy(max_backoff=settings.sink_max_backoff),
        tls=tls_context(settings) if address.tls else None,
        hostname=settings.sink_syslog_hostname,
        on_retry=lambda reason: metrics.ship_retries.labels(reason).inc(),
    )
