"""tail.json as its readers see it: the sidecar's own restart, and the webserver's rotation (podkit.rotation)."""

from __future__ import annotations

from pathlib import Path

from login_sidecar.checkpoint import TailCheckpoint, load_tail, save_tail
from login_sidecar.fingerprint import SourcePosition
from podkit import rotation
from podkit.volume import SegmentOffset


def test_tail_checkpoint_round_trips_and_tells_the_webserver_where_the_sidecar_is(tmp_path: Path) -> None:
    path = tmp_path / "tail.json"
    assert rotation.reader_position(path) is None  # no checkpoint yet: the webserver holds nothing
    source = SourcePosition(dev=5, ino=123456, offset=4096, head_len=64, head_sha256="ab" * 32)
    checkpoint = TailCheckpoint(source, SegmentOffset.from_json({"segment": "events-00000003.jsonl", "offset": 77}))
    save_tail(path, checkpoint, tmp_path / "events.jsonl")
    assert load_tail(path) == checkpoint
    assert rotation.reader_position(path) == (123456, 4096)
    save_tail(path, TailCheckpoint(None, checkpoint.written), tmp_path / "events.jsonl")
    assert rotation.reader_position(path) is None


def test_an_unreadable_checkpoint_holds_nothing_and_raises_nothing_in_the_webserver(tmp_path: Path) -> None:
    path = tmp_path / "tail.json"
    path.write_bytes(b'{"source": {"ino": "x"')
    assert rotation.reader_position(path) is None
