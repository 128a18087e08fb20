from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from adapter.converter import Converter
from adapter.documents import write_document
from adapter.metrics import Metrics
from adapter.resume import read_checkpoint, resume_position, write_checkpoint
from lxml import etree
from podkit.volume import ADAPTER, SegmentOffset, Volume


def convert_all(shared: Path, *, resumed_at: SegmentOffset | None = None) -> bool:
    """A new converter (a restart) converting everything; checks where it resumed when `resumed_at` is given."""
    converter = Converter(Volume(shared), Metrics(), 2)
    converter.resume()
    assert resumed_at is None or converter.position == resumed_at
    while converter.step().progressed:
        pass
    return True


def test_the_checkpoint_is_the_volume_contracts_versioned_offset(shared: Path) -> None:
    volume = Volume(shared)
    volume.create(ADAPTER)
    write_checkpoint(volume, SegmentOffset(3, 77))
    assert json.loads(volume.conversion_checkpoint.read_text()) == {
        "version": 1,
        "segment": "events-00000003.jsonl",
        "offset": 77,
    }
    assert read_checkpoint(volume) == SegmentOffset(3, 77)


def test_resume_takes_the_furthest_of_checkpoint_and_newest_document(shared: Path) -> None:
    volume = Volume(shared)
    volume.create(ADAPTER)
    assert resume_position(volume) is None
    write_document(volume, 1, 0, 100, b"<events/>")
    assert resume_position(volume) == SegmentOffset(1, 100)  # no checkpoint yet
    write_checkpoint(volume, SegmentOffset(1, 100))
    write_document(volume, 1, 100, 250, b"<events/>")  # crash before its checkpoint
    assert resume_position(volume) == SegmentOffset(1, 250)
    write_document(volume, 2, 0, 30, b"<events/>")
    assert resume_position(volume) == SegmentOffset(2, 30)
    write_checkpoint(volume, SegmentOffset(2, 90))  # dead letters only after the last
    assert resume_position(volume) == SegmentOffset(2, 90)


def test_resume_survives_a_malformed_checkpoint_and_removes_temporary_files(shared: Path) -> None:
    volume = Volume(shared)
    volume.create(ADAPTER)
    write_document(volume, 1, 0, 100, b"<events/>")
    volume.conversion_checkpoint.write_text("{not json")
    leftover = volume.xml_dir / ".events-00000001.jsonl.000000000100-000000000200.xml.tmp"
    leftover.write_bytes(b"<events><ev")
    assert resume_position(volume) == SegmentOffset(1, 100)
    assert not leftover.exists()
    volume.conversion_checkpoint.write_text('{"segment": "elsewhere", "offset": 1}')
    assert read_checkpoint(volume) is None
    volume.conversion_checkpoint.write_text('{"version": 2, "segment": "events-00000001.jsonl", "offset": 1}')
    assert read_checkpoint(volume) is None  # a newer format is not guessed at


def test_a_restart_after_the_upgrade_resumes_from_the_old_checkpoint_format(
    shared: Path, kit: Any, xsd: etree.XMLSchema
) -> None:
    """xml.json as releases before the versioned checkpoint wrote it (no "version"), and no document left:
    the upgraded adapter converts exactly what came after it, and rewrites the checkpoint as version 1."""
    old = kit.event_lines([kit.make_event(username="before")])
    new_events = [kit.make_event(username="after") for _ in range(3)]
    kit.append_segment(shared, 1, old + kit.event_lines(new_events))
    state = shared / "state" / "adapter"
    state.mkdir(parents=True)
    (state / "xml.json").write_text(json.dumps({"segment": "events-00000001.jsonl", "offset": len(old)}))

    assert convert_all(shared, resumed_at=SegmentOffset(1, len(old)))
    first_name = kit.read_documents(shared, xsd)[0][0]
    assert first_name.startswith(f"events-00000001.jsonl.{len(old):012d}-")  # nothing before the checkpoint
    assert kit.converted_ids(shared, xsd) == [event["event_id"] for event in new_events]
    assert kit.checkpoint(shared) == {
        "version": 1,
        "segment": "events-00000001.jsonl",
        "offset": (shared / "events" / "events-00000001.jsonl").stat().st_size,
    }


def test_deleting_state_does_not_make_the_adapter_start_over(shared: Path, kit: Any, xsd: etree.XMLSchema) -> None:
    """What the README says of an operator deleting state/: the newest document says how far conversion got."""
    first = [kit.make_event() for _ in range(5)]
    kit.append_segment(shared, 1, kit.event_lines(first))
    convert_all(shared)
    shutil.rmtree(shared / "state")
    later = [kit.make_event() for _ in range(3)]
    kit.append_segment(shared, 1, kit.event_lines(later))
    convert_all(shared)  # a restart with no checkpoint
    assert kit.converted_ids(shared, xsd) == [event["event_id"] for event in first + later]  # each once
