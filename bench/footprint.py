"""Footprint: resident memory of each service of the running pod, and the size of the images when built."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from bench.pod import BenchPod
from bench.system import mb, tree_kib


def rss(pod: BenchPod) -> dict[str, float | None]:
    """VmRSS of each service (with any child processes), in MB."""
    return {name: (mb(tree_kib(pid, "VmRSS")) if pid else None) for name, pid in pod.pids().items()}


def peak_rss(pod: BenchPod) -> dict[str, float | None]:
    return {name: (mb(tree_kib(pid, "VmHWM")) if pid else None) for name, pid in pod.pids().items()}


def images() -> dict[str, Any]:
    """`docker images loginpod/*` with their sizes; a reason instead when there is no engine or no image."""
    if shutil.which("docker") is None:
        return {"available": False, "reason": "no docker client"}
    try:
        listed = subprocess.run(
            ["docker", "images", "--filter", "reference=loginpod/*", "--format", "{{json .}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"available": False, "reason": f"docker images: {exc}"}
    if listed.returncode != 0:
        return {"available": False, "reason": (listed.stderr.strip() or "docker images failed")[:300]}
    found: dict[str, Any] = {}
    for line in listed.stdout.splitlines():
        row = json.loads(line)
        name = f"{row['Repository']}:{row['Tag']}"
        inspected = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{.Size}}", row["ID"]],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        size = int(inspected.stdout.strip()) if inspected.stdout.strip().isdigit() else None
        found[name] = {
            "id": row["ID"],
            "size_mb": round(size / 1e6, 1) if size else None,
            "created": row.get("CreatedAt"),
        }
    if not found:
        return {"available": False, "reason": "no loginpod/* image built on this machine"}
    return {"available": True, "images": found}
