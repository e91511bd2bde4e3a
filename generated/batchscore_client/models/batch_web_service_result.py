from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.batch_state import BatchState
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.batch_execution_result import BatchExecutionResult
    from ..models.batch_execution_summary_labels import BatchExecutionSummaryLabels


T = TypeVar("T", bound="BatchWebServiceResult")


@_attrs_define
class BatchWebServiceResult:
    """A batch execution's state, counters and results. **Extensions:** the counters beyond completed/total, `cursor` and
    `hasMore` for incremental polling, and `index`/`itemState` on each result.

        Attributes:
            state (BatchState): The state of a batch execution. ML Server's: `pending` (submitted, not yet scheduled),
                `ready` (can be
                executed), `inProgress` (records are running), `complete` (every record finished, successfully or not).
                **Extensions:** `failed` (the batch could not run at all - see `errorMessage`; record failures never fail
                a batch) and `canceled` (stopped by a cancel request). Compare case-insensitively.
            completed_item_count (int): Records finished, successfully or not (includes `failedItemCount`, not
                `canceledItemCount`).
            total_item_count (int): Records in the batch.
            batch_execution_results (list[BatchExecutionResult]): The results (see the operation for which ones, and in
                which order).
            batch_execution_id (str | Unset): **Extension.** Id of the batch execution.
            name (str | Unset): **Extension.** The service name.
            version (str | Unset): **Extension.** The service version.
            failed_item_count (int | Unset): **Extension.** Records that finished with `success: false`.
            running_item_count (int | Unset): **Extension.** Records running now.
            canceled_item_count (int | Unset): **Extension.** Records that were canceled before they ran.
            parallel_count (int | Unset): **Extension.** The effective parallelism (after the server cap).
            item_timeout (float | Unset): **Extension.** Seconds one record may run, when limited. For a vectorized service
                it counts per chunk: every row of a chunk starts when the chunk starts.
            created_by (str | Unset): **Extension.** The user who started the batch.
            creation_time (datetime.datetime | Unset): **Extension.** When the batch was started.
            completion_time (datetime.datetime | Unset): **Extension.** When the batch finished.
            error_message (str | Unset): **Extension.** Why the batch failed, when `state` is `failed`.
            start_time (datetime.datetime | None | Unset): **Extension.** When its first record started; null before.
            labels (BatchExecutionSummaryLabels | Unset): **Extension.** The labels given at start (`label=key=value`).
            passthrough (list[str] | Unset): **Extension.** The passthrough column names given at start; absent when none
                were.
            rows_per_second (float | None | Unset): **Extension.** Records finished per second, observed since the batch
                last started running (so a resumed or retried batch is measured afresh); null until there is a rate to report.
            estimated_seconds_left (float | None | Unset): **Extension.** Records left divided by `rowsPerSecond`, while the
                batch runs; null when unknown or finished.
            expires_at (datetime.datetime | None | Unset): **Extension.** When the batch's records, results and files are
                deleted (its retention after it finished); null while it runs, or when the server keeps them for ever.
            expired (bool | Unset): **Extension.** True once the batch expired: only this summary remains.
            max_failed_items (int | Unset): **Extension.** The failure policy given at start, when set.
            max_failure_ratio (float | Unset): **Extension.** The failure policy given at start, when set.
            min_failure_sample (int | Unset): **Extension.** The sample `maxFailureRatio` waits for, when it is set.
            item_retries (int | Unset): **Extension.** Retries of a record after a retryable failure.
            retry_timeouts (bool | Unset): **Extension.** Whether timeouts are retried.
            retried_item_count (int | Unset): **Extension.** Records that ran more than once.
            callback_url (str | Unset): **Extension.** Where the batch's webhooks go, when it has one.
            cursor (str | Unset): **Extension.** Pass as `since` to get only results finished after this response.
            has_more (bool | Unset): **Extension.** Whether `limit` held back results that are already available.
    """

    state: BatchState
    completed_item_count: int
    total_item_count: int
    batch_execution_results: list[BatchExecutionResult]
    batch_execution_id: str | Unset = UNSET
    name: str | Unset = UNSET
    version: str | Unset = UNSET
    failed_item_count: int | Unset = UNSET
    running_item_count: int | Unset = UNSET
    canceled_item_count: int | Unset = UNSET
    parallel_count: int | Unset = UNSET
    item_timeout: float | Unset = UNSET
    created_by: str | Unset = UNSET
    creation_time: datetime.datetime | Unset = UNSET
    completion_time: datetime.datetime | Unset = UNSET
    error_message: str | Unset = UNSET
    start_time: datetime.datetime | None | Unset = UNSET
    labels: BatchExecutionSummaryLabels | Unset = UNSET
    passthrough: list[str] | Unset = UNSET
    rows_per_second: float | None | Unset = UNSET
    estimated_seconds_left: float | None | Unset = UNSET
    expires_at: datetime.datetime | None | Unset = UNSET
    expired: bool | Unset = UNSET
    max_failed_items: int | Unset = UNSET
    max_failure_ratio: float | Unset = UNSET
    min_failure_sample: int | Unset = UNSET
    item_retries: int | Unset = UNSET
    retry_timeouts: bool | Unset = UNSET
    retried_item_count: int | Unset = UNSET
    callback_url: str | Unset = UNSET
    cursor: str | Unset = UNSET
    has_more: bool | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        state = self.state.value

        completed_item_count = self.completed_item_count

        total_item_count = self.total_item_count

        batch_execution_results = []
        for batch_execution_results_item_data in self.batch_execution_results:
            batch_execution_results_item = batch_execution_results_item_data.to_dict()
            batch_execution_results.append(batch_execution_results_item)

        batch_execution_id = self.batch_execution_id

        name = self.name

        version = self.version

        failed_item_count = self.failed_item_count

        running_item_count = self.running_item_count

        canceled_item_count = self.canceled_item_count

        parallel_count = self.parallel_count

        item_timeout = self.item_timeout

        created_by = self.created_by

        creation_time: str | Unset = UNSET
        if not isinstance(self.creation_time, Unset):
            creation_time = self.creation_time.isoformat()

        completion_time: str | Unset = UNSET
        if not isinstance(self.completion_time, Unset):
            completion_time = self.completion_time.isoformat()

        error_message = self.error_message

        start_time: None | str | Unset
        if isinstance(self.start_time, Unset):
            start_time = UNSET
        elif isinstance(self.start_time, datetime.datetime):
            start_time = self.start_time.isoformat()
        else:
            start_time = self.start_time

        labels: dict[str, Any] | Unset = UNSET
        if not isinstance(self.labels, Unset):
            labels = self.labels.to_dict()

        passthrough: list[str] | Unset = UNSET
        if not isinstance(self.passthrough, Unset):
            passthrough = self.passthrough

        rows_per_second: float | None | Unset
        if isinstance(self.rows_per_second, Unset):
            rows_per_second = UNSET
        else:
            rows_per_second = self.rows_per_second

        estimated_seconds_left: float | None | Unset
        if isinstance(self.estimated_seconds_left, Unset):
            estimated_seconds_left = UNSET
        else:
            estimated_seconds_left = self.estimated_seconds_left

        expires_at: None | str | Unset
        if isinstance(self.expires_at, Unset):
            expires_at = UNSET
        elif isinstance(self.expires_at, datetime.datetime):
            expires_at = self.expires_at.isoformat()
        else:
            expires_at = self.expires_at

        expired = self.expired

        max_failed_items = self.max_failed_items

        max_failure_ratio = self.max_failure_ratio

        min_failure_sample = self.min_failure_sample

        item_retries = self.item_retries

        retry_timeouts = self.retry_timeouts

        retried_item_count = self.retried_item_count

        callback_url = self.callback_url

        cursor = self.cursor

        has_more = self.has_more

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "state": state,
                "completedItemCount": completed_item_count,
                "totalItemCount": total_item_count,
                "batchExecutionResults": batch_execution_results,
            }
        )
        if batch_execution_id is not UNSET:
            field_dict["batchExecutionId"] = batch_execution_id
        if name is not UNSET:
            field_dict["name"] = name
        if version is not UNSET:
            field_dict["version"] = version
        if failed_item_count is not UNSET:
            field_dict["failedItemCount"] = failed_item_count
        if running_item_count is not UNSET:
            field_dict["runningItemCount"] = running_item_count
        if canceled_item_count is not UNSET:
            field_dict["canceledItemCount"] = canceled_item_count
        if parallel_count is not UNSET:
            field_dict["parallelCount"] = parallel_count
        if item_timeout is not UNSET:
            field_dict["itemTimeout"] = item_timeout
        if created_by is not UNSET:
            field_dict["createdBy"] = created_by
        if creation_time is not UNSET:
            field_dict["creationTime"] = creation_time
        if completion_time is not UNSET:
            field_dict["completionTime"] = completion_time
        if error_message is not UNSET:
            field_dict["errorMessage"] = error_message
        if start_time is not UNSET:
            field_dict["startTime"] = start_time
        if labels is not UNSET:
            field_dict["labels"] = labels
        if passthrough is not UNSET:
            field_dict["passthrough"] = passthrough
        if rows_per_second is not UNSET:
            field_dict["rowsPerSecond"] = rows_per_second
        if estimated_seconds_left is not UNSET:
            field_dict["estimatedSecondsLeft"] = estimated_seconds_left
        if expires_at is not UNSET:
            field_dict["expiresAt"] = expires_at
        if expired is not UNSET:
            field_dict["expired"] = expired
        if max_failed_items is not UNSET:
            field_dict["maxFailedItems"] = max_failed_items
        if max_failure_ratio is not UNSET:
            field_dict["maxFailureRatio"] = max_failure_ratio
        if min_failure_sample is not UNSET:
            field_dict["minFailureSample"] = min_failure_sample
        if item_retries is not UNSET:
            field_dict["itemRetries"] = item_retries
        if retry_timeouts is not UNSET:
            field_dict["retryTimeouts"] = retry_timeouts
        if retried_item_count is not UNSET:
            field_dict["retriedItemCount"] = retried_item_count
        if callback_url is not UNSET:
            field_dict["callbackUrl"] = callback_url
        if cursor is not UNSET:
            field_dict["cursor"] = cursor
        if has_more is not UNSET:
            field_dict["hasMore"] = has_more

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.batch_execution_result import BatchExecutionResult
        from ..models.batch_execution_summary_labels import BatchExecutionSummaryLabels

        d = dict(src_dict)
        state = BatchState(d.pop("state"))

        completed_item_count = d.pop("completedItemCount")

        total_item_count = d.pop("totalItemCount")

        batch_execution_results = []
        _batch_execution_results = d.pop("batchExecutionResults")
        for batch_execution_results_item_data in _batch_execution_results:
            batch_execution_results_item = BatchExecutionResult.from_dict(
                batch_execution_results_item_data
            )

            batch_execution_results.append(batch_execution_results_item)

        batch_execution_id = d.pop("batchExecutionId", UNSET)

        name = d.pop("name", UNSET)

        version = d.pop("version", UNSET)

        failed_item_count = d.pop("failedItemCount", UNSET)

        running_item_count = d.pop("runningItemCount", UNSET)

        canceled_item_count = d.pop("canceledItemCount", UNSET)

        parallel_count = d.pop("parallelCount", UNSET)

        item_timeout = d.pop("itemTimeout", UNSET)

        created_by = d.pop("createdBy", UNSET)

        _creation_time = d.pop("creationTime", UNSET)
        creation_time: datetime.datetime | Unset
        if isinstance(_creation_time, Unset):
            creation_time = UNSET
        else:
            creation_time = datetime.datetime.fromisoformat(_creation_time)

        _completion_time = d.pop("completionTime", UNSET)
        completion_time: datetime.datetime | Unset
        if isinstance(_completion_time, Unset):
            completion_time = UNSET
        else:
            completion_time = datetime.datetime.fromisoformat(_completion_time)

        error_message = d.pop("errorMessage", UNSET)

        def _parse_start_time(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                start_time_type_0 = datetime.datetime.fromisoformat(data)

                return start_time_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        start_time = _parse_start_time(d.pop("startTime", UNSET))

        _labels = d.pop("labels", UNSET)
        labels: BatchExecutionSummaryLabels | Unset
        if isinstance(_labels, Unset):
            labels = UNSET
        else:
            labels = BatchExecutionSummaryLabels.from_dict(_labels)

        passthrough = cast(list[str], d.pop("passthrough", UNSET))

        def _parse_rows_per_second(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        rows_per_second = _parse_rows_per_second(d.pop("rowsPerSecond", UNSET))

        def _parse_estimated_seconds_left(data: object) -> float | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            return cast(float | None | Unset, data)

        estimated_seconds_left = _parse_estimated_seconds_left(
            d.pop("estimatedSecondsLeft", UNSET)
        )

        def _parse_expires_at(data: object) -> datetime.datetime | None | Unset:
            if data is None:
                return data
            if isinstance(data, Unset):
                return data
            try:
                if not isinstance(data, str):
                    raise TypeError()
                expires_at_type_0 = datetime.datetime.fromisoformat(data)

                return expires_at_type_0
            except (TypeError, ValueError, AttributeError, KeyError):
                pass
            return cast(datetime.datetime | None | Unset, data)

        expires_at = _parse_expires_at(d.pop("expiresAt", UNSET))

        expired = d.pop("expired", UNSET)

        max_failed_items = d.pop("maxFailedItems", UNSET)

        max_failure_ratio = d.pop("maxFailureRatio", UNSET)

        min_failure_sample = d.pop("minFailureSample", UNSET)

        item_retries = d.pop("itemRetries", UNSET)

        retry_timeouts = d.pop("retryTimeouts", UNSET)

        retried_item_count = d.pop("retriedItemCount", UNSET)

        callback_url = d.pop("callbackUrl", UNSET)

        cursor = d.pop("cursor", UNSET)

        has_more = d.pop("hasMore", UNSET)

        batch_web_service_result = cls(
            state=state,
            completed_item_count=completed_item_count,
            total_item_count=total_item_count,
            batch_execution_results=batch_execution_results,
            batch_execution_id=batch_execution_id,
            name=name,
            version=version,
            failed_item_count=failed_item_count,
            running_item_count=running_item_count,
            canceled_item_count=canceled_item_count,
            parallel_count=parallel_count,
            item_timeout=item_timeout,
            created_by=created_by,
            creation_time=creation_time,
            completion_time=completion_time,
            error_message=error_message,
            start_time=start_time,
            labels=labels,
            passthrough=passthrough,
            rows_per_second=rows_per_second,
            estimated_seconds_left=estimated_seconds_left,
            expires_at=expires_at,
            expired=expired,
            max_failed_items=max_failed_items,
            max_failure_ratio=max_failure_ratio,
            min_failure_sample=min_failure_sample,
            item_retries=item_retries,
            retry_timeouts=retry_timeouts,
            retried_item_count=retried_item_count,
            callback_url=callback_url,
            cursor=cursor,
            has_more=has_more,
        )

        batch_web_service_result.additional_properties = d
        return batch_web_service_result

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
