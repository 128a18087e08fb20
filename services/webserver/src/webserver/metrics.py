"""The webserver's Prometheus metrics, in a registry of their own so each app (and test) starts at zero."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

_KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    """Clients choose the method: anything unusual is one label value, so labels cannot grow without bound."""
    return method if method in _KNOWN_METHODS else "other"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self.login_attempts = Counter(
            "loginpod_webserver_login_attempts_total",
            "POST /login attempts by outcome and reason (reason 'none' on success).",
            ["outcome", "reason"],
            registry=self.registry,
        )
        self.login_duration = Histogram(
            "loginpod_webserver_login_duration_seconds",
            "Time to answer POST /login, event write included.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )
        self.logouts = Counter(
            "loginpod_webserver_logouts_total",
            "POST /logout requests by outcome and reason.",
            ["outcome", "reason"],
            registry=self.registry,
        )
        self.events_written = Counter(
            "loginpod_webserver_events_written_total", "Events appended to EVENTS_FILE.", registry=self.registry
        )
        self.event_write_errors = Counter(
            "loginpod_webserver_event_write_errors_total",
            "Events that could not be written (the request was refused).",
            registry=self.registry,
        )
        self.events_file_rotations = Counter(
            "loginpod_webserver_events_file_rotations_total",
            "Rotations of EVENTS_FILE by size.",
            registry=self.registry,
        )
        self.events_unread_deleted = Counter(
            "loginpod_webserver_events_unread_deleted_bytes",
            "Bytes of rotated events files deleted before the sidecar's checkpoint passed them (EVENTS_FILE_KEEP_MAX "
            "reached): at risk, not all lost (a running sidecar finishes the file it holds open); the sidecar's "
            "loginpod_sidecar_events_lost_bytes_total counts what it really missed.",
            registry=self.registry,
        )
        self.http_requests = Counter(
            "loginpod_webserver_http_requests_total",
            "HTTP requests answered, by method and status.",
            ["method", "status"],
            registry=self.registry,
        )
        self.verifies_waiting = Gauge(
            "loginpod_webserver_verifies_waiting",
            "Logins waiting for an argon2 slot (at most ARGON2_MAX_WAITING; past it: 503, reason overloaded).",
            registry=self.registry,
        )
        self.users_loaded = Gauge(
            "loginpod_webserver_users_loaded", "Users in the users file currently in use.", registry=self.registry
        )
        self.users_reload_errors = Counter(
            "loginpod_webserver_users_reload_errors_total",
            "Users files refused (the previous users stayed).",
            registry=self.registry,
        )
        self.sessions_revoked = Gauge(
            "loginpod_webserver_sessions_revoked",
            "Logged-out sessions not yet expired (memory store; with REDIS_URL they are in Redis).",
            registry=self.registry,
        )
