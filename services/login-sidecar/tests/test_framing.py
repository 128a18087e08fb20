"""Line framing on bytes alone: no files, every edge of cutting a stream into lines."""

from __future__ import annotations

from login_sidecar.framing import LineFramer, Lines, Rejected


def framer(max_line_bytes: int = 16, keep_head: int = 4, offset: int = 0) -> LineFramer:
    return LineFramer(max_line_bytes=max_line_bytes, keep_head=keep_head, offset=offset)


def test_complete_lines_come_out_with_their_offset_and_the_rest_is_held() -> None:
    f = framer(offset=100)
    assert f.feed(b"a\nbb\ncc") == [Lines(100, b"a\nbb\n")]
    assert (f.offset, f.held) == (105, 2)
    assert f.feed(b"c") == []
    assert f.held == 3
    assert f.feed(b"\nd\n") == [Lines(105, b"ccc\nd\n")]
    assert (f.offset, f.held) == (111, 0)


def test_any_cutting_of_the_stream_gives_the_same_lines() -> None:
    stream = b'{"a":1}\n\n{"b":22}\nxyz\n{"c":3}\ntail'
    whole = framer(max_line_bytes=64)
    expected = b"".join(part.data for part in whole.feed(stream) if isinstance(part, Lines))
    for size in (1, 2, 3, 5, 7, 11):
        f = framer(max_line_bytes=64)
        out: list[Lines | Rejected] = []
        for start in range(0, len(stream), size):
            out += f.feed(stream[start : start + size])
        assert all(isinstance(part, Lines) for part in out)
        assert b"".join(part.data for part in out if isinstance(part, Lines)) == expected
        assert (f.offset, f.held) == (whole.offset, whole.held) == (len(stream) - 4, 4)


def test_a_held_line_of_exactly_the_limit_is_kept_one_byte_more_is_not() -> None:
    f = framer(max_line_bytes=8)
    assert f.feed(b"12345678") == []
    assert f.feed(b"\n") == [Lines(0, b"12345678\n")]
    f = framer(max_line_bytes=8)
    assert f.feed(b"123456789") == []
    assert f.held == 9
    assert f.feed(b"\nok\n") == [Rejected("line_too_long", 0, 9, b"1234"), Lines(10, b"ok\n")]


def test_a_long_line_is_counted_not_held_across_feeds_and_skipped_to_its_newline() -> None:
    f = framer(max_line_bytes=8, keep_head=3)
    assert f.feed(b"a\n" + b"x" * 20) == [Lines(0, b"a\n")]
    for _ in range(100):
        assert f.feed(b"y" * 1000) == []
    assert f.held == 20 + 100_000
    assert f._partial == b""  # only its head is kept
    assert f.feed(b"z\nb\nc") == [Rejected("line_too_long", 2, 100_021, b"xxx"), Lines(100_024, b"b\n")]
    assert (f.offset, f.held) == (100_026, 1)


def test_a_complete_line_over_the_limit_in_one_feed_is_handed_out_for_the_caller_to_reject() -> None:
    # Framing only bounds what it holds; a line that arrives whole is the pipeline's to judge (line_too_long).
    f = framer(max_line_bytes=4)
    assert f.feed(b"0123456789\nab\n") == [Lines(0, b"0123456789\nab\n")]


def test_leftover_is_the_unfinished_last_line_of_a_finished_stream() -> None:
    f = framer(max_line_bytes=8, keep_head=2)
    f.feed(b"a\nbcd")
    assert f.leftover() == Rejected("incomplete_line", 2, 3, b"bc")
    f.feed(b"e" * 10)
    assert f.leftover() == Rejected("incomplete_line", 2, 13, b"bc")
    assert framer().leftover() is None


def test_reset_forgets_what_was_held() -> None:
    f = framer(max_line_bytes=4)
    f.feed(b"abcdefgh")
    f.reset(0)
    assert (f.offset, f.held, f.leftover()) == (0, 0, None)
    assert f.feed(b"new\n") == [Lines(0, b"new\n")]
