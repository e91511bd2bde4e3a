from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.batch_state import BatchState

T = TypeVar("T", bound="BatchExportEnd")


@_attrs_define
class BatchExportEnd:
    """**Extension.** The last line of a results export: its presence and `records` prove the download whole.

    Attributes:
        end (bool): Always true.
        records (int): Record lines sent before this one.
        cursor (str): The position after the last record sent (or `since` when none was); resume from it.
        state (BatchState): The state of a batch execution. ML Server's: `pending` (submitted, not yet scheduled),
            `ready` (can be
            executed), `inProgress` (records are running), `complete` (every record finished, successfully or not).
            **Extensions:** `failed` (the batch could not run at all - see `errorMessage`; record failures never fail
            a batch) and `canceled` (stopped by a cancel request). Compare case-insensitively.
        total_item_count (int): Records in the batch.
        completed_item_count (int): Records finished when the stream started.
        failed_item_count (int): Of them, failed.
        canceled_item_count (int): Records canceled.
    """

    end: bool
    records: int
    cursor: str
    state: BatchState
    total_item_count: int
    completed_item_count: int
    failed_item_count: int
    canceled_item_count: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        end = self.end

        records = self.records

        cursor = self.cursor

        state = self.state.value

        total_item_count = self.total_item_count

        completed_item_count = self.completed_item_count

        failed_item_count = self.failed_item_count

        canceled_item_count = self.canceled_item_count

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "end": end,
                "records": records,
                "cursor": cursor,
                "state": state,
                "totalItemCount": total_item_count,
                "completedItemCount": completed_item_count,
                "failedItemCount": failed_item_count,
                "canceledItemCount": canceled_item_count,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        end = d.pop("end")

        records = d.pop("records")

        cursor = d.pop("cursor")

        state = BatchState(d.pop("state"))

        total_item_count = d.pop("totalItemCount")

        completed_item_count = d.pop("completedItemCount")

        failed_item_count = d.pop("failedItemCount")

        canceled_item_count = d.pop("canceledItemCount")

        batch_export_end = cls(
            end=end,
            records=records,
            cursor=cursor,
            state=state,
            total_item_count=total_item_count,
            completed_item_count=completed_item_count,
            failed_item_count=failed_item_count,
            canceled_item_count=canceled_item_count,
        )

        batch_export_end.additional_properties = d
        return batch_export_end

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
