"""CPU cost of rendering with dicttoxml, patch by patch (see the docstring of adapter/render.py).

.venv/bin/python services/adapter/bench/render_levels.py
"""

from __future__ import annotations

import time

import dicttoxml

ORIGINAL = {
    name: getattr(dicttoxml, name)
    for name in ("LOG", "make_valid_xml_name", "unicode_me", "wrap_cdata", "escape_xml", "convert_kv")
}

from adapter import render  # noqa: E402  (patches dicttoxml)
from adapter.sanitize import sanitize  # noqa: E402

LEVELS = [
    ("dicttoxml 1.7.16 as released", ()),
    ("+ lru_cache on make_valid_xml_name", ("make_valid_xml_name",)),
    ("+ no-op LOG", ("make_valid_xml_name", "LOG")),
    ("+ unicode_me skipped for log text", ("make_valid_xml_name", "LOG", "unicode_me", "wrap_cdata")),
    ("+ escape_xml and convert_kv fast paths", tuple(ORIGINAL)),
]


def main() -> None:
    event = {
        "event_id": "3f1c2b9e-8d4a-4c7b-9e2f-1a2b3c4d5e6f",
        "timestamp": "2026-11-25T03:04:05.123456Z",
        "event_type": "login.failure",
        "outcome": "failure",
        "reason": "bad_password",
        "username": "user1",
        "username_truncated": False,
        "client_ip": "203.0.113.7",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "request_id": "0000000000000001",
        "service": "webserver",
        "pod": "login-pod-7d9f8-abcde",
    }
    records = [sanitize(dict(event)).record for _ in range(1000)]
    patched = {name: getattr(dicttoxml, name) for name in ORIGINAL}
    for label, names in LEVELS:
        for name in ORIGINAL:
            setattr(dicttoxml, name, patched[name] if name in names else ORIGINAL[name])
        documents = 2 if not names else 10
        started = time.process_time()
        for _ in range(documents):
            render.render(records)
        rate = documents * len(records) / (time.process_time() - started)
        print(f"{label:45s} {rate:9,.0f} events per CPU second")
    for name in ORIGINAL:
        setattr(dicttoxml, name, patched[name])


if __name__ == "__main__":
    main()
