"""A batch's failure policy and item retries (issue 15): when the engine stops a batch, and when it runs a row again.

The policy is judged by the replica that drives the batch, after every write of results, from the batch's counts
in the database (so a batch resumed after a restart, or taken over by another replica, is judged on every row it
has finished, and one that already broke its policy stops at once). A row counts as failed only once its retries
are spent: a failure that is retried is not recorded as a result (see ``_store.hold_for_retry``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# The sample maxFailureRatio waits for when minFailureSample is not given (the contract says so).
DEFAULT_MIN_FAILURE_SAMPLE = 20
# Backoff before a retry: the first waits this long, each next one twice as long, at most RETRY_MAX_DELAY_SECONDS.
RETRY_FIRST_DELAY_SECONDS = 1.0
RETRY_MAX_DELAY_SECONDS = 60.0
# An earlier attempt's error is kept up to this many characters (a traceback can be long; at most 10 are kept).
MAX_ATTEMPT_ERROR_CHARS = 16_384


@dataclass(frozen=True)
class FailurePolicy:
    """When a batch stops because too many of its rows failed.

    Attributes:
        max_failed_items: Stop once more rows than this failed (None: no limit).
        max_failure_ratio: Stop once more than this share of the finished rows failed (None: no limit)...
        min_failure_sample: ...judged once at least this many rows (or every row of a smaller batch) finished.
        total: The batch's rows.

    """

    max_failed_items: int | None
    max_failure_ratio: float | None
    min_failure_sample: int
    total: int

    @classmethod
    def of(cls, batch: Mapping[Any, Any]) -> FailurePolicy | None:
        """The policy a batch was started with (its ``batches`` row), or None when it has none."""
        if batch.get("max_failed_items") is None and batch.get("max_failure_ratio") is None:
            return None
        sample = batch.get("min_failure_sample")
        return cls(
            max_failed_items=batch.get("max_failed_items"),
            max_failure_ratio=batch.get("max_failure_ratio"),
            min_failure_sample=DEFAULT_MIN_FAILURE_SAMPLE if sample is None else int(sample),
            total=int(batch["total"]),
        )

    def breach(self, complete: int, failed: int) -> str | None:
        """Why the batch must stop with these counts (the batch's ``errorMessage``), or None while it may go on."""
        finished = complete + failed
        if self.max_failed_items is not None and failed > self.max_failed_items:
            return (
                f"stopped by the failure policy: {failed} of {finished} finished rows failed, "
                f"over maxFailedItems={self.max_failed_items}"
            )
        sample = min(self.min_failure_sample, self.total)
        if (
            self.max_failure_ratio is not None
            and finished > 0
            and finished >= sample
            and failed / finished > self.max_failure_ratio
        ):
            return (
                f"stopped by the failure policy: {failed} of {finished} finished rows failed "
                f"({failed / finished:.1%}), over maxFailureRatio={self.max_failure_ratio:g} "
                f"(judged from minFailureSample={sample} finished rows)"
            )
        return None


def retry_delay(retries_before: int) -> float:
    """Seconds to wait before a row's next run, when it was retried ``retries_before`` times already."""
    return min(RETRY_MAX_DELAY_SECONDS, RETRY_FIRST_DELAY_SECONDS * 2.0 ** min(retries_before, 16))


def policy_canceled_result() -> dict[str, Any]:
    """The result of a row that never ran because its batch's failure policy stopped the batch."""
    return {
        "success": False,
        "errorMessage": "canceled: the batch was stopped by its failure policy before this row ran",
        "consoleOutput": "",
        "changedFiles": [],
        "outputParameters": {},
    }
