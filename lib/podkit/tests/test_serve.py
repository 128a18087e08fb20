"""podkit.serve: a real uvicorn server in its own process stops on SIGTERM/SIGINT with exit code 0.

The control case runs the same server without the helper: uvicorn's re-raise of the signal after its
graceful shutdown then kills the process, which is what the helper is for (if uvicorn ever stops doing
that, the control fails and the helper can go).
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

# A tiny app on a uvicorn.Server subclass (as a service has: the ambassador's logs where it listens) that,
# once it listens, gets the stop signal as `kill` would send it. "helper" runs it through podkit.serve,
# "plain" with uvicorn's own Server.run.
SCRIPT = """
import signal
import sys
import uvicorn
from podkit.serve import serve

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

class SignalledServer(uvicorn.Server):
    async def startup(self, sockets=None):
        await super().startup(sockets)
        assert self.started
        signal.raise_signal(int(sys.argv[2]))

server = SignalledServer(uvicorn.Config(app, host="127.0.0.1", port=0, loop="uvloop", lifespan="on"))
serve(server) if sys.argv[1] == "helper" else server.run()
print("returned", flush=True)
"""


def _serve_then_signal(mode: str, signum: int) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode, str(int(signum))],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=30,
        check=False,
    )
    return result.returncode, result.stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_in_a_graceful_shutdown_and_exit_0(signum: int) -> None:
    code, output = _serve_then_signal("helper", signum)
    assert code == 0, output
    assert "Finished server process" in output
    assert "returned" in output


def test_without_it_uvicorns_re_raise_kills_the_process_after_the_graceful_shutdown() -> None:
    code, output = _serve_then_signal("plain", signal.SIGTERM)
    assert "Finished server process" in output
    assert code == -signal.SIGTERM, output


def test_a_signal_before_uvicorn_serves_stops_the_server_and_the_handlers_are_restored() -> None:
    """Before uvicorn installs its handlers (start-up), a SIGTERM must stop the server, not be lost."""
    script = """
import signal
from podkit.serve import serve

class Server:
    should_exit = False

    def run(self):
        signal.raise_signal(signal.SIGTERM)
        print("should_exit", self.should_exit, flush=True)

serve(Server())
print("restored", signal.getsignal(signal.SIGTERM) is signal.SIG_DFL, flush=True)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["should_exit True", "restored True"]
