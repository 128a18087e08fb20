"""Real peers the tests start themselves on free loopback ports: redis-server and rsyslogd (imrelp, imtcp).

Both come from Debian (ops/ci-peers.sh installs them as root in `make test`). Each runs in the foreground as
a child of the test, with its files in the test's temporary directory, and can be killed (SIGKILL) and
started again on the same port mid-test.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from pathlib import Path

from podkit_testing import free_port, skip_or_fail, wait_for


def need(program: str) -> str:
    """The program's path; skip (or fail, in CI) when it is not installed."""
    path = shutil.which(program) or shutil.which(program, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        skip_or_fail(f"{program} is not installed (as root, `make test` installs it with ops/ci-peers.sh)")
    return path


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class Peer:
    """A foreground server process: `start`, `kill` (SIGKILL), `stop` (SIGTERM), `restart`."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / "server.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        wait_for(self._up, timeout=20, what=f"{type(self).__name__} on port {self.port}")

    def _up(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"{type(self).__name__} exited: {self.log.read_text(errors='replace')[-2000:]}")
        return _listening(self.port)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(timeout=20)
        self.process = None
        wait_for(lambda: not _listening(self.port), timeout=10, what=f"port {self.port} closed")

    def restart(self) -> None:
        self.kill()
        self.start()


class RedisServer(Peer):
    """A throwaway redis-server; `persistent` keeps its data in an fsynced append-only file across restarts."""

    def __init__(self, workdir: Path, *, persistent: bool = True, password: str | None = None) -> None:
        super().__init__(workdir)
        self.persistent = persistent
        self.password = password

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        command = [need("redis-server"), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--dir", str(self.workdir), "--protected-mode", "yes"]
        if self.password is not None:
            command += ["--requirepass", self.password]
        if self.persistent:
            command += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            command += ["--appendonly", "no"]
        return command


RSYSLOG_CONF = """\
global(workDirectory="{workdir}" maxMessageSize="64k"{tls_global})
module(load="imrelp")
module(load="imtcp"{tls_module})
input(type="imrelp" port="{relp_port}" address="127.0.0.1")
input(type="imtcp" port="{tcp_port}" address="127.0.0.1")
main_queue(queue.type="Direct")
template(name="raw" type="string" string="%msg%\\n")
template(name="meta" type="list") {{
  property(name="pri") constant(value=" ") property(name="protocol-version") constant(value=" ")
  property(name="timereported" dateFormat="rfc3339") constant(value=" ") property(name="hostname")
  constant(value=" ") property(name="app-name") constant(value=" ") property(name="procid") constant(value=" ")
  property(name="msgid") constant(value=" ") property(name="structured-data") constant(value="\\n")
}}
*.* action(type="omfile" file="{workdir}/out.log" template="raw" flushOnTXEnd="on" asyncWriting="off")
*.* action(type="omfile" file="{workdir}/meta.log" template="meta" flushOnTXEnd="on" asyncWriting="off")
"""


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost (its own CA) and its key, made with openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [need("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


class Rsyslog(Peer):
    """rsyslogd in the foreground with a config of the test's own: RELP on `port`, TCP on `tcp_port`.

    With `tls`, the TCP input speaks syslog over TLS (RFC 5425, rsyslog's gnutls driver) with a self-signed
    certificate, `self.certificate`, which is also the CA a client must trust.

    Every message's MSG part goes to `out.log`, one per line, and its header fields as rsyslog parsed them to
    `meta.log`. The main queue is "Direct": a message is
    written to the file before imrelp acknowledges it, so a SIGKILL loses nothing that was acknowledged.
    """

    def __init__(self, workdir: Path, *, tls: bool = False) -> None:
        super().__init__(workdir)
        self.tcp_port = free_port()
        self.out = workdir / "out.log"
        self.meta = workdir / "meta.log"
        self.config = workdir / "rsyslog.conf"
        self.certificate: Path | None = None
        tls_global = tls_module = ""
        if tls:
            self.certificate, key = self_signed_certificate(workdir)
            tls_global = (
                f' defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile="{self.certificate}"'
                f' defaultNetstreamDriverCertFile="{self.certificate}" defaultNetstreamDriverKeyFile="{key}"'
            )
            tls_module = ' streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon"'
        self.config.write_text(
            RSYSLOG_CONF.format(
                relp_port=self.port,
                tcp_port=self.tcp_port,
                workdir=workdir,
                tls_global=tls_global,
                tls_module=tls_module,
            )
        )

    def command(self) -> list[str]:
        pid = self.workdir / "rsyslogd.pid"
        pid.unlink(missing_ok=True)
        return [need("rsyslogd"), "-n", "-f", str(self.config), "-i", str(pid)]

    def _up(self) -> bool:
        return super()._up() and _listening(self.tcp_port)

    def lines(self) -> list[bytes]:
        """The complete lines of rsyslog's output: omfile may flush a line in two writes, so a last line
        without its newline is still being written and is left for the next look."""
        data = self.out.read_bytes() if self.out.exists() else b""
        return data[: data.rfind(b"\n") + 1].splitlines()
