"""The users file: parsing, hot reload (as a Kubernetes Secret updates it), and the CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from webserver.users import UsersFileError, parse_users

CLI = [sys.executable, "-m", "webserver.users"]


def test_parse_accepts_comments_and_blank_lines(helpers: Any) -> None:
    digest = helpers.hash_password("pw")
    users = parse_users(f"# comment\n\n  bob.smith@example-1:{digest}  \n_x:{digest}\n")
    assert set(users) == {"bob.smith@example-1", "_x"}


@pytest.mark.parametrize(
    "line",
    [
        "no-colon",
        "bad name:$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        "x" * 65 + ":$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        "bob:$2b$12$bcrypthashbcrypthashbcrypthashbcrypthashbcrypthashbcry",
        "bob:$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        "bob:$argon2id$garbage",
    ],
)
def test_parse_rejects_bad_lines(line: str) -> None:
    with pytest.raises(UsersFileError, match="line 1"):
        parse_users(line)


def test_parse_rejects_duplicates(helpers: Any) -> None:
    digest = helpers.hash_password("pw")
    with pytest.raises(UsersFileError, match="twice"):
        parse_users(f"bob:{digest}\nbob:{digest}\n")


def _swap_secret(directory: Path, version: str, content: str) -> None:
    """What the kubelet does: write a new timestamped dir, then atomically repoint `..data`."""
    target = directory / f"..{version}"
    target.mkdir()
    (target / "users.txt").write_text(content)
    link = directory / "..data_tmp"
    link.symlink_to(target.name)
    link.rename(directory / "..data")


async def test_users_are_reloaded_when_the_secret_changes(make_client: Any, helpers: Any, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.mkdir()
    _swap_secret(secret, "v1", f"alice:{helpers.hash_password('old')}\n")
    (secret / "users.txt").symlink_to("..data/users.txt")
    async with make_client(USERS_FILE=str(secret / "users.txt")) as client:
        assert (await client.post("/login", json={"username": "alice", "password": "old"})).status_code == 200
        _swap_secret(secret, "v2", f"alice:{helpers.hash_password('new')}\nbob:{helpers.hash_password('b')}\n")
        assert (await client.post("/login", json={"username": "alice", "password": "new"})).status_code == 200
        assert (await client.post("/login", json={"username": "bob", "password": "b"})).status_code == 200
        # A broken file is refused as a whole: the last good users stay.
        _swap_secret(secret, "v3", "alice:not-a-hash\n")
        assert (await client.post("/login", json={"username": "bob", "password": "b"})).status_code == 200
        services = helpers.services(client)
        assert services.users.last_error is not None
        assert "line 1" in services.users.last_error
        metrics = (await client.get("/metrics")).text
        assert "loginpod_webserver_users_loaded 2.0" in metrics
        assert "loginpod_webserver_users_reload_errors_total 1.0" in metrics
        assert (await client.get("/readyz")).status_code == 200


async def test_background_reload_without_logins(make_client: Any, helpers: Any, users_file: Path) -> None:
    async with make_client() as client:
        services = helpers.services(client)
        assert len(services.users) == 1
        users_file.write_text(users_file.read_text() + f"carol:{helpers.hash_password('c')}\n")
        deadline = time.monotonic() + 5
        while len(services.users) != 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(services.users) == 2


async def test_not_ready_until_the_users_file_is_valid(make_client: Any, helpers: Any, tmp_path: Path) -> None:
    path = tmp_path / "missing.txt"
    async with make_client(USERS_FILE=str(path)) as client:
        response = await client.get("/readyz")
        assert response.status_code == 503
        assert "users not loaded" in response.json()["detail"]
        assert (await client.post("/login", json={"username": "alice", "password": "x"})).status_code == 401
        path.write_text(f"alice:{helpers.hash_password('x')}\n")
        assert (await client.post("/login", json={"username": "alice", "password": "x"})).status_code == 200
        assert (await client.get("/readyz")).status_code == 200


async def test_removing_a_user_ends_their_sessions(client: Any, helpers: Any, users_file: Path) -> None:
    assert (await client.post("/login", json={"username": "alice", "password": helpers.password})).status_code == 200
    assert (await client.get("/welcome")).status_code == 200
    users_file.write_text("# nobody left\n")
    helpers.services(client).users.refresh()
    assert (await client.get("/welcome")).status_code == 303


def _cli(args: list[str], stdin: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **env_extra}
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, env=env, timeout=30, check=False)


def test_cli_add_and_hash(tmp_path: Path, helpers: Any) -> None:
    path = tmp_path / "users.txt"
    path.write_text("# keep me\n")
    added = _cli(["add", "--file", str(path), "dave"], "pw-dave\n", helpers.fast_argon2)
    assert added.returncode == 0, added.stderr
    again = _cli(["add", "--file", str(path), "dave"], "other\n", helpers.fast_argon2)
    assert again.returncode != 0
    assert "already" in again.stderr
    replaced = _cli(["add", "--replace", "--file", str(path), "dave"], "pw-new\n", helpers.fast_argon2)
    assert replaced.returncode == 0
    text = path.read_text()
    assert text.startswith("# keep me\n")
    users = parse_users(text)
    assert list(users) == ["dave"]
    assert PasswordHasher().verify(users["dave"], "pw-new")
    assert "m=1024,t=1,p=1" in users["dave"]

    hashed = _cli(["hash"], "secret\n", {})
    assert hashed.returncode == 0
    digest = hashed.stdout.strip()
    assert digest.startswith("$argon2id$v=19$m=19456,t=2,p=1$")  # the OWASP defaults
    assert PasswordHasher().verify(digest, "secret")
    assert "secret" not in hashed.stdout.replace(digest, "")

    bad_name = _cli(["add", "--file", str(path), "bad name"], "pw\n", helpers.fast_argon2)
    empty = _cli(["hash"], "\n", {})
    bad_params = _cli(["hash"], "pw\n", {"ARGON2_MEMORY_KIB": "lots"})
    assert bad_name.returncode != 0
    assert empty.returncode != 0
    assert bad_params.returncode == 2
    assert bad_params.stderr.startswith("config error: ARGON2_MEMORY_KIB:")


def test_demo_users_file_holds_the_demo_user() -> None:
    demo = Path(__file__).resolve().parents[3] / "deploy" / "demo" / "users.txt"
    text = demo.read_text()
    assert "demo-only" in text.lower() or "demo only" in text.lower()
    users = parse_users(text)
    assert PasswordHasher().verify(users["demo"], "demo-password")
