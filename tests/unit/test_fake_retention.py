"""The fake server expires a batch as the server's retention sweep does, so an app can test its ExpiredError path."""

from __future__ import annotations

import pytest

import batchscore
from batchscore.testing import FakeServer


def add(hp: float, wt: float) -> float:
    if hp < 0:
        raise ValueError("negative")
    return hp + wt


def test_an_expired_fake_batch_keeps_its_summary_and_its_files_and_retry_are_gone() -> None:
    fake = FakeServer(services={("adder", "v1"): add}, auto_advance=False)
    with fake.client() as client:
        batch = client.get_service("adder", "v1").batch({"hp": [1.0, -1.0], "wt": [2.0, 2.0]}).start()
        assert batch.id is not None
        with pytest.raises(ValueError, match="has not finished"):
            fake.expire_batch(batch.id)
        fake.finish(batch.id)
        before = batch.results()
        assert (before.expired, len(before.results)) == (False, 2)
        fake.expire_batch(batch.id)
        after = batch.results()
        assert after.expired is True
        assert after.expires_at
        assert list(after.results) == []
        assert (after.state, after.completed_item_count, after.failed_item_count) == (before.state, 2, 1)
        for gone in (lambda: batch.list_artifacts(0), lambda: batch.artifact(0, "x.png"), batch.retry_failed):
            with pytest.raises(batchscore.ExpiredError) as caught:
                gone()
            assert caught.value.field == "executionId"
