"""Retention of xml/ (XML_RETENTION_BYTES): the cap, oldest first, never the newest nor an unshipped document,
and restarts that still convert every event exactly once."""

from __future__ import annotations

import collections
import logging
from pathlib import Path
from typing import Any

import pytest
from adapter import converter as converter_module
from adapter import retention as retention_module
from adapter.converter import Converter
from adapter.metrics import Metrics
from adapter.retention import Retention
from lxml import etree
from podkit.volume import Volume

SEG1 = "events-00000001.jsonl"


class Run:
    """A converter with retention, stepped the way the service steps it (a step, then `enforce`)."""

    def __init__(self, shared: Path, cap: int, shipped: list[str] | None = None) -> None:
        # `shipped`: a one-item list standing in for the shipper's in-memory checkpoint.
        self.volume = Volume(shared)
        self.metrics = Metrics()
        self.retention = Retention(
            self.volume, cap, self.metrics, (lambda: shipped[0]) if shipped is not None else None
        )
        self.converter = Converter(self.volume, self.metrics, 1, self.retention)  # one event per document
        self.converter.resume()

    def drain(self) -> list[str]:
        """Convert everything; the names of the documents written, in order."""
        written = []
        while (step := self.converter.step()).progressed:
            self.retention.enforce()
            if step.document is not None:
                written.append(step.document)
        return written

    def sample(self, name: str) -> float:
        return self.metrics.registry.get_sample_value(f"loginpod_adapter_{name}") or 0.0


def on_disk(shared: Path) -> dict[str, int]:
    return {path.name: path.stat().st_size for path in sorted((shared / "xml").glob("*.xml"))}


def logged(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "adapter.retention" and r.levelno == level]


def one_document_size(tmp_path: Path, kit: Any) -> int:
    """The size of a one-event document (every test event renders to the same length)."""
    scratch = tmp_path / "scratch"
    kit.append_segment(scratch, 1, kit.event_lines([kit.make_event()]))
    Run(scratch, 0).drain()
    (size,) = on_disk(scratch).values()
    return size


def test_the_cap_is_kept_by_deleting_the_oldest_documents_first(shared: Path, tmp_path: Path, kit: Any) -> None:
    size = one_document_size(tmp_path, kit)
    cap = 5 * size + size // 2  # room for five documents
    kit.append_segment(shared, 1, kit.event_lines([kit.make_event() for _ in range(30)]))
    run = Run(shared, cap)
    written: list[str] = []
    while (step := run.converter.step()).progressed:
        run.retention.enforce()
        assert step.document is not None
        written.append(step.document)
        kept = on_disk(shared)
        assert sum(kept.values()) <= cap
        assert list(kept) == written[-len(kept) :]  # what is left is always the newest: oldest went first
        assert run.retention.total_bytes == sum(kept.values())
    assert len(on_disk(shared)) == 5
    assert run.sample("documents_deleted_total") == 25
    assert run.sample("xml_bytes") == sum(on_disk(shared).values())


def test_xml_is_scanned_once_at_start_up_then_counted_in_memory(
    shared: Path, tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = one_document_size(tmp_path, kit)
    kit.append_segment(shared, 1, kit.event_lines([kit.make_event() for _ in range(20)]))
    assert len(Run(shared, 0).drain()) == 20  # 0: keep everything
    assert len(on_disk(shared)) == 20

    listings = 0
    real_list_documents = retention_module.list_documents

    def counting(volume: Volume, keep: int) -> Any:
        nonlocal listings
        listings += 1
        return real_list_documents(volume, keep)

    monkeypatch.setattr(retention_module, "list_documents", counting)
    run = Run(shared, 3 * size)  # a smaller cap after a restart: the first step brings xml/ under it
    assert run.sample("xml_bytes") == 20 * size
    kit.append_segment(shared, 1, kit.event_lines([kit.make_event() for _ in range(20)]))
    run.drain()
    assert len(on_disk(shared)) == 3
    assert run.sample("documents_deleted_total") == 37
    assert listings == 1


def test_past_the_window_of_oldest_names_xml_is_listed_again(
    shared: Path, tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = one_document_size(tmp_path, kit)
    monkeypatch.setattr(retention_module, "WINDOW", 4)
    kit.append_segment(shared, 1, kit.event_lines([kit.make_event() for _ in range(10)]))
    Run(shared, 0).drain()
    run = Run(shared, 2 * size)
    kit.append_segment(shared, 1, kit.event_lines([kit.make_event() for _ in range(10)]))
    written = run.drain()
    assert list(on_disk(shared)) == written[-2:]
    assert run.retention.total_bytes == 2 * size
    assert run.sample("documents_deleted_total") == 18


def test_the_newest_document_is_kept_even_over_the_cap(shared: Path, kit: Any) -> None:
    kit.append_segment(shared, 1, kit.event_lines([kit.make_event() for _ in range(5)]))
    run = Run(shared, 1)
    written = run.drain()
    assert list(on_disk(shared)) == written[-1:]
    assert run.sample("xml_bytes") > 1


def test_unshipped_documents_are_kept_with_one_warning(
    shared: Path, kit: Any, caplog: pytest.LogCaptureFixture
) -> None:
    shipped = [""]
    kit.append_segment(shared, 1, kit.event_lines([kit.make_event() for _ in range(10)]))
    caplog.set_level(logging.INFO, logger="adapter.retention")
    run = Run(shared, 1, shipped)
    written = run.drain()
    assert list(on_disk(shared)) == written  # nothing shipped: nothing deleted
    warnings = logged(caplog, logging.WARNING)
    assert len(warnings) == 1
    assert warnings[0].document == written[0]  # type: ignore[attr-defined]

    shipped[0] = written[3]
    run.retention.enforce()
    assert list(on_disk(shared)) == written[4:]  # up to what the sink took, and not one more
    shipped[0] = written[-1]
    run.retention.enforce()
    assert list(on_disk(shared)) == written[-1:]
    assert [r.getMessage() for r in logged(caplog, logging.INFO)] == ["retention resumed"]
    assert len(logged(caplog, logging.WARNING)) == 1


def test_a_failed_deletion_is_logged_and_retried(
    shared: Path, tmp_path: Path, kit: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    size = one_document_size(tmp_path, kit)
    kit.append_segment(shared, 1, kit.event_lines([kit.make_event() for _ in range(4)]))
    Run(shared, 0).drain()
    run = Run(shared, size)
    real_delete = Retention._delete

    def read_only_file_system(self: Retention, name: str) -> bool:
        raise OSError(30, "injected: read-only file system")

    monkeypatch.setattr(Retention, "_delete", read_only_file_system)
    run.retention.enforce()  # does not raise: the step's own work must not be lost
    assert len(on_disk(shared)) == 4
    assert [r.getMessage() for r in logged(caplog, logging.ERROR)] == ["retention failed, will retry"]
    monkeypatch.setattr(Retention, "_delete", real_delete)
    run.retention.enforce()
    assert len(on_disk(shared)) == 1


def test_a_restart_after_retention_converts_every_event_exactly_once(
    shared: Path, tmp_path: Path, xsd: etree.XMLSchema, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = one_document_size(tmp_path, kit)
    events = [kit.make_event() for _ in range(30)]
    kit.append_segment(shared, 1, kit.event_lines(events[:20]))
    written: dict[str, list[str]] = {}  # every document ever written, read before retention can delete it
    real_write_document = converter_module.write_document
    real_write_checkpoint = converter_module.write_checkpoint

    def recording(volume: Volume, segment: int, start: int, end: int, xml: bytes) -> str:
        name: str = real_write_document(volume, segment, start, end, xml)
        written.setdefault(name, []).extend(e.findtext("event_id") or "" for e in etree.fromstring(xml))
        return name

    checkpoints = 0

    def crash_on_the_twelfth_checkpoint(volume: Volume, position: Any) -> None:
        nonlocal checkpoints
        checkpoints += 1
        if checkpoints == 12:
            raise OSError("injected crash after the rename, before the checkpoint")
        real_write_checkpoint(volume, position)

    monkeypatch.setattr(converter_module, "write_document", recording)
    monkeypatch.setattr(converter_module, "write_checkpoint", crash_on_the_twelfth_checkpoint)
    first = Run(shared, 3 * size)
    with pytest.raises(OSError, match="injected"):
        first.drain()
    kept = on_disk(shared)
    assert list(kept) == list(written)[8:12]  # three under the cap, then the one its checkpoint missed
    assert kit.checkpoint(shared)["offset"] < (shared / "events" / SEG1).stat().st_size

    kit.append_segment(shared, 1, kit.event_lines(events[20:25]))
    second = Run(shared, 3 * size)
    second.drain()
    assert len(on_disk(shared)) == 3

    # Nothing left in xml/ at all: the checkpoint alone says where to resume.
    for path in (shared / "xml").glob("*.xml"):
        path.unlink()
    kit.append_segment(shared, 1, kit.event_lines(events[25:]))
    third = Run(shared, 3 * size)
    third.drain()

    ids = [event_id for ids in written.values() for event_id in ids]
    assert [i for i, count in collections.Counter(ids).items() if count > 1] == []
    assert ids == [e["event_id"] for e in events]
    assert kit.converted_ids(shared, xsd) == [e["event_id"] for e in events[-3:]]
    assert kit.checkpoint(shared) == {
        "version": 1,
        "segment": SEG1,
        "offset": (shared / "events" / SEG1).stat().st_size,
    }


def test_documents_removed_by_someone_else_are_counted_again(shared: Path, tmp_path: Path, kit: Any) -> None:
    size = one_document_size(tmp_path, kit)
    kit.append_segment(shared, 1, kit.event_lines([kit.make_event() for _ in range(6)]))
    run = Run(shared, 0)
    written = run.drain()
    for name in written[:3]:
        (shared / "xml" / name).unlink()  # an operator: the running total does not know
    run.retention.cap_bytes = 2 * size
    run.retention.enforce()
    assert list(on_disk(shared)) == written[-2:]
    assert run.retention.total_bytes == 2 * size
    assert run.sample("documents_deleted_total") == 1
