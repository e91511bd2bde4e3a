"""The fair-share dispatcher's order (pure: no Dask, no event loop) and the chunk sizes its clock allows."""

from __future__ import annotations

from batchscore_server._batch import MAX_CHUNK_ROWS
from batchscore_server._fair import CHUNK_SECONDS, PROBE_ROWS, ChunkClock, FairShare


def claims(fair: FairShare, *batch_ids: str) -> dict[str, int]:
    return {batch_id: fair.claim(batch_id) for batch_id in batch_ids}


def busy(threads: int) -> FairShare:
    """A dispatcher whose threads are all held by batch "x" (the others queue up until it leaves)."""
    fair = FairShare(threads)
    fair.join("x", "xavier", limit=threads)
    fair.want("x", threads)
    assert fair.claim("x") == threads
    return fair


def test_a_batch_alone_gets_every_thread_up_to_its_parallel_count() -> None:
    fair = FairShare(threads=2)
    fair.join("a", "alice", limit=10)
    fair.want("a", 100)
    assert fair.claim("a") == 2
    assert fair.claim("a") == 0  # claimed once
    fair.release("a")
    assert fair.claim("a") == 1

    narrow = FairShare(threads=4)
    narrow.join("a", "alice", limit=1)
    narrow.want("a", 100)
    assert narrow.claim("a") == 1


def test_a_thread_freed_by_a_large_batch_goes_to_the_other_user_waiting() -> None:
    fair = FairShare(threads=2)
    fair.join("big", "alice", limit=2)
    fair.want("big", 100)
    assert fair.claim("big") == 2
    wake = fair.join("small", "bob", limit=2)
    fair.want("small", 5)
    assert fair.waits("small")
    assert not wake.is_set()
    fair.release("big")  # alice's chunk ended: the thread goes to bob, not back to alice
    assert wake.is_set()
    assert claims(fair, "big", "small") == {"big": 0, "small": 1}
    fair.release("big")  # now each user has one: alice's turn
    assert claims(fair, "big", "small") == {"big": 1, "small": 0}
    fair.release("small")  # bob's chunk ended: bob has none in flight, alice one
    assert claims(fair, "big", "small") == {"big": 0, "small": 1}


def test_threads_go_round_robin_across_users_then_across_each_users_batches() -> None:
    fair = busy(threads=4)
    for batch_id, user in (("a1", "alice"), ("a2", "alice"), ("b1", "bob")):
        fair.join(batch_id, user, limit=4)
        fair.want(batch_id, 100)
    fair.leave("x")
    # Two users: two threads each, however many batches alice has; alice's two go one to each of her batches.
    assert claims(fair, "a1", "a2", "b1") == {"a1": 1, "a2": 1, "b1": 2}
    order = []
    for _ in range(6):  # chunks end one at a time: each thread freed goes back to the user who freed it
        for batch_id in ("a1", "b1", "a2"):
            fair.release(batch_id)
            got = claims(fair, "a1", "a2", "b1")
            order.append(next(b for b, n in got.items() if n))
    assert order[:3] == ["a1", "b1", "a2"]


def test_a_user_with_many_batches_gets_no_more_than_one_with_one() -> None:
    fair = busy(threads=2)
    for batch_id in ("a1", "a2", "a3"):
        fair.join(batch_id, "alice", limit=2)
        fair.want(batch_id, 50)
    fair.join("b1", "bob", limit=2)
    fair.want("b1", 50)
    fair.leave("x")
    got = claims(fair, "a1", "a2", "a3", "b1")
    assert got["b1"] == 1
    assert sum(got.values()) == 2


def test_when_threads_are_free_every_batch_runs_up_to_its_own_parallel_count() -> None:
    fair = FairShare(threads=8)
    fair.join("a", "alice", limit=2)
    fair.join("b", "bob", limit=3)
    fair.want("a", 10)
    fair.want("b", 10)
    assert claims(fair, "a", "b") == {"a": 2, "b": 3}  # 3 threads stay free: no batch may take more


def test_a_batch_that_ends_or_hands_grants_back_frees_its_threads_for_the_others() -> None:
    fair = FairShare(threads=2)
    fair.join("a", "alice", limit=2)
    fair.want("a", 10)
    fair.join("b", "bob", limit=2)
    fair.want("b", 10)
    assert claims(fair, "a", "b") == {"a": 2, "b": 0}  # alice asked first, when both threads were free
    fair.leave("a")
    assert fair.claim("b") == 2
    fair.want("b", 0)
    fair.release("b", 2)  # e.g. canceled before submitting: the grants go back
    assert fair.running("b") == 0


def test_workers_joining_are_granted_to_the_waiting_batches() -> None:
    fair = FairShare(threads=1)
    fair.join("a", "alice", limit=4)
    fair.want("a", 10)
    assert fair.claim("a") == 1
    fair.set_threads(3)
    assert fair.claim("a") == 2
    assert not fair.shared


def test_no_grant_beyond_the_chunks_a_batch_has_ready() -> None:
    fair = FairShare(threads=4)
    fair.join("a", "alice", limit=4)
    fair.want("a", 1)
    assert fair.claim("a") == 1
    assert not fair.waits("a")
    fair.want("a", 0)
    assert fair.claim("a") == 0


def test_chunks_are_capped_to_about_half_a_second_of_slow_rows_and_stay_large_for_fast_ones() -> None:
    clock = ChunkClock()
    assert clock.cap() == PROBE_ROWS  # its first chunks, before any came back
    clock.observe(20, 20 * 0.00002)  # a trivial row: 20 µs
    assert clock.cap() > MAX_CHUNK_ROWS  # the engine's largest chunks are kept
    slow = ChunkClock()
    slow.observe(20, 20 * 0.003)  # 3 ms a row
    assert slow.cap() == int(CHUNK_SECONDS / 0.003)
    slow.observe(10, 10 * 2.0)  # rows got much slower: the estimate follows at once
    assert slow.cap() == 1
    slow.observe(0, 1.0)  # a chunk stopped before its first row says nothing
    assert slow.cap() == 1


def test_grants_not_claimed_yet_count_among_the_chunks_a_batch_has_ready() -> None:
    fair = busy(threads=4)
    fair.join("a", "alice", limit=4)
    fair.want("a", 2)
    fair.release("x", 4)  # two threads go to "a" (its two chunks) while its loop is busy elsewhere
    fair.want("a", 2)  # the same two chunks, asked for again before the loop claimed the grants
    assert fair.claim("a") == 2
