"""The README keeps up with the tree: it names every `make help` target and maps every top-level directory."""

from __future__ import annotations

import re
import subprocess

from support import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def make_targets() -> list[str]:
    """What `make help` lists: the Makefile's targets with a `## ` description."""
    makefile = (REPO_ROOT / "Makefile").read_text()
    return re.findall(r"^([a-z0-9-]+):.*## ", makefile, flags=re.MULTILINE)


def test_the_readme_names_every_make_target() -> None:
    targets = make_targets()
    assert len(targets) >= 17
    missing = [target for target in targets if f"`make {target}`" not in README]
    assert not missing, f"make help lists targets the README does not name: {missing}"


def test_the_readme_maps_every_top_level_directory() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    directories = sorted({path.split("/")[0] for path in tracked if "/" in path and not path.startswith(".")})
    map_section = README.split("## Where things are", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in directories if f"`{name}/" not in map_section]
    assert not missing, f"the README's 'Where things are' leaves out: {missing}"
