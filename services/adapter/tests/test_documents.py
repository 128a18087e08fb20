from __future__ import annotations

from adapter.documents import document_name, parse_document_name


def test_document_names_sort_in_stream_order() -> None:
    name = document_name(1, 0, 4096)
    assert name == "events-00000001.jsonl.000000000000-000000004096.xml"
    assert parse_document_name(name) == (1, 0, 4096)
    assert parse_document_name(".events-00000001.jsonl.000000000000-000000004096.xml.tmp") is None
    assert parse_document_name("events-00000001.jsonl") is None
    names = [document_name(2, 0, 10), document_name(1, 4096, 100_000), document_name(1, 0, 4096)]
    assert sorted(names) == names[::-1]
