"""Two webservers and two ambassadors (two replicas of the pod) on one real redis-server (issue 10).

Replica A is ambassador A in front of webserver A, replica B the same: real processes (`python -m webserver`,
`python -m ambassador`) on free loopback ports, REDIS_URL pointing both at a redis-server this test starts.
Without REDIS_URL each replica keeps its own state: `test_without_redis_each_replica_has_its_own_state`
shows what these tests guard against.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from peers import RedisServer
from podkit_testing import free_port, wait_for
from webserver.config import Argon2Params
from webserver.passwords import make_hasher

FAST_ARGON2 = {"ARGON2_TIME_COST": "1", "ARGON2_MEMORY_KIB": "1024", "ARGON2_PARALLELISM": "1"}
PASSWORD = "correct horse battery staple"
LOCKOUT_THRESHOLD = 4


@dataclass
class Replica:
    name: str
    ambassador_port: int
    web_port: int
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ambassador_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def metrics(self, which: str = "web") -> str:
        return httpx.get(f"{self.web_url if which == 'web' else self.url}/metrics", timeout=10).text


@dataclass
class Pods:
    a: Replica
    b: Replica
    workdir: Path

    def events(self) -> list[str]:
        lines: list[str] = []
        for replica in (self.a, self.b):
            path = self.workdir / replica.name / "events.jsonl"
            lines += path.read_text().splitlines() if path.exists() else []
        return lines


def _start(workdir: Path, name: str, env: dict[str, str]) -> Replica:
    replica = Replica(name, free_port(), free_port())
    (workdir / name).mkdir(parents=True)
    common = {**os.environ, **FAST_ARGON2, **env, "LOG_LEVEL": "INFO"}
    web_env = {
        **common,
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(replica.web_port),
        "USERS_FILE": str(workdir / "users.txt"),
        "EVENTS_FILE": str(workdir / name / "events.jsonl"),
        "SESSION_KEY": "s" * 40,
        "POD_NAME": f"replica-{name}",
        "LOCKOUT_THRESHOLD": str(LOCKOUT_THRESHOLD),
    }
    ambassador_env = {
        **common,
        "AMBASSADOR_HOST": "127.0.0.1",
        "AMBASSADOR_PORT": str(replica.ambassador_port),
        "UPSTREAM_URL": replica.web_url,
        "ACCESS_LOG": "false",
        # The tests name the client with X-Forwarded-For (each its own rate-limit bucket).
        "TRUSTED_PROXIES": "127.0.0.0/8",
    }
    for module, module_env in (("webserver", web_env), ("ambassador", ambassador_env)):
        log = open(workdir / name / f"{module}.log", "wb")  # noqa: SIM115 - the child keeps it
        replica.processes.append(
            subprocess.Popen([sys.executable, "-m", module], env=module_env, stdout=log, stderr=subprocess.STDOUT)
        )
    return replica


def _ready(replica: Replica) -> bool:
    try:
        return httpx.get(f"{replica.url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


def _pods(workdir: Path, env: dict[str, str]) -> Iterator[Pods]:
    hasher = make_hasher(Argon2Params.from_env(FAST_ARGON2))
    (workdir / "users.txt").write_text(f"alice:{hasher.hash(PASSWORD)}\n")
    replicas = [_start(workdir, name, env) for name in ("a", "b")]
    try:
        for replica in replicas:
            wait_for(lambda r=replica: _ready(r), timeout=60, what=f"replica {replica.name} ready")
        yield Pods(replicas[0], replicas[1], workdir)
    finally:
        for replica in replicas:
            for process in replica.processes:
                process.terminate()
            for process in replica.processes:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
        for replica in replicas:
            for log in (workdir / replica.name).glob("*.log"):
                assert "Traceback" not in log.read_text(errors="replace"), f"{log}:\n{log.read_text()[-3000:]}"


@pytest.fixture
def pods(tmp_path: Path, redis_server: RedisServer, request: pytest.FixtureRequest) -> Iterator[Pods]:
    burst = getattr(request, "param", 100)
    env = {
        "REDIS_URL": redis_server.url,
        "REDIS_KEY_PREFIX": f"test-{uuid.uuid4().hex[:8]}:",  # a fresh state per test on the module's Redis
        "REDIS_RETRY_INTERVAL": "0.2",
        "LOGIN_BURST": str(burst),
        "LOGIN_RATE_PER_MINUTE": "0.001",  # no refill within a test
    }
    yield from _pods(tmp_path, env)


def login(
    client: httpx.Client, password: str = PASSWORD, username: str = "alice", client_ip: str | None = None
) -> httpx.Response:
    headers = {"x-forwarded-for": client_ip} if client_ip else None
    return client.post("/login", json={"username": username, "password": password}, headers=headers)


def welcome(replica: Replica, cookie: str) -> int:
    with replica.client() as client:
        client.cookies.set("session", cookie)
        return client.get("/welcome").status_code


def test_logout_on_one_replica_refuses_the_cookie_on_the_other(pods: Pods) -> None:
    with pods.a.client() as a:
        response = login(a)
        assert response.status_code == 200, response.text
        cookie = a.cookies["session"]
        assert welcome(pods.b, cookie) == 200  # the same signed cookie works on either replica
        assert a.post("/logout", json={}).status_code == 200
    assert welcome(pods.b, cookie) == 303  # revoked on A, refused on B
    with pods.b.client() as b:
        b.cookies.set("session", cookie)
        assert b.post("/logout", json={}).status_code == 401


def test_lockout_counts_failures_on_both_replicas(pods: Pods) -> None:
    replicas = [pods.a, pods.b]
    for attempt in range(LOCKOUT_THRESHOLD):
        with replicas[attempt % 2].client() as client:
            assert login(client, "wrong").status_code == 401
    for replica in replicas:  # locked on both, though each saw only half the failures
        with replica.client() as client:
            assert login(client).status_code == 401
    reasons = [line.split('"reason":', 1)[1].split(",", 1)[0] for line in pods.events()]
    assert reasons.count('"bad_password"') == LOCKOUT_THRESHOLD
    assert reasons.count('"locked_out"') == 2


@pytest.mark.parametrize("pods", [6], indirect=True)
def test_rate_limit_bucket_is_shared(pods: Pods) -> None:
    statuses = []
    for attempt in range(12):
        with (pods.a if attempt % 2 == 0 else pods.b).client() as client:
            statuses.append(login(client, username="nobody").status_code)
    assert statuses.count(401) == 6, statuses  # LOGIN_BURST=6 in all, not 6 per replica
    assert statuses.count(429) == 6, statuses


@pytest.mark.parametrize("pods", [3], indirect=True)
def test_redis_killed_and_restarted_mid_test(pods: Pods, redis_server: RedisServer) -> None:
    with pods.a.client() as a:
        assert login(a).status_code == 200
        cookie = a.cookies["session"]
        assert a.post("/logout", json={}).status_code == 200
    with pods.b.client() as b:
        assert login(b).status_code == 200
        live_cookie = b.cookies["session"]

    redis_server.kill()
    # Revocation check: fail closed, the session is not accepted (and no 500).
    assert welcome(pods.b, live_cookie) == 303
    # Lockout: fail closed, 503 for a known and an unknown name alike, no password checked.
    # Rate limit: fail open, so more logins than LOGIN_BURST=3 from one client reach the webserver (no 429).
    statuses = []
    for attempt in range(6):
        with (pods.a if attempt % 2 == 0 else pods.b).client() as client:
            response = login(client, username="alice" if attempt % 3 else "nobody", client_ip="198.51.100.7")
            statuses.append(response.status_code)
            assert response.headers.get("retry-after") == "5"
    assert statuses == [503] * 6
    # Logout: cannot be recorded, so it says so with 503.
    with pods.b.client() as b:
        b.cookies.set("session", live_cookie)
        assert b.post("/logout", json={}).status_code == 503
    assert 'loginpod_ambassador_shared_store_errors_total{use="ratelimit"}' in pods.a.metrics("ambassador")
    assert "loginpod_ambassador_shared_store_up 0.0" in pods.a.metrics("ambassador")
    web_metrics = pods.b.metrics()
    assert 'loginpod_webserver_shared_store_errors_total{use="lockout"}' in web_metrics
    assert 'loginpod_webserver_login_attempts_total{outcome="failure",reason="store_unavailable"}' in web_metrics
    for replica in (pods.a, pods.b):
        log = (pods.workdir / replica.name / "webserver.log").read_text()
        assert "shared store (Redis) unavailable" in log

    redis_server.start()  # same port, same append-only file

    def back(replica: Replica) -> bool:  # straight to the webserver: no rate-limit token spent on polling
        with httpx.Client(base_url=replica.web_url, timeout=10) as web:
            return login(web).status_code == 200 and welcome(replica, live_cookie) == 200

    for replica in (pods.a, pods.b):  # logins work again, and the live session is accepted again
        wait_for(lambda r=replica: back(r), timeout=20, what=f"replica {replica.name} working once Redis is back")
    assert welcome(pods.b, cookie) == 303  # and the revocation made before the kill survived the restart
    with pods.a.client() as a:
        a.cookies.set("session", live_cookie)
        assert a.post("/logout", json={}).status_code == 200
    assert welcome(pods.b, live_cookie) == 303
    statuses = []
    for attempt in range(4):  # the rate limit counts in Redis again: a new client gets LOGIN_BURST=3 in all
        with (pods.a if attempt % 2 == 0 else pods.b).client() as client:
            statuses.append(login(client, username="nobody", client_ip="198.51.100.8").status_code)
    assert statuses == [401, 401, 401, 429], statuses


def test_without_redis_each_replica_has_its_own_state(tmp_path: Path) -> None:
    """The old behaviour, for contrast: the revocation on A is unknown to B."""
    for pods in _pods(tmp_path, {"LOGIN_BURST": "100"}):
        with pods.a.client() as a:
            assert login(a).status_code == 200
            cookie = a.cookies["session"]
            assert a.post("/logout", json={}).status_code == 200
        assert welcome(pods.a, cookie) == 303
        assert welcome(pods.b, cookie) == 200
