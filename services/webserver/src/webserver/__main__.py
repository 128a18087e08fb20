"""`python -m webserver`: settings from the environment, JSON logs, then uvicorn until SIGTERM/SIGINT.

podkit.serve runs the server: a SIGTERM ends in a graceful stop and exit code 0.
"""

from __future__ import annotations

import os

import uvicorn
from podkit import jsonlog
from podkit.config import load_or_exit
from podkit.serve import serve

from webserver.app import create_app
from webserver.config import Settings
from webserver.users import check_users_file

SERVICE = "webserver"


def main() -> None:
    settings = load_or_exit(lambda: Settings.from_env(os.environ))
    load_or_exit(lambda: check_users_file(settings.users_file))
    jsonlog.configure(SERVICE, settings.log_level)
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        http="httptools",
        loop="uvloop",
        lifespan="on",
        proxy_headers=False,
        server_header=False,
        date_header=True,
        access_log=False,
        log_config=jsonlog.uvicorn_log_config(SERVICE, settings.log_level),
        timeout_graceful_shutdown=10,
    )
    serve(uvicorn.Server(config))


if __name__ == "__main__":
    main()
