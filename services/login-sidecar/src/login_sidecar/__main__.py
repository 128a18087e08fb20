"""`python -m login_sidecar`: settings from the environment, JSON logs, then the service until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from podkit import jsonlog
from podkit.config import load_or_exit

from login_sidecar.config import SERVICE, Settings
from login_sidecar.service import Service

log = logging.getLogger("login_sidecar")


async def serve(settings: Settings) -> None:
    service = Service(settings)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, service.request_stop)
    await service.run()


def main() -> None:
    settings = load_or_exit(lambda: Settings.from_env(os.environ))
    jsonlog.configure(SERVICE, settings.log_level)
    try:
        asyncio.run(serve(settings))
    except Exception:
        log.critical("login-sidecar stopped on an error", exc_info=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
