"""Chunks shrink towards a batch's end, so no worker is left running one long last chunk alone."""

from __future__ import annotations

from batchscore_server._batch import CHUNKS_PER_SLOT, guided_chunks


def rows(start: int, count: int) -> list[tuple[int, str]]:
    return [(index, "{}") for index in range(start, start + count)]


def test_chunks_cover_every_row_once_in_order_and_shrink_to_single_rows() -> None:
    chunks = guided_chunks(rows(0, 10_000), 10_000, slots=2, largest=500)
    assert [index for chunk in chunks for index, _ in chunk] == list(range(10_000))
    sizes = [len(chunk) for chunk in chunks]
    assert sizes[0] == 500
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[-1] == 1
    assert max(sizes[-2 * CHUNKS_PER_SLOT :]) <= 2


def test_a_page_early_in_a_large_batch_gets_full_chunks() -> None:
    sizes = [len(chunk) for chunk in guided_chunks(rows(0, 20_000), 1_000_000, slots=2, largest=500)]
    assert sizes == [500] * 40


def test_timed_rows_go_one_per_chunk() -> None:
    assert [len(chunk) for chunk in guided_chunks(rows(5, 3), 3, slots=4, largest=1)] == [1, 1, 1]
