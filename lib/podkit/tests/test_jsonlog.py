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


def test_uvicorn_color_message_is_left_out() -> None:
    record = logging.makeLogRecord({"name": "uvicorn.error", "msg": "Started server process [%d]", "args": (7,)})
    record.color_message = "Started server process [\x1b[36m%d\x1b[0m]"
    entry = json.loads(JsonFormatter("webserver").format(record))
    assert entry["msg"] == "Started server process [7]"
    assert "color_message" not in entry
