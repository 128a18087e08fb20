"""docker-compose.yml's profiles `scale` (redis) and `logging` (rsyslog with RELP) on a real engine (issue 10).

One compose pod of its own with both profiles: the webserver and the ambassador keep their security state in
the redis container (REDIS_URL=redis://redis:6379/0), the sidecar ships to the rsyslog container over RELP
(SINK_URL=relp://rsyslog:2514), which writes the events to its volume. The peers' images come from
`make images-peers` (ops/peer-images.sh): Debian packages in a debootstrap'ed base, no apt in the build.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import docker
import httpx
import pytest
from composepod import REPO_ROOT, VERSION, ComposePod, tag_agent
from support import free_port, wait_for


@pytest.fixture(scope="module")
def peer_images(engine: docker.DockerClient) -> None:
    subprocess.run([str(REPO_ROOT / "ops" / "peer-images.sh")], cwd=REPO_ROOT, check=True, timeout=1800)


@pytest.fixture(scope="module")
def peers_pod(
    engine: docker.DockerClient, images: None, peer_images: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ComposePod]:
    pod = ComposePod(engine, port=free_port(), workdir=tmp_path_factory.mktemp("peers-pod"))
    pod.env.update(
        COMPOSE_PROFILES="scale,logging",
        LOGINPOD_REDIS_URL="redis://redis:6379/0",
        LOGINPOD_SINK_URL="relp://rsyslog:2514",
    )
    try:
        pod.up()
        yield pod
    finally:
        pod.down(volumes=True)


def exec_in(pod: ComposePod, service: str, *command: str) -> str:
    result = pod.container(service).exec_run(list(command))
    assert result.exit_code == 0, result.output
    return str(result.output.decode())


def test_the_peers_run_from_their_air_gapped_images(peers_pod: ComposePod) -> None:
    for service in ("redis", "rsyslog"):
        container = peers_pod.container(service)
        assert container.image.tags == [f"loginpod/{service}:{VERSION}"]
        assert container.attrs["Config"]["User"] == "10001:10001"
        assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True


def test_logout_is_recorded_in_redis_and_events_reach_rsyslog_over_relp(
    peers_pod: ComposePod, http: httpx.Client
) -> None:
    agent = tag_agent()
    response = peers_pod.login(http, agent)
    assert response.status_code == 200, response.text
    cookie = response.cookies["session"]
    with httpx.Client(base_url=peers_pod.base_url, cookies={"session": cookie}, timeout=30) as user:
        assert user.get("/welcome").status_code == 200
        assert user.post("/logout", json={}, headers={"User-Agent": agent}).status_code == 200
    revoked = exec_in(peers_pod, "redis", "redis-cli", "--scan", "--pattern", "loginpod:revoked:*")
    assert len(revoked.split()) >= 1
    with httpx.Client(base_url=peers_pod.base_url, cookies={"session": cookie}, timeout=30) as thief:
        assert thief.get("/welcome").status_code == 303  # refused: the revocation is in Redis

    def at_rsyslog() -> list[dict[str, object]]:
        result = peers_pod.container("rsyslog").exec_run(["cat", "/var/log/loginpod-sink/events.jsonl"])
        if result.exit_code != 0:  # no message written yet
            return []
        events = [json.loads(line) for line in result.output.decode().splitlines() if agent in line]
        return events if len(events) >= 2 else []

    events = wait_for(at_rsyslog, timeout=60, interval=0.5, what="the login and logout events at rsyslog")
    assert sorted(str(event["event_type"]) for event in events) == ["login.success", "logout"]
    header = exec_in(peers_pod, "rsyslog", "cat", "/var/log/loginpod-sink/syslog.log").splitlines()[-1]
    assert " webserver logout authpriv.info" in header
