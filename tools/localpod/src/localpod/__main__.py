"""`python -m localpod` (`make run`): the pod as four local processes under .run/."""

from __future__ import annotations

import asyncio

from podkit import jsonlog
from podkit.config import load_or_exit

from .config import Settings
from .supervisor import Supervisor


def main() -> None:
    settings = load_or_exit(Settings.from_env)
    jsonlog.configure("localpod", settings.log_level)
    raise SystemExit(asyncio.run(Supervisor(settings).run()))


if __name__ == "__main__":
    main()
