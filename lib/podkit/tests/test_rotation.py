from __future__ import annotations

from pathlib import Path

from podkit import rotation
from podkit.rotation import Gap, Generation


def chain(*sizes: int | None) -> list[Generation]:
    return [Generation(n, 100 + n, size, n > 1) for n, size in enumerate(sizes, start=1)]


def test_next_generation_is_no_gap() -> None:
    assert rotation.gap(chain(10, 20, None), 101, 102) == Gap(0, 0, 10)


def test_skipped_generations_and_their_bytes() -> None:
    assert rotation.gap(chain(10, 20, 30, None), 101, 104) == Gap(2, 50, 10)


def test_unknown_file_or_broken_link_cannot_tell() -> None:
    assert rotation.gap(chain(10, None), 999, 102) is None
    assert rotation.gap(chain(10, None), 101, 999) is None
    broken = [Generation(1, 101, 10, False), Generation(2, 102, 20, False), Generation(3, 103, None, True)]
    assert rotation.gap(broken, 101, 103) is None


def test_the_ledger_round_trips_and_keeps_the_last_generations(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    assert rotation.load(path) == []
    many = chain(*([1] * (rotation.MAX_GENERATIONS + 5)), None)
    rotation.save(path, many)
    assert rotation.load(path) == many[-rotation.MAX_GENERATIONS :]
    rotation.ledger_path(path).write_text("not json")
    assert rotation.load(path) == []
