"""Logic shared by the sync and async twins: the wait loop's decisions, progress, artifact names.

Nothing here does I/O; ``Client``/``AsyncClient`` and their services and batches only send what this module
decides and hand back what it parses.
"""

from __future__ import annotations

import os
import random
import sys
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from batchscore._exceptions import BatchCanceledError, BatchFailedError, DownloadError, WaitTimeoutError
from batchscore._models import BatchState, BatchStatus, ExecutionResult, ServiceInfo
from batchscore._retry import PollPolicy, poll_delay, retry_after_seconds

RESULTS_PAGE = 10_000
ProgressCallback = Callable[[BatchStatus], None]


def latest(services: list[ServiceInfo], name: str) -> ServiceInfo:
    """The last published version (the server lists versions oldest first, as ML Server did).

    Raises:
        LookupError: The service has no version.

    """
    if not services:
        raise LookupError(f"service {name!r} has no published version")
    return services[-1]


def safe_file_name(name: str) -> str:
    """A server-supplied file name that is safe to create in a folder: a plain name, nothing else.

    Raises:
        DownloadError: The name has a directory part, is empty, is ``.``/``..`` or holds control characters.

    """
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or any(unicodedata.category(c) == "Cc" for c in name)  # C0, DEL and C1 controls (terminal escapes)
        or Path(name).is_absolute()
    ):
        raise DownloadError(f"refusing to write a file named {name!r}: not a plain file name")
    return name


def destination_folder(dest: str | os.PathLike[str] | None) -> Path:
    """The folder downloads go to: ``dest``, or the working directory.

    Raises:
        DownloadError: The folder does not exist.

    """
    folder = Path.cwd() if dest is None else Path(dest)
    if not folder.is_dir():
        raise DownloadError(f"the download folder {folder} does not exist; create it first")
    return folder


def _progress_bar(total: int, description: str) -> Any:
    interactive = sys.stderr.isatty() or "ipykernel" in sys.modules
    if not interactive:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=description, unit="row", dynamic_ncols=True)


def server_rate(status: BatchStatus) -> tuple[float | None, float | None]:
    """The server's ``rowsPerSecond`` and ``estimatedSecondsLeft`` for a status (None: not reported)."""
    return status.rows_per_second, status.estimated_seconds_left


def server_rate_format(status: BatchStatus) -> str | None:
    """A tqdm ``bar_format`` showing the server's rate and ETA, or None (tqdm's own) when it reports no rate."""
    rate, left = server_rate(status)
    if rate is None:
        return None
    eta = "?" if left is None else _interval(left)
    return f"{{l_bar}}{{bar}}| {{n_fmt}}/{{total_fmt}} [{{elapsed}}<{eta}, {rate:.2f}row/s{{postfix}}]"


def _interval(seconds: float) -> str:
    """Seconds as tqdm writes a time: ``MM:SS``, or ``H:MM:SS`` from an hour."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class WaitTracker:
    """The decisions of ``Batch.wait()``: what to ask next, what arrived, how long to sleep, when to stop.

    Polls incrementally from a cursor, so each finished row is downloaded once; servers without incremental
    polling (ML Server) answer with every result each time, which is handled too.

    Args:
        execution_id: The batch.
        timeout: Seconds to wait in all (None: no limit).
        poll_interval: Fixed seconds between polls (None: backoff from ``policy``, honouring ``Retry-After``).
        policy: The backoff schedule.
        clock: Monotonic clock (tests pass a fake).
        progress: Show a progress bar in a terminal or notebook.
        on_progress: Called with each status seen.
        collect: Keep results (False streams them to ``on_result`` only).
        on_result: Called with each new result.

    """

    def __init__(
        self,
        execution_id: str,
        *,
        timeout: float | None,
        poll_interval: float | None,
        policy: PollPolicy,
        clock: Callable[[], float],
        progress: bool,
        on_progress: ProgressCallback | None,
        collect: bool = True,
        on_result: Callable[[ExecutionResult], None] | None = None,
    ) -> None:
        self.execution_id = execution_id
        self.results: dict[int, ExecutionResult] = {}
        self.cursor = "0"
        self._deadline = None if timeout is None else clock() + timeout
        self._timeout = timeout
        self._poll_interval = poll_interval
        self._policy = policy
        self._clock = clock
        self._show_progress = progress
        self._bar: Any = None
        self._on_progress = on_progress
        self._collect = collect
        self._on_result = on_result
        self._quiet_polls = 0
        self._rng = random.Random()
        self.last: BatchStatus | None = None

    @property
    def page(self) -> int:
        """How many results one poll asks for at most."""
        return RESULTS_PAGE

    def absorb(self, status: BatchStatus, headers: Mapping[str, str] | None = None) -> float | None:
        """Take in one poll's answer (its status and its headers, for ``Retry-After``).

        Returns:
            Seconds to sleep before the next poll, or None when the batch is finished.

        Raises:
            WaitTimeoutError: The timeout ran out first.

        """
        new = self._take_results(status)
        self.last = status
        self._update_progress(status)
        if status.has_more:
            return 0.0
        if status.is_final:
            return None
        now = self._clock()
        if self._deadline is not None and now >= self._deadline:
            self.close()
            raise WaitTimeoutError(
                f"batch {self.execution_id} is still {status.state.value} after {self._timeout:g} s",
                self.snapshot(),
            )
        # The delay starts at policy.initial and grows with each poll that brings nothing new; progress
        # brings it back to policy.initial.
        if new:
            self._quiet_polls = 0
        if self._poll_interval is not None:
            delay = self._poll_interval
        else:
            delay = poll_delay(self._policy, self._quiet_polls, retry_after_seconds(headers), self._rng)
        self._quiet_polls += 1
        return delay if self._deadline is None else max(0.0, min(delay, self._deadline - now))

    def _take_results(self, status: BatchStatus) -> int:
        if status.cursor is None:
            # An old server: every poll repeats every result, in index order; only the unseen ones are new.
            numbered = [replace(r, index=r.index if r.index is not None else p) for p, r in enumerate(status.results)]
            fresh = [r for r in numbered if r.index not in self.results]
            for result in fresh:
                self.results[result.index] = result  # type: ignore[index]  # numbered above
        else:
            fresh = list(status.results)
            self.cursor = status.cursor
            if self._collect:
                for result in fresh:
                    if result.index is not None:
                        self.results[result.index] = result
        if self._on_result is not None:
            for result in fresh:
                self._on_result(result)
        return len(fresh)

    def _update_progress(self, status: BatchStatus) -> None:
        if self._on_progress is not None:
            self._on_progress(status)
        if not self._show_progress:
            return
        if self._bar is None:
            self._bar = _progress_bar(status.total_item_count, f"batch {self.execution_id[:8]}")
            if self._bar is None:
                self._show_progress = False
                return
        # Canceled rows never ran: the bar stops at the rows really finished and says how many were canceled, and
        # a batch that ended other than complete says so in its description.
        self._bar.n = status.completed_item_count
        # The server's rate and ETA when it reports them: the bar's own estimate counts every row already done
        # when it attached (a resumed wait, a retried batch) as done in its first second.
        self._bar.bar_format = server_rate_format(status)
        counts = {"failed": status.failed_item_count, "running": status.running_item_count}
        if status.canceled_item_count:
            counts["canceled"] = status.canceled_item_count
        self._bar.set_postfix(counts, refresh=False)
        if status.is_final and status.state is not BatchState.COMPLETE:
            self._bar.set_description(f"batch {self.execution_id[:8]} {status.state.value}", refresh=False)
        self._bar.refresh()

    def snapshot(self) -> BatchStatus:
        """The last status seen, carrying every result collected so far in index order."""
        if self.last is None:
            raise RuntimeError("no status was seen yet")  # unreachable: absorb() runs before any snapshot
        ordered = tuple(self.results[index] for index in sorted(self.results))
        return replace(self.last, results=ordered, has_more=False, cursor=self.cursor)

    def finish(self) -> BatchStatus:
        """The final status with every collected result.

        Raises:
            BatchFailedError: The batch failed.
            BatchCanceledError: The batch was canceled.

        """
        self.close()
        final = self.snapshot()
        if final.state is BatchState.FAILED:
            raise BatchFailedError(
                f"batch {self.execution_id} failed: {final.error_message or 'no reason given'}", final
            )
        if final.state is BatchState.CANCELED:
            raise BatchCanceledError(
                f"batch {self.execution_id} was canceled ({final.completed_item_count} of "
                f"{final.total_item_count} rows finished)",
                final,
            )
        return final

    def close(self) -> None:
        """Close the progress bar."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
