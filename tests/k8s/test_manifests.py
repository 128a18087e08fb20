"""The manifests in k8s/, checked without a cluster: strict schemas, the Pod Security Standards "restricted"
profile, and agreement with the services, the demo users file, the images and each other."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubepod import CONTAINERS, K8S, REPO_ROOT, documents, load, load_module, manifests
from podkit.volume import Volume

OLDEST = "1.29.0"  # native sidecars on by default; the oldest release we support
NEWEST = kubernetes_validate.latest_version()
POD = load(K8S / "pod.yaml")
DEPLOYMENT = load(K8S / "scale-out" / "deployment.yaml")
NATIVE = load(K8S / "variants" / "pod-native-sidecars.yaml")
CONFIGMAP = load(K8S / "configmap.yaml")
SECRET = load(K8S / "demo" / "secret-demo.yaml")
POD_SPECS = {
    "pod.yaml": POD["spec"],
    "scale-out/deployment.yaml": DEPLOYMENT["spec"]["template"]["spec"],
    "variants/pod-native-sidecars.yaml": NATIVE["spec"],
}
# Where each container's settings are read: its package, and podkit for the shared ones.
SOURCES = {
    "ambassador": "services/ambassador/src",
    "webserver": "services/webserver/src",
    "login-sidecar": "services/login-sidecar/src",
    "adapter": "services/adapter/src",
}


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def by_name(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {container["name"]: container for container in containers(spec)}


def env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container.get("env", [])}


# --- schemas ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [OLDEST, NEWEST])
@pytest.mark.parametrize("path", manifests(), ids=lambda path: str(path.relative_to(K8S)))
def test_every_manifest_is_valid_against_the_strict_schema(path: Path, version: str) -> None:
    for document in documents(path):
        # Raises on an unknown field (strict) or a wrong type; a kind without a schema is an error here too.
        kubernetes_validate.validate(document, version, strict=True)


def test_the_strict_validation_rejects_an_unknown_field() -> None:
    """The check above can fail: a misspelt field is caught."""
    broken = copy.deepcopy(POD)
    broken["spec"]["containers"][0]["readinessprobe"] = broken["spec"]["containers"][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, OLDEST, strict=True)


def test_the_manifests_were_found() -> None:
    names = {str(path.relative_to(K8S)) for path in manifests()}
    assert {"pod.yaml", "configmap.yaml", "demo/secret-demo.yaml", "scale-out/deployment.yaml"} <= names
    assert {"scale-out/service.yaml", "networkpolicy.yaml", "variants/pod-native-sidecars.yaml"} <= names


def test_the_derived_manifests_are_up_to_date() -> None:
    derive = load_module(K8S / "derive.py")
    for path, text in derive.render().items():
        assert path.read_text() == text, f"{path.relative_to(REPO_ROOT)} is stale: run python k8s/derive.py"


# --- Pod Security Standards "restricted", and the rest of the hardening -------------------------------


@pytest.mark.parametrize("name", list(POD_SPECS))
def test_the_pod_meets_the_restricted_profile(name: str) -> None:
    spec = POD_SPECS[name]
    pod_context = spec["securityContext"]
    assert not any(spec.get(key) for key in ("hostNetwork", "hostPID", "hostIPC", "hostUsers"))
    assert pod_context["runAsNonRoot"] is True
    assert pod_context["runAsUser"] >= 10000
    assert pod_context["runAsGroup"] >= 10000
    assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}
    # Only the sysctls of the "safe" set; this one lets the non-root ambassador bind port 80.
    assert pod_context["sysctls"] == [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]
    assert spec["automountServiceAccountToken"] is False
    for volume in spec["volumes"]:
        assert set(volume) - {"name"} <= {"emptyDir", "secret", "configMap", "projected"}, volume
        if "emptyDir" in volume:
            assert volume["emptyDir"]["sizeLimit"], volume
    for container in containers(spec):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, container["name"]
        assert context["readOnlyRootFilesystem"] is True, container["name"]
        assert context["capabilities"] == {"drop": ["ALL"]}, container["name"]
        assert context.get("privileged") is not True, container["name"]
        assert context.get("runAsUser", 1) != 0, container["name"]
        assert "seccompProfile" not in context or context["seccompProfile"]["type"] == "RuntimeDefault"


@pytest.mark.parametrize("name", list(POD_SPECS))
def test_every_container_has_probes_and_resources(name: str) -> None:
    spec = POD_SPECS[name]
    assert sorted(by_name(spec)) == sorted(CONTAINERS)
    for container in containers(spec):
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert probe in container, (container["name"], probe)
        for kind in ("requests", "limits"):
            assert set(container["resources"][kind]) == {"cpu", "memory"}, (container["name"], kind)
        assert container["imagePullPolicy"] == "IfNotPresent"


def test_the_webserver_is_probed_on_loopback_and_the_others_on_their_ports() -> None:
    """The kubelet's httpGet probes go to the pod IP, where the webserver does not listen (WEB_HOST)."""
    pod = by_name(POD["spec"])
    webserver = pod["webserver"]
    assert env(webserver)["WEB_HOST"]["value"] == "127.0.0.1"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        command = webserver[probe]["exec"]["command"]
        assert command[:2] == ["python", "-c"]
        assert "http://127.0.0.1:8080/" in command[2]
    ports = {"ambassador": 80, "login-sidecar": 9101, "adapter": 9102}
    for name, number in ports.items():
        container = pod[name]
        (port,) = container["ports"]
        assert port["containerPort"] == number
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] == port["name"], (name, probe)
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert env(pod["login-sidecar"])["METRICS_PORT"]["value"] == "9101"
    assert env(pod["adapter"])["METRICS_PORT"]["value"] == "9102"
    assert env(pod["ambassador"])["AMBASSADOR_PORT"]["value"] == "80"


def test_no_port_is_published_on_the_node() -> None:
    """The "baseline" profile, and so "restricted", forbids hostPort; the podman copy adds one."""
    for spec in POD_SPECS.values():
        for container in containers(spec):
            assert all("hostPort" not in port for port in container.get("ports", [])), container["name"]
    assert [c["name"] for c in POD["spec"]["containers"] if c.get("ports")] == [
        "ambassador",
        "login-sidecar",
        "adapter",
    ]


def test_the_grace_period_covers_the_pre_stop_hooks_and_the_flush() -> None:
    spec = POD["spec"]
    grace = float(CONFIGMAP["data"]["SHUTDOWN_GRACE_SECONDS"])
    for container in spec["containers"]:
        command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
        if command:
            (seconds,) = re.findall(r"time\.sleep\((\d+)\)", command[-1])
            assert int(seconds) + grace < spec["terminationGracePeriodSeconds"], container["name"]
    hooks = {c["name"]: c.get("lifecycle", {}).get("preStop") for c in spec["containers"]}
    assert hooks["login-sidecar"], "the sidecar flushes before the pod goes"
    assert hooks["adapter"], "the adapter flushes before the pod goes"
    # The native sidecars need no hook: Kubernetes stops them after the main containers.
    assert all("lifecycle" not in c for c in NATIVE["spec"]["initContainers"])
    assert [c["name"] for c in NATIVE["spec"]["initContainers"]] == ["adapter", "login-sidecar"]
    assert all(c["restartPolicy"] == "Always" for c in NATIVE["spec"]["initContainers"])


def test_the_volumes_are_shared_as_the_design_says() -> None:
    mounts = {
        name: {m["mountPath"]: (m["name"], m.get("readOnly", False)) for m in c.get("volumeMounts", [])}
        for name, c in by_name(POD["spec"]).items()
    }
    assert mounts["webserver"]["/var/log/loginpod"] == ("events", False)
    assert mounts["login-sidecar"]["/var/log/loginpod"] == ("events", True)
    assert mounts["login-sidecar"]["/shared"] == ("shared", False)
    assert mounts["adapter"]["/shared"] == ("shared", False)
    # the webserver only reads the sidecar's checkpoint there, to keep the events files it has not finished
    assert mounts["webserver"]["/shared"] == ("shared", True)
    tail_checkpoint = str(Volume(Path("/shared")).tail_checkpoint)  # where the sidecar writes it (podkit.volume)
    assert env(by_name(POD["spec"])["webserver"])["SIDECAR_TAIL_CHECKPOINT"]["value"] == tail_checkpoint
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["webserver"]["environment"]["SIDECAR_TAIL_CHECKPOINT"] == tail_checkpoint
    assert mounts["webserver"]["/etc/loginpod/secrets"] == ("secrets", True)
    assert "/etc/loginpod/secrets" not in mounts["ambassador"] | mounts["login-sidecar"] | mounts["adapter"]
    webserver = env(by_name(POD["spec"])["webserver"])
    assert webserver["EVENTS_FILE"]["value"] == env(by_name(POD["spec"])["login-sidecar"])["SOURCE_FILE"]["value"]
    assert webserver["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


# --- agreement with the services, the Secret, the ConfigMap and the images -----------------------------


def test_every_variable_set_is_one_the_service_reads() -> None:
    """A misspelt variable would be ignored silently: each name must appear in the service's sources."""
    podkit = "".join(path.read_text() for path in (REPO_ROOT / "lib/podkit/src").rglob("*.py"))
    for name, container in by_name(POD["spec"]).items():
        source = podkit + "".join(path.read_text() for path in (REPO_ROOT / SOURCES[name]).rglob("*.py"))
        for variable in env(container):
            base = variable.removesuffix("_FILE")
            assert f'"{variable}"' in source or f'"{base}"' in source, f"{name} does not read {variable}"


def test_the_configmap_and_the_secret_hold_what_the_pod_refers_to() -> None:
    used_keys, secret_keys = set(), set()
    for container in containers(POD["spec"]):
        for item in container.get("env", []):
            ref = item.get("valueFrom", {}).get("configMapKeyRef")
            if ref:
                assert ref["name"] == CONFIGMAP["metadata"]["name"]
                used_keys.add(ref["key"])
    assert used_keys == set(CONFIGMAP["data"]), "unused or missing ConfigMap keys"
    (secret_volume,) = [v for v in POD["spec"]["volumes"] if "secret" in v]
    assert secret_volume["secret"]["secretName"] == SECRET["metadata"]["name"]
    webserver = env(by_name(POD["spec"])["webserver"])
    for variable in ("USERS_FILE", "SESSION_KEY_FILE"):
        secret_keys.add(Path(webserver[variable]["value"]).name)
    assert secret_keys == set(SECRET["stringData"])


def test_the_demo_secret_holds_the_demo_users_file_and_a_long_enough_key() -> None:
    assert SECRET["stringData"]["users.txt"] == (REPO_ROOT / "deploy/demo/users.txt").read_text()
    assert len(SECRET["stringData"]["session-key"].encode()) >= 32
    assert "DEMO" in SECRET["stringData"]["session-key"]


def test_the_images_are_the_ones_make_images_builds() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    for name, container in by_name(POD["spec"]).items():
        built = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", compose["services"][name]["image"])
        assert container["image"] == built, name
