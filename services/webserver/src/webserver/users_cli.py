"""`python -m webserver.users`: add a user to the users file, or hash a password (argon2id).

`add --file F USERNAME` (password on stdin, or asked twice on a terminal; `--replace` changes a password)
and `hash` (a password on stdin, the hash on stdout). The file is parsed first (one the webserver would
refuse is left as it is, with the error) and replaced atomically. The argon2 parameters come from the same
ARGON2_* variables the webserver reads.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from podkit.config import exit_on_config_error
from podkit.files import write_atomic

from webserver.config import Argon2Params
from webserver.passwords import MAX_PASSWORD_CHARS, make_hasher, password_bytes
from webserver.users import USERNAME_RE, UsersFileError, parse_users


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
