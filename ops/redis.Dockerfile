# Redis as the replicas' shared store in the compose profile `scale` (REDIS_URL=redis://redis:6379/0).
# Built the air-gapped way: redis-server is already in the base, a Debian root made on the host by
# debootstrap (`make images-peers`), so the build needs no network. Data in /data (the volume `redis-data`),
# appended to a file fsynced every second, so revocations and lockouts survive a restart.
ARG PEERS_BASE_IMAGE=loginpod/peers-base:bookworm
FROM ${PEERS_BASE_IMAGE}
RUN echo "loginpod:x:10001:10001:login pod:/nonexistent:/usr/sbin/nologin" >>/etc/passwd \
    && echo "loginpod:x:10001:" >>/etc/group \
    && mkdir -p /data && chown 10001:10001 /data
USER 10001:10001
WORKDIR /data
EXPOSE 6379
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s --start-period=5s --retries=3 CMD ["redis-cli", "ping"]
# No password and protected mode off: reachable only on the compose project's network. In Kubernetes, use
# a Redis with authentication and TLS (k8s/scale-out/redis-example.yaml, README "Several replicas").
CMD ["redis-server", "--bind", "0.0.0.0", "--protected-mode", "no", "--dir", "/data", "--save", "", \
     "--appendonly", "yes", "--appendfsync", "everysec"]
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="loginpod-redis" \
      org.opencontainers.image.description="Redis as the login pod replicas' shared store" \
      org.opencontainers.image.version="${VERSION}"
