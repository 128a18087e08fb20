"""k8s/pod.yaml as a real pod: `podman kube play` with the images of `make images`.

Podman implements the pod spec on its own: one network namespace for the four containers (behind an
infra container, as Kubernetes' pause), emptyDir volumes, the Secret as a volume, the ConfigMap as
environment, the hostPort, the security context, and restartPolicy Always.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import httpx
import jsonschema
import pytest
from kubepod import CONTAINERS, DEMO_PASSWORD, DEMO_USER, PodmanPod
from lxml import etree
from support import CONTRACTS, read_events, wait_for, xsd

pytestmark = pytest.mark.pod

EVENT_SCHEMA = json.loads((CONTRACTS / "login-event.schema.json").read_text())


def login(pod: PodmanPod, agent: str, password: str = DEMO_PASSWORD) -> httpx.Response:
    """A JSON login through the pod's hostPort, marked by its User-Agent so its event can be found."""
    return httpx.post(
        f"{pod.url}/login",
        json={"username": DEMO_USER, "password": password},
        headers={"User-Agent": agent},
        timeout=30,
    )


def recorded(pod: PodmanPod, agents: set[str]) -> tuple[list[dict[str, Any]], list[dict[str, str]]] | None:
    """The JSON events and the XML events of these logins once every one is in both, else None."""
    files = pod.shared_files()
    if files is None:
        return None
    events = [
        json.loads(line)
        for path, text in files.items()
        if path.endswith(".jsonl")
        for line in text.splitlines()
        if line.strip()
    ]
    xml_events: list[dict[str, str]] = []
    for path, text in files.items():
        if path.endswith(".xml"):
            tree = etree.fromstring(text.encode())
            xsd().assertValid(tree)
            xml_events.extend({child.tag: child.text or "" for child in event} for event in tree)
    ours = [event for event in events if event["user_agent"] in agents]
    ours_xml = [event for event in xml_events if event["user_agent"] in agents]
    if {event["user_agent"] for event in ours} != agents or {event["user_agent"] for event in ours_xml} != agents:
        return None
    return ours, ours_xml


def test_a_login_through_the_host_port_lands_as_json_and_xml_in_the_shared_volume(podman_pod: PodmanPod) -> None:
    agent = f"k8s-test-{uuid.uuid4()}"
    response = login(podman_pod, agent)
    assert response.status_code == 200, response.text
    assert response.json()["username"] == DEMO_USER
    assert response.headers["x-request-id"]

    events, xml_events = wait_for(lambda: recorded(podman_pod, {agent}), timeout=30, interval=0.2, what="the event")
    (event,) = events
    jsonschema.validate(event, EVENT_SCHEMA)
    assert event["event_type"] == "login.success"
    assert event["username"] == DEMO_USER
    assert event["pod"] == podman_pod.name  # POD_NAME from the downward API
    assert event["request_id"] == response.headers["x-request-id"]  # set by the ambassador
    (xml_event,) = xml_events
    assert xml_event["event_id"] == event["event_id"]
    assert xml_event["request_id"] == event["request_id"]


def test_the_four_containers_run_as_non_root_with_the_restricted_settings(podman_pod: PodmanPod) -> None:
    probe = (
        "import json, os; status = dict(line.split(':', 1) for line in open('/proc/1/status')); "
        "writable = True\n"
        "try:\n open('/root-fs-probe', 'w').close()\n"
        "except OSError:\n writable = False\n"
        "print(json.dumps({k: status[k].split() for k in ('Uid', 'Gid', 'CapEff', 'NoNewPrivs', 'Seccomp')}"
        " | {'root_writable': writable}))"
    )
    for name in CONTAINERS:
        seen = podman_pod.python(name, probe)
        assert "0" not in seen["Uid"], (name, seen)
        assert "0" not in seen["Gid"], (name, seen)
        assert int(seen["CapEff"][0], 16) == 0, (name, seen)
        assert seen["NoNewPrivs"] == ["1"], (name, seen)
        assert seen["Seccomp"] == ["2"], (name, seen)  # a filter: RuntimeDefault
        assert seen["root_writable"] is False, name
    # The ambassador listens on port 80 as uid 10001: the unprivileged-port sysctl is in force.
    assert httpx.get(f"{podman_pod.url}/healthz", timeout=10).status_code == 200
    # The sidecar reads the webserver's events file but cannot change it.
    denied = podman_pod.python(
        "login-sidecar",
        "import json\ntry:\n open('/var/log/loginpod/probe', 'w').close(); print('false')\n"
        "except OSError:\n print('true')",
    )
    assert denied is True


@pytest.mark.parametrize("victim", ["login-sidecar", "adapter"])
def test_a_killed_container_is_restarted_and_no_event_is_lost_or_repeated(podman_pod: PodmanPod, victim: str) -> None:
    run = uuid.uuid4().hex[:8]
    before = f"k8s-kill-{run}-before"
    assert login(podman_pod, before).status_code == 200
    wait_for(lambda: recorded(podman_pod, {before}), timeout=30, interval=0.2, what="the first event")

    _, restarts = podman_pod.state(victim)
    podman_pod.kill(victim)
    # Logins go on while the container is dead or coming back: the webserver keeps writing its events file.
    during = f"k8s-kill-{run}-during"
    assert login(podman_pod, during, password="wrong-password").status_code == 401
    wait_for(
        lambda: podman_pod.state(victim) == ("running", restarts + 1),
        timeout=60,
        interval=0.2,
        what=f"{victim} restarted by podman",
    )
    after = f"k8s-kill-{run}-after"
    assert login(podman_pod, after).status_code == 200

    agents = {before, during, after}
    events, xml_events = wait_for(
        lambda: recorded(podman_pod, agents), timeout=60, interval=0.2, what="every event after the restart"
    )
    assert Counter(event["user_agent"] for event in events) == Counter(agents), "lost or repeated in events/"
    assert Counter(event["user_agent"] for event in xml_events) == Counter(agents), "lost or repeated in xml/"
    assert {event["event_id"] for event in events} == {event["event_id"] for event in xml_events}


def test_the_pod_stops_gracefully_and_keeps_the_last_event(own_podman_pod: PodmanPod) -> None:
    """On SIGTERM each service finishes its work and exits 0: the sidecar first writes what is left."""
    agent = f"k8s-stop-{uuid.uuid4()}"
    assert login(own_podman_pod, agent).status_code == 200
    # No wait for the event: the stop follows the login at once.
    assert own_podman_pod.stop(timeout_s=30) == dict.fromkeys(CONTAINERS, 0)
    events = read_events(own_podman_pod.volume_path("shared") / "events")
    assert [event["user_agent"] for event in events].count(agent) == 1
