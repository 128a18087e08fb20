"""Fixtures: an app on temporary files with cheap argon2 parameters, and an HTTP client for it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from fastapi import FastAPI
from webserver.app import create_app
from webserver.config import Argon2Params, Settings
from webserver.passwords import make_hasher
from webserver.services import Services

REPO = Path(__file__).resolve().parents[3]
SCHEMA = json.loads((REPO / "contracts" / "login-event.schema.json").read_text())
FAST_ARGON2 = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024", "ARGON2_PARALLELISM": "1"}
SESSION_KEY = "k" * 40
PASSWORD = "correct horse battery staple"

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


def hash_password(password: str) -> str:
    return make_hasher(Argon2Params.from_env(FAST_ARGON2)).hash(password)


@pytest.fixture(scope="session")
def alice_hash() -> str:
    return hash_password(PASSWORD)


@pytest.fixture
def users_file(tmp_path: Path, alice_hash: str) -> Path:
    path = tmp_path / "users.txt"
    path.write_text(f"# test users\nalice:{alice_hash}\n")
    return path


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    return tmp_path / "events" / "events.jsonl"


@pytest.fixture
def env(users_file: Path, events_file: Path) -> dict[str, str]:
    events_file.parent.mkdir(exist_ok=True)
    return {
        "USERS_FILE": str(users_file),
        "EVENTS_FILE": str(events_file),
        "SESSION_KEY": SESSION_KEY,
        "POD_NAME": "test-pod",
        **FAST_ARGON2,
    }


@pytest.fixture
def make_client(env: dict[str, str]) -> ClientFactory:
    """`async with make_client(PEER="203.0.113.9", BASE="https://...", VAR=value) as client:` (app started)."""

    @asynccontextmanager
    async def factory(
        *, peer: str = "127.0.0.1", base_url: str = "http://testserver", **overrides: str
    ) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(Settings.from_env({**env, **overrides}))
        transport = httpx.ASGITransport(app=app, client=(peer, 50000))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url=base_url) as client,
        ):
            client.app = app  # type: ignore[attr-defined]
            yield client

    return factory


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client() as client:
        yield client


class Helpers:
    """Shared test helpers, as a fixture (tests cannot import conftest under --import-mode=importlib)."""

    schema = SCHEMA
    password = PASSWORD
    session_key = SESSION_KEY
    fast_argon2 = FAST_ARGON2

    def __init__(self, events_file: Path) -> None:
        self.events_file = events_file

    @staticmethod
    def hash_password(password: str) -> str:
        return hash_password(password)

    @staticmethod
    def services(client: httpx.AsyncClient) -> Services:
        app: FastAPI = client.app  # type: ignore[attr-defined]
        services: Services = app.state.services
        return services

    def events(self, path: Path | None = None) -> list[dict[str, Any]]:
        """Every event in the file, each checked against the contract's schema."""
        path = path or self.events_file
        if not path.exists():
            return []
        events = [json.loads(line) for line in path.read_text().splitlines()]
        for event in events:
            jsonschema.Draft202012Validator(SCHEMA).validate(event)
        return events

    @staticmethod
    async def csrf_token(client: httpx.AsyncClient) -> str:
        """GET / and return the token of its form (also set as the `csrf` cookie)."""
        response = await client.get("/")
        assert response.status_code == 200
        token = client.cookies.get("csrf")
        assert token is not None
        assert f'name="csrf" value="{token}"' in response.text
        return token

    async def form_login(self, client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
        token = await self.csrf_token(client)
        return await client.post("/login", data={"username": username, "password": password, "csrf": token})


@pytest.fixture
def helpers(events_file: Path) -> Helpers:
    return Helpers(events_file)
