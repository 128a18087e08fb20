# The pause-like container of the compose pod: it only owns the network namespace (and publishes the
# port) that the four services join, as Kubernetes' pause container does, so a service's restart never
# leaves the others without a network. It runs the base image's python3: no image of its own to pull.
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}
USER 65535:65535
STOPSIGNAL SIGTERM
# It runs no service: healthy while the process holding the namespace lives. Not `HEALTHCHECK NONE`:
# `docker compose up --wait` fails on a container whose health check is disabled.
HEALTHCHECK --interval=30s --timeout=3s CMD ["python3", "-c", "import os; os.kill(1, 0)"]
CMD ["python3", "-c", "import signal, sys\nfor s in (signal.SIGTERM, signal.SIGINT): signal.signal(s, lambda *_: sys.exit(0))\nwhile True: signal.pause()"]
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="loginpod-pause" \
      org.opencontainers.image.description="Owns the network namespace of the compose pod" \
      org.opencontainers.image.version="${VERSION}"
