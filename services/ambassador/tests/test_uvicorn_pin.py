"""The performance exception fenced: ambassador.protocol subclasses uvicorn's private HttpToolsProtocol, so the
ambassador runs only on the uvicorn release it was written for, pinned exactly, and refuses another at start-up."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import pytest
import uvicorn
from ambassador.protocol import SUBCLASSED_UVICORN, check_uvicorn
from podkit.config import UnsupportedRelease

ROOT = Path(__file__).resolve().parents[3]


def test_the_subclassed_release_is_pinned_locked_and_installed() -> None:
    check_uvicorn(uvicorn)  # the release installed from the lock file: accepted
    assert uvicorn.__version__ == SUBCLASSED_UVICORN
    project = tomllib.loads((ROOT / "services/ambassador/pyproject.toml").read_text())["project"]
    assert f"uvicorn[standard]=={SUBCLASSED_UVICORN}" in project["dependencies"]
    lock = (ROOT / "requirements/lock.txt").read_text()
    assert re.findall(r"^uvicorn==(\S+)$", lock, re.MULTILINE) == [SUBCLASSED_UVICORN]


def test_another_uvicorn_is_refused_with_both_versions() -> None:
    newer = ModuleType("uvicorn")
    newer.__version__ = "0.99.0"  # type: ignore[attr-defined]
    with pytest.raises(
        UnsupportedRelease, match=r"uvicorn 0\.54\.0's HttpToolsProtocol, but uvicorn 0\.99\.0"
    ) as caught:
        check_uvicorn(newer)
    assert caught.value.name == "uvicorn"
    with pytest.raises(UnsupportedRelease, match="but uvicorn None is installed"):
        check_uvicorn(ModuleType("uvicorn"))


def test_the_ambassador_does_not_start_with_another_uvicorn(tmp_path: Path) -> None:
    """The start-up check as an operator meets it: exit 2 and one line naming both versions."""
    fake = tmp_path / "site" / "uvicorn"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('__version__ = "0.99.0"\n')
    env = {**os.environ, "PYTHONPATH": str(fake.parent), "AMBASSADOR_HOST": "127.0.0.1", "AMBASSADOR_PORT": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "ambassador"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("startup error: ambassador.protocol subclasses uvicorn 0.54.0's")
    assert "uvicorn 0.99.0 is installed" in result.stderr
    assert f"uvicorn=={SUBCLASSED_UVICORN}" in result.stderr
