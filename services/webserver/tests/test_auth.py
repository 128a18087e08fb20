"""Every path through Authenticator does the same password work: exactly one argon2 verify, with the configured
parameters, so that neither the answer nor its timing tells the paths apart (webserver/auth.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from argon2 import Parameters, PasswordHasher, extract_parameters
from podkit.sharedstore import StoreUnavailable
from webserver.auth import Authenticator
from webserver.config import Argon2Params
from webserver.events import Reason
from webserver.lockout import Lockout, LockoutPolicy
from webserver.passwords import PasswordChecker
from webserver.users import UsersStore

PASSWORD = "correct horse battery staple"


class DownLockout:
    """A shared lockout whose store cannot be reached (fault injection)."""

    async def begin(self, username: str) -> bool:
        raise StoreUnavailable("injected")

    async def finish(self, username: str, *, success: bool) -> None:
        raise StoreUnavailable("injected")

    async def check_available(self) -> None:
        raise StoreUnavailable("injected")


@pytest.fixture
def verifies(monkeypatch: pytest.MonkeyPatch) -> list[Parameters]:
    """The parameters of the hash each argon2 verify checked, in order."""
    seen: list[Parameters] = []
    real_verify = PasswordHasher.verify

    def counting_verify(hasher: PasswordHasher, stored_hash: str, secret: bytes) -> bool:
        seen.append(extract_parameters(stored_hash))
        return real_verify(hasher, stored_hash, secret)

    monkeypatch.setattr(PasswordHasher, "verify", counting_verify)  # its instances have __slots__
    return seen


def _authenticator(helpers: Any, tmp_path: Path, lockout: LockoutPolicy) -> Authenticator:
    users_file = tmp_path / "users.txt"
    users_file.write_text(f"alice:{helpers.hash_password(PASSWORD)}\n")
    checker = PasswordChecker(Argon2Params.from_env(helpers.fast_argon2), concurrency=1)
    return Authenticator(UsersStore(users_file), checker, lockout)


def _configured(helpers: Any) -> Parameters:
    return extract_parameters(helpers.hash_password("anything"))


@pytest.mark.parametrize(
    ("username", "password", "reason"),
    [
        ("", PASSWORD, "invalid_username"),
        ("alice\u202e", PASSWORD, "invalid_username"),
        ("mallory", PASSWORD, "unknown_user"),
        ("alice", "wrong password", "bad_password"),
        ("alice", PASSWORD, None),
        ("alice", "x" * 2000, "bad_password"),  # over the length cap: still one verify
    ],
)
async def test_each_outcome_runs_exactly_one_verify(
    helpers: Any, tmp_path: Path, verifies: list[Parameters], username: str, password: str, reason: Reason | None
) -> None:
    authenticator = _authenticator(helpers, tmp_path, Lockout(5, 60, 60))
    assert await authenticator.authenticate(username, password, client="198.51.100.7") == reason
    assert verifies == [_configured(helpers)]


async def test_a_locked_out_name_runs_exactly_one_verify(
    helpers: Any, tmp_path: Path, verifies: list[Parameters]
) -> None:
    lockout = Lockout(threshold=1, window_seconds=60, lockout_seconds=60)
    authenticator = _authenticator(helpers, tmp_path, lockout)
    assert await authenticator.authenticate("alice", "wrong password") == "bad_password"
    assert lockout.locked("alice")
    verifies.clear()
    assert await authenticator.authenticate("alice", PASSWORD) == "locked_out"
    assert verifies == [_configured(helpers)]


@pytest.mark.parametrize("username", ["alice", "mallory"])
async def test_a_down_lockout_store_refuses_known_and_unknown_names_before_any_verify(
    helpers: Any, tmp_path: Path, verifies: list[Parameters], username: str
) -> None:
    """StoreUnavailable before any password work, for every name alike (the 503 says nothing about the name)."""
    authenticator = _authenticator(helpers, tmp_path, DownLockout())
    with pytest.raises(StoreUnavailable):
        await authenticator.authenticate(username, PASSWORD)
    assert verifies == []
    assert authenticator.checker.admission.running == 0
