"""Run k8s/pod.yaml as a real pod with `podman kube play`, and take it down again.

    python ops/kubeplay.py up [--name loginpod] [--host-port 8080] [--host-ip 127.0.0.1]
    python ops/kubeplay.py down [--name loginpod]

`make pod-up` / `make pod-down` and tests/k8s use it. The pod played is k8s/pod.yaml with the ConfigMap of
k8s/configmap.yaml and the demo Secret of k8s/demo/secret-demo.yaml, in a temporary copy that changes
only what podman needs or what keeps two pods on one machine apart:
- the pod's name;
- a hostPort on the ambassador's port 80 (8080 unless told otherwise, on the host's loopback unless told
  otherwise): k8s/pod.yaml has none, as the Pod Security Standards forbid it;
- the other ports are left out: podman 4.3 publishes a port without a hostPort on the host's same port;
- the names of the volumes and of the Secret get the pod's name as a prefix: podman 4.3 turns each into a
  machine-wide named volume (or secret) of that name, and keeps the volumes after the pod is gone;
- the Secret is stored for podman 4.3, which copies a Secret's `data` into the volume without decoding it
  and ignores `stringData`: the values are handed over decoded.
Podman must be set up first (ops/podman-setup.sh images).
"""

from __future__ import annotations

import argparse
import base64
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
POD = ROOT / "k8s" / "pod.yaml"
CONFIGMAP = ROOT / "k8s" / "configmap.yaml"
SECRET = ROOT / "k8s" / "demo" / "secret-demo.yaml"
ENTRY = ("ambassador", "http")  # the container and port that the hostPort publishes
HOST_PORT = 8080


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], check=check, capture_output=True, text=True)


def render_pod(pod: dict[str, Any], name: str, host_port: int, host_ip: str) -> dict[str, Any]:
    """The pod under `name`, its volumes and Secret prefixed with it, the ambassador on `host_port`."""
    pod["metadata"]["name"] = name
    spec = pod["spec"]
    renamed = {volume["name"]: f"{name}-{volume['name']}" for volume in spec["volumes"]}
    for volume in spec["volumes"]:
        volume["name"] = renamed[volume["name"]]
        if "secret" in volume:
            volume["secret"]["secretName"] = f"{name}-{volume['secret']['secretName']}"
    for container in spec["containers"]:
        for mount in container.get("volumeMounts", []):
            mount["name"] = renamed[mount["name"]]
        if container["name"] == ENTRY[0]:
            for port in container["ports"]:
                if port["name"] == ENTRY[1]:
                    port["hostIP"] = host_ip
                    port["hostPort"] = host_port
        # podman 4.3 publishes a containerPort without a hostPort on the host's same port, on every
        # address (Kubernetes never publishes it): only the hostPort stays.
        ports = [port for port in container.get("ports", []) if "hostPort" in port]
        if ports:
            container["ports"] = ports
        else:
            container.pop("ports", None)
    return pod


def secret_for_podman(secret: dict[str, Any], name: str) -> dict[str, Any]:
    """The Secret as podman 4.3 reads it: every value, decoded, under `data`."""
    values = {key: base64.b64decode(value).decode() for key, value in (secret.get("data") or {}).items()}
    values.update(secret.get("stringData") or {})
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{name}-{secret['metadata']['name']}"},
        "type": secret.get("type", "Opaque"),
        "data": values,
    }


def down(name: str) -> None:
    """Remove the pod, its volumes and its Secret; quiet about what is not there."""
    if podman("pod", "exists", name, check=False).returncode == 0:
        podman("pod", "stop", "--time", "15", name, check=False)
        podman("pod", "rm", "--force", name)
    pod = yaml.safe_load(POD.read_text())
    for volume in pod["spec"]["volumes"]:
        if "secret" in volume:
            podman("secret", "rm", f"{name}-{volume['secret']['secretName']}", check=False)
        podman("volume", "rm", "--force", f"{name}-{volume['name']}", check=False)
        if "secret" in volume:
            podman("volume", "rm", "--force", f"{name}-{volume['secret']['secretName']}", check=False)


def wait_ready(url: str, deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (our own pod on loopback)
                if response.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.25)
    raise TimeoutError(f"{url} not ready after {deadline_s:.0f} s: {last}")


def up(name: str, host_port: int, host_ip: str, wait_s: float, configmap: Path = CONFIGMAP) -> str:
    """Play the pod and wait until the ambassador's /readyz answers 200 through the hostPort; its URL."""
    down(name)
    pod = render_pod(yaml.safe_load(POD.read_text()), name, host_port, host_ip)
    secret = secret_for_podman(yaml.safe_load(SECRET.read_text()), name)
    with tempfile.TemporaryDirectory(prefix="kubeplay-") as tmp:
        pod_file, secret_file = Path(tmp) / "pod.yaml", Path(tmp) / "secret.yaml"
        pod_file.write_text(yaml.safe_dump(pod, sort_keys=False))
        secret_file.write_text(yaml.safe_dump(secret, sort_keys=False))
        podman("secret", "create", secret["metadata"]["name"], str(secret_file))
        played = podman("kube", "play", "--configmap", str(configmap), str(pod_file), check=False)
        if played.returncode != 0:
            raise RuntimeError(f"podman kube play failed: {played.stderr.strip()}")
    url = f"http://{host_ip}:{host_port}"
    wait_ready(f"{url}/readyz", wait_s)
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python ops/kubeplay.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("up", help="play the pod and wait until it is ready")
    start.add_argument("--name", default="loginpod")
    start.add_argument("--host-port", type=int, default=HOST_PORT, help="the ambassador's port on the host")
    start.add_argument("--host-ip", default="127.0.0.1", help="the host address the hostPort binds")
    start.add_argument("--wait", type=float, default=120.0, help="seconds to wait for /readyz")
    start.add_argument("--configmap", type=Path, default=CONFIGMAP, help="default: k8s/configmap.yaml")
    stop = commands.add_parser("down", help="remove the pod, its volumes and its Secret")
    stop.add_argument("--name", default="loginpod")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            url = up(args.name, args.host_port, args.host_ip, args.wait, args.configmap)
            print(f"pod {args.name} is ready: {url}/  (demo / demo-password)")
        else:
            down(args.name)
            print(f"pod {args.name} removed")
    except (RuntimeError, TimeoutError, subprocess.CalledProcessError) as exc:
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else str(exc)
        print(f"kubeplay: {detail}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
