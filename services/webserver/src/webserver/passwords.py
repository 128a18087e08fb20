"""argon2id hashing and verification that never blocks the event loop and costs the same for every attempt.

An unknown user is checked against a dummy hash made at start-up with the configured parameters, so the
time an attempt takes does not tell whether the name exists. Verification runs in a worker thread, at most
one per CPU at a time: more threads would only queue inside the CPU and use more memory. Attempts beyond that
wait in a bounded queue (webserver.admission): past ARGON2_MAX_WAITING they are refused at once (Overloaded).
The hashing threads run at a lower CPU priority (nice +10): under a flood the event loop, which answers the
probes and the 503s, and the ambassador beside it come first, and hashing takes what is left.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import secrets
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from webserver.admission import VerifyAdmission
from webserver.config import Argon2Params

log = logging.getLogger("webserver.passwords")

HASHING_NICENESS = 10  # added to the hashing threads' nice value

# Longer passwords are refused, and never hashed beyond this many characters (ASVS allows a cap of 64+).
MAX_PASSWORD_CHARS = 1024


def make_hasher(params: Argon2Params) -> PasswordHasher:
    return PasswordHasher(
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=32,
        salt_len=16,
        type=Type.ID,
    )


def password_bytes(password: str) -> bytes:
    """UTF-8 of the password; `surrogatepass` so a lone surrogate from JSON cannot make the encoder raise."""
    return password.encode("utf-8", "surrogatepass")


def usable_cpus(cgroup_cpu_max: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """CPUs this process may use: its affinity, capped by a cgroup v2 CPU quota (a container's CPU limit).

    Each verify holds ARGON2_MEMORY_KIB for its duration, so the number run at once bounds the memory a login
    burst can take; a container limited to one CPU on a 64-core node must not run 64 at once.
    """
    try:
        cpus = len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # pragma: no cover - not Linux
        cpus = os.cpu_count() or 1
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def _lower_priority() -> None:
    """Thread initializer: this thread yields the CPU to the process's others (Linux: nice is per thread)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + HASHING_NICENESS)
    except OSError as exc:  # pragma: no cover - refused by a sandbox: hashing still works
        log.warning("cannot lower the hashing threads' priority", extra={"error": str(exc)})


class PasswordChecker:
    """Verifies passwords against stored hashes, or against the dummy hash when there is none."""

    def __init__(self, params: Argon2Params, concurrency: int | None = None, max_waiting: int | None = None) -> None:
        self.hasher = make_hasher(params)
        self._dummy_hash = self.hasher.hash(secrets.token_bytes(32))
        slots = concurrency or usable_cpus()
        self.admission = VerifyAdmission(slots, params.max_waiting if max_waiting is None else max_waiting)
        # Threads of their own: the default executor stays free for file I/O (the events file, aiofiles).
        self._executor = ThreadPoolExecutor(slots, thread_name_prefix="argon2", initializer=_lower_priority)

    @asynccontextmanager
    async def admitted(self, client: str) -> AsyncIterator[None]:
        """A verify slot for `client` for the block (verify_admitted inside it); raises Overloaded."""
        async with self.admission.slot(client):
            yield

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when a stored hash was made with other parameters (its verify time would differ)."""
        try:
            return self.hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    async def verify(self, stored_hash: str | None, password: str, *, client: str = "") -> bool:
        """True only when `stored_hash` is given and matches; the same work is done in every case."""
        async with self.admitted(client):
            return await self.verify_admitted(stored_hash, password)

    async def verify_admitted(self, stored_hash: str | None, password: str) -> bool:
        """`verify` for a caller that holds a slot (`admitted`)."""
        too_long = len(password) > MAX_PASSWORD_CHARS
        secret = password_bytes(password[:MAX_PASSWORD_CHARS])
        target = self._dummy_hash if stored_hash is None else stored_hash
        matched = await asyncio.get_running_loop().run_in_executor(self._executor, self._verify_sync, target, secret)
        return matched and stored_hash is not None and not too_long

    def _verify_sync(self, stored_hash: str, secret: bytes) -> bool:
        try:
            return self.hasher.verify(stored_hash, secret)
        except (VerificationError, InvalidHashError):
            return False
