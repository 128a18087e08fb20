"""`python -m adapter`: read the settings, configure JSON logs, serve until SIGTERM, exit 0."""

from __future__ import annotations

import asyncio
import os

from podkit import jsonlog
from podkit.config import load_or_exit

from adapter.config import Settings
from adapter.service import serve


def main() -> None:
    settings = load_or_exit(lambda: Settings.from_env(os.environ))
    jsonlog.configure("adapter", settings.log_level)
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
