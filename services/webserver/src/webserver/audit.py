"""The audit recorder: what a request tells about its client, and one login event appended per attempt.

A route records its event through `AuditRecorder.record`, which says whether the event exists: the login
route refuses (503) an attempt it could not record; the logout route logs out anyway (it takes access away).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from podkit.forwarding import parse_ip
from starlette.requests import Request

from webserver.clientip import ClientIpResolver
from webserver.events import EventType, Reason, build_event, encode_event
from webserver.eventwriter import EventWriteError, EventWriter
from webserver.metrics import Metrics

log = logging.getLogger("webserver")


@dataclass(frozen=True)
class RequestInfo:
    """What the event records about the request, and whether it reached us over TLS."""

    client_ip: str
    user_agent: str | None
    request_id: str | None
    tls: bool


def request_info(request: Request, resolver: ClientIpResolver) -> RequestInfo:
    """The client as the trusted proxies report it; X-Forwarded-Proto only counts from a trusted peer."""
    peer = request.client.host if request.client else None
    peer_address = parse_ip(peer) if peer else None
    peer_trusted = peer_address is not None and resolver.trusted(peer_address)
    forwarded_proto = request.headers.getlist("x-forwarded-proto") if peer_trusted else []
    tls = request.url.scheme == "https" or any(
        part.strip().lower() == "https" for value in forwarded_proto for part in value.split(",")
    )
    return RequestInfo(
        client_ip=resolver.resolve(peer, request.headers.getlist("x-forwarded-for")),
        user_agent=request.headers.get("user-agent"),
        request_id=request.headers.get("x-request-id"),
        tls=tls,
    )


class AuditRecorder:
    """Builds each event (webserver.events), appends it (webserver.eventwriter), counts and logs the outcome."""

    def __init__(self, writer: EventWriter, metrics: Metrics, *, pod: str, events_file: Path) -> None:
        self.writer = writer
        self.metrics = metrics
        self.pod = pod
        self.events_file = events_file

    async def record(
        self, event_type: EventType, reason: Reason | None, username: str | None, info: RequestInfo
    ) -> bool:
        """Append the event; False (after logging and counting) when it could not be written."""
        event = build_event(
            event_type=event_type,
            reason=reason,
            username=username,
            client_ip=info.client_ip,
            user_agent=info.user_agent,
            request_id=info.request_id,
            pod=self.pod,
        )
        try:
            await self.writer.write(encode_event(event))
        except EventWriteError as exc:
            self.metrics.event_write_errors.inc()
            log.error(
                "cannot write the login event, refusing the request; no event exists for it",
                extra={
                    "path": str(self.events_file),
                    "error": str(exc),
                    "event_type": event_type,
                    "request_id": event["request_id"],
                },
            )
            return False
        self.metrics.events_written.inc()
        return True
