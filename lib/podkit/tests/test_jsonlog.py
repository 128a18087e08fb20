from __future__ import annotations

import json
import logging

from podkit.jsonlog import JsonFormatter


def test_records_are_one_json_object_with_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "sidecar", "levelno": logging.WARNING, "levelname": "WARNING", "msg": "sink %s", "args": ("down",)}
    )
    record.attempt = 3
    line = JsonFormatter("login-sidecar").format(record)
    entry = json.loads(line)
    assert "\n" not in line
    assert entry["msg"] == "sink down"
    assert entry["level"] == "warning"
    assert entry["service"] == "login-sidecar"
    assert entry["attempt"] == 3
    assert entry["ts"].endswith("Z")
