from __future__ import annotations

from pathlib import Path

from adapter.documents import (
    Layout,
    Position,
    document_name,
    parse_document_name,
    read_checkpoint,
    resume_position,
    write_checkpoint,
    write_document,
)


def test_document_names_sort_in_stream_order() -> None:
    name = document_name("events-00000001.jsonl", 0, 4096)
    assert name == "events-00000001.jsonl.000000000000-000000004096.xml"
    assert parse_document_name(name) == ("events-00000001.jsonl", 0, 4096)
    assert parse_document_name(".events-00000001.jsonl.000000000000-000000004096.xml.tmp") is None
    names = [
        document_name("events-00000002.jsonl", 0, 10),
        document_name("events-00000001.jsonl", 4096, 100_000),
        document_name("events-00000001.jsonl", 0, 4096),
    ]
    assert sorted(names) == names[::-1]


def test_the_checkpoint_keeps_the_format_the_sidecar_reads(shared: Path) -> None:
    layout = Layout(shared)
    layout.create()
    write_checkpoint(layout, Position.of("events-00000003.jsonl", 77))
    assert layout.checkpoint.read_text().strip() == '{"offset": 77, "segment": "events-00000003.jsonl"}'
    assert read_checkpoint(layout) == Position.of("events-00000003.jsonl", 77)


def test_resume_takes_the_furthest_of_checkpoint_and_newest_document(shared: Path) -> None:
    layout = Layout(shared)
    layout.create()
    assert resume_position(layout) is None
    write_document(layout, "events-00000001.jsonl", 0, 100, b"<events/>")
    assert resume_position(layout) == Position.of("events-00000001.jsonl", 100)  # no checkpoint yet
    write_checkpoint(layout, Position.of("events-00000001.jsonl", 100))
    write_document(layout, "events-00000001.jsonl", 100, 250, b"<events/>")  # crash before its checkpoint
    assert resume_position(layout) == Position.of("events-00000001.jsonl", 250)
    write_document(layout, "events-00000002.jsonl", 0, 30, b"<events/>")
    assert resume_position(layout) == Position.of("events-00000002.jsonl", 30)
    write_checkpoint(layout, Position.of("events-00000002.jsonl", 90))  # dead letters only after the last
    assert resume_position(layout) == Position.of("events-00000002.jsonl", 90)


def test_resume_survives_a_malformed_checkpoint_and_removes_temporary_files(shared: Path) -> None:
    layout = Layout(shared)
    layout.create()
    write_document(layout, "events-00000001.jsonl", 0, 100, b"<events/>")
    layout.checkpoint.write_text("{not json")
    leftover = layout.xml_dir / ".events-00000001.jsonl.000000000100-000000000200.xml.tmp"
    leftover.write_bytes(b"<events><ev")
    assert resume_position(layout) == Position.of("events-00000001.jsonl", 100)
    assert not leftover.exists()
    layout.checkpoint.write_text('{"segment": "elsewhere", "offset": 1}')
    assert read_checkpoint(layout) is None
