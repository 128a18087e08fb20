"""`python -m webserver` as a real process: uvicorn with httptools and uvloop, JSON logs, clean stop on SIGTERM."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx


def _start(env: dict[str, str]) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "webserver"],
        env={**os.environ, **env, "WEB_PORT": "0"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return process, lines


def _wait_for_port(process: subprocess.Popen[str], lines: queue.Queue[str], seen: list[str]) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            assert process.poll() is None, f"webserver exited: {seen}"
            continue
        seen.append(line)
        match = re.search(r"running on http://127\.0\.0\.1:(\d+)", line)
        if match:
            return int(match.group(1))
    raise AssertionError(f"webserver did not start: {seen}")


def test_serves_logs_json_and_stops_cleanly(env: dict[str, str], helpers: Any, events_file: Path) -> None:
    process, lines = _start(env)
    seen: list[str] = []
    try:
        port = _wait_for_port(process, lines, seen)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            assert client.get("/readyz").status_code == 200
            response = client.post("/login", json={"username": "alice", "password": helpers.password})
            assert response.status_code == 200
            assert "server" not in response.headers
            token = response.cookies["session"]
            assert client.post("/login", json={"username": "alice", "password": "wrong-pw"}).status_code == 401
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any("Finished server process" in line for line in seen):
        with contextlib.suppress(queue.Empty):
            seen.append(lines.get(timeout=0.2))
    records = [json.loads(line) for line in seen]
    assert all(r["service"] == "webserver" and r["ts"].endswith("Z") for r in records)
    assert any(r.get("path") == "/login" and r.get("status") == 401 for r in records)
    output = "".join(seen)
    for secret in (helpers.password, "wrong-pw", token):
        assert secret not in output
    assert [e["reason"] for e in helpers.events()] == [None, "bad_password"]


def _start_and_fail(env: dict[str, str], *prefix: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "webserver"],
        env={**os.environ, **env, "WEB_PORT": "0"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_users_file_that_is_a_directory_stops_start_up_with_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    directory = tmp_path / "users.d"
    directory.mkdir()
    result = _start_and_fail({**env, "USERS_FILE": str(directory)})
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"config error: USERS_FILE: {directory} is a directory, not a users file"]


def test_an_unreadable_users_file_stops_start_up_with_exit_2(env: dict[str, str], users_file: Path) -> None:
    users_file.chmod(0)
    # root reads anything: take away the capabilities that let it (setpriv, util-linux), as for a real non-root user
    prefix = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search") if os.geteuid() == 0 else ()
    result = _start_and_fail(env, *prefix)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"config error: USERS_FILE: cannot read {users_file}: Permission denied"]


def test_a_missing_users_file_is_a_readiness_failure_not_an_exit(env: dict[str, str], tmp_path: Path) -> None:
    process, lines = _start({**env, "USERS_FILE": str(tmp_path / "not-yet.txt")})
    seen: list[str] = []
    try:
        port = _wait_for_port(process, lines, seen)
        readyz = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert readyz.status_code == 503
        assert "users not loaded" in readyz.json()["detail"]
    finally:
        process.kill()
        process.wait()
