"""Running a uvicorn server until SIGTERM/SIGINT, so that a graceful stop ends the process with exit code 0.

uvicorn installs its own handlers while it serves and, after its graceful shutdown, raises the stop signal
again for the handlers it found (`uvicorn.Server.capture_signals`). With Python's default handlers that
second delivery kills the process by the signal (exit -15 for SIGTERM, a KeyboardInterrupt for SIGINT),
though everything stopped cleanly. `serve` installs handlers that turn every delivery into a request to stop:
the re-raise lands there, and a signal that comes before uvicorn has installed its own (start-up) stops the
server instead of being lost.

It takes the server, not the app: a service passes a `uvicorn.Server` subclass (one that logs where it
listens, say) built on its own `uvicorn.Config` (its protocol class, timeouts, log config). podkit does not
import uvicorn: the sidecar and the adapter images do not carry it.
"""

from __future__ import annotations

import signal
from types import FrameType
from typing import Protocol

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Server(Protocol):
    """What `serve` uses of a `uvicorn.Server`."""

    should_exit: bool

    def run(self) -> None: ...


def serve(server: Server) -> None:
    """Run `server` (its event loop: the config's `loop`) until it stops; from the main thread."""

    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        server.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
