"""The users file (`username:$argon2id$...` per line): parsing it, and the store that reloads it.

The file is usually a mounted Kubernetes Secret: an update swaps a symlink, so the store compares the
`stat` of the path (following links) and reloads when it changes. A file that does not parse is refused
as a whole and the previous users stay: half a user list is worse than a stale one.

The CLI that writes the file is webserver.users_cli; `python -m webserver.users` runs it.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from argon2 import extract_parameters
from argon2.exceptions import InvalidHashError
from podkit.config import ConfigError

log = logging.getLogger("webserver.users")

USERNAME_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}")
HASH_PREFIX = "$argon2id$"


class UsersFileError(ValueError):
    """The users file cannot be used; the message names the line (never a hash)."""


def parse_users(text: str) -> dict[str, str]:
    """Username -> argon2id hash from the file's text; raises UsersFileError on any bad line."""
    users: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        username, sep, stored_hash = line.partition(":")
        if not sep or not USERNAME_RE.fullmatch(username):
            raise UsersFileError(f"line {number}: expected username:hash with a username of [A-Za-z0-9._@-]{{1,64}}")
        if not stored_hash.startswith(HASH_PREFIX):
            raise UsersFileError(f"line {number}: the hash of {username!r} is not argon2id")
        try:
            extract_parameters(stored_hash)
        except InvalidHashError:
            raise UsersFileError(f"line {number}: the hash of {username!r} is malformed") from None
        if username in users:
            raise UsersFileError(f"line {number}: {username!r} appears twice")
        users[username] = stored_hash
    return users


def read_users(path: Path) -> dict[str, str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsersFileError(f"cannot read: {exc.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsersFileError("not UTF-8") from None
    return parse_users(text)


def check_users_file(path: Path) -> None:
    """At start-up: a USERS_FILE that exists but can never be read is a configuration error (ConfigError: the
    process exits 2 naming the variable). A missing one is not: a Secret may still bring it, and readiness
    reports it until it appears."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ConfigError("USERS_FILE", f"cannot read {path}: {exc.strerror}") from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError("USERS_FILE", f"{path} is a directory, not a users file")
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError("USERS_FILE", f"{path} is not a regular file")
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK))
    except OSError as exc:
        raise ConfigError("USERS_FILE", f"cannot read {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class _FileIdentity:
    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int


def _identity(path: Path) -> _FileIdentity | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return _FileIdentity(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class UsersStore:
    """The users of the file at `path`, reloaded when the file changes."""

    def __init__(
        self,
        path: Path,
        *,
        on_change: Callable[[Mapping[str, str]], None] | None = None,
        on_error: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self._users: dict[str, str] | None = None
        self._seen: _FileIdentity | None = None
        self._on_change = on_change
        self._on_error = on_error
        self.last_error: str | None = None

    @property
    def loaded(self) -> bool:
        return self._users is not None

    def __len__(self) -> int:
        return len(self._users or {})

    def get_hash(self, username: str) -> str | None:
        return (self._users or {}).get(username)

    def __contains__(self, username: object) -> bool:
        return isinstance(username, str) and username in (self._users or {})

    def refresh(self) -> bool:
        """Reload if the file changed since the last look (one `stat`); True when a new set was taken."""
        identity = _identity(self.path)
        if identity is not None and identity == self._seen:
            return False
        self._seen = identity
        try:
            users = read_users(self.path)
        except UsersFileError as exc:
            self.last_error = str(exc)
            kept = "keeping the previous users" if self.loaded else "no users loaded"
            log.error("users file rejected, %s", kept, extra={"path": str(self.path), "problem": str(exc)})
            if self._on_error is not None:
                self._on_error()
            return False
        self.last_error = None
        changed = users != self._users
        self._users = users
        if changed:
            log.info("users loaded", extra={"path": str(self.path), "users": len(users)})
            if self._on_change is not None:
                self._on_change(users)
        return changed


if __name__ == "__main__":  # `python -m webserver.users ...`, the command the docs give, is the CLI's
    from webserver.users_cli import main

    main()
