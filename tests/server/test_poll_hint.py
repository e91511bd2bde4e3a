"""The Retry-After of a poll: a second, or 0 when the batch may finish sooner."""

from __future__ import annotations

from typing import Any

import pytest

from batchscore_server._routes.views import POLL_HINT_SECONDS, poll_hint


def batch(total: int, complete: int, failed: int = 0, canceled: int = 0, created: float = 100.0) -> dict[str, Any]:
    return {
        "total": total,
        "complete_count": complete,
        "failed_count": failed,
        "canceled_count": canceled,
        "created": created,
    }


@pytest.mark.parametrize(
    ("row", "now", "hint"),
    [
        (batch(1000, 0), 105.0, POLL_HINT_SECONDS),  # no rate yet, and not young
        (batch(1000, 0), 100.2, 0),  # no rate yet, but young: it may be done within the second
        (batch(1000, 100), 110.0, POLL_HINT_SECONDS),  # 10 rows/s, 90 s left
        (batch(1000, 900, failed=50), 101.0, 0),  # 950 rows/s, 50 rows left
        (batch(1000, 400, canceled=590), 102.0, 0),  # canceled rows will not run
        (batch(1000, 600), 102.0, POLL_HINT_SECONDS),  # 300 rows/s, 400 left: 1.3 s
        (batch(10, 5), 99.0, POLL_HINT_SECONDS),  # a clock behind the creation time: no rate
    ],
)
def test_poll_hint(row: dict[str, Any], now: float, hint: int) -> None:
    assert poll_hint(row, now) == hint
