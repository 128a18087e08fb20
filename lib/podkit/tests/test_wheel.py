"""The runtime wheel of podkit (what the images install) holds the services' plumbing and no test support."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

PODKIT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_no_test_support(tmp_path: Path) -> None:
    source = tmp_path / "podkit"  # a copy: building in place would leave build/ in the work tree
    shutil.copytree(PODKIT, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "tests", "__pycache__"))
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path]
    subprocess.run([*command, source], check=True, capture_output=True)
    [wheel] = tmp_path.glob("*.whl")
    modules = {name for name in zipfile.ZipFile(wheel).namelist() if name.startswith("podkit/")}
    assert "podkit/volume.py" in modules
    assert "podkit/watch.py" in modules
    assert not [name for name in modules if "testing" in name]
