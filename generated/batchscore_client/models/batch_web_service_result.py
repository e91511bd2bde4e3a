from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.batch_state import BatchState
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.batch_execution_result import BatchExecutionResult


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
            item_timeout (float | Unset): **Extension.** Seconds one record may run, when limited.
            created_by (str | Unset): **Extension.** The user who started the batch.
            creation_time (datetime.datetime | Unset): **Extension.** When the batch was started.
            completion_time (datetime.datetime | Unset): **Extension.** When the batch finished.
            error_message (str | Unset): **Extension.** Why the batch failed, when `state` is `failed`.
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
        if cursor is not UNSET:
            field_dict["cursor"] = cursor
        if has_more is not UNSET:
            field_dict["hasMore"] = has_more

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        from ..models.batch_execution_result import BatchExecutionResult

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
