"""`python -m ambassador`: the reverse proxy in front of the pod's web server, served by uvicorn.

uvicorn handles SIGTERM/SIGINT: it stops accepting, lets in-flight requests finish, then runs the
lifespan shutdown, where the app closes its upstream connections and flushes the access log.
`podkit.serve` makes that graceful stop end in exit code 0.
"""

from __future__ import annotations

import logging
import os

from podkit import jsonlog
from podkit.config import exit_on_unsupported, load_or_exit
from podkit.serve import serve

from ambassador.config import Settings

logger = logging.getLogger("ambassador")


def main() -> None:
    settings = load_or_exit(lambda: Settings.from_env(os.environ))
    jsonlog.configure("ambassador", settings.log_level)
    with exit_on_unsupported("uvicorn"):
        from ambassador.server import build_server  # imports ambassador.protocol: refuses another uvicorn
    server = build_server(settings)
    logger.info("ambassador starting", extra={"upstream": settings.upstream_url})
    serve(server)  # uvicorn's loop from the config: uvloop
    logger.info("ambassador stopped")


if __name__ == "__main__":
    main()
