"""nginx as the peer: a plain keep-alive reverse proxy to the same upstream, configured and run by the benchmark.

One worker process, like the ambassador's one process, so both proxies get the same share of the 2 cores;
an access log line per request written in batches (as the ambassador's access log is); HTTP/1.1 with a pool
of idle upstream connections (`keepalive`), the usual production setup.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from bench.system import free_port, nginx_binary, wait_for

# everything up to the http block's own servers (bench/ceiling.py adds a static file server to it)
CONF_HEAD = """
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log {prefix}/access.log combined buffer=64k flush=1s;
  client_body_temp_path {prefix}/tmp/body;
  proxy_temp_path {prefix}/tmp/proxy;
  fastcgi_temp_path {prefix}/tmp/fastcgi;
  uwsgi_temp_path {prefix}/tmp/uwsgi;
  scgi_temp_path {prefix}/tmp/scgi;"""
_CONF = (
    CONF_HEAD
    + """
  upstream web {{
    server 127.0.0.1:{upstream_port};
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://web;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    }}
  }}
}}
"""
)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class NginxProxy:
    """`with NginxProxy(upstream_port) as proxy:` nginx on `proxy.port` until the block ends."""

    conf = _CONF  # the configuration template (bench/ceiling.py has one for a static file server)

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-nginx-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> NginxProxy:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed (bench/setup.sh installs it as root)")
        prefix = Path(self._tmp.name)
        (prefix / "tmp").mkdir()
        conf = prefix / "nginx.conf"
        conf.write_text(self.conf.format(prefix=prefix, upstream_port=self.upstream_port, port=self.port))
        self._process = subprocess.Popen(
            [binary, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for(
                lambda: _listening(self.port) or self._process is None or self._process.poll() is not None,
                timeout=15,
                what="nginx listening",
            )
            if self._process.poll() is not None:
                raise RuntimeError(f"nginx exited: {(prefix / 'error.log').read_text(errors='replace')[-2000:]}")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGQUIT)  # graceful shutdown of master and worker
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._tmp.cleanup()
