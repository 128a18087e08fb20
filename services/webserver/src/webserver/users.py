"""The users file (`username:$argon2id$...` per line) and the CLI that writes it.

The file is usually a mounted Kubernetes Secret: an update swaps a symlink, so the store compares the
`stat` of the path (following links) and reloads when it changes. A file that does not parse is refused
as a whole and the previous users stay: half a user list is worse than a stale one.

CLI: `python -m webserver.users add --file F USERNAME` (password on stdin, or asked twice on a terminal)
and `python -m webserver.users hash` (a password on stdin, the hash on stdout).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import re
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from argon2 import extract_parameters
from argon2.exceptions import InvalidHashError
from podkit.config import ConfigError, exit_on_config_error
from podkit.files import write_atomic

from webserver.config import Argon2Params
from webserver.passwords import MAX_PASSWORD_CHARS, make_hasher, password_bytes

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


# --- the CLI -----------------------------------------------------------------------------------------------


def _read_password() -> str:
    """Asked twice without echo on a terminal; otherwise the first line of stdin (for scripts)."""
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != first:
            raise SystemExit("error: the passwords differ")
        password = first
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        raise SystemExit("error: empty password")
    if len(password) > MAX_PASSWORD_CHARS:
        raise SystemExit(f"error: the password is longer than {MAX_PASSWORD_CHARS} characters")
    return password


def _hash(password: str) -> str:
    with exit_on_config_error():
        params = Argon2Params.from_env(os.environ)
    return make_hasher(params).hash(password_bytes(password))


def _add(path: Path, username: str, replace: bool) -> str:
    if not USERNAME_RE.fullmatch(username):
        raise SystemExit("error: the username must match [A-Za-z0-9._@-]{1,64}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    try:
        parse_users("\n".join(lines))
    except UsersFileError as exc:
        raise SystemExit(f"error: {path}: {exc}") from None
    existing = [i for i, line in enumerate(lines) if line.strip().partition(":")[0] == username]
    if existing and not replace:
        raise SystemExit(f"error: {username!r} is already in {path} (use --replace to change the password)")
    entry = f"{username}:{_hash(_read_password())}"
    if existing:
        lines[existing[0]] = entry
    else:
        lines.append(entry)
    write_atomic(path, ("\n".join(lines) + "\n").encode("utf-8"))
    return "updated" if existing else "added"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m webserver.users", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a user (password from stdin, or asked twice on a terminal)")
    add.add_argument("--file", required=True, type=Path, help="the users file (created if missing)")
    add.add_argument("--replace", action="store_true", help="change the password of an existing user")
    add.add_argument("username")
    commands.add_parser("hash", help="read a password on stdin, print its argon2id hash")
    args = parser.parse_args(argv)
    if args.command == "hash":
        print(_hash(_read_password()))
    else:
        what = _add(args.file, args.username, args.replace)
        print(f"{what} {args.username} in {args.file}", file=sys.stderr)


if __name__ == "__main__":
    main()
