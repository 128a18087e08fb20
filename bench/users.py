"""The benchmark's users file: the demo user plus a few bench users, hashed with the webserver's own parameters.

Logins rotate over the bench users: the webserver counts attempts in flight per username against its lockout
threshold, so many parallel logins of one user would be refused (locked_out) instead of verified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from webserver.config import Argon2Params
from webserver.passwords import make_hasher, password_bytes

PASSWORD = "bench-password-5f1c"  # noqa: S105 - a throwaway user of a temporary users file


@dataclass(frozen=True)
class BenchUsers:
    path: Path
    prefix: str
    count: int
    password: str = PASSWORD

    def name(self, index: int) -> str:
        return f"{self.prefix}{index % self.count}"


def write_users_file(path: Path, demo_users_file: Path, environ: Mapping[str, str], count: int = 16) -> BenchUsers:
    """The demo users file's lines plus `count` bench users, with the argon2id parameters the webserver uses."""
    hasher = make_hasher(Argon2Params.from_env(environ))
    users = BenchUsers(path, "bench-user-", count)
    lines = demo_users_file.read_text().splitlines() if demo_users_file.exists() else []
    lines += [f"{users.name(i)}:{hasher.hash(password_bytes(users.password))}" for i in range(count)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return users
