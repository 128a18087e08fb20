"""Print the third-party runtime requirements of the given pyproject.toml files, one per line.

Our own packages (loginpod-*) are left out: they are built from source. Used on the host to download the
wheels of the air-gapped build (ops/wheels.sh) and in the images to install the dependencies in a layer of
their own, rebuilt only when a pyproject.toml or the lock changes.
"""

import sys
import tomllib
from pathlib import Path

requirements = {"setuptools>=68"} if "--with-build-backend" in sys.argv else set()
for path in (arg for arg in sys.argv[1:] if not arg.startswith("--")):
    project = tomllib.loads(Path(path).read_text())["project"]
    requirements.update(dep for dep in project["dependencies"] if not dep.startswith("loginpod-"))
print("\n".join(sorted(requirements)))
