"""The four Dockerfiles are one file in four copies: Docker has no include, and each service's Dockerfile must
build on its own (`docker build -f services/<name>/Dockerfile .`). This keeps the copies from drifting."""

from __future__ import annotations

from pathlib import Path

import pytest

SERVICES = Path(__file__).resolve().parents[2] / "services"
REFERENCE = "webserver"
# service directory -> (Python package, port its health check probes)
DIFFERENCES = {
    "webserver": ("webserver", "8080"),
    "ambassador": ("ambassador", "80"),
    "login-sidecar": ("login_sidecar", "9101"),
    "adapter": ("adapter", "9102"),
}


def expected_dockerfile(service: str) -> str:
    package, port = DIFFERENCES[service]
    text = (SERVICES / REFERENCE / "Dockerfile").read_text()
    text = text.replace("127.0.0.1:8080/", f"127.0.0.1:{port}/").replace("EXPOSE 8080", f"EXPOSE {port}")
    text = text.replace('"-m", "webserver"', f'"-m", "{package}"')
    return text.replace(REFERENCE, service)


@pytest.mark.parametrize("service", sorted(DIFFERENCES))
def test_each_dockerfile_is_the_reference_but_for_its_names_and_port(service: str) -> None:
    assert (SERVICES / service / "Dockerfile").read_text() == expected_dockerfile(service)


def test_the_images_run_as_a_fixed_non_root_user_with_the_mount_paths_they_write() -> None:
    text = (SERVICES / REFERENCE / "Dockerfile").read_text()
    assert "USER 10001:10001" in text
    assert "chown 10001:10001 /shared /var/log/loginpod" in text
