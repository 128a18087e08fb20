"""The ambassador's uvicorn server: the app, its upstream, the HTTP protocol class and the log filter, wired.

`ambassador.protocol` subclasses uvicorn's private httptools protocol and, on import, refuses any uvicorn
but the release it was written for: `python -m ambassador` turns that into one line and exit code 2.
"""

from __future__ import annotations

import logging
import socket

import uvicorn
from podkit import jsonlog
from podkit.sharedstore import SharedStore, StoreCollector

from ambassador.accesslog import AccessLog
from ambassador.app import Ambassador, ResponseAborted
from ambassador.config import Settings
from ambassador.metrics import Metrics
from ambassador.protocol import build_protocol
from ambassador.ratelimit import RateLimiter
from ambassador.sharedlimit import SharedRateLimiter
from ambassador.upstream import Upstream

SERVICE = "ambassador"
# In-flight requests get this long to finish after SIGTERM: within Kubernetes' default 30 s grace period.
SHUTDOWN_GRACE_SECONDS = 25
logger = logging.getLogger(SERVICE)


class AmbassadorServer(uvicorn.Server):
    """uvicorn's server, saying where it listens once it does (AMBASSADOR_PORT=0 picks a free port)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self.servers:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            logger.info("ambassador listening", extra={"host": host, "port": port})


def build_server(settings: Settings, upstream: Upstream | None = None) -> AmbassadorServer:
    """The server for `settings`; `upstream` replaces the one `settings` make (the transports benchmark)."""
    metrics = Metrics()
    limiter: RateLimiter | None = None
    if settings.shared_store is not None:  # REDIS_URL: one bucket per client for all replicas
        store = SharedStore(settings.shared_store, SERVICE)
        metrics.registry.register(StoreCollector(store, "loginpod_ambassador_"))
        limiter = SharedRateLimiter(store, settings.login_rate_per_minute, settings.login_burst)
    app = Ambassador(
        settings,
        upstream if upstream is not None else Upstream(settings),
        metrics,
        AccessLog() if settings.access_log else None,
        limiter,
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        # uvicorn's httptools protocol, plus what a proxy needs from it (see ambassador.protocol)
        http=build_protocol(
            settings.max_header_bytes,
            settings.max_url_bytes,
            settings.client_header_timeout,
            settings.client_body_timeout,
        ),
        loop="uvloop",
        ws="none",
        lifespan="on",
        proxy_headers=False,
        server_header=False,
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        log_config=jsonlog.uvicorn_log_config(SERVICE, settings.log_level),
    )
    # after uvicorn.Config, which configures its loggers
    logging.getLogger("uvicorn.error").addFilter(drop_uvicorn_repeats)
    return AmbassadorServer(config)


def drop_uvicorn_repeats(record: logging.LogRecord) -> bool:
    """Drops uvicorn's repeats of what the ambassador logged already, as one warning with the request id:
    the ERROR with a traceback for a response the upstream aborted (the app's line), and the warning for a
    request its parser rejected (ambassador.protocol's refusal line)."""
    if record.getMessage() == "Invalid HTTP request received.":
        return False
    return not (record.exc_info and isinstance(record.exc_info[1], ResponseAborted))
