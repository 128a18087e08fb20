"""Syslog sinks' addresses and messages: RFC 5424 messages carrying one event each, RFC 6587 octet counting.

SINK_URL picks the transport:
- `relp://host:port`: RELP (login_sidecar.relp), every message acknowledged by the receiver: at least once;
- `syslog+tls://host:port`: RFC 5425, octet-counted syslog over TLS (default port 6514);
- `syslog+tcp://host:port`: RFC 6587 octet-counted syslog over plain TCP (default port 514).
Plain syslog over TCP or TLS has no acknowledgement: what the receiver had not written when it died is lost
without anyone knowing (RFC 6587 section 3.4.1 discusses it). Prefer RELP where the audit trail matters.

Each event line becomes one RFC 5424 message: PRI authpriv (10) with severity info for a success and notice
for a failure, the event's own timestamp, its pod as HOSTNAME, its service as APP-NAME, its event_type as
MSGID, no structured data, and the event's JSON line, byte for byte, as MSG (receivers deduplicate on its
event_id). Example: `<86>1 2026-12-04T16:00:00.123456Z loginpod-7d9c webserver - login.success - {"event_id":...}`.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from podkit.config import ConfigError

SCHEMES: Final = {"relp": 2514, "syslog+tls": 6514, "syslog+tcp": 514}
HTTP_SCHEMES: Final = ("http", "https")
FACILITY_AUTHPRIV: Final = 10
SEVERITY_INFO: Final = 6
SEVERITY_NOTICE: Final = 5
NIL: Final = b"-"
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")
_NOT_PRINTUSASCII = re.compile(r"[^\x21-\x7e]")


@dataclass(frozen=True)
class SyslogAddress:
    scheme: str  # relp, syslog+tls or syslog+tcp
    host: str
    port: int

    @property
    def tls(self) -> bool:
        return self.scheme == "syslog+tls"

    @property
    def display(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def check_sink_url(name: str, value: str) -> str:
    """SINK_URL: an http(s) URL (NDJSON POSTs) or one of the syslog schemes; ConfigError otherwise."""
    parts = urlsplit(value)
    if parts.scheme in HTTP_SCHEMES and parts.hostname:
        return value
    if parts.scheme in SCHEMES:
        parse_address(name, value)
        return value
    schemes = ", ".join(f"{scheme}://" for scheme in (*HTTP_SCHEMES, *SCHEMES))
    raise ConfigError(name, f"must be a URL with one of {schemes}, got {value!r}")


def parse_address(name: str, value: str) -> SyslogAddress:
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError as exc:
        raise ConfigError(name, f"bad port in {value!r}") from exc
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
        raise ConfigError(name, f"must be {parts.scheme}://HOST:PORT with nothing else, got {value!r}")
    return SyslogAddress(parts.scheme, parts.hostname, port or SCHEMES[parts.scheme])


def _field(value: Any, limit: int) -> bytes:
    """A header field: printable US-ASCII without spaces, at most `limit` characters, or the NILVALUE."""
    if not isinstance(value, str) or not value:
        return NIL
    return _NOT_PRINTUSASCII.sub("_", value)[:limit].encode("ascii")


class MessageFormatter:
    """Event lines to RFC 5424 messages; `hostname` is used for events that name no pod."""

    def __init__(self, hostname: str | None = None) -> None:
        self._hostname = _field(hostname or socket.gethostname(), 255)

    def format(self, line: bytes) -> bytes:
        """One message for one event line (its trailing newline dropped; the JSON itself kept byte for byte)."""
        body = line[:-1] if line.endswith(b"\n") else line
        try:
            event = json.loads(body)
        except ValueError:
            event = None
        if not isinstance(event, dict):
            event = {}
        severity = SEVERITY_INFO if event.get("outcome") == "success" else SEVERITY_NOTICE
        timestamp = event.get("timestamp")
        stamp = timestamp.encode("ascii") if isinstance(timestamp, str) and _RFC3339.fullmatch(timestamp) else NIL
        pod = _field(event.get("pod"), 255)
        app = _field(event.get("service"), 48)
        header = b"<%d>1 %s %s %s - %s - " % (
            FACILITY_AUTHPRIV * 8 + severity,
            stamp,
            self._hostname if pod == NIL else pod,
            b"loginpod" if app == NIL else app,
            _field(event.get("event_type"), 32),
        )
        return header + body


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 section 3.4.1 framing: `MSG-LEN SP SYSLOG-MSG`."""
    return b"%d %s" % (len(message), message)
