"""k8s/scale-out/'s shared store wiring (issue 10): the Deployment, its ConfigMap, the example Redis agree."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import yaml
from kubepod import K8S, REPO_ROOT
from podkit.sharedstore import StoreSettings

SCALE_OUT = K8S / "scale-out"
DEPLOYMENT = yaml.safe_load((SCALE_OUT / "deployment.yaml").read_text())
SHARED_STATE = yaml.safe_load((SCALE_OUT / "shared-state.yaml").read_text())
EXAMPLE = {doc["kind"]: doc for doc in yaml.safe_load_all((SCALE_OUT / "redis-example.yaml").read_text())}


def containers() -> dict[str, dict[str, object]]:
    return {c["name"]: c for c in DEPLOYMENT["spec"]["template"]["spec"]["containers"]}


def test_the_webserver_and_the_ambassador_take_redis_from_the_configmap_and_the_secret() -> None:
    spec = DEPLOYMENT["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    assert volumes["redis-secret"]["secret"]["secretName"] == "loginpod-redis"
    for name, container in containers().items():
        env = {item["name"]: item for item in container.get("env", [])}  # type: ignore[attr-defined]
        if name not in ("webserver", "ambassador"):
            assert "REDIS_URL" not in env, name
            continue
        ref = env["REDIS_URL"]["valueFrom"]["configMapKeyRef"]
        assert ref == {"name": SHARED_STATE["metadata"]["name"], "key": "REDIS_URL"}
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}  # type: ignore[attr-defined]
        assert env["REDIS_PASSWORD_FILE"]["value"] == mounts["redis-secret"] + "/password"


def test_the_configmap_points_at_the_example_service_and_is_valid_for_the_services() -> None:
    url = SHARED_STATE["data"]["REDIS_URL"]
    settings = StoreSettings.from_env({"REDIS_URL": url})
    assert settings is not None
    parts = urlsplit(url)
    service = EXAMPLE["Service"]
    assert parts.hostname == service["metadata"]["name"]
    assert parts.port == service["spec"]["ports"][0]["port"]


def test_the_example_redis_is_selected_apart_from_the_login_pods_and_only_they_reach_it() -> None:
    deployment, service, policy = EXAMPLE["Deployment"], EXAMPLE["Service"], EXAMPLE["NetworkPolicy"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    login_selector = DEPLOYMENT["spec"]["selector"]["matchLabels"]
    assert not login_selector.items() <= labels.items()  # the loginpod Service never sends traffic to Redis
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    (rule,) = policy["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": login_selector}}]
    assert deployment["spec"]["template"]["spec"]["volumes"][2]["secret"]["secretName"] == "loginpod-redis"


def test_the_example_redis_image_is_the_one_make_images_peers_builds() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    built = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", compose["services"]["redis"]["image"])
    (container,) = EXAMPLE["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == built
