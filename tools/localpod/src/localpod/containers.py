"""The four "containers" of the local pod: what each runs and with which environment.

Mirrors k8s/pod.yaml: the same variables, with the pod's paths mapped into the run directory.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .config import Settings


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    module: str
    env: dict[str, str]
    health_url: str

    @property
    def argv(self) -> list[str]:
        return [sys.executable, "-m", self.module]


def pod_containers(settings: Settings, base_env: dict[str, str] | None = None) -> list[ContainerSpec]:
    """The containers in start order (the webserver first; the ambassador last, as the way in)."""
    inherited = dict(os.environ if base_env is None else base_env)
    common = {"POD_NAME": inherited.get("POD_NAME", "localpod"), "LOG_LEVEL": settings.log_level}
    web_url = f"http://127.0.0.1:{settings.web_port}"

    def env(**values: str | int | Path) -> dict[str, str]:
        return {**inherited, **common, **{key: str(value) for key, value in values.items()}}

    return [
        ContainerSpec(
            "webserver",
            "webserver",
            env(
                WEB_HOST="127.0.0.1",
                WEB_PORT=settings.web_port,
                USERS_FILE=settings.users_file,
                EVENTS_FILE=settings.events_file,
                SIDECAR_TAIL_CHECKPOINT=settings.volume.tail_checkpoint,
                SESSION_KEY_FILE=settings.session_key_file,
            ),
            f"{web_url}/healthz",
        ),
        ContainerSpec(
            "login-sidecar",
            "login_sidecar",
            env(
                SOURCE_FILE=settings.events_file,
                SHARED_DIR=settings.volume.root,
                METRICS_HOST="127.0.0.1",
                METRICS_PORT=settings.sidecar_metrics_port,
            ),
            f"http://127.0.0.1:{settings.sidecar_metrics_port}/healthz",
        ),
        ContainerSpec(
            "adapter",
            "adapter",
            env(
                SHARED_DIR=settings.volume.root,
                METRICS_HOST="127.0.0.1",
                METRICS_PORT=settings.adapter_metrics_port,
            ),
            f"http://127.0.0.1:{settings.adapter_metrics_port}/healthz",
        ),
        ContainerSpec(
            "ambassador",
            "ambassador",
            env(
                AMBASSADOR_HOST=settings.ambassador_host,
                AMBASSADOR_PORT=settings.ambassador_port,
                UPSTREAM_URL=web_url,
            ),
            f"http://127.0.0.1:{settings.ambassador_port}/healthz",
        ),
    ]
