# rsyslog as the external logging service of the compose profile `logging` (a stand-in for a SIEM's syslog
# input). Built the air-gapped way like the pod's images: no apt inside the build (a build has no network
# here); rsyslog and rsyslog-relp are already in the base, a Debian root made on the host by debootstrap
# (`make images-peers`: EXTRA_PACKAGES=... ops/base-image.sh loginpod/peers-base:bookworm).
ARG PEERS_BASE_IMAGE=loginpod/peers-base:bookworm
FROM ${PEERS_BASE_IMAGE}
RUN echo "loginpod:x:10001:10001:login pod:/nonexistent:/usr/sbin/nologin" >>/etc/passwd \
    && echo "loginpod:x:10001:" >>/etc/group \
    && mkdir -p /var/log/loginpod-sink /var/lib/loginpod-rsyslog \
    && chown 10001:10001 /var/log/loginpod-sink /var/lib/loginpod-rsyslog
COPY deploy/rsyslog/rsyslog.conf /etc/loginpod/rsyslog.conf
USER 10001:10001
EXPOSE 2514 1514
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python3", "-c", "import socket; socket.create_connection(('127.0.0.1', 2514), 2).close()"]
CMD ["rsyslogd", "-n", "-f", "/etc/loginpod/rsyslog.conf", "-i", "/tmp/rsyslogd.pid"]
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="loginpod-rsyslog" \
      org.opencontainers.image.description="rsyslog with RELP as the login pod's external logging service" \
      org.opencontainers.image.version="${VERSION}"
