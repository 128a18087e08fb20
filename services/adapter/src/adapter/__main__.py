"""`python -m adapter`: read the settings, configure JSON logs, serve until SIGTERM, exit 0."""

from __future__ import annotations

import asyncio
import os

from podkit import jsonlog
from podkit.config import exit_on_unsupported, load_or_exit

from adapter.config import Settings


def main() -> None:
    settings = load_or_exit(lambda: Settings.from_env(os.environ))
    jsonlog.configure("adapter", settings.log_level)
    with exit_on_unsupported("dicttoxml"):
        from adapter.service import serve  # imports adapter.render, which refuses a dicttoxml it did not patch
    asyncio.run(serve(settings))


if __name__ == "__main__":
    main()
