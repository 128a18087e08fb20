"""Render sanitized events as one XML document with dicttoxml, made quiet and fast enough.

dicttoxml 1.7.16 is correct for our input once `sanitize` has cleaned the values, but it is chatty and slow.
The patches below are applied once, when this module is imported; `tests/test_render.py` checks that the
output stays byte for byte what the unpatched library writes, for our calls and for others.
`bench/render_levels.py` measures them one by one (1,000-event documents, CPU time, busy 2-core VM):

    dicttoxml 1.7.16 as released                  ~760 events per CPU second
    + lru_cache on make_valid_xml_name          ~7,300
    + no-op LOG                                 ~7,800
    + unicode_me skipped for log text          ~19,300
    + escape_xml and convert_kv fast paths     ~24,300

- `make_valid_xml_name` parses a minidom document for every key of every event. It is a pure function of the
  key when `attr` is empty, as in our calls, and our keys are the XSD's fixed field names: `lru_cache`.
- dicttoxml `LOG.info()`s every key and value. The `dicttoxml` logger is silenced and the module's `LOG` is
  replaced by a no-op, so an event value cannot reach the service's logs whatever the log configuration.
- `unicode_me` is called about 25 times per event, mostly to format whole events into those log messages,
  and raises and catches a TypeError for every str. With the log gone its result is unused, except in
  `escape_xml` and `wrap_cdata`, which are replaced by equivalents that convert values themselves.
- `escape_xml` runs five `str.replace` on values that rarely need one, and `convert_kv` validates the name
  again and builds attributes for each value: both get a fast path for our case (string key and value, no
  attributes, no CDATA, no type attribute) and defer to the original otherwise.

The patches replace private functions of that one release, so pyproject.toml pins it exactly and this module
refuses, when it is imported (at the adapter's start), any other release: a new one must first pass
`tests/test_render.py` (the byte-for-byte comparison) before the pin and PATCHED_VERSION move together.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from typing import Any, Final

import dicttoxml
from podkit.config import require_release

from adapter.sanitize import Record

ROOT: Final = "events"
ITEM: Final = "event"
PATCHED_VERSION: Final = "1.7.16"
_PATCHED: Final = ("LOG", "make_valid_xml_name", "unicode_me", "wrap_cdata", "escape_xml", "convert_kv")


def check_dicttoxml(module: Any) -> None:
    """Raise podkit.config.UnsupportedRelease unless `module` is dicttoxml PATCHED_VERSION with every function
    we patch (the patches below were written and tested for that release)."""
    require_release(
        module,
        "dicttoxml",
        PATCHED_VERSION,
        user="adapter.render",
        needs=f"patches dicttoxml {PATCHED_VERSION}",
        pin_file="services/adapter/pyproject.toml",
        attributes=_PATCHED,
    )


check_dicttoxml(dicttoxml)

_original_make_valid_xml_name = dicttoxml.make_valid_xml_name
_original_convert_kv = dicttoxml.convert_kv
_NEEDS_ESCAPE: Final = re.compile("[&\"'<>]")


class _NoLog:
    """Stands in for dicttoxml's module logger: every call does nothing."""

    def _discard(self, *args: Any, **kwargs: Any) -> None:
        return None

    debug = info = warning = error = critical = exception = _discard


def _silence_dicttoxml_logger() -> None:
    logger = logging.getLogger("dicttoxml")
    logger.setLevel(logging.CRITICAL + 1)
    logger.propagate = False
    logger.handlers[:] = [logging.NullHandler()]
    dicttoxml.LOG = _NoLog()


@functools.lru_cache(maxsize=256)
def _valid_name(key: str) -> tuple[str, tuple[tuple[str, Any], ...]]:
    name, attr = _original_make_valid_xml_name(key, {})
    return name, tuple(attr.items())


def _make_valid_xml_name(key: Any, attr: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """`make_valid_xml_name`, cached for the call we make (a string key, no attributes yet)."""
    if attr or type(key) is not str:
        return _original_make_valid_xml_name(key, attr)  # type: ignore[no-any-return]
    name, extra = _valid_name(key)
    if extra:
        attr.update(extra)  # the original adds a `name` attribute to the caller's dict for an invalid key
    return name, attr


def _text(value: Any) -> str:
    """What dicttoxml's `unicode_me` returns, without its log call and the TypeError it raises for a str."""
    if type(value) is str:
        return value
    if isinstance(value, bytes | bytearray):
        try:
            return str(value, "utf-8")
        except UnicodeDecodeError:
            return str(value)
    return str(value)


def _log_text(value: Any) -> str:
    """Stands in for `unicode_me`, which dicttoxml calls about 25 times per event, mostly to format whole
    events into log messages that `_NoLog` discards. Its two other callers, `escape_xml` and `wrap_cdata`,
    are replaced by versions that use `_text`."""
    return ""


def _wrap_cdata(value: Any) -> str:
    """`wrap_cdata` on `_text`."""
    return "<![CDATA[" + _text(value).replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _escape_xml(value: Any) -> Any:
    """`escape_xml` (the same five escapes) returning text that needs none untouched."""
    if type(value) is not str or _NEEDS_ESCAPE.search(value) is None:
        return value
    return (
        value.replace("&", "&amp;")
        .replace('"', "&quot;")
        .replace("'", "&apos;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def _convert_kv(key: Any, val: Any, attr_type: bool, cdata: bool = False, attr: dict[str, Any] | None = None) -> str:
    """`convert_kv`, straight to the element for a string key and value without attributes or CDATA."""
    if attr or attr_type or cdata or type(key) is not str or type(val) is not str:
        return _original_convert_kv(key, val, attr_type, cdata, attr)  # type: ignore[no-any-return]
    name, extra = _valid_name(key)
    if extra:
        return _original_convert_kv(key, val, attr_type, cdata, attr)  # type: ignore[no-any-return]
    return f"<{name}>{_escape_xml(val)}</{name}>"


def _patch_dicttoxml() -> None:
    _silence_dicttoxml_logger()
    dicttoxml.make_valid_xml_name = _make_valid_xml_name
    dicttoxml.unicode_me = _log_text
    dicttoxml.wrap_cdata = _wrap_cdata
    dicttoxml.escape_xml = _escape_xml
    dicttoxml.convert_kv = _convert_kv


_patch_dicttoxml()


def _item_name(parent: str) -> str:
    return ITEM


def render(records: Sequence[Record]) -> bytes:
    """`<?xml ...?><events><event>...</event>...</events>` for at least one record made by `sanitize`."""
    return dicttoxml.dicttoxml(  # type: ignore[no-any-return]
        list(records), custom_root=ROOT, attr_type=False, item_func=_item_name
    )
