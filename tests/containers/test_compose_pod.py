"""The pod under docker compose: a login through the published port reaches events/ and xml/; the containers
are locked down; a SIGKILLed container restarts and nothing is lost or repeated; `down` flushes."""

from __future__ import annotations

import json
from collections import Counter

import docker
import httpx
import jsonschema
import pytest
from composepod import SERVICES, VERSION, ComposePod, PodFiles, tag_agent
from support import CONTRACTS, free_port

pytestmark = pytest.mark.container

LOGINS = 8
MAX_IMAGE_BYTES = 200 * 1000 * 1000
SCHEMA = json.loads((CONTRACTS / "login-event.schema.json").read_text())


def assert_exactly_once(files: PodFiles, agent: str, expected: int) -> None:
    """Every event the webserver wrote is in events/ once and in xml/ once, and there are `expected` of them."""
    source = Counter(event["event_id"] for event in files.source(agent))
    assert len(source) == expected
    assert set(source.values()) == {1}
    assert Counter(event["event_id"] for event in files.events(agent)) == source
    assert Counter(record["event_id"] for record in files.xml(agent)) == source


def test_a_login_through_the_published_port_reaches_events_and_xml(pod: ComposePod, http: httpx.Client) -> None:
    agent = tag_agent()
    response = pod.login(http, agent)
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "demo"

    files = pod.wait_delivered(agent, 1)
    [event] = files.events(agent)
    jsonschema.validate(event, SCHEMA)
    assert (event["event_type"], event["outcome"], event["username"]) == ("login.success", "success", "demo")
    assert event["pod"] == "loginpod"  # the pause container's host name: the pod's, as in Kubernetes
    [record] = files.xml(agent)  # its document is valid against the XSD (read_xml_events checks)
    assert (record["event_id"], record["username"], record["outcome"]) == (event["event_id"], "demo", "success")
    assert_exactly_once(files, agent, 1)


@pytest.mark.parametrize("service", SERVICES)
def test_each_image_is_small_non_root_health_checked_and_labelled(
    engine: docker.DockerClient, images: None, service: str
) -> None:
    image = engine.images.get(f"loginpod/{service}:{VERSION}")
    assert image.attrs["Size"] < MAX_IMAGE_BYTES
    config = image.attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["StopSignal"] == "SIGTERM"
    assert config["Healthcheck"]["Test"][0] == "CMD"
    assert config["Cmd"] == ["python", "-m", service.replace("-", "_")]
    assert config["Labels"]["org.opencontainers.image.version"] == VERSION
    assert config["Labels"]["org.opencontainers.image.title"] == f"loginpod-{service}"


@pytest.mark.parametrize("service", ["pause", *SERVICES])
def test_every_container_runs_as_non_root_on_a_read_only_root(pod: ComposePod, service: str) -> None:
    container = pod.container(service)
    config = container.attrs["HostConfig"]
    assert config["ReadonlyRootfs"] is True
    assert config["CapDrop"] == ["ALL"]
    assert not config["CapAdd"]
    assert "no-new-privileges:true" in config["SecurityOpt"]
    # What the running process really is, not only what was asked for.
    status = container.exec_run(["cat", "/proc/1/status"]).output.decode()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert "0" not in uids, status
    effective_caps = next(line for line in status.splitlines() if line.startswith("CapEff:")).split()[1]
    assert int(effective_caps, 16) == 0
    attempt = container.exec_run(["touch", "/written-by-a-test"])
    assert attempt.exit_code != 0
    assert b"Read-only file system" in attempt.output


def test_the_ambassador_binds_port_80_without_privileges(pod: ComposePod) -> None:
    pause = pod.container("pause")
    assert pause.attrs["HostConfig"]["Sysctls"] == {"net.ipv4.ip_unprivileged_port_start": "0"}
    ambassador = pod.container("ambassador")
    assert ambassador.attrs["HostConfig"]["NetworkMode"] == f"container:{pause.id}"
    listening = ambassador.exec_run(["cat", "/proc/net/tcp"]).output.decode()
    assert any(line.split()[1].endswith(":0050") and line.split()[3] == "0A" for line in listening.splitlines()[1:])


@pytest.mark.parametrize("service", SERVICES)
def test_a_sigkilled_container_restarts_and_no_event_is_lost_or_repeated(
    pod: ComposePod, http: httpx.Client, service: str
) -> None:
    agent = tag_agent()
    for _ in range(LOGINS):
        assert pod.login(http, agent).status_code == 200
    restarts = pod.container(service).attrs["RestartCount"]
    pod.crash(service)  # straight after the burst: the sidecar and adapter are still at it
    pod.wait_healthy(service, restarts=restarts + 1)  # the restart policy, not the test, brought it back
    for _ in range(LOGINS):
        assert pod.login(http, agent).status_code == 200

    assert_exactly_once(pod.wait_delivered(agent, 2 * LOGINS), agent, 2 * LOGINS)


def test_compose_down_flushes_what_the_sidecar_and_adapter_held(
    engine: docker.DockerClient, images: None, http: httpx.Client, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A pod of its own: `down` stops it (SIGTERM, default grace period) before it removes the containers;
    stopping first shows the exit codes: every service left by itself, none was killed at the deadline."""
    pod = ComposePod(engine, port=free_port(), workdir=tmp_path_factory.mktemp("down"))
    try:
        pod.up()
        agent = tag_agent()
        for _ in range(3 * LOGINS):
            assert pod.login(http, agent).status_code == 200
        pod.compose("stop")
        exit_codes = {service: pod.container(service).attrs["State"]["ExitCode"] for service in SERVICES}
        assert exit_codes == dict.fromkeys(SERVICES, 0)
        pod.down(volumes=False)  # the volumes stay, to be read

        assert_exactly_once(pod.files(), agent, 3 * LOGINS)
    finally:
        pod.down(volumes=True)
