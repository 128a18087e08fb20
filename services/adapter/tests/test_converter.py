from __future__ import annotations

import collections
import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from adapter import converter as converter_module
from adapter import documents as documents_module
from adapter.converter import Converter
from adapter.metrics import Metrics
from lxml import etree
from podkit.volume import Volume

SEG1, SEG2, SEG3 = (f"events-{n:08d}.jsonl" for n in (1, 2, 3))


def new_converter(shared: Path, batch: int = 10) -> Converter:
    converter = Converter(Volume(shared), Metrics(), batch)
    converter.resume()
    return converter


def drain(converter: Converter) -> int:
    steps = 0
    while converter.step().progressed:
        steps += 1
    return steps


def sample(converter: Converter, name: str) -> float:
    value = converter.metrics.registry.get_sample_value(f"loginpod_adapter_{name}")
    return value or 0.0


def assert_exactly_once(shared: Path, xsd: etree.XMLSchema, kit: Any, expected: list[str]) -> None:
    ids = kit.converted_ids(shared, xsd)
    assert [n for n, count in collections.Counter(ids).items() if count > 1] == []
    assert sorted(ids) == sorted(expected)


def test_batches_become_documents_named_by_byte_range(shared: Path, xsd: etree.XMLSchema, kit: Any) -> None:
    events = [kit.make_event() for _ in range(25)]
    path = kit.append_segment(shared, 1, kit.event_lines(events))
    converter = new_converter(shared)
    assert drain(converter) == 3
    documents = kit.read_documents(shared, xsd)
    assert [len(evs) for _, evs in documents] == [10, 10, 5]
    ranges = [name.split(".")[2].split("-") for name, _ in documents]
    assert ranges[0][0] == "000000000000"
    assert int(ranges[-1][1]) == path.stat().st_size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert [e["event_id"] for _, evs in documents for e in evs] == [e["event_id"] for e in events]
    assert kit.checkpoint(shared) == {"version": 1, "segment": SEG1, "offset": path.stat().st_size}
    assert sample(converter, "events_converted_total") == 25
    assert sample(converter, "documents_written_total") == 3
    assert converter.lag_bytes() == 0
    kit.append_segment(shared, 1, kit.event_lines([kit.make_event()]))
    assert converter.lag_bytes() > 0


def test_a_crash_between_rename_and_checkpoint_neither_loses_nor_repeats(
    shared: Path, xsd: etree.XMLSchema, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [kit.make_event() for _ in range(30)]
    kit.append_segment(shared, 1, kit.event_lines(events))
    real_write_checkpoint = converter_module.write_checkpoint
    calls = 0

    def crash_on_second_checkpoint(volume: Volume, position: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise OSError("injected crash after the rename, before the checkpoint")
        real_write_checkpoint(volume, position)

    monkeypatch.setattr(converter_module, "write_checkpoint", crash_on_second_checkpoint)
    first_run = new_converter(shared)
    first_run.step()
    with pytest.raises(OSError, match="injected"):
        first_run.step()
    assert len(list((shared / "xml").glob("*.xml"))) == 2
    assert kit.checkpoint(shared)["offset"] < (shared / "events" / SEG1).stat().st_size

    monkeypatch.setattr(converter_module, "write_checkpoint", real_write_checkpoint)
    restarted = new_converter(shared)
    drain(restarted)
    assert len(list((shared / "xml").glob("*.xml"))) == 3
    assert_exactly_once(shared, xsd, kit, [e["event_id"] for e in events])


def test_a_crash_before_the_rename_redoes_the_batch(
    shared: Path, xsd: etree.XMLSchema, kit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [kit.make_event() for _ in range(20)]
    kit.append_segment(shared, 1, kit.event_lines(events))

    def write_half_then_crash(path: Path, data: bytes, *, durable: bool = True) -> None:
        path.with_name(f".{path.name}.tmp").write_bytes(data[: len(data) // 2])
        raise OSError("injected crash before the rename")

    monkeypatch.setattr(documents_module, "write_atomic", write_half_then_crash)
    with pytest.raises(OSError, match="injected"):
        new_converter(shared).step()
    monkeypatch.undo()
    drain(new_converter(shared))
    assert list((shared / "xml").glob(".*")) == []
    assert_exactly_once(shared, xsd, kit, [e["event_id"] for e in events])


def test_the_next_segment_is_taken_once_the_current_one_is_done(shared: Path, xsd: etree.XMLSchema, kit: Any) -> None:
    first = [kit.make_event() for _ in range(5)]
    kit.append_segment(shared, 1, kit.event_lines(first))
    converter = new_converter(shared)
    drain(converter)
    assert kit.checkpoint(shared)["segment"] == SEG1  # the highest segment: more may come

    second = [kit.make_event() for _ in range(5)]
    kit.append_segment(shared, 1, kit.event_lines(second[:2]))
    kit.append_segment(shared, 2, kit.event_lines(second[2:]))
    assert converter.step().document is not None  # the rest of segment 1 first
    assert converter.step().document is None  # then the move, checkpointed at once for the sidecar
    assert kit.checkpoint(shared) == {"version": 1, "segment": SEG2, "offset": 0}
    drain(converter)
    assert kit.checkpoint(shared) == {
        "version": 1,
        "segment": SEG2,
        "offset": (shared / "events" / SEG2).stat().st_size,
    }
    names = [name for name, _ in kit.read_documents(shared, xsd)]
    assert [name.split(".jsonl")[0] for name in names] == ["events-00000001"] * 2 + ["events-00000002"]
    assert_exactly_once(shared, xsd, kit, [e["event_id"] for e in first + second])


def test_a_deleted_checkpointed_segment_means_the_next_existing_one(
    shared: Path, xsd: etree.XMLSchema, kit: Any
) -> None:
    kit.append_segment(shared, 1, kit.event_lines([kit.make_event()]))
    kit.append_segment(shared, 2, kit.event_lines([kit.make_event()]))
    drain(new_converter(shared))
    assert kit.checkpoint(shared)["segment"] == SEG2

    (shared / "events" / SEG1).unlink()  # the sidecar's retention
    (shared / "events" / SEG2).unlink()
    restarted = new_converter(shared)
    assert not restarted.step().progressed  # nothing after it yet: wait
    later = [kit.make_event() for _ in range(3)]
    kit.append_segment(shared, 4, kit.event_lines(later))
    drain(restarted)
    seg4 = "events-00000004.jsonl"
    assert kit.checkpoint(shared) == {
        "version": 1,
        "segment": seg4,
        "offset": (shared / "events" / seg4).stat().st_size,
    }
    assert kit.converted_ids(shared, xsd)[-3:] == [e["event_id"] for e in later]


def test_lines_that_are_not_json_objects_go_to_the_dead_letter_file(
    shared: Path, xsd: etree.XMLSchema, kit: Any
) -> None:
    good = [kit.make_event() for _ in range(3)]
    bad = [b"not json", b"[1, 2]", b'"text"', b"null", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000]
    data = kit.event_lines(good[:1]) + b"\n".join(bad) + b"\n" + kit.event_lines(good[1:])
    kit.append_segment(shared, 1, data)
    converter = new_converter(shared, batch=1000)
    drain(converter)
    assert_exactly_once(shared, xsd, kit, [e["event_id"] for e in good])
    letters = kit.dead_letters(shared)
    assert [letter["reason"] for letter in letters] == [
        "not valid JSON",
        "not a JSON object",
        "not a JSON object",
        "not a JSON object",
        "not valid JSON",
        "nested too deeply",
    ]
    segment = (shared / "events" / SEG1).read_bytes()
    for letter, line in zip(letters, bad, strict=True):
        assert segment[letter["offset"] : letter["offset"] + len(line)] == line
        assert letter["segment"] == SEG1
    assert kit.checkpoint(shared)["offset"] == len(segment)
    assert sample(converter, "deadletter_total") == len(bad)


def test_a_batch_of_dead_letters_only_writes_no_document(shared: Path, kit: Any) -> None:
    kit.append_segment(shared, 1, b"oops\n[]\n")
    converter = new_converter(shared)
    assert converter.step() == converter_module.Step(progressed=True, document=None)
    assert list((shared / "xml").iterdir()) == []
    assert kit.checkpoint(shared) == {"version": 1, "segment": SEG1, "offset": 8}


def test_a_torn_tail_of_a_closed_segment_does_not_stall(shared: Path, xsd: etree.XMLSchema, kit: Any) -> None:
    event = kit.make_event()
    kit.append_segment(shared, 1, kit.event_lines([event]) + b'{"event_id": "torn')
    converter = new_converter(shared)
    drain(converter)
    assert kit.checkpoint(shared)["segment"] == SEG1  # still the highest: the tail may yet be completed
    later = kit.make_event()
    kit.append_segment(shared, 2, kit.event_lines([later]))
    drain(converter)
    assert_exactly_once(shared, xsd, kit, [event["event_id"], later["event_id"]])
    assert [letter["reason"] for letter in kit.dead_letters(shared)] == ["not valid JSON"]


def test_hostile_samples_are_counted_and_converted(
    shared: Path, xsd: etree.XMLSchema, kit: Any, samples: dict[str, bytes]
) -> None:
    kit.append_segment(shared, 1, b"".join(samples.values()))
    converter = new_converter(shared, batch=1000)
    drain(converter)
    assert len(kit.converted_ids(shared, xsd)) == len(samples)
    # hostile/extra-keys: password, session_token, "<bad key>", "", "event id" and "123"
    assert sample(converter, "dropped_keys_total") == 6
    assert sample(converter, "sanitized_values_total") > 20
    assert json.loads((shared / "state" / "adapter" / "xml.json").read_text())["offset"] > 0
