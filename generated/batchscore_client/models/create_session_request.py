from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..models.runtime_type import RuntimeType
from ..types import UNSET, Unset

T = TypeVar("T", bound="CreateSessionRequest")


@_attrs_define
class CreateSessionRequest:
    """Properties of a new session.

    Attributes:
        name (str | Unset): Name of the session.
        snapshot_id (str | Unset): A server-assigned id (a GUID).
        runtime_type (RuntimeType | Unset): The runtime a service or session runs in. batchscore runs `Python`; `R` is
            refused with 422.
    """

    name: str | Unset = UNSET
    snapshot_id: str | Unset = UNSET
    runtime_type: RuntimeType | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        snapshot_id = self.snapshot_id

        runtime_type: str | Unset = UNSET
        if not isinstance(self.runtime_type, Unset):
            runtime_type = self.runtime_type.value

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update({})
        if name is not UNSET:
            field_dict["name"] = name
        if snapshot_id is not UNSET:
            field_dict["snapshotId"] = snapshot_id
        if runtime_type is not UNSET:
            field_dict["runtimeType"] = runtime_type

        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> Self:
        d = dict(src_dict)
        name = d.pop("name", UNSET)

        snapshot_id = d.pop("snapshotId", UNSET)

        _runtime_type = d.pop("runtimeType", UNSET)
        runtime_type: RuntimeType | Unset
        if isinstance(_runtime_type, Unset):
            runtime_type = UNSET
        else:
            runtime_type = RuntimeType(_runtime_type)

        create_session_request = cls(
            name=name,
            snapshot_id=snapshot_id,
            runtime_type=runtime_type,
        )

        create_session_request.additional_properties = d
        return create_session_request

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
