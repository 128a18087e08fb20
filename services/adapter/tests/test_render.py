from __future__ import annotations

import importlib.util
import json
import logging
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import dicttoxml
import pytest
from adapter.render import PATCHED_VERSION, check_dicttoxml, render
from adapter.sanitize import FIELDS, Record, may_hold_forbidden, sanitize
from lxml import etree
from podkit.config import UnsupportedRelease

# Text a fuzzer should try: XML's forbidden characters, markup, surrogates, astral characters, non-characters.
ALPHABETS = [
    "abcXYZ019 -_.:@",
    "".join(map(chr, range(32))) + "\x7f\x85",
    "<>&'\"]]>;#!?/=[",
    "\ud800\udbff\udc00\udfff",
    "\ufffe\uffff\ufdd0\ufeff\u202e\u200b\u2028",
    "é日本語ß\U0001f600\U00010000\U0010ffff",
]


def random_text(rng: random.Random) -> str:
    length = rng.choice([0, 1, 2, 5, 20, 64, 65, 200, 257, 513, 2000])
    pool = "".join(rng.sample(ALPHABETS, rng.randint(1, len(ALPHABETS))))
    return "".join(rng.choices(pool, k=length))


def random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind < 3:
        return random_text(rng)
    if kind == 3:
        return None
    if kind == 4:
        return rng.choice([True, False])
    if kind == 5:
        return rng.choice([0, -1, 2**70, 3.5, -0.0, 1e300])
    if kind < 8:
        return [random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {random_text(rng): random_value(rng, depth + 1) for _ in range(rng.randrange(4))}


def random_event(rng: random.Random) -> dict[str, Any]:
    names = [name for name in FIELDS if rng.random() < 0.8]
    names += [random_text(rng) for _ in range(rng.randrange(3))]
    return {name: random_value(rng) for name in names}


def parse(xml: bytes, xsd: etree.XMLSchema) -> etree._Element:
    root = etree.fromstring(xml)  # raises on anything not well-formed
    xsd.assertValid(root)
    return root


def texts(root: etree._Element) -> list[dict[str, str]]:
    return [{child.tag: child.text or "" for child in event} for event in root]


def expected_text(value: str | None) -> str:
    # An XML parser turns a literal CR (and CRLF) into LF: end-of-line normalisation, not our doing.
    return re.sub("\r\n?", "\n", value or "")


def check(records: list[Record], xsd: etree.XMLSchema) -> None:
    root = parse(render(records), xsd)
    assert texts(root) == [{name: expected_text(value) for name, value in record.items()} for record in records]


def test_every_sample_renders_valid_and_keeps_its_text(samples: dict[str, bytes], xsd: etree.XMLSchema) -> None:
    records = [sanitize(json.loads(line)).record for line in samples.values()]
    check(records, xsd)
    for record in records:  # one event per document as well
        check([record], xsd)


@pytest.mark.parametrize("seed", range(5))
def test_random_events_render_valid(seed: int, xsd: etree.XMLSchema) -> None:
    rng = random.Random(seed)
    records = [sanitize(random_event(rng)).record for _ in range(200)]
    check(records, xsd)


def test_random_events_through_json_lines_render_valid(xsd: etree.XMLSchema) -> None:
    rng = random.Random(99)
    # json.dumps writes lone surrogates as "\ud800" escapes, the way a hostile client's JSON would.
    lines = [json.dumps(random_event(rng)) for _ in range(300)]
    check([sanitize(json.loads(line)).record for line in lines], xsd)


def test_the_character_check_is_skipped_only_when_no_value_can_need_it() -> None:
    rng = random.Random(5)
    # Characters XML allows that JSON writes without an escape (with ensure_ascii=False).
    allowed = ALPHABETS[0] + "<>&';#!?/=[]" + ALPHABETS[5] + "\x7f\x85\u2028\ufdd0\ufeff"
    skipped = 0
    for _ in range(300):
        pool = allowed + (rng.choice(ALPHABETS) if rng.random() < 0.3 else "")
        event: dict[str, Any] = {name: "".join(rng.choices(pool, k=rng.randrange(300))) for name in FIELDS}
        event["user_agent"] = [event["user_agent"], {"k": event["pod"]}]
        for text in (json.dumps(event), json.dumps(event, ensure_ascii=False)):
            if not may_hold_forbidden(text):
                skipped += 1
                assert sanitize(json.loads(text), check_characters=False) == sanitize(json.loads(text))
    assert skipped > 50


@pytest.fixture(scope="module")
def pristine_dicttoxml() -> ModuleType:
    """A second, unpatched copy of dicttoxml."""
    spec = importlib.util.spec_from_file_location("dicttoxml_pristine", dicttoxml.__file__)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_patches_keep_dicttoxmls_output_byte_for_byte(
    samples: dict[str, bytes], pristine_dicttoxml: ModuleType
) -> None:
    rng = random.Random(7)
    records = [sanitize(json.loads(line)).record for line in samples.values()]
    records += [sanitize(random_event(rng)).record for _ in range(100)]
    expected = pristine_dicttoxml.dicttoxml(
        records, custom_root="events", attr_type=False, item_func=lambda parent: "event"
    )
    assert render(records) == expected


def test_the_patched_functions_still_handle_what_we_do_not_send(pristine_dicttoxml: ModuleType) -> None:
    """Other callers in the process keep dicttoxml's behaviour: invalid names, attributes, types, CDATA."""
    value = {"ok": "a<b", "bad key": 1, "1": True, "<x>": None, "l": ["&", 2.5, {"n": None}], "b": b"bytes"}
    for options in ({}, {"attr_type": False}, {"cdata": True}):
        assert dicttoxml.dicttoxml(value, **options) == pristine_dicttoxml.dicttoxml(value, **options)


def test_dicttoxml_never_logs_a_value(caplog: pytest.LogCaptureFixture) -> None:
    marker = "MARKER-7b1d-value"
    dicttoxml_logger = logging.getLogger("dicttoxml")
    level = dicttoxml_logger.level
    try:
        with caplog.at_level(logging.DEBUG):
            dicttoxml_logger.setLevel(logging.DEBUG)  # even if some configuration turns it back on
            dicttoxml_logger.propagate = True
            render([sanitize({"username": marker, "user_agent": marker}).record])
    finally:
        dicttoxml_logger.setLevel(level)
        dicttoxml_logger.propagate = False
    assert marker not in caplog.text
    assert not [record for record in caplog.records if record.name.startswith("dicttoxml")]


def test_the_patched_release_is_the_one_installed(pristine_dicttoxml: ModuleType) -> None:
    check_dicttoxml(pristine_dicttoxml)  # the release in the lock file: accepted
    assert dicttoxml.__version__ == PATCHED_VERSION


def test_another_dicttoxml_is_refused_with_a_clear_error(pristine_dicttoxml: ModuleType) -> None:
    newer = ModuleType("dicttoxml")
    newer.__dict__.update(pristine_dicttoxml.__dict__)
    newer.__version__ = "1.8.0"  # type: ignore[attr-defined]
    with pytest.raises(UnsupportedRelease, match=r"patches dicttoxml 1\.7\.16, but dicttoxml 1\.8\.0 is installed"):
        check_dicttoxml(newer)
    del newer.convert_kv  # renamed away in some release: the patch would have nothing to replace
    newer.__version__ = PATCHED_VERSION  # type: ignore[attr-defined]
    with pytest.raises(UnsupportedRelease, match="without convert_kv"):
        check_dicttoxml(newer)


def test_the_adapter_does_not_start_with_another_dicttoxml(tmp_path: Path) -> None:
    """The start-up check as an operator meets it: exit 2 and one line naming both versions."""
    fake = tmp_path / "site"
    fake.mkdir()
    (fake / "dicttoxml.py").write_text('__version__ = "1.8.0"\n')
    env = {**os.environ, "PYTHONPATH": str(fake), "SHARED_DIR": str(tmp_path / "shared"), "METRICS_PORT": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "adapter"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2, result.stderr
    assert "dicttoxml 1.8.0 is installed" in result.stderr
    assert "dicttoxml==1.7.16" in result.stderr
