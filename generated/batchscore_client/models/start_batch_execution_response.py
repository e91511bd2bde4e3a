from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="StartBatchExecutionResponse")


@_attrs_define
class StartBatchExecutionResponse:
    """The started batch. `BatchExecutionId` repeats `batchExecutionId` in the spelling `azureml-model-management-sdk`
    1.0.1b6 reads.

        Attributes:
            batchExecutionId (str | Unset): Id of the batch execution.
            BatchExecutionId (str | Unset): The same id, for old clients (alias).
            name (str | Unset): The service name.
            version (str | Unset): The service version.
            total_item_count (int | Unset): **Extension.** How many records the batch has.
    """

    batchExecutionId: str | Unset = UNSET
    BatchExecutionId: str | Unset = UNSET
    name: str | Unset = UNSET
    version: str | Unset = UNSET
    total_item_count: int | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        batchExecutionId = self.batchExecutionId

        BatchExecutionId = self.BatchExecutionId

        name = self.name

        version = self.version

        total_item_count = self.total_item_count

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if batchExecutionId is not UNSET:
            field_dict["batchExecutionId"] = batchExecutionId
        if BatchExecutionId is not UNSET:
            field_dict["BatchExecutionId"] = BatchExecutionId
        if name is not UNSET:
            field_dict["name"] = name
        if version is not UNSET:
            field_dict["version"] = version
        if total_item_count is not UNSET:
            field_dict["totalItemCount"] = total_item_count

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        batchExecutionId = d.pop("batchExecutionId", UNSET)

        BatchExecutionId = d.pop("BatchExecutionId", UNSET)

        name = d.pop("name", UNSET)

        version = d.pop("version", UNSET)

        total_item_count = d.pop("totalItemCount", UNSET)

        start_batch_execution_response = cls(
            batchExecutionId=batchExecutionId,
            BatchExecutionId=BatchExecutionId,
            name=name,
            version=version,
            total_item_count=total_item_count,
        )

        start_batch_execution_response.additional_properties = d
        return start_batch_execution_response

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
