"""A RELP client on asyncio: syslog messages the receiver acknowledges one by one (rsyslog's imrelp).

RELP (librelp's protocol, https://www.rsyslog.com/doc/relp.html) frames every command as
`TXNR SP COMMAND SP DATALEN [SP DATA] LF`. A session opens with `open` (offering `relp_version=0` and
`commands=syslog`), sends each message as a `syslog` command with the next transaction number (1 to
999,999,999, then 1 again), and the server answers each with `TXNR rsp LEN 200 OK` once it has taken the
message. `close` ends the session; the server may send `0 serverclose 0` at any time, which ends it too.

`send` writes up to WINDOW messages before it reads their answers (as librelp's own client does) and
returns only when every message of the batch was answered `200`: anything else (a refusal, a timeout, a
dropped connection, a server close) raises RelpError, and the caller sends the whole batch again on a new
session. Messages the server had already acknowledged then arrive twice: receivers deduplicate on event_id.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

WINDOW: Final = 128
MAX_TXNR: Final = 999_999_999
MAX_RESPONSE_BYTES: Final = 128 * 1024
OFFER: Final = b"relp_version=0\nrelp_software=loginpod-sidecar\ncommands=syslog"


class RelpError(Exception):
    """The session cannot go on (connection lost, refused message, protocol error): retry on a new one."""


def frame(txnr: int, command: bytes, data: bytes = b"") -> bytes:
    if data:
        return b"%d %s %d %s\n" % (txnr, command, len(data), data)
    return b"%d %s 0\n" % (txnr, command)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes, bytes]:
    """One frame from the server: (txnr, command, data)."""
    try:
        txnr = int(await _token(reader, 10))
        command = await _token(reader, 32)
        length_text = bytearray()
        while True:
            byte = await reader.readexactly(1)
            if byte in (b" ", b"\n"):
                break
            length_text += byte
            if len(length_text) > 9:
                raise RelpError("DATALEN too long")
        length = int(length_text)
        if length > MAX_RESPONSE_BYTES:
            raise RelpError(f"response of {length} bytes")
        if byte == b"\n":
            if length:
                raise RelpError("frame ends before its data")
            return txnr, command, b""
        data = await reader.readexactly(length) if length else b""
        if await reader.readexactly(1) != b"\n":
            raise RelpError("frame without its LF trailer")
    except (asyncio.IncompleteReadError, ConnectionError) as exc:
        raise RelpError(f"connection lost: {exc}") from exc
    except ValueError as exc:
        raise RelpError(f"malformed frame: {exc}") from exc
    return txnr, command, data


async def _token(reader: asyncio.StreamReader, limit: int) -> bytes:
    token = bytearray()
    while True:
        byte = await reader.readexactly(1)
        if byte == b" ":
            return bytes(token)
        token += byte
        if len(token) > limit:
            raise RelpError("frame header field too long")


class RelpSession:
    """One RELP session over TCP; `open` once, `send` batches, `close` when done or broken."""

    def __init__(self, host: str, port: int, *, timeout: float) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._txnr = 0

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    def _next_txnr(self) -> int:
        self._txnr = self._txnr % MAX_TXNR + 1
        return self._txnr

    async def open(self) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port), self.timeout
            )
        except (OSError, TimeoutError) as exc:
            raise RelpError(f"cannot connect: {type(exc).__name__}: {exc}") from exc
        self._txnr = 0
        txnr = self._next_txnr()
        try:
            await self._exchange([frame(txnr, b"open", OFFER)], {txnr})
        except RelpError:
            self.abort()
            raise

    async def send(self, messages: list[bytes]) -> None:
        """Returns once the server acknowledged every message with 200; RelpError otherwise (session aborted).
        The session must be open."""
        if self._writer is None:
            raise RelpError("the session is not open")
        try:
            for start in range(0, len(messages), WINDOW):
                frames, pending = [], set()
                for message in messages[start : start + WINDOW]:
                    txnr = self._next_txnr()
                    frames.append(frame(txnr, b"syslog", message))
                    pending.add(txnr)
                await self._exchange(frames, pending)
        except RelpError:
            self.abort()
            raise

    async def _exchange(self, frames: list[bytes], pending: set[int]) -> None:
        assert self._reader is not None
        assert self._writer is not None
        try:
            self._writer.write(b"".join(frames))
            await asyncio.wait_for(self._writer.drain(), self.timeout)
            while pending:
                txnr, command, data = await asyncio.wait_for(read_frame(self._reader), self.timeout)
                if command == b"serverclose":
                    raise RelpError("the server closed the session")
                if command != b"rsp" or txnr not in pending:
                    raise RelpError(f"unexpected frame {txnr} {command!r}")
                if not data.startswith(b"200"):
                    status = data.split(b"\n", 1)[0].decode("utf-8", "replace")
                    raise RelpError(f"the server refused transaction {txnr}: {status}")
                pending.discard(txnr)
        except (OSError, TimeoutError) as exc:
            raise RelpError(f"{type(exc).__name__}: {exc}") from exc

    async def close(self) -> None:
        """A polite `close` (answered by `rsp`), then the connection; never raises."""
        if self._writer is None:
            return
        with contextlib.suppress(RelpError, OSError, TimeoutError):
            txnr = self._next_txnr()
            self._writer.write(frame(txnr, b"close"))
            await asyncio.wait_for(self._writer.drain(), self.timeout)
            assert self._reader is not None
            await asyncio.wait_for(read_frame(self._reader), self.timeout)
        self.abort()

    def abort(self) -> None:
        if self._writer is not None:
            writer, self._writer, self._reader = self._writer, None, None
            writer.close()
